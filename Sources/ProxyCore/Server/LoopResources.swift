import FastCGI
#if canImport(Glibc)
import Glibc
#endif
import FastCGIClient
import NIOCore
import ProxyConfig

/// What one event loop owns: the configuration generation it serves new requests with (and so
/// its connection pools), its counters, and the access log buffer of each generation. Only
/// touched on that loop.
final class LoopResources {
    let eventLoop: any EventLoop
    /// This loop's place among the loops, to split `max_conns`.
    let shard: Int
    let shardCount: Int
    /// Read by each request when it starts; replaced on this loop by a reload. Requests that
    /// started earlier keep the generation they read.
    var current: ProxyGeneration
    /// This loop's counters, by metric slot (`LoopResources+Recording.swift` fills them, a
    /// scrape sums them).
    var metrics: LoopMetrics
    /// Pools a reload retired that still drain (their counters still move), with their slot.
    var retiringPools: [(slot: Int, pool: FastCGIConnectionPool)] = []
    /// Last counters of retired pools once drained, by pool slot: totals never go back.
    var retiredPoolCounters: [FastCGIPoolStateMachine.Counters.Pool] = []
    /// See `LoopResources+Scratch.swift`.
    var scratch = ByteBuffer()
    /// The PARAMS of the request encoded last on this loop; `paramsSerial` tells which one
    /// (an exchange remembers the serial of its own encoding and encodes again if it moved).
    let paramsBuffer = FastCGIParamsBuffer()
    var paramsSerial = 0
    /// See `LoopResources+Scratch.swift`.
    var spareFieldList: [(name: String, value: String)] = []
    /// This loop's share of `max_buffer_memory` and `max_spill`; each client connection's
    /// budget draws on it. Its limits follow reloads.
    let bufferBudget: BufferBudget
    /// Where spill files are written and read (nil: on the loop itself, for embedded tests).
    var spillIO: SpillBuffer.IO?
    /// This loop's small static files, checked by stat on every use.
    let smallFiles = SmallFileCache()

    /// `shard` of `shardCount`: this loop's place among the loops, to split `max_conns`.
    /// `recording`: the slots of the first generation (own slots when nil).
    init(context: ProxyContext, eventLoop: any EventLoop, shard: Int = 0, shardCount: Int = 1, recording: RecordingTables? = nil) {
        let recording = recording ?? RecordingTables(context: context)
        self.eventLoop = eventLoop
        self.shard = shard
        self.shardCount = shardCount
        self.metrics = LoopMetrics(routeSlots: recording.routeSlotCount, poolSlots: recording.poolSlotCount)
        let server = context.configuration.server
        self.bufferBudget = BufferBudget(
            memoryLimit: server.maxBufferMemory / max(1, shardCount), spillLimit: server.maxSpill / max(1, shardCount),
            scope: .server)
        self.current = ProxyGeneration(
            number: 1, context: context, eventLoop: eventLoop, shard: shard, shardCount: shardCount, recording: recording)
    }

    /// A client connection's allowance for held bytes, made in `cached` when it first needs one
    /// (most connections never do).
    func connectionBudget(cached: inout BufferBudget?) -> BufferBudget {
        if let cached { return cached }
        let server = current.context.configuration.server
        let budget = BufferBudget(
            memoryLimit: server.connectionBuffer, spillLimit: server.connectionSpill, scope: .connection,
            parent: bufferBudget)
        cached = budget
        return budget
    }

    /// The pools of the current generation.
    var pools: [FastCGIConnectionPool] { current.pools }

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
        let now = Int(time(nil))
        if now != cachedDateSecond {
            cachedDateSecond = now
            cachedDate = HTTPDate.format(now)
        }
        return cachedDate
    }
}
