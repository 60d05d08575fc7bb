#if canImport(Glibc)
import Glibc
#endif
import FastCGIClient
import Logging
import NIOCore
import ProxyConfig

/// Everything a request needs that does not change while the daemon runs: built once from the
/// configuration, shared read-only by every event loop.
public struct ProxyContext: Sendable {
    public let configuration: ProxyConfiguration
    public let router: Router
    public let scriptResolver: ScriptResolver
    /// Pools in configuration order, their backend addresses resolved.
    public let pools: [ResolvedPool]
    public let logger: Logger
    /// nil when `access_log = off`.
    public let accessLog: AccessLog?

    public struct ResolvedPool: Sendable {
        public let config: PoolConfig
        public let addresses: [SocketAddress]
    }

    public init(configuration: ProxyConfiguration, logger: Logger, scriptResolver: ScriptResolver = ScriptResolver()) throws {
        self.configuration = configuration
        self.router = try Router(routes: configuration.routes)
        self.scriptResolver = scriptResolver
        self.logger = logger
        self.accessLog = try AccessLog(target: configuration.server.accessLog)
        self.pools = try configuration.pools.map { pool in
            ResolvedPool(config: pool, addresses: try pool.backends.map { try SocketAddress(spec: $0) })
        }
    }

    /// Index of the pool a route names (validated by the config parser).
    func poolIndex(named name: String) -> Int? {
        pools.firstIndex { $0.config.name == name }
    }
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

/// What one event loop owns: its connection pools, counters and access log buffer. Only
/// touched on that loop.
final class LoopResources {
    let eventLoop: any EventLoop
    let pools: [FastCGIConnectionPool]
    /// This loop's counters (`LoopResources+Recording.swift` fills them, a scrape sums them).
    var metrics: LoopMetrics
    /// nil when `access_log = off`.
    let accessLogBuffer: AccessLogBuffer?
    let recordingTables: RecordingTables

    /// `shard` of `shardCount`: this loop's place among the loops, to split `max_conns`.
    init(context: ProxyContext, eventLoop: any EventLoop, shard: Int = 0, shardCount: Int = 1) {
        self.eventLoop = eventLoop
        self.metrics = LoopMetrics(routes: context.configuration.routes.count, pools: context.pools.count)
        self.accessLogBuffer = context.accessLog.map { AccessLogBuffer(log: $0, eventLoop: eventLoop) }
        self.recordingTables = RecordingTables(context: context)
        self.pools = context.pools.map { pool in
            let connectionPool = FastCGIConnectionPool(
                settings: Self.poolSettings(pool, shard: shard, shardCount: shardCount),
                eventLoop: eventLoop
            )
            connectionPool.shareOfBackendLimit = { limit in
                max(1, limit / shardCount + (shard < limit % shardCount ? 1 : 0))
            }
            return connectionPool
        }
    }

    /// A pool's settings for one shard. `max_conns` is split evenly across shards, the remainder
    /// going to the first ones; every shard gets at least one connection, so with fewer
    /// connections than event loops the real ceiling is the number of loops (documented).
    static func poolSettings(_ pool: ProxyContext.ResolvedPool, shard: Int, shardCount: Int) -> FastCGIConnectionPool.Settings {
        let config = pool.config
        let share = config.maxConns / shardCount + (shard < config.maxConns % shardCount ? 1 : 0)
        let backendSettings = config.backendWeights.map { weight in
            FastCGIPoolStateMachine.BackendSettings(weight: weight, maxConnections: max(1, share))
        }
        let multiplex: FastCGIConnectionPool.Multiplex
        switch config.multiplex {
        case .off: multiplex = .off
        case .on: multiplex = .on(maxRequests: config.maxRequestsPerConnection)
        case .auto: multiplex = .auto(maxRequests: config.maxRequestsPerConnection)
        }
        return FastCGIConnectionPool.Settings(
            backends: pool.addresses,
            backendSettings: backendSettings,
            pool: FastCGIPoolStateMachine.PoolSettings(
                queueSize: config.queueSize,
                queueTimeout: TimeAmount(config.queueTimeout),
                idleTimeout: TimeAmount(config.idleTimeout),
                keepalive: config.keepalive,
                maxFails: config.maxFails,
                failTimeout: TimeAmount(config.failTimeout),
                tries: config.tries,
                balance: config.balance == .leastConn ? .leastConnections : .roundRobin,
                backoffJitter: FastCGIPoolStateMachine.PoolSettings.randomJitter(percent: 3)
            ),
            connectTimeout: TimeAmount(config.connectTimeout),
            multiplex: multiplex
        )
    }

    private var cachedDate = ""
    private var cachedDateSecond = 0

    /// The IMF-fixdate for the Date header, formatted at most once a second per loop.
    func httpDate() -> String {
        let now = time(nil)
        if Int(now) != cachedDateSecond {
            cachedDateSecond = Int(now)
            cachedDate = Self.formatHTTPDate(now)
        }
        return cachedDate
    }

    static func formatHTTPDate(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // strftime's %a/%b follow the C locale, which is what HTTP wants.
        var buffer = [CChar](repeating: 0, count: 40)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
