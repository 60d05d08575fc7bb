import Logging
import NIOCore
import ProxyConfig

/// Everything a request needs that does not change while the daemon runs: built once from the
/// configuration, shared read-only by every event loop.
///
/// A class: every client connection's front end holds one, and a copy of the configuration
/// (~400 bytes) in each was a tenth of an idle keep-alive connection's memory.
public final class ProxyContext: Sendable {
    public let configuration: ProxyConfiguration
    public let router: Router
    /// What a request path is under a route: file, directory, script (the filesystem's view).
    let targetResolver = RouteTargetResolver.live
    /// Content-Type of static files by extension (`/etc/mime.types`, else a built-in table).
    let mediaTypes = MediaTypes.load()
    /// Pools in configuration order, their backend addresses resolved.
    public let pools: [ResolvedPool]
    public let logger: Logger
    /// nil when `access_log = off`.
    public let accessLog: AccessLog?
    /// The server's rate rules, converted once for every exchange's clock.
    let clockRules: ExchangeClock.Rules
    #if TLS
    /// The certificate of the `tls` listeners; nil when `tls_certificate`/`tls_key` are not set.
    public let tls: TLSContextBox?
    #endif

    public struct ResolvedPool: Sendable {
        public let config: PoolConfig
        public let addresses: [SocketAddress]
    }

    /// `previous`: the context a reload replaces; its access log is kept when the target is the
    /// same (no second descriptor, and a file the process could no longer open after dropping
    /// privileges stays writable).
    public init(
        configuration: ProxyConfiguration,
        logger: Logger,
        previous: ProxyContext? = nil
    ) throws {
        self.configuration = configuration
        self.router = try Router(routes: configuration.routes, pools: configuration.pools.map(\.name))
        self.logger = logger
        let server = configuration.server
        self.clockRules = ExchangeClock.Rules(
            bodyTimeout: TimeAmount(server.bodyTimeout), minBodyRate: server.minBodyRate,
            sendWindow: TimeAmount(server.sendTimeout), minSendRate: server.minSendRate)
        if let previous, previous.configuration.server.accessLog == configuration.server.accessLog {
            self.accessLog = previous.accessLog
        } else {
            self.accessLog = try AccessLog(target: configuration.server.accessLog)
        }
        self.pools = try configuration.pools.map { pool in
            ResolvedPool(config: pool, addresses: try pool.backends.map { try SocketAddress(spec: $0) })
        }
        #if TLS
        self.tls = try Self.loadTLS(configuration)
        #endif
    }

    #if TLS
    /// Loads the certificate and key now, so that `--check-config` and start-up report a bad
    /// file (unreadable, not PEM, key not matching) at the line that names it.
    private static func loadTLS(_ configuration: ProxyConfiguration) throws(ConfigErrors) -> TLSContextBox? {
        let server = configuration.server
        guard let certificate = server.tlsCertificate, let key = server.tlsKey else { return nil }
        do {
            return try TLSContextBox(
                certificatePath: certificate, keyPath: key, http2: server.http2 && ServerConfig.builtWithHTTP2)
        } catch {
            let line = error.file == .certificate ? server.tlsCertificateLine : server.tlsKeyLine
            throw ConfigErrors([ConfigError(file: configuration.sourceName, line: line, message: error.description)])
        }
    }
    #endif
}

extension SocketAddress {
    /// Resolves a configured address. Host names are resolved once, at start.
    init(spec: SocketAddressSpec) throws {
        switch spec {
        case .tcp(let host, let port):
            self = try SocketAddress.makeAddressResolvingHost(host, port: port)
        case .unix(let path):
            self = try SocketAddress(unixDomainSocketPath: path)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
