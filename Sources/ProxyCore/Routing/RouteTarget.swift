/// What a route serves for one request path.
enum RouteTarget: Equatable, Sendable {
    /// A regular file under the route's root, sent as bytes. `path` absolute.
    case file(path: String, info: FileInfo)
    /// A directory named without its trailing slash: 301 to `location` (the path + "/"; the
    /// caller appends the query).
    case directoryRedirect(location: String)
    /// A script (or the application server) for the pool.
    case script(ResolvedScript)
}

/// What `stat(2)` says about a file, as far as serving it needs.
struct FileInfo: Equatable, Sendable {
    /// Bytes.
    var size: Int
    /// Last modification, in seconds since the epoch.
    var modified: Int
    var isDirectory: Bool
    var isRegular: Bool
}
