import Foundation
import ProxyConfig
@testable import ProxyCore
import Testing

/// The order of `RouteTargetResolver` against a file system made of a dictionary.
@Suite struct RouteTargetResolverTests {
    static let root = "/srv/www"

    /// Paths relative to the root: a trailing `/` makes a directory; `links` are symlinked paths.
    static func resolver(_ entries: [String], links: Set<String> = []) -> RouteTargetResolver {
        var table: [String: FileInfo] = [root: FileInfo(size: 0, modified: 0, isDirectory: true, isRegular: false)]
        for entry in entries {
            let isDirectory = entry.hasSuffix("/")
            let name = root + "/" + (isDirectory ? String(entry.dropLast()) : entry)
            table[name] = FileInfo(size: name.utf8.count, modified: 1_700_000_000, isDirectory: isDirectory, isRegular: !isDirectory)
        }
        let linked = Set(links.map { root + "/" + $0 })
        let files = table
        return RouteTargetResolver(
            stat: { files[$0] },
            containsSymlink: { path, base in
                #expect(base == root)
                return linked.contains { path == $0 || path.hasPrefix($0 + "/") }
            })
    }

    static func route(
        pool: String = "php", root: String = root, index: [String] = ["index.php"], files: Bool = true,
        fallback: String? = nil, script: String? = nil, splitPath: String = ".php", symlinks: Bool = true,
        match: RouteMatch = .prefix("/")
    ) -> Router.Route {
        Router.Route(
            config: RouteConfig(
                name: "site", match: match, pool: pool, root: root, index: index, splitPath: splitPath, script: script,
                files: files, fallback: fallback, symlinks: symlinks),
            poolIndex: pool.isEmpty ? nil : 0)
    }

    static let tree = [
        "index.php", "index.html", "style.css", "a.php", "dir/", "dir/index.php", "docs/", "docs/index.html",
        "empty/", "uploads/", "uploads/a.jpg", "uploads/evil.php", "x.php/", "x.php/readme.txt", ".env",
        ".well-known/", ".well-known/acme", "shell.PHP", "page.php.txt", "both/", "both/index.html", "both/index.php",
    ]

    static func file(_ path: String) -> RouteTarget {
        .file(path: root + path, info: FileInfo(size: (root + path).utf8.count, modified: 1_700_000_000, isDirectory: false, isRegular: true))
    }

    static func script(_ name: String, pathInfo: String = "", filename: String? = nil) -> RouteTarget {
        .script(ResolvedScript(scriptFilename: filename ?? root + name, scriptName: name, pathInfo: pathInfo, documentRoot: root))
    }

    let resolver = RouteTargetResolverTests.resolver(RouteTargetResolverTests.tree)

    func resolve(_ path: String, _ route: Router.Route = route()) throws(HTTPError) -> RouteTarget {
        try resolver.resolve(path: path, route: route)
    }

    @Test func existingFilesAreServed() throws {
        #expect(try resolve("/style.css") == Self.file("/style.css"))
        #expect(try resolve("/uploads/a.jpg") == Self.file("/uploads/a.jpg"))
        #expect(try resolve("/x.php/readme.txt") == Self.file("/x.php/readme.txt"))
        #expect(try resolve("/.well-known/acme") == Self.file("/.well-known/acme"))
    }

    @Test func hiddenSegmentsAre404() {
        for path in ["/.env", "/.git/config", "/dir/.htaccess", "/uploads/.hidden/a.jpg", "/dir/.well-known/x", "/.well-known/.x"] {
            expectStatus(404) { _ = try resolve(path) }
        }
        expectStatus(404) { _ = try resolve("/.env", Self.route(fallback: "/index.php")) }
    }

    @Test func scriptsAreNeverFiles() throws {
        #expect(try resolve("/a.php") == Self.script("/a.php"))
        #expect(try resolve("/a.php/extra/path") == Self.script("/a.php", pathInfo: "/extra/path"))
        // Looks like a script but is no split: not a file, not a script.
        expectStatus(404) { _ = try resolve("/page.php.txt") }
        expectStatus(404) { _ = try resolve("/shell.PHP") }
        // A script under an upload folder runs only as itself, never as the image before it.
        #expect(try resolve("/uploads/evil.php") == Self.script("/uploads/evil.php"))
        expectStatus(404) { _ = try resolve("/uploads/a.jpg/x.php") }
        // Without a pool, scripts are 404s, never their bytes.
        let filesOnly = Self.route(pool: "", index: ["index.php", "index.html"])
        for path in ["/a.php", "/shell.PHP", "/page.php.txt", "/a.php/extra", "/dir/"] {
            expectStatus(404) { _ = try resolve(path, filesOnly) }
        }
        #expect(try resolve("/style.css", filesOnly) == Self.file("/style.css"))
        #expect(try resolve("/docs/", filesOnly) == Self.file("/docs/index.html"))
    }

    @Test func splitPathCountsAsScript() throws {
        let resolver = Self.resolver(["app.py", "notes.txt", "a.pyc"])
        let route = Self.route(splitPath: ".py")
        #expect(try resolver.resolve(path: "/app.py/x", route: route) == Self.script("/app.py", pathInfo: "/x"))
        expectStatus(404) { _ = try resolver.resolve(path: "/a.pyc", route: route) }
        #expect(try resolver.resolve(path: "/notes.txt", route: route) == Self.file("/notes.txt"))
    }

    @Test func directoryWithoutSlashRedirects() throws {
        #expect(try resolve("/dir") == .directoryRedirect(location: "/dir/"))
        #expect(try resolve("/uploads") == .directoryRedirect(location: "/uploads/"))
    }

    @Test func indexNamesInOrder() throws {
        #expect(try resolve("/") == Self.script("/index.php"))
        #expect(try resolve("/dir/") == Self.script("/dir/index.php"))
        expectStatus(404) { _ = try resolve("/docs/") }
        #expect(try resolve("/docs/", Self.route(index: ["index.php", "index.html"])) == Self.file("/docs/index.html"))
        let htmlFirst = Self.route(index: ["index.html", "index.php"])
        #expect(try resolve("/", htmlFirst) == Self.file("/index.html"))
        #expect(try resolve("/both/", htmlFirst) == Self.file("/both/index.html"))
        #expect(try resolve("/both/", Self.route(index: ["index.php", "index.html"])) == Self.script("/both/index.php"))
        // Nothing fits: 404, or the fallback.
        expectStatus(404) { _ = try resolve("/empty/") }
        #expect(try resolve("/empty/", Self.route(fallback: "/index.php")) == Self.script("/index.php"))
    }

    @Test func fileWithTrailingSlashIsNotTheFile() {
        expectStatus(404) { _ = try resolve("/style.css/") }
    }

    @Test func filesOffServesNoFileButIndexScripts() throws {
        let route = Self.route(index: ["index.html", "index.php"], files: false)
        expectStatus(404) { _ = try resolve("/style.css", route) }
        expectStatus(404) { _ = try resolve("/dir", route) }
        expectStatus(404) { _ = try resolve("/docs/", route) }
        #expect(try resolve("/", route) == Self.script("/index.php"))
        #expect(try resolve("/both/", route) == Self.script("/both/index.php"))
        #expect(try resolve("/a.php/x/", route) == Self.script("/a.php", pathInfo: "/x/"))
        #expect(try resolve("/a.php/", route) == Self.script("/a.php", pathInfo: "/"))
    }

    @Test func fallbackRunsWhenNothingFits() throws {
        let route = Self.route(fallback: "/index.php")
        #expect(try resolve("/blog/2024/hello", route) == Self.script("/index.php"))
        #expect(try resolve("/missing.php", route) == Self.script("/index.php"))
        #expect(try resolve("/style.css", route) == Self.file("/style.css"))
        #expect(try resolve("/a.php", route) == Self.script("/a.php"))
        // Not looked up: PHP-FPM answers for a missing one.
        let elsewhere = Self.route(fallback: "/app/front.php")
        #expect(try resolve("/x", elsewhere) == Self.script("/app/front.php"))
        expectStatus(404) { _ = try resolve("/blog/2024/hello") }
    }

    @Test func frontControllerAfterFiles() throws {
        let route = Self.route(script: "/srv/www/app.php")
        #expect(try resolve("/style.css", route) == Self.file("/style.css"))
        #expect(try resolve("/users/42", route) == Self.script("/app.php", pathInfo: "/users/42"))
        #expect(try resolve("/a.php", route) == Self.script("/app.php", pathInfo: "/a.php"))
        // Index scripts are the front controller's business; other index files are served.
        #expect(try resolve("/dir/", route) == Self.script("/app.php", pathInfo: "/dir/"))
        #expect(try resolve("/", Self.route(index: ["index.html"], script: "/srv/www/app.php")) == Self.file("/index.html"))
        let filesOff = Self.route(files: false, script: "/srv/www/app.php")
        #expect(try resolve("/", filesOff) == Self.script("/app.php", pathInfo: "/"))
        // Nothing is looked up, so a dot in the path is only PATH_INFO (a wiki's ".NET" page).
        #expect(try resolve("/wiki/.NET", filesOff) == Self.script("/app.php", pathInfo: "/wiki/.NET"))
        expectStatus(404) { _ = try resolve("/wiki/.NET", route) }
        #expect(try resolve("/style.css", filesOff) == Self.script("/app.php", pathInfo: "/style.css"))
    }

    @Test func symlinksOffIs403() throws {
        let resolver = Self.resolver(Self.tree, links: ["uploads", "a.php", "docs/index.html", "dir"])
        let route = Self.route(index: ["index.php", "index.html"], symlinks: false)
        for path in ["/uploads/a.jpg", "/a.php", "/a.php/x", "/docs/", "/dir/", "/dir"] {
            expectStatus(403) { _ = try resolver.resolve(path: path, route: route) }
        }
        #expect(try resolver.resolve(path: "/style.css", route: route) == Self.file("/style.css"))
        // On (the default) links are followed.
        #expect(try resolver.resolve(path: "/uploads/a.jpg", route: Self.route()) == Self.file("/uploads/a.jpg"))
        #expect(try resolver.resolve(path: "/dir/", route: Self.route()) == Self.script("/dir/index.php"))
    }

    @Test func applicationRouteAsksNothing() throws {
        let resolver = RouteTargetResolver(
            stat: { path in Issue.record("stat \(path)"); return nil },
            containsSymlink: { _, _ in Issue.record("lstat"); return true })
        let route = Self.route(root: "", match: .prefix("/api/"))
        #expect(
            try resolver.resolve(path: "/api/v1/.x", route: route)
                == .script(ResolvedScript(scriptFilename: "/api", scriptName: "/api", pathInfo: "/v1/.x", documentRoot: "")))
    }

    @Test func rootSlashDoesNotDoubleIt() throws {
        let resolver = RouteTargetResolver(
            stat: { $0 == "/a.css" ? FileInfo(size: 1, modified: 2, isDirectory: false, isRegular: true) : nil },
            containsSymlink: { _, _ in false })
        #expect(
            try resolver.resolve(path: "/a.css", route: Self.route(root: "/"))
                == .file(path: "/a.css", info: FileInfo(size: 1, modified: 2, isDirectory: false, isRegular: true)))
    }
}

/// `RouteTargetResolver.live` against a temporary tree: stat(2) and lstat(2) themselves.
@Suite final class RouteTargetResolverLiveTests {
    private let root: String

    init() throws {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("fcgiproxy-targets-\(UUID().uuidString)").path
        let files = FileManager.default
        for directory in ["real", "dir"] {
            try files.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        #expect(files.createFile(atPath: root + "/real/a.txt", contents: Data("hello".utf8)))
        #expect(files.createFile(atPath: root + "/dir/index.php", contents: Data("<?php".utf8)))
        try files.createSymbolicLink(atPath: root + "/linked", withDestinationPath: root + "/real")
        try files.createSymbolicLink(atPath: root + "/real/b.txt", withDestinationPath: root + "/real/a.txt")
        self.root = root
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func route(symlinks: Bool) -> Router.Route {
        Router.Route(config: RouteConfig(name: "r", pool: "php", root: root, symlinks: symlinks), poolIndex: 0)
    }

    @Test func statAndSymlinks() throws {
        let live = RouteTargetResolver.live
        guard case .file(let path, let info) = try live.resolve(path: "/real/a.txt", route: route(symlinks: false)) else {
            Issue.record("not a file")
            return
        }
        #expect(path == root + "/real/a.txt")
        #expect(info.size == 5 && info.isRegular && !info.isDirectory && info.modified > 1_600_000_000)
        #expect(try live.resolve(path: "/dir", route: route(symlinks: false)) == .directoryRedirect(location: "/dir/"))
        if case .file = try live.resolve(path: "/linked/a.txt", route: route(symlinks: true)) {} else {
            Issue.record("a link is followed with symlinks on")
        }
        expectStatus(403) { _ = try live.resolve(path: "/linked/a.txt", route: route(symlinks: false)) }
        expectStatus(403) { _ = try live.resolve(path: "/real/b.txt", route: route(symlinks: false)) }
        expectStatus(404) { _ = try live.resolve(path: "/real/missing.txt", route: route(symlinks: false)) }
        #expect(live.containsSymlink(root + "/linked/a.txt", root))
        #expect(!live.containsSymlink(root + "/real/a.txt", root))
        #expect(live.containsSymlink("/elsewhere/a.txt", root))
        #expect(live.stat(root + "/nothing") == nil)
        #expect(live.stat(root + "/dir")?.isDirectory == true)
    }
}
