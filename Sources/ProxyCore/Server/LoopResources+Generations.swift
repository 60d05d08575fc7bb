import FastCGIClient
import NIOCore

extension LoopResources {
    /// A reload's new generation becomes current on this loop: the counters grow to its slots
    /// first, the pools it does not take over keep counting (``retiringPools``) until they are
    /// drained, then their last counters are kept by slot. `whenDrained` runs on this loop then.
    func install(_ generation: ProxyGeneration, keptPools kept: Set<Int>, whenDrained: @escaping () -> Void) {
        metrics.grow(routeSlots: generation.recording.routeSlotCount, poolSlots: generation.recording.poolSlotCount)
        let previous = current
        let retired = previous.pools.indices.filter { !kept.contains($0) }.map { index in
            (slot: previous.recording.poolSlots[index], pool: previous.pools[index])
        }
        retiringPools += retired
        current = generation
        let server = generation.context.configuration.server
        bufferBudget.memoryLimit = server.maxBufferMemory / max(1, shardCount)
        bufferBudget.spillLimit = server.maxSpill / max(1, shardCount)
        previous.retire(keeping: kept) { [self] in
            for entry in retired {
                retiringPools.removeAll { $0.pool === entry.pool }
                addRetired(entry.pool.counters.pool, slot: entry.slot)
            }
            whenDrained()
        }
    }

    /// A graceful stop: the current pools drain like retired ones (pools a reload retired
    /// already do). Their requests still run; no connection stays open idle.
    func drainPoolsForShutdown() {
        for pool in current.pools where !retiringPools.contains(where: { $0.pool === pool }) {
            pool.drain {}
        }
    }

    private func addRetired(_ counters: FastCGIPoolStateMachine.Counters.Pool, slot: Int) {
        while retiredPoolCounters.count <= slot {
            retiredPoolCounters.append(.init())
        }
        retiredPoolCounters[slot] = retiredPoolCounters[slot].adding(counters)
    }

    /// This loop's pool counters by pool slot: current pools, pools still draining and the
    /// totals of drained ones. A scrape reads it on the loop.
    func poolCountersBySlot() -> [FastCGIPoolStateMachine.Counters.Pool] {
        var result = retiredPoolCounters
        func add(_ counters: FastCGIPoolStateMachine.Counters.Pool, slot: Int) {
            while result.count <= slot { result.append(.init()) }
            result[slot] = result[slot].adding(counters)
        }
        for (index, pool) in current.pools.enumerated() {
            add(pool.counters.pool, slot: current.recording.poolSlots[index])
        }
        for entry in retiringPools {
            add(entry.pool.counters.pool, slot: entry.slot)
        }
        while result.count < metrics.poolCount { result.append(.init()) }
        return result
    }
}
