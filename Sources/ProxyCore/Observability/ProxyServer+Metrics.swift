import FastCGIClient
import NIOCore
import NIOHTTP1
import NIOPosix
import ProxyConfig

extension ProxyServer {
    /// Every loop's counters and pool counters by metric slot, summed; each read on its own
    /// loop. A reload may run between two loops: sums take the larger shape.
    func metricsSnapshot() async throws -> MetricsSnapshot {
        var loops = LoopMetrics(routeSlots: 0, poolSlots: 0)
        var pools: [FastCGIPoolStateMachine.Counters.Pool] = []
        for box in resources {
            let (metrics, poolCounters) = try await box.eventLoop.submit {
                (box.value.metrics, box.value.poolCountersBySlot())
            }.get()
            loops = loops.adding(metrics)
            for index in poolCounters.indices {
                if index == pools.count { pools.append(.init()) }
                pools[index] = pools[index].adding(poolCounters[index])
            }
        }
        return MetricsSnapshot(loops: loops, pools: pools, openConnections: connectionCount)
    }

    /// The Prometheus text of `/metrics` (format 0.0.4).
    public func metricsText() async throws -> [UInt8] {
        metricsExporter.update(with: try await metricsSnapshot())
        return metricsExporter.render()
    }

    /// Counts a configuration reload (SIGHUP) in `fcgiproxy_reloads_total{result}`.
    public func recordReload(success: Bool) {
        metricsExporter.recordReload(success: success)
    }

    /// Hands every loop's buffered access log lines (of the current generation's log) to the
    /// writer thread. Buffers of an older log that a reload replaced hand theirs over when the
    /// reload retires their generation, and on their own 100 ms timer for later requests.
    func handOffAccessLogLines() async {
        guard context.accessLog != nil else { return }
        for box in resources {
            try? await box.eventLoop.submit { box.value.current.accessLogBuffer?.handOff() }.get()
        }
    }

    /// SIGUSR1 (logrotate): lines logged so far go to the old file, later ones to a new file
    /// opened at the configured path.
    public func reopenAccessLog() async throws {
        guard let accessLog = context.accessLog else { return }
        await handOffAccessLogLines()
        try await accessLog.reopen()
    }

    /// Writes every line logged so far (also what the loops still buffer) before returning.
    public func flushAccessLog() async {
        guard let accessLog = context.accessLog else { return }
        await handOffAccessLogLines()
        await accessLog.flush()
    }

    /// Binds the `metrics` listener (a small HTTP/1 server on one of the loops). Nil when the
    /// configuration has none.
    func startMetricsListener() async throws -> (any Channel)? {
        guard let address = context.configuration.server.metrics else { return nil }
        let scrape: MetricsHTTPHandler.Scrape = { [self] eventLoop in
            // Off the event loop: the registry update costs one call per request since the last
            // scrape (histogram replay).
            eventLoop.makeFutureWithTask { try await self.metricsText() }
        }
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(scrape: scrape))
                }
            }
        let channel = try await bootstrap.bind(to: address)
        context.logger.info("metrics listener on \(address) (GET /metrics)")
        return channel
    }
}
