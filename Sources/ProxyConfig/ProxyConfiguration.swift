/// The whole daemon configuration, parsed from one INI file into plain values before anything runs.
///
/// Nothing here touches the network or the file system beyond reading the INI file itself; the
/// values are validated (types, ranges, references between sections) by ``ConfigParser``.
public struct ProxyConfiguration: Sendable, Equatable {
    public var server: ServerConfig
    /// Pools in file order.
    public var pools: [PoolConfig]
    /// Routes in file order: the first whose match (and host) fits wins.
    public var routes: [RouteConfig]
    /// The file the configuration was read from (for messages), or `<embedded>`.
    public var sourceName: String

    public init(server: ServerConfig, pools: [PoolConfig], routes: [RouteConfig], sourceName: String) {
        self.server = server
        self.pools = pools
        self.routes = routes
        self.sourceName = sourceName
    }

    /// The pool with that name, if any.
    public func pool(named name: String) -> PoolConfig? {
        self.pools.first { $0.name == name }
    }
}

/// A socket address as written in the configuration: `host:port`, `[v6]:port` or `unix:/path`.
public enum SocketAddressSpec: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port):
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path):
            return "unix:\(path)"
        }
    }
}

/// One `listen =` line.
public struct ListenConfig: Sendable, Hashable {
    public var address: SocketAddressSpec
    /// `tls` after the address: TLS on this listener, with `tls_certificate` and `tls_key`.
    public var tls: Bool
    /// `name=NAME`: under socket activation, the inherited socket with this
    /// `FileDescriptorName=` (`LISTEN_FDNAMES`) serves the line, whatever its address; without
    /// one the address is bound as usual.
    public var name: String?

    public init(address: SocketAddressSpec, tls: Bool = false, name: String? = nil) {
        self.address = address
        self.tls = tls
        self.name = name
    }
}

/// Where the access log goes.
public enum AccessLogTarget: Sendable, Hashable {
    case off
    case stderr
    case file(String)
}

/// `[server]`.
public struct ServerConfig: Sendable, Equatable {
    public var listen: [ListenConfig]
    /// Number of event loops; `nil` means `auto` (one per core).
    public var threads: Int?
    public var accessLog: AccessLogTarget
    /// trace | debug | info | notice | warning | error | critical
    public var logLevel: String
    /// Longest time to receive a whole request head; the connection is closed beyond (as nginx).
    public var headerTimeout: Duration
    /// Longest idle time between requests on a keep-alive connection.
    public var keepaliveTimeout: Duration
    /// Longest time a client may leave a response unread (its socket not writable) before the
    /// connection is closed: without it a client that stops reading pins a backend request.
    /// Also the window of ``minSendRate``.
    public var sendTimeout: Duration
    /// Bytes per second a client must take, averaged over each `send_timeout` window in which
    /// response bytes wait for it (0: no rate rule). A client that reads a trickle keeps its
    /// socket writable now and then, which alone would hold a response for ever.
    public var minSendRate: Int
    /// Longest pause between two reads of a request body (while the proxy wants to read it):
    /// 408 (or a reset stream) beyond. Routes may override it. Also the window of
    /// ``minBodyRate``.
    public var bodyTimeout: Duration
    /// Bytes per second a request body must arrive at, averaged over each `body_timeout` window
    /// while the proxy wants to read it (0: no rate rule): 408 below. A body that comes a byte at
    /// a time, each just before `body_timeout`, would otherwise hold its connection and buffer
    /// for ever.
    public var minBodyRate: Int
    /// Bytes held in memory for one client connection, over all its requests (HTTP/2 streams):
    /// request bodies and response spools beyond it go to temporary files.
    public var connectionBuffer: Int
    /// Bytes in temporary files for one client connection, over all its requests.
    public var connectionSpill: Int
    /// Bytes held in memory for buffered bodies and spooled responses over the whole process
    /// (each event loop gets an equal share); beyond it they go to temporary files.
    public var maxBufferMemory: Int
    /// Bytes in temporary files in `temp_dir` over the whole process (an equal share per event
    /// loop). Beyond it request bodies get 503 and responses stop being spooled.
    public var maxSpill: Int
    /// Largest request head in bytes (431 beyond).
    public var maxHeaderSize: Int
    /// Longest request-target in bytes (414 beyond).
    public var maxURISize: Int
    /// Largest request body in bytes (413 beyond).
    public var maxBodySize: Int
    /// Chunked request bodies are buffered (PHP-FPM needs CONTENT_LENGTH): in memory up to this
    /// many bytes, then in a temporary file.
    public var bodyBufferSize: Int
    /// Folder for temporary body files.
    public var tempDir: String
    /// Prometheus listener (a later issue serves it).
    public var metrics: SocketAddressSpec?
    /// `tls_certificate`: PEM, the leaf certificate first, then its chain (absolute path).
    public var tlsCertificate: String?
    /// `tls_key`: the PEM private key of the leaf certificate (absolute path).
    public var tlsKey: String?
    /// Lines of `tls_certificate` and `tls_key` (0 when not set): a file that turns out to be
    /// unreadable or invalid when loaded is reported at its line.
    public var tlsCertificateLine: Int
    public var tlsKeyLine: Int
    /// HTTP/2 (h2c on cleartext listeners, h2 by ALPN on TLS ones): `http2`, default on when the
    /// binary was built with the HTTP2 trait; without it `http2 = on` is a configuration error.
    public var http2: Bool
    /// `h2c_upgrade`: whether an HTTP/1.1 request with `Upgrade: h2c` on a cleartext listener
    /// switches the connection to HTTP/2. Off by default: behind a front proxy that tunnels
    /// Upgrade, the streams that follow would pass the front proxy's rules unseen.
    public var h2cUpgrade: Bool
    /// Value of SERVER_SOFTWARE and of the `Server` response header.
    public var serverSoftware: String
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish before their
    /// connections are closed anyway.
    public var shutdownTimeout: Duration
    /// `user =`: when started as root, the account to switch to once listeners and worker
    /// sockets are bound (a name or a numeric id; checked to exist when the file is read).
    public var user: String?
    /// `group =`: the group to switch to (default: the user's primary group).
    public var group: String?

    /// Whether this build has the HTTP/2 front end (package trait HTTP2).
    public static var builtWithHTTP2: Bool {
        #if HTTP2
        true
        #else
        false
        #endif
    }

    /// Whether this build can serve TLS (package trait TLS).
    public static var builtWithTLS: Bool {
        #if TLS
        true
        #else
        false
        #endif
    }

    public init(
        listen: [ListenConfig] = [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080))],
        threads: Int? = nil,
        accessLog: AccessLogTarget = .stderr,
        logLevel: String = "info",
        headerTimeout: Duration = .seconds(10),
        keepaliveTimeout: Duration = .seconds(75),
        sendTimeout: Duration = .seconds(60),
        minSendRate: Int = 1024,
        bodyTimeout: Duration = .seconds(60),
        minBodyRate: Int = 1024,
        connectionBuffer: Int = 4 * 1024 * 1024,
        connectionSpill: Int = 256 * 1024 * 1024,
        maxBufferMemory: Int = 256 * 1024 * 1024,
        maxSpill: Int = 4 * 1024 * 1024 * 1024,
        maxHeaderSize: Int = 32 * 1024,
        maxURISize: Int = 8 * 1024,
        maxBodySize: Int = 16 * 1024 * 1024,
        bodyBufferSize: Int = 1024 * 1024,
        tempDir: String = "/tmp",
        metrics: SocketAddressSpec? = nil,
        tlsCertificate: String? = nil,
        tlsKey: String? = nil,
        tlsCertificateLine: Int = 0,
        tlsKeyLine: Int = 0,
        http2: Bool = ServerConfig.builtWithHTTP2,
        h2cUpgrade: Bool = false,
        serverSoftware: String = "fcgiproxy",
        shutdownTimeout: Duration = .seconds(30),
        user: String? = nil,
        group: String? = nil
    ) {
        self.user = user
        self.group = group
        self.listen = listen
        self.threads = threads
        self.accessLog = accessLog
        self.logLevel = logLevel
        self.headerTimeout = headerTimeout
        self.keepaliveTimeout = keepaliveTimeout
        self.sendTimeout = sendTimeout
        self.minSendRate = minSendRate
        self.bodyTimeout = bodyTimeout
        self.minBodyRate = minBodyRate
        self.connectionBuffer = connectionBuffer
        self.connectionSpill = connectionSpill
        self.maxBufferMemory = maxBufferMemory
        self.maxSpill = maxSpill
        self.maxHeaderSize = maxHeaderSize
        self.maxURISize = maxURISize
        self.maxBodySize = maxBodySize
        self.bodyBufferSize = bodyBufferSize
        self.tempDir = tempDir
        self.metrics = metrics
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.tlsCertificateLine = tlsCertificateLine
        self.tlsKeyLine = tlsKeyLine
        self.http2 = http2
        self.h2cUpgrade = h2cUpgrade
        self.serverSoftware = serverSoftware
        self.shutdownTimeout = shutdownTimeout
    }
}

/// `multiplex =` of a pool.
public enum MultiplexMode: String, Sendable, Hashable {
    case auto, on, off
}

/// `balance =` of a pool: how a request picks among the backends that are up.
public enum BalanceMode: String, Sendable, Hashable {
    /// Each backend in turn, as often as its weight says.
    case roundRobin = "round_robin"
    /// The backend with the fewest requests in flight relative to its weight.
    case leastConn = "least_conn"
}

/// `[pool:NAME]`.
public struct PoolConfig: Sendable, Equatable {
    public var name: String
    /// At least one (unless the pool spawns its workers).
    ///
    /// Changing the count pads ``backendWeights`` with 1 or trims it, so both always have the same count.
    public var backends: [SocketAddressSpec] {
        didSet {
            if backendWeights.count < backends.count {
                backendWeights += Array(repeating: 1, count: backends.count - backendWeights.count)
            } else if backendWeights.count > backends.count {
                backendWeights.removeLast(backendWeights.count - backends.count)
            }
        }
    }
    /// `weight=N` of each `backend` line (1 when not given), parallel to ``backends``: same count, same order.
    public var backendWeights: [Int]
    /// How a request picks its backend. Default round robin.
    public var balance: BalanceMode
    public var maxConns: Int
    public var keepalive: Bool
    public var multiplex: MultiplexMode
    public var queueSize: Int
    public var queueTimeout: Duration
    public var maxFails: Int
    public var failTimeout: Duration
    /// `spawn =` command line split on whitespace (a later issue runs it).
    public var spawn: [String]?
    public var processes: Int
    public var connectTimeout: Duration
    public var readTimeout: Duration
    /// Idle keep-alive backend connections are closed after this long unused. Default 60s.
    public var idleTimeout: Duration
    /// How many backends a request that could not be sent may try in all (the first included). Default 2.
    public var tries: Int
    /// Most requests at once on one multiplexed backend connection: used as is with `multiplex = on`; with
    /// `auto` the backend's FCGI_MAX_REQS is used when it answers, capped by this. Default 128.
    public var maxRequestsPerConnection: Int
    /// A response its client does not take as fast as the backend sends it is spooled (always on
    /// a multiplexed connection, whose socket must not be paused for one client; with
    /// `response_buffering` on a connection of its own, so the backend is free sooner): this
    /// many bytes of it in memory (`response_buffer`, default 256k), then up to `responseSpill`
    /// in a temporary file (`response_spill`, default 1g). Beyond, a shared connection's request
    /// is aborted and a connection of its own waits for the client (its reads pause).
    /// `multiplex_buffer` and `multiplex_spill` are older names of the two keys.
    public var responseBuffer: Int
    public var responseSpill: Int
    /// How long a request whose client left keeps its connection (and so its place under
    /// `max_conns`) while the backend finishes it: PHP-FPM runs an aborted script to its end, so
    /// freeing the slot at once lets an abort flood queue more work than `max_conns` allows.
    public var abortGrace: Duration
    /// `env = NAME VALUE` lines, in file order: environment of spawned workers.
    public var env: [(name: String, value: String)]
    /// `x_sendfile`: the directory (absolute, without trailing slash) under which a response's
    /// `X-Sendfile` field may name a file for the proxy to send; nil (the default): X-Sendfile
    /// is refused.
    public var xSendfile: String?
    /// Line of the `[pool:NAME]` header, for messages.
    public var line: Int

    /// A pool with the defaults of the configuration file for everything not given.
    ///
    /// - Parameter backendWeights: one weight per backend; nil (the default) gives every backend weight 1.
    ///   A list of another length is padded with 1 or trimmed to the backends' count.
    public init(
        name: String,
        backends: [SocketAddressSpec] = [],
        maxConns: Int = 16,
        keepalive: Bool = true,
        multiplex: MultiplexMode = .auto,
        queueSize: Int = 256,
        queueTimeout: Duration = .seconds(5),
        maxFails: Int = 3,
        failTimeout: Duration = .seconds(10),
        spawn: [String]? = nil,
        processes: Int = 1,
        connectTimeout: Duration = .seconds(2),
        readTimeout: Duration = .seconds(60),
        env: [(name: String, value: String)] = [],
        line: Int = 0,
        backendWeights: [Int]? = nil,
        balance: BalanceMode = .roundRobin,
        idleTimeout: Duration = .seconds(60),
        tries: Int = 2,
        maxRequestsPerConnection: Int = 128,
        responseBuffer: Int = 256 * 1024,
        responseSpill: Int = 1024 * 1024 * 1024,
        abortGrace: Duration = .seconds(5),
        xSendfile: String? = nil
    ) {
        self.xSendfile = xSendfile
        self.responseBuffer = responseBuffer
        self.responseSpill = responseSpill
        self.abortGrace = abortGrace
        self.name = name
        self.backends = backends
        let weights = backendWeights ?? []
        self.backendWeights = Array(weights.prefix(backends.count))
            + Array(repeating: 1, count: max(0, backends.count - weights.count))
        self.balance = balance
        self.idleTimeout = idleTimeout
        self.tries = tries
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.maxConns = maxConns
        self.keepalive = keepalive
        self.multiplex = multiplex
        self.queueSize = queueSize
        self.queueTimeout = queueTimeout
        self.maxFails = maxFails
        self.failTimeout = failTimeout
        self.spawn = spawn
        self.processes = processes
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.env = env
        self.line = line
    }

    // Written out because tuples in `env` are not Equatable, so it cannot be synthesized.
    public static func == (lhs: PoolConfig, rhs: PoolConfig) -> Bool {
        lhs.name == rhs.name && lhs.backends == rhs.backends && lhs.maxConns == rhs.maxConns
            && lhs.keepalive == rhs.keepalive && lhs.multiplex == rhs.multiplex && lhs.queueSize == rhs.queueSize
            && lhs.queueTimeout == rhs.queueTimeout && lhs.maxFails == rhs.maxFails
            && lhs.failTimeout == rhs.failTimeout && lhs.spawn == rhs.spawn && lhs.processes == rhs.processes
            && lhs.connectTimeout == rhs.connectTimeout && lhs.readTimeout == rhs.readTimeout && lhs.line == rhs.line
            && lhs.env.map(\.name) == rhs.env.map(\.name) && lhs.env.map(\.value) == rhs.env.map(\.value)
            && lhs.backendWeights == rhs.backendWeights && lhs.balance == rhs.balance
            && lhs.idleTimeout == rhs.idleTimeout && lhs.tries == rhs.tries
            && lhs.maxRequestsPerConnection == rhs.maxRequestsPerConnection
            && lhs.responseBuffer == rhs.responseBuffer && lhs.responseSpill == rhs.responseSpill
            && lhs.abortGrace == rhs.abortGrace && lhs.xSendfile == rhs.xSendfile
    }
}

/// How a route's `match =` compares against the normalized request path.
public enum RouteMatch: Sendable, Hashable {
    /// `match = /prefix`
    case prefix(String)
    /// `match = = /path`
    case exact(String)
    /// `match = ~ REGEX` (``RouteRegex`` syntax, searched anywhere in the path unless anchored).
    case regex(String)
}

/// `[route:NAME]`.
public struct RouteConfig: Sendable, Equatable {
    public var name: String
    public var match: RouteMatch
    /// `host =` values (lowercased, without port); empty means any host.
    public var hosts: [String]
    /// Name of a pool that exists (validated); empty when the route has none (a route with
    /// `status`, or with `root` and no pool: it serves files only, and scripts there are 404).
    public var pool: String
    /// DOCUMENT_ROOT, absolute, without trailing slash (except "/"). Empty: the route fronts an
    /// application server (no script lookup; SCRIPT_NAME is the match prefix, PATH_INFO the rest).
    public var root: String
    /// `index`: names tried in order in a directory asked for with a trailing `/` (each a name
    /// without `/`): a script runs (with a pool), another file is served. Default `index.php`.
    public var index: [String]
    /// `files` (default on): existing files under `root` that are not scripts are served as
    /// they are, before any script is looked for.
    public var files: Bool
    /// `fallback`: a URL path (starting with `/`) whose script runs when nothing under `root`
    /// fits the request (nginx's last `try_files` argument). Needs a pool. Default none.
    public var fallback: String?
    /// `internal` (default off): the route serves files only, and only to an `X-Accel-Redirect`
    /// from a backend; a client's own request for it is a 404.
    public var `internal`: Bool
    /// `symlinks` (default on); off: a file or script whose path below `root` goes through a
    /// symbolic link is refused with 403 (nginx's `disable_symlinks on`).
    public var symlinks: Bool
    /// `precompressed` (default off): a file is sent as its `.br` or `.gz` sibling when the client
    /// accepts that encoding and the sibling exists (nginx's `gzip_static`, `brotli_static`).
    public var precompressed: Bool
    /// The script part of a path ends after this extension; the rest is PATH_INFO.
    public var splitPath: String
    /// Front controller: every match runs this script (absolute path).
    public var script: String?
    /// `param = NAME VALUE` lines, in file order.
    public var params: [(name: String, value: String)]
    /// `request_buffering` (default on): on a pool that does not multiplex, the whole request
    /// body is read (memory, then `temp_dir`) before a backend connection is taken, so a slow
    /// upload never holds a PHP-FPM worker. Off: bodies stream as they come.
    public var requestBuffering: Bool
    /// `response_buffering` (default on): on a connection of its own, a response its client
    /// does not take at once is spooled so the backend is released; off, the backend's reads
    /// pause until the client takes more. (A multiplexed connection always spools.)
    public var responseBuffering: Bool
    /// `body_timeout` of the route; nil: the server's.
    public var bodyTimeout: Duration?
    /// `status`: the route answers with this status itself (200 or 400–599) and asks no
    /// backend, as nginx's `return 403` (deny rules). Such a route has no pool.
    public var status: Int?
    /// `header = NAME VALUE` lines, in file order: added to the backend's responses with a
    /// status below 400 (as nginx's `add_header` without `always`).
    public var headers: [(name: String, value: String)] = []
    /// Line of the `[route:NAME]` header, for messages.
    public var line: Int

    public init(
        name: String,
        match: RouteMatch = .prefix("/"),
        hosts: [String] = [],
        pool: String,
        root: String,
        index: [String] = ["index.php"],
        splitPath: String = ".php",
        script: String? = nil,
        params: [(name: String, value: String)] = [],
        requestBuffering: Bool = true,
        responseBuffering: Bool = true,
        bodyTimeout: Duration? = nil,
        status: Int? = nil,
        files: Bool = true,
        fallback: String? = nil,
        `internal`: Bool = false,
        symlinks: Bool = true,
        precompressed: Bool = false,
        line: Int = 0
    ) {
        self.files = files
        self.fallback = fallback
        self.internal = `internal`
        self.symlinks = symlinks
        self.precompressed = precompressed
        self.status = status
        self.requestBuffering = requestBuffering
        self.responseBuffering = responseBuffering
        self.bodyTimeout = bodyTimeout
        self.name = name
        self.match = match
        self.hosts = hosts
        self.pool = pool
        self.root = root
        self.index = index
        self.splitPath = splitPath
        self.script = script
        self.params = params
        self.line = line
    }

    public static func == (lhs: RouteConfig, rhs: RouteConfig) -> Bool {
        lhs.name == rhs.name && lhs.match == rhs.match && lhs.hosts == rhs.hosts && lhs.pool == rhs.pool
            && lhs.root == rhs.root && lhs.index == rhs.index && lhs.splitPath == rhs.splitPath
            && lhs.script == rhs.script && lhs.line == rhs.line
            && lhs.requestBuffering == rhs.requestBuffering && lhs.responseBuffering == rhs.responseBuffering
            && lhs.bodyTimeout == rhs.bodyTimeout && lhs.status == rhs.status
            && lhs.files == rhs.files && lhs.fallback == rhs.fallback && lhs.internal == rhs.internal
            && lhs.symlinks == rhs.symlinks && lhs.precompressed == rhs.precompressed
            && lhs.headers.elementsEqual(rhs.headers, by: ==)
            && lhs.params.map(\.name) == rhs.params.map(\.name) && lhs.params.map(\.value) == rhs.params.map(\.value)
    }
}

/// A configuration error with its place: printed as `file:line: message`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based; 0 when the error is about the file as a whole.
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)"
    }
}

/// All errors found in one file (the parser reports every error it can, not only the first).
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
