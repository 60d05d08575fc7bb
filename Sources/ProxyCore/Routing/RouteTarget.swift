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
    var isDirectory: Bool
    var isRegular: Bool
    /// What tells this version of the file from any other (the small-file cache's key check).
    var identity: FileIdentity

    /// Bytes.
    var size: Int { identity.size }
    /// Last modification, in seconds since the epoch.
    var modified: Int { identity.modifiedSeconds }

    /// `identity` defaults to one made of `size` and `modified` alone (tests without disk); when
    /// given, it is what `size` and `modified` say.
    init(size: Int, modified: Int, isDirectory: Bool, isRegular: Bool, identity: FileIdentity? = nil) {
        self.isDirectory = isDirectory
        self.isRegular = isRegular
        self.identity = identity ?? FileIdentity(size: size, modifiedSeconds: modified)
    }
}
