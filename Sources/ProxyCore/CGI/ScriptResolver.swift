#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ProxyConfig

/// Where a request's script lives, in the four CGI variables that say so.
public struct ResolvedScript: Sendable, Equatable {
    /// Absolute file name of the script (SCRIPT_FILENAME).
    public var scriptFilename: String
    /// The script's URL path (SCRIPT_NAME).
    public var scriptName: String
    /// The rest of the request path after the script (PATH_INFO); may be empty.
    public var pathInfo: String
    /// The route's root (DOCUMENT_ROOT).
    public var documentRoot: String

    /// Memberwise.
    public init(scriptFilename: String, scriptName: String, pathInfo: String, documentRoot: String) {
        self.scriptFilename = scriptFilename
        self.scriptName = scriptName
        self.pathInfo = pathInfo
        self.documentRoot = documentRoot
    }
}

/// Maps a normalized request path to the script a route runs.
///
/// The split is the security-relevant part: the script is the path up to the FIRST
/// `split_path` that ends a segment, and it must exist as a regular file. The proxy never walks
/// back to a shorter existing file (what PHP's `cgi.fix_pathinfo=1` does), so
/// `/uploads/a.jpg/x.php` is a 404 and never runs `a.jpg`.
public struct ScriptResolver: Sendable {
    private let isRegularFile: @Sendable (String) -> Bool

    /// `isRegularFile` is injected for tests; the default uses stat(2) + S_ISREG.
    public init(isRegularFile: @escaping @Sendable (String) -> Bool = ScriptResolver.statRegularFile) {
        self.isRegularFile = isRegularFile
    }

    /// Whether `path` names a regular file, following symlinks (as PHP-FPM will when it opens it).
    public static func statRegularFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return false
        }
        return info.st_mode & S_IFMT == S_IFREG
    }

    /// Resolves the script for `path` (already normalized by ``RequestPath``).
    ///
    /// - Front controller (`route.script` set): SCRIPT_FILENAME is that script; SCRIPT_NAME is its
    ///   path relative to the root when it lies inside the root, else `/` + its base name;
    ///   PATH_INFO is the whole request path. The script is not stat'ed per request: it is fixed
    ///   configuration, and PHP-FPM answers 404 itself if it is missing.
    /// - Otherwise the script part ends right after the first `split_path` followed by `/` or the
    ///   end of the path, and must be a regular file under the root (else 404). When there is no
    ///   such place and the path ends in `/`, each name of `route.index` is appended in turn and
    ///   the split tried again: the first that gives a regular file runs (none → 404). An empty
    ///   `split_path` makes the whole path the script (with an index name appended to a path
    ///   ending in `/`).
    ///
    /// A route without `root` fronts an application server (a Swift worker, any FastCGI app that
    /// is not a tree of scripts): nothing is looked up on disk; SCRIPT_NAME is the route's prefix
    /// without its trailing slash (an exact route's path; empty for a regex or `/`), PATH_INFO
    /// the rest of the path, SCRIPT_FILENAME the same as SCRIPT_NAME and DOCUMENT_ROOT empty.
    public func resolve(path: String, route: RouteConfig) throws(HTTPError) -> ResolvedScript {
        if let name = Self.applicationScriptName(of: route) {
            return Self.application(path: path, scriptName: name)
        }
        return try resolve(
            path: path, script: route.script, root: route.root, index: route.index, splitPath: route.splitPath,
            frontControllerName: nil)
    }

    /// The same for a router's route: its fields are read where they are, so the route's
    /// configuration (a dozen strings and arrays) is not copied per request, and a front
    /// controller's SCRIPT_NAME is the one the route worked out when it was built.
    func resolve(path: String, route: Router.Route) throws(HTTPError) -> ResolvedScript {
        if let name = route.applicationScriptName {
            return Self.application(path: path, scriptName: name)
        }
        return try resolve(
            path: path, script: route.config.script, root: route.config.root, index: route.config.index,
            splitPath: route.config.splitPath, frontControllerName: route.frontControllerScriptName)
    }

    private func resolve(
        path: String, script: String?, root: String, index: [String], splitPath: String, frontControllerName: String?
    ) throws(HTTPError) -> ResolvedScript {
        if let script {
            return ResolvedScript(
                scriptFilename: script,
                scriptName: frontControllerName ?? Self.scriptName(ofFrontController: script, root: root),
                pathInfo: path,
                documentRoot: root
            )
        }

        // The split comes first so PATH_INFO only ever holds what the client sent: "/a.php/" is
        // a.php with PATH_INFO "/", not a.php with PATH_INFO "/index.php".
        if let split = Self.split(path, splitPath: splitPath) {
            let scriptFilename = Self.join(root: root, path: split.scriptName)
            guard isRegularFile(scriptFilename) else {
                throw HTTPError(404, "script is not a regular file: \(scriptFilename)")
            }
            return ResolvedScript(
                scriptFilename: scriptFilename, scriptName: split.scriptName, pathInfo: split.pathInfo,
                documentRoot: root)
        }
        if path.hasSuffix("/") {
            // The index names in order: the first that is a script and a regular file runs.
            for name in index {
                guard let split = Self.split(path + name, splitPath: splitPath) else { continue }
                let scriptFilename = Self.join(root: root, path: split.scriptName)
                if isRegularFile(scriptFilename) {
                    return ResolvedScript(
                        scriptFilename: scriptFilename, scriptName: split.scriptName, pathInfo: split.pathInfo,
                        documentRoot: root)
                }
            }
            throw HTTPError(404, "no index script in \(path)")
        }
        throw HTTPError(404, "no \(splitPath) script in path")
    }

    /// The script part of `path` (SCRIPT_NAME) and the rest (PATH_INFO): the script ends right
    /// after the first `splitPath` followed by `/` or the end; nil when there is no such place.
    static func split(_ path: String, splitPath: String) -> (scriptName: String, pathInfo: String)? {
        guard let end = endOfScript(in: path, splitPath: splitPath) else { return nil }
        return (String(path[..<end]), String(path[end...]))
    }

    /// The index just after the first `splitPath` that is followed by `/` or the end.
    private static func endOfScript(in path: String, splitPath: String) -> String.Index? {
        if splitPath.isEmpty {
            // No extension to split on: the whole path is the script, a directory is not.
            return path.hasSuffix("/") ? nil : path.endIndex
        }
        var searchStart = path.startIndex
        while let found = path[searchStart...].firstRange(of: splitPath) {
            if found.upperBound == path.endIndex || path[found.upperBound] == "/" {
                return found.upperBound
            }
            searchStart = path.index(after: found.lowerBound)
        }
        return nil
    }

    /// `path` always starts with "/"; a root of "/" must not produce "//".
    static func join(root: String, path: String) -> String {
        root.utf8.last == UInt8(ascii: "/") ? root + path.dropFirst() : root + path
    }

    /// SCRIPT_NAME for a route without `root`, nil for a route with one.
    static func applicationScriptName(of route: RouteConfig) -> String? {
        guard route.root.isEmpty else { return nil }
        switch route.match {
        case .prefix(let prefix): return prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        case .exact(let path): return path
        case .regex: return ""
        }
    }

    static func application(path: String, scriptName: String) -> ResolvedScript {
        // The router matched the prefix, so the path starts with it.
        let pathInfo = path.hasPrefix(scriptName) ? String(path.dropFirst(scriptName.count)) : path
        return ResolvedScript(scriptFilename: scriptName, scriptName: scriptName, pathInfo: pathInfo, documentRoot: "")
    }

    static func scriptName(ofFrontController script: String, root: String) -> String {
        let rootWithSlash = root.hasSuffix("/") ? root : root + "/"
        if script.hasPrefix(rootWithSlash) {
            return "/" + script.dropFirst(rootWithSlash.count)
        }
        let baseName = script.lastIndex(of: "/").map { script[script.index(after: $0)...] } ?? script[...]
        return "/" + baseName
    }
}
