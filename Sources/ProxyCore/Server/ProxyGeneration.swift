import FastCGIClient
import NIOCore

/// One configuration as one event loop serves it: the shared context and this loop's shards of
/// its pools.
///
/// A request reads its loop's current generation when it starts and keeps it to the end, so a
/// reload never changes the routes or pools under a request in flight; a keep-alive connection
/// picks up the new generation with its next request. Only touched on its loop.
final class ProxyGeneration {
    /// 1 at start, +1 per successful reload (for log lines).
    let number: Int
    let context: ProxyContext
    /// Parallel to `context.pools`.
    let pools: [FastCGIConnectionPool]
    /// This generation's route and pool indices → metric slots, upstream names.
    let recording: RecordingTables
    /// This loop's lines for `context.accessLog` (nil when off). The previous generation's
    /// buffer when the log is the same object (a reload that left `access_log` alone); a new
    /// one otherwise, and the old buffer, still used by requests of older generations, hands
    /// its lines over on its timer and lets its log go (and close) with the last of them.
    let accessLogBuffer: AccessLogBuffer?

    /// `previous`: the generation this one replaces; the shards of pools it carries over
    /// unchanged (`reusedPools`: new index → old index) are taken as they are, with their
    /// connections, counters and health.
    init(
        number: Int,
        context: ProxyContext,
        eventLoop: any EventLoop,
        shard: Int,
        shardCount: Int,
        recording: RecordingTables,
        previous: ProxyGeneration? = nil,
        reusedPools: [Int: Int] = [:]
    ) {
        self.number = number
        self.context = context
        self.recording = recording
        if let previous, previous.context.accessLog === context.accessLog {
            self.accessLogBuffer = previous.accessLogBuffer
        } else {
            self.accessLogBuffer = context.accessLog.map { AccessLogBuffer(log: $0, eventLoop: eventLoop) }
        }
        self.pools = context.pools.enumerated().map { index, pool in
            if let previous, let old = reusedPools[index] {
                return previous.pools[old]
            }
            let connectionPool = FastCGIConnectionPool(
                settings: LoopResources.poolSettings(pool, shard: shard, shardCount: shardCount),
                eventLoop: eventLoop
            )
            connectionPool.shareOfBackendLimit = { limit in
                max(1, limit / shardCount + (shard < limit % shardCount ? 1 : 0))
            }
            return connectionPool
        }
    }

    /// Drains the pools the next generation did not take over (`kept`: indices of ours it
    /// reuses). `whenDrained` runs on this loop once all of them hold no request and no
    /// connection.
    func retire(keeping kept: Set<Int>, whenDrained: @escaping () -> Void) {
        // Whatever this loop still holds for our log goes out now, not 100 ms later.
        accessLogBuffer?.handOff()
        var left = 0
        for index in pools.indices where !kept.contains(index) {
            left += 1
        }
        guard left > 0 else {
            whenDrained()
            return
        }
        for index in pools.indices where !kept.contains(index) {
            pools[index].drain {
                left -= 1
                if left == 0 { whenDrained() }
            }
        }
    }
}
