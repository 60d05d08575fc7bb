#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a ``FastCGIWorkerServer`` listens and what it lets the web server do.
public struct FastCGIWorkerConfiguration: Sendable {
    /// Where the worker accepts connections from the web server.
    public enum ListenAddress: Sendable, Equatable {
        /// A TCP socket; `port` 0 picks a free port (see ``FastCGIWorkerServer/localAddress``).
        case tcp(host: String, port: Int)
        /// A Unix domain socket at `path`; a stale socket file there is replaced.
        case unix(path: String)
        /// A socket that is already bound and listening, inherited from the process that started the worker.
        /// spawn-fcgi, mod_fcgid and lighttpd pass it as descriptor 0 (`FCGI_LISTENSOCK_FILENO`).
        case inheritedSocket(descriptor: Int32)

        /// The FastCGI convention: the listening socket is standard input.
        public static let standardInput = ListenAddress.inheritedSocket(descriptor: 0)
    }

    /// Where to listen.
    public var listen: ListenAddress
    /// Connections served at once; further ones are closed right after accept. Reported as `FCGI_MAX_CONNS`.
    public var maxConnections: Int
    /// Requests multiplexed on one connection at once; more are refused with `FCGI_OVERLOADED`.
    /// 1 turns multiplexing off (`FCGI_MPXS_CONNS=0`). `FCGI_MAX_REQS` reports this times ``maxConnections``.
    public var maxRequestsPerConnection: Int
    /// Peer IP addresses allowed to connect over TCP; `nil` allows all. Unix-socket peers are always allowed,
    /// as in the reference library (libfcgi). The default is the comma-separated list in the
    /// `FCGI_WEB_SERVER_ADDRS` environment variable, as the FastCGI specification prescribes.
    public var webServerAddresses: [String]?
    /// Body records buffered per request above which the worker stops reading the connection until that
    /// request's handler catches up.
    ///
    /// FastCGI has no per-request flow control, so on a multiplexed connection this pauses every request on it
    /// (head-of-line blocking) while one handler is behind. The alternative, buffering without bound, lets a
    /// web server exhaust the worker's memory. Keep handlers reading their body, or raise this for
    /// connections that carry many concurrent uploads. Records are at most 64 KiB each.
    public var bodyHighWatermark: Int
    /// Body records per request below which reading resumes; lower than ``bodyHighWatermark``.
    public var bodyLowWatermark: Int
    /// Upper bound on one request's PARAMS (CGI variables), which are buffered whole before the handler starts.
    public var maxParamsBytes: Int
    /// The listen backlog for TCP and Unix sockets.
    public var backlog: Int

    /// A configuration with defaults suited to one web server in front of one worker process.
    public init(
        listen: ListenAddress,
        maxConnections: Int = 128,
        maxRequestsPerConnection: Int = 128,
        webServerAddresses: [String]? = FastCGIWorkerConfiguration.webServerAddressesFromEnvironment(),
        bodyHighWatermark: Int = 8,
        bodyLowWatermark: Int = 2,
        maxParamsBytes: Int = 1 << 20,
        backlog: Int = 256
    ) {
        precondition(maxConnections > 0 && maxRequestsPerConnection > 0, "limits must be positive")
        precondition(0 <= bodyLowWatermark && bodyLowWatermark < bodyHighWatermark, "need low < high watermark")
        self.listen = listen
        self.maxConnections = maxConnections
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.webServerAddresses = webServerAddresses
        self.bodyHighWatermark = bodyHighWatermark
        self.bodyLowWatermark = bodyLowWatermark
        self.maxParamsBytes = maxParamsBytes
        self.backlog = backlog
    }

    /// The addresses in `FCGI_WEB_SERVER_ADDRS`, or `nil` if it is unset or empty.
    public static func webServerAddressesFromEnvironment() -> [String]? {
        guard let raw = getenv("FCGI_WEB_SERVER_ADDRS") else { return nil }
        // Addresses contain no blanks, so dropping all of them trims each entry.
        let addresses = String(cString: raw).split(separator: ",").map {
            String($0.filter { $0 != " " && $0 != "\t" })
        }.filter { !$0.isEmpty }
        return addresses.isEmpty ? nil : addresses
    }

    /// The answers to `FCGI_GET_VALUES`.
    var managementValues: [String: String] {
        let (maxRequests, overflow) = self.maxConnections.multipliedReportingOverflow(by: self.maxRequestsPerConnection)
        return [
            "FCGI_MAX_CONNS": String(self.maxConnections),
            "FCGI_MAX_REQS": String(overflow ? Int.max : maxRequests),
            "FCGI_MPXS_CONNS": self.maxRequestsPerConnection > 1 ? "1" : "0",
        ]
    }
}

