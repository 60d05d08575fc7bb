import Foundation
import ProxyConfig
@testable import ProxyCore
import Testing

/// Runs against a temporary document root of real files, so `stat(2)` itself is under test.
@Suite final class ScriptResolverTests {
    private let root: String
    private let resolver = ScriptResolver()

    init() throws {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("fcgiproxy-resolver-\(UUID().uuidString)").path
        let files = FileManager.default
        for directory in ["dir", "uploads", "x.php", "app/public", "sub"] {
            try files.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        for file in ["index.php", "info.php", "a.php", "dir/index.php", "uploads/a.jpg", "page.html", "sub/s.php"] {
            #expect(files.createFile(atPath: root + "/" + file, contents: Data("<?php".utf8)))
        }
        self.root = root
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func route(script: String? = nil) -> RouteConfig {
        RouteConfig(name: "php", pool: "php", root: root, script: script)
    }

    /// No root: an application server gets the path, split at the route's prefix; nothing on
    /// disk is asked (the paths here name no file).
    @Test func routeWithoutRootFrontsAnApplication() throws {
        func resolve(_ path: String, _ match: RouteMatch) throws -> ResolvedScript {
            let config = RouteConfig(name: "app", match: match, pool: "app", root: "")
            let viaRouter = try resolver.resolve(path: path, route: Router.Route(config: config, poolIndex: 0))
            #expect(try resolver.resolve(path: path, route: config) == viaRouter)
            return viaRouter
        }
        #expect(
            try resolve("/api/v1/x.php", .prefix("/api/"))
                == ResolvedScript(scriptFilename: "/api", scriptName: "/api", pathInfo: "/v1/x.php", documentRoot: ""))
        #expect(try resolve("/api/", .prefix("/api/")).pathInfo == "/")
        #expect(try resolve("/rpc", .exact("/rpc")) == ResolvedScript(scriptFilename: "/rpc", scriptName: "/rpc", pathInfo: "", documentRoot: ""))
        #expect(try resolve("/any/where", .prefix("/")) == ResolvedScript(scriptFilename: "", scriptName: "", pathInfo: "/any/where", documentRoot: ""))
        #expect(try resolve("/a.py/b", .regex("\\.py")).pathInfo == "/a.py/b")
    }

    @Test func plainScript() throws {
        let resolved = try resolver.resolve(path: "/info.php", route: route())
        #expect(
            resolved
                == ResolvedScript(
                    scriptFilename: root + "/info.php", scriptName: "/info.php", pathInfo: "", documentRoot: root))
    }

    @Test func indexOnDirectory() throws {
        let top = try resolver.resolve(path: "/", route: route())
        #expect(top.scriptFilename == root + "/index.php")
        #expect(top.scriptName == "/index.php")
        #expect(top.pathInfo == "")
        let dir = try resolver.resolve(path: "/dir/", route: route())
        #expect(dir.scriptFilename == root + "/dir/index.php")
        #expect(dir.scriptName == "/dir/index.php")
        #expect(dir.pathInfo == "")
    }

    @Test func pathInfoSplit() throws {
        let resolved = try resolver.resolve(path: "/info.php/a/b", route: route())
        #expect(resolved.scriptFilename == root + "/info.php")
        #expect(resolved.scriptName == "/info.php")
        #expect(resolved.pathInfo == "/a/b")
        let trailing = try resolver.resolve(path: "/sub/s.php/", route: route())
        #expect(trailing.scriptName == "/sub/s.php")
        #expect(trailing.pathInfo == "/")
    }

    @Test func splitsAtTheFirstPHPSegment() throws {
        let resolved = try resolver.resolve(path: "/a.php/b.php", route: route())
        #expect(resolved.scriptName == "/a.php")
        #expect(resolved.pathInfo == "/b.php")
        // ".phpx" does not end a segment, so the split is at the later ".php".
        expectStatus(404) { _ = try resolver.resolve(path: "/a.phpx/info.php", route: route()) }
    }

    @Test func uploadedImageIsNeverTheScript() {
        // a.jpg exists, but the script part is "/uploads/a.jpg/x.php", which is not a file.
        expectStatus(404) { _ = try resolver.resolve(path: "/uploads/a.jpg/x.php", route: route()) }
        expectStatus(404) { _ = try resolver.resolve(path: "/uploads/a.jpg/.php", route: route()) }
    }

    @Test func missingScript() {
        expectStatus(404) { _ = try resolver.resolve(path: "/nope.php", route: route()) }
        expectStatus(404) { _ = try resolver.resolve(path: "/nope.php/info.php", route: route()) }
        expectStatus(404) { _ = try resolver.resolve(path: "/uploads/", route: route()) }
    }

    @Test func nonScriptPath() {
        expectStatus(404) { _ = try resolver.resolve(path: "/page.html", route: route()) }
        expectStatus(404) { _ = try resolver.resolve(path: "/uploads/a.jpg", route: route()) }
    }

    @Test func directoryNamedLikeAScript() {
        expectStatus(404) { _ = try resolver.resolve(path: "/x.php", route: route()) }
        expectStatus(404) { _ = try resolver.resolve(path: "/x.php/y", route: route()) }
    }

    @Test func frontControllerInsideRoot() throws {
        let script = root + "/app/public/index.php"
        let resolved = try resolver.resolve(path: "/users/42", route: route(script: script))
        #expect(
            resolved
                == ResolvedScript(
                    scriptFilename: script, scriptName: "/app/public/index.php", pathInfo: "/users/42",
                    documentRoot: root))
    }

    @Test func frontControllerOutsideRoot() throws {
        let resolved = try resolver.resolve(path: "/x", route: route(script: "/opt/app/front.php"))
        #expect(resolved.scriptFilename == "/opt/app/front.php")
        #expect(resolved.scriptName == "/front.php")
        #expect(resolved.pathInfo == "/x")
        // A sibling directory sharing the root's name as a prefix is not inside it.
        let sibling = try resolver.resolve(path: "/", route: route(script: root + "-other/f.php"))
        #expect(sibling.scriptName == "/f.php")
    }

    /// A router's route works out a front controller's SCRIPT_NAME once; resolving through it
    /// gives what resolving through the configuration gives.
    @Test func routerRoutesResolveLikeTheirConfiguration() throws {
        for script in [root + "/app/public/index.php", "/opt/app/front.php", root + "-other/f.php", nil] {
            let config = route(script: script)
            let router = try Router(routes: [config])
            let matched = try #require(router.match(path: "/index.php", host: nil))
            #expect(try resolver.resolve(path: "/index.php", route: matched) == resolver.resolve(path: "/index.php", route: config))
        }
    }

    @Test func injectedFileCheckSeesRootJoinedPath() throws {
        let resolver = ScriptResolver { $0 == "/srv/www/a.php" }
        let route = RouteConfig(name: "r", pool: "p", root: "/srv/www")
        #expect(try resolver.resolve(path: "/a.php/x", route: route).scriptFilename == "/srv/www/a.php")
        let slashRoot = RouteConfig(name: "r", pool: "p", root: "/")
        let rootResolver = ScriptResolver { $0 == "/a.php" }
        #expect(try rootResolver.resolve(path: "/a.php", route: slashRoot).scriptFilename == "/a.php")
    }

    @Test func statRegularFile() {
        #expect(ScriptResolver.statRegularFile(root + "/info.php"))
        #expect(!ScriptResolver.statRegularFile(root + "/x.php"))
        #expect(!ScriptResolver.statRegularFile(root + "/missing.php"))
        #expect(!ScriptResolver.statRegularFile(root + "/uploads/a.jpg/x.php"))
    }
}

extension ScriptResolverTests {
    @Test func emptySplitPathMakesTheWholePathTheScript() throws {
        let route = RouteConfig(name: "r", pool: "p", root: root, splitPath: "")
        let resolved = try resolver.resolve(path: "/page.html", route: route)
        #expect(resolved.scriptName == "/page.html")
        #expect(resolved.pathInfo == "")
        #expect(try resolver.resolve(path: "/dir/", route: route).scriptName == "/dir/index.php")
        expectStatus(404) { _ = try resolver.resolve(path: "/info.php/a", route: route) }
    }
}

extension ScriptResolverTests {
    /// The index names in order: the first that is a script and a regular file runs.
    @Test func indexNamesAreTriedInOrder() throws {
        let route = RouteConfig(name: "r", pool: "p", root: root, index: ["missing.php", "page.html", "index.php"])
        #expect(try resolver.resolve(path: "/", route: route).scriptName == "/index.php")
        #expect(try resolver.resolve(path: "/dir/", route: route).scriptName == "/dir/index.php")
        let none = RouteConfig(name: "r", pool: "p", root: root, index: ["missing.php", "page.html"])
        expectStatus(404) { _ = try resolver.resolve(path: "/", route: none) }
    }
}
