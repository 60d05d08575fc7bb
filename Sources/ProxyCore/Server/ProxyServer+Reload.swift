#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ProxyConfig

extension ProxyServer {
    /// What a successful ``reload(to:)`` did.
    public struct ReloadResult: Sendable {
        /// The new generation's number (1 is the configuration the server started with).
        public let generation: Int
        public let plan: ReloadPlan
        /// Completes once the pools the reload retired hold no request and no connection (at
        /// once when none was retired). Workers serving only those pools can stop then.
        public let retiredPoolsDrained: EventLoopFuture<Void>
    }

    /// Why a reload did not happen; the running configuration is untouched.
    public struct ReloadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Switches to `newContext` without dropping a request:
    ///
    /// 1. `listen` lines the new file adds are bound first; if one cannot be, nothing changes.
    /// 2. On every event loop the new generation becomes current: requests that start from now
    ///    on (on new or keep-alive connections) use its routes and pools; requests in flight
    ///    finish on the generation they started with. Pools whose settings did not change carry
    ///    over with their connections; the others drain (idle connections close at once, busy
    ///    ones after their request) and are released when empty.
    /// 3. Listeners the new file no longer has are closed (their connections go on); unchanged
    ///    ones were never closed.
    ///
    /// Reloads are serialized by the caller; one that starts while another runs is refused.
    /// A reload while the previous generation is still draining is fine: each generation drains
    /// on its own. The loop count (`threads`) cannot change.
    public func reload(to newContext: ProxyContext) async throws -> ReloadResult {
        let started = reloadState.withLockedValue { state -> Bool in
            guard !state.running else { return false }
            state.running = true
            return true
        }
        guard started else { throw ReloadError(description: "a reload is already running") }
        defer { reloadState.withLockedValue { $0.running = false } }

        let old = context
        let plan = ReloadPlan(from: old.configuration, to: newContext.configuration)

        var added: [Listener] = []
        for listen in plan.addedListeners {
            do {
                let channel = try await bootstrap(for: listen).bind(to: listen.address)
                added.append(Listener(config: listen, channel: channel))
            } catch {
                for listener in added { try? await listener.channel.close() }
                throw ReloadError(description: "cannot listen on \(ReloadPlan.describe(listen)): \(error)")
            }
        }

        let number = reloadState.withLockedValue { state in
            state.generation += 1
            return state.generation
        }
        let reused = plan.reusedPools
        let kept = Set(reused.values)
        // New route and pool names get metric slots; known names keep theirs.
        let recording = metricsExporter.register(newContext)
        var drained: [EventLoopFuture<Void>] = []
        var installed: [EventLoopFuture<Void>] = []
        // Every loop is asked at once: one busy loop delays only its own switch, not the others'.
        for box in resources {
            let loop = box.eventLoop
            let promise = loop.makePromise(of: Void.self)
            installed.append(
                loop.submit {
                    let resources = box.value
                    let generation = ProxyGeneration(
                        number: number,
                        context: newContext,
                        eventLoop: loop,
                        shard: resources.shard,
                        shardCount: resources.shardCount,
                        recording: recording,
                        previous: resources.current,
                        reusedPools: reused
                    )
                    resources.install(generation, keptPools: kept) { promise.succeed() }
                })
            drained.append(promise.futureResult)
        }
        try await EventLoopFuture.andAllSucceed(installed, on: group.next()).get()
        currentContext.withLockedValue { $0 = newContext }

        let removed: [Listener] = listeners.withLockedValue { listeners in
            var removed: [Listener] = []
            for config in plan.removedListeners {
                if let index = listeners.firstIndex(where: { $0.config == config }) {
                    removed.append(listeners.remove(at: index))
                }
            }
            listeners += added
            return removed
        }
        for listener in added {
            newContext.logger.info("listening on \(ReloadPlan.describe(listener.config))")
        }
        for listener in removed {
            try? await listener.channel.close()
            // NIO leaves the socket file; remove it unless a new line binds the same path.
            if case .unix(let path) = listener.config.address,
                !newContext.configuration.server.listen.contains(where: { $0.address == listener.config.address })
            {
                unlink(path)
            }
            newContext.logger.info("no longer listening on \(ReloadPlan.describe(listener.config))")
        }
        let all = EventLoopFuture.andAllSucceed(drained, on: group.next())
        return ReloadResult(generation: number, plan: plan, retiredPoolsDrained: all)
    }
}
