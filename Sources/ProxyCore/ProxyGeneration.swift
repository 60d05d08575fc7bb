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

    /// `previous`: the generation this one replaces; the shards of pools it carries over
    /// unchanged (`reusedPools`: new index → old index) are taken as they are, with their
    /// connections, counters and health.
    init(
        number: Int,
        context: ProxyContext,
        eventLoop: any EventLoop,
        shard: Int,
        shardCount: Int,
        previous: ProxyGeneration? = nil,
        reusedPools: [Int: Int] = [:]
    ) {
        self.number = number
        self.context = context
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
