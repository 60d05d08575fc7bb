#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ProxyConfig

/// Maps a normalized request path to what its route serves: a file, a redirect to a directory's
/// slash form, or a script. The file system is injected (`stat`, `containsSymlink`), so the
/// order below is tested without disk.
///
/// A route with `root` tries, like nginx's `try_files $uri $uri/ <script> <fallback>`:
/// 1. a hidden segment (starting with `.`; `/.well-known/` as the first one is not) → 404,
///    except on a front controller route with `files` off, where the path names no file;
/// 2. with `files` on, when the last segment does not look like a script: the file itself; a
///    directory without its slash → redirect; a directory with it → its `index` names in order
///    (a script runs when the route has a pool; another file is served). With `files` off only
///    the index names that are scripts are tried;
/// 3. with a pool: the script of the path (``ScriptResolver``'s split: the path up to the FIRST
///    `split_path` that ends a segment, a regular file, never a shorter one); a front controller
///    (`script`) instead of that runs for every path;
/// 4. with a pool: `fallback`, not looked up (PHP-FPM answers 404 itself when it is missing);
/// 5. 404.
///
/// Scripts are never served as bytes: a name that looks like one (contains `.php` in any case,
/// or the route's `split_path`) is no file candidate, so on a route without a pool it is a 404.
/// With `symlinks` off, a file, redirect or script whose path goes through a symbolic link below
/// the root is a 403 (the root itself may be one), as nginx's `disable_symlinks on`. A route
/// without `root` fronts an application server: the path goes to it as ``ScriptResolver``
/// says, nothing is looked up.
struct RouteTargetResolver: Sendable {
    /// stat(2) following symlinks; nil when absent.
    var stat: @Sendable (String) -> FileInfo?
    /// Whether any component of `path` below `root` is a symlink (lstat each component).
    var containsSymlink: @Sendable (_ path: String, _ root: String) -> Bool

    /// The real file system (stat(2), lstat(2)).
    static let live = RouteTargetResolver(stat: { liveStat($0) }, containsSymlink: { liveContainsSymlink($0, $1) })

    func resolve(path: String, route: Router.Route) throws(HTTPError) -> RouteTarget {
        let config = route.config
        if let name = route.applicationScriptName {
            return .script(ScriptResolver.application(path: path, scriptName: name))
        }
        let root = config.root
        // A front controller without files looks nothing up: the path is only its PATH_INFO (a
        // wiki's article ".NET" is no hidden file).
        let namesNoFile = config.script != nil && !config.files
        if !namesNoFile && StaticPathPolicy.isHidden(path[...]) {
            throw HTTPError(404, "hidden path segment in \(path)")
        }
        let hasPool = !config.pool.isEmpty
        // A front controller runs every script itself; the index scripts of a directory are
        // its business (only its non-script index names are served as files).
        let runsIndexScripts = hasPool && config.script == nil

        // 2. The file itself, or its directory.
        if !StaticPathPolicy.mayBeScript(Self.lastSegment(of: path), splitPath: config.splitPath) {
            let isDirectoryPath = path.utf8.last == UInt8(ascii: "/")
            if config.files {
                let name = ScriptResolver.join(root: root, path: isDirectoryPath ? String(path.dropLast()) : path)
                if let info = stat(name) {
                    if info.isRegular && !isDirectoryPath {
                        try checkSymlinks(name, route: config)
                        return .file(path: name, info: info)
                    }
                    if info.isDirectory && !isDirectoryPath {
                        try checkSymlinks(name, route: config)
                        return .directoryRedirect(location: path + "/")
                    }
                    if info.isDirectory, let target = try index(of: path, route: config, scripts: runsIndexScripts, files: true) {
                        return target
                    }
                }
            } else if isDirectoryPath, runsIndexScripts,
                let target = try index(of: path, route: config, scripts: true, files: false)
            {
                return target
            }
        }

        guard hasPool else {
            throw HTTPError(404, "no file for \(path) under \(root)")
        }
        // 3. The path's script, or the front controller.
        if let script = config.script {
            return .script(
                ResolvedScript(
                    scriptFilename: script,
                    scriptName: route.frontControllerScriptName
                        ?? ScriptResolver.scriptName(ofFrontController: script, root: root),
                    pathInfo: path,
                    documentRoot: root))
        }
        if let split = ScriptResolver.split(path, splitPath: config.splitPath) {
            let scriptFilename = ScriptResolver.join(root: root, path: split.scriptName)
            if stat(scriptFilename)?.isRegular == true {
                try checkSymlinks(scriptFilename, route: config)
                return .script(
                    ResolvedScript(
                        scriptFilename: scriptFilename, scriptName: split.scriptName, pathInfo: split.pathInfo,
                        documentRoot: root))
            }
        }
        // 4. What runs when nothing fits.
        if let fallback = config.fallback {
            return .script(
                ResolvedScript(
                    scriptFilename: ScriptResolver.join(root: root, path: fallback), scriptName: fallback, pathInfo: "",
                    documentRoot: root))
        }
        throw HTTPError(404, "nothing under \(root) for \(path)")
    }

    /// The first of the route's index names in directory `path` (ending in `/`) that exists as a
    /// regular file: a script (when `scripts`) runs with an empty PATH_INFO, another file (when
    /// `files`) is served. Nil when none does.
    private func index(
        of path: String, route: RouteConfig, scripts: Bool, files: Bool
    ) throws(HTTPError) -> RouteTarget? {
        for name in route.index {
            let isScript = StaticPathPolicy.mayBeScript(Substring(name), splitPath: route.splitPath)
            guard isScript ? scripts : files else { continue }
            let fileName = ScriptResolver.join(root: route.root, path: path + name)
            guard let info = stat(fileName), info.isRegular else { continue }
            try checkSymlinks(fileName, route: route)
            if isScript {
                return .script(
                    ResolvedScript(scriptFilename: fileName, scriptName: path + name, pathInfo: "", documentRoot: route.root))
            }
            return .file(path: fileName, info: info)
        }
        return nil
    }

    private func checkSymlinks(_ fileName: String, route: RouteConfig) throws(HTTPError) {
        if !route.symlinks && containsSymlink(fileName, route.root) {
            throw HTTPError(403, "symbolic link on the way to \(fileName)")
        }
    }

    /// The last non-empty segment: `c` for `/a/b/c` and for `/a/b/c/`. On UTF-8 bytes: per
    /// request, and `String`'s own `hasSuffix` and `lastIndex` compare characters.
    private static func lastSegment(of path: String) -> Substring {
        let bytes = path.utf8
        let end = bytes.last == UInt8(ascii: "/") ? bytes.index(before: bytes.endIndex) : bytes.endIndex
        let start = bytes[..<end].lastIndex(of: UInt8(ascii: "/")).map { bytes.index(after: $0) } ?? bytes.startIndex
        return path[start..<end]
    }
}

// MARK: The real file system (outside the type, whose `stat` member would hide the C call)

private func liveStat(_ path: String) -> FileInfo? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return FileInfo(info)
}

extension FileInfo {
    /// What `stat` or `fstat` filled in.
    init(_ info: stat) {
        let type = info.st_mode & S_IFMT
        let identity = FileIdentity(info)
        self.init(
            size: identity.size, modified: identity.modifiedSeconds, isDirectory: type == S_IFDIR,
            isRegular: type == S_IFREG, identity: identity)
    }
}

/// lstat(2) on each component below `root`; a path outside `root`, or a component that cannot
/// be checked, counts as a link (refused rather than served).
private func liveContainsSymlink(_ path: String, _ root: String) -> Bool {
    let base = root.hasSuffix("/") ? root : root + "/"
    guard path.hasPrefix(base) else { return true }
    var prefix = String(base.dropLast())
    for component in path.dropFirst(base.count).split(separator: "/") {
        prefix += "/" + component
        var info = stat()
        guard lstat(prefix, &info) == 0 else { return true }
        if info.st_mode & S_IFMT == S_IFLNK { return true }
    }
    return false
}
