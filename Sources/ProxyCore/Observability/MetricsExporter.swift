import FastCGIClient
import NIOConcurrencyHelpers
import Prometheus

/// Turns ``MetricsSnapshot``s into Prometheus text through a `PrometheusCollectorRegistry`.
///
/// The hot path counts into plain per-loop structs; only a scrape touches the registry: counters
/// grow by what the totals grew since the previous scrape, gauges are set.
///
/// The registry's histograms take single observations only, never pre-aggregated buckets. So a
/// scrape replays each bucket's new requests into the registry, each at the mean duration of that
/// bucket's new requests (the loops keep a sum per bucket): bucket counts, `_count` and `_sum` are
/// exact, at a cost of one registry call per request since the previous scrape, paid off the event
/// loops (see docs/architecture.md).
final class MetricsExporter: Sendable {
    let registry = PrometheusCollectorRegistry()

    private struct Handles {
        /// Same layouts as ``LoopMetrics`` (by slot).
        var requests: [Counter] = []
        var durations: [ValueHistogram] = []
        var requestBodyBytes: [Counter] = []
        var responseBodyBytes: [Counter] = []
        var endRequests: [Counter] = []
        var stderrLines: [Counter] = []
        var connectionsAccepted: Counter
        /// Per pool slot.
        var poolRequests: [Counter] = []
        var poolRetries: [Counter] = []
        var poolAborts: [Counter] = []
        /// `[pool][kind]` in `Errors.byKind` order.
        var poolErrors: [[Counter]] = []
        /// `[pool]`: active, idle, starting.
        var poolConnections: [[Gauge]] = []
        var poolQueueDepth: [Gauge] = []
        var poolWaiting: [Gauge] = []
        var openConnections: Gauge
        var reloadsSucceeded: Counter
        var reloadsFailed: Counter
    }

    private struct State {
        /// Names by slot, for the whole life of the process (they only grow).
        var slots = MetricSlots()
        /// One set per slot in `slots`.
        var handles: Handles
        /// What the counters were advanced to (element-wise maximum of the snapshots seen, so a
        /// scrape that read its snapshot before a concurrent one never makes a counter go back).
        var last: MetricsSnapshot
    }

    private let state: NIOLockedValueBox<State>

    static let protocolStatusNames = ["request_complete", "cant_mpx_conn", "overloaded", "unknown_role"]
    static let statusClassNames = ["2xx", "3xx", "4xx", "5xx"]
    static let durationBounds: [Double] = LoopMetrics.durationBounds.map { Double($0) / 1e9 }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "fcgiproxy", metricName: metric, unitName: unit, helpText: help)
    }

    /// No route or pool yet (only the no-route slot); ``register(_:)`` adds a configuration's.
    init() {
        let registry = self.registry
        let name = Self.name
        let reloads = name("reloads", "total", "Configuration reloads (SIGHUP)")
        let handles = Handles(
            connectionsAccepted: registry.makeCounter(
                descriptor: name("client_connections_accepted", "total", "Client connections accepted")),
            openConnections: registry.makeGauge(descriptor: name("client_connections", "", "Client connections open")),
            reloadsSucceeded: registry.makeCounter(descriptor: reloads, labels: [("result", "success")]),
            reloadsFailed: registry.makeCounter(descriptor: reloads, labels: [("result", "failure")])
        )
        var state = State(
            handles: handles,
            last: MetricsSnapshot(loops: LoopMetrics(routeSlots: 0, poolSlots: 0), pools: [], openConnections: 0)
        )
        Self.makeHandles(for: &state, registry: registry)
        self.state = NIOLockedValueBox(state)
    }

    /// `routeNames` and `poolNames` in configuration order (routes without the no-route slot):
    /// slots 1... for the routes, 0... for the pools.
    convenience init(routeNames: [String], poolNames: [String]) {
        self.init()
        state.withLockedValue { state in
            for route in routeNames { _ = state.slots.routeSlot(named: route) }
            for pool in poolNames { _ = state.slots.poolSlot(named: pool) }
            Self.makeHandles(for: &state, registry: registry)
        }
    }

    /// Gives the routes and pools of `context` their slots (new names get new series, labelled
    /// by name; known names keep theirs) and returns the tables its generation counts with.
    func register(_ context: ProxyContext) -> RecordingTables {
        state.withLockedValue { state in
            let tables = RecordingTables(context: context, slots: &state.slots)
            Self.makeHandles(for: &state, registry: registry)
            return tables
        }
    }

    /// Registers the series of the slots that have none yet.
    private static func makeHandles(for state: inout State, registry: PrometheusCollectorRegistry) {
        let requests = name("requests", "total", "HTTP requests answered, by route and status class")
        let durations = name("request_duration", "seconds", "Time from request head to response end")
        let requestBytes = name("request_body_bytes", "total", "Request body bytes received from clients")
        let responseBytes = name("response_body_bytes", "total", "Response body bytes sent to clients")
        let endRequests = name("fastcgi_end_requests", "total", "FastCGI END_REQUEST records by protocol status")
        let stderr = name("backend_stderr_lines", "total", "FastCGI STDERR records received (each logged as a line)")
        let routeNames = state.slots.routeNames
        for route in routeNames[state.handles.durations.count...] {
            for code in statusClassNames {
                state.handles.requests.append(registry.makeCounter(descriptor: requests, labels: [("route", route), ("code", code)]))
            }
            state.handles.durations.append(
                registry.makeValueHistogram(descriptor: durations, labels: [("route", route)], buckets: durationBounds))
            state.handles.requestBodyBytes.append(registry.makeCounter(descriptor: requestBytes, labels: [("route", route)]))
            state.handles.responseBodyBytes.append(registry.makeCounter(descriptor: responseBytes, labels: [("route", route)]))
        }
        let poolRequests = name("backend_requests", "total", "Requests that reached a pool (retries not counted again)")
        let retries = name("backend_retries", "total", "Backend requests sent again after a failure")
        let aborts = name("backend_aborts", "total", "Backend requests abandoned because the client left or timed out")
        let errors = name("backend_errors", "total", "Backend request failures by kind")
        let connections = name("backend_connections", "", "Backend connections by state")
        let queueDepth = name("backend_queue_depth", "", "Requests queued for a connection beyond those a connect is under way for")
        let waiting = name("backend_waiting_requests", "", "All requests waiting for a backend connection")
        let poolNames = state.slots.poolNames
        for pool in poolNames[state.handles.stderrLines.count...] {
            for status in protocolStatusNames {
                state.handles.endRequests.append(registry.makeCounter(descriptor: endRequests, labels: [("pool", pool), ("status", status)]))
            }
            state.handles.stderrLines.append(registry.makeCounter(descriptor: stderr, labels: [("pool", pool)]))
            state.handles.poolRequests.append(registry.makeCounter(descriptor: poolRequests, labels: [("pool", pool)]))
            state.handles.poolRetries.append(registry.makeCounter(descriptor: retries, labels: [("pool", pool)]))
            state.handles.poolAborts.append(registry.makeCounter(descriptor: aborts, labels: [("pool", pool)]))
            state.handles.poolErrors.append(
                FastCGIPoolStateMachine.Counters.Errors().byKind.map { entry in
                    registry.makeCounter(descriptor: errors, labels: [("pool", pool), ("kind", entry.kind)])
                })
            state.handles.poolConnections.append(
                ["active", "idle", "starting"].map { state in
                    registry.makeGauge(descriptor: connections, labels: [("pool", pool), ("state", state)])
                })
            state.handles.poolQueueDepth.append(registry.makeGauge(descriptor: queueDepth, labels: [("pool", pool)]))
            state.handles.poolWaiting.append(registry.makeGauge(descriptor: waiting, labels: [("pool", pool)]))
        }
        state.last.loops.grow(routeSlots: routeNames.count, poolSlots: poolNames.count)
        while state.last.pools.count < poolNames.count {
            state.last.pools.append(.init())
        }
    }

    /// A configuration reload happened (counted at once: no per-loop state involved).
    func recordReload(success: Bool) {
        state.withLockedValue { state in
            (success ? state.handles.reloadsSucceeded : state.handles.reloadsFailed).increment()
        }
    }

    /// Brings the registry up to `snapshot`.
    /// A snapshot never has more slots than registered (slots are registered before any loop
    /// grows to them); series beyond it are left alone.
    func update(with snapshot: MetricsSnapshot) {
        state.withLockedValue { state in
            let handles = state.handles
            var last = state.last
            defer { state.last = last }
            let new = snapshot.loops
            var old = last.loops
            advance(handles.requests, from: &old.requests, to: new.requests)
            advance(handles.requestBodyBytes, from: &old.requestBodyBytes, to: new.requestBodyBytes)
            advance(handles.responseBodyBytes, from: &old.responseBodyBytes, to: new.responseBodyBytes)
            advance(handles.endRequests, from: &old.endRequests, to: new.endRequests)
            advance(handles.stderrLines, from: &old.stderrLines, to: new.stderrLines)
            old.connectionsAccepted = advance(handles.connectionsAccepted, from: old.connectionsAccepted, to: new.connectionsAccepted)
            replayDurations(from: &old, to: new, histograms: handles.durations)
            last.loops = old

            for (index, pool) in snapshot.pools.enumerated() where index < last.pools.count {
                var previous = last.pools[index]
                previous.requests = advance(handles.poolRequests[index], from: previous.requests, to: pool.requests)
                previous.retries = advance(handles.poolRetries[index], from: previous.retries, to: pool.retries)
                previous.aborts = advance(handles.poolAborts[index], from: previous.aborts, to: pool.aborts)
                let oldErrors = previous.errors.byKind
                let newErrors = pool.errors.byKind
                for kind in newErrors.indices {
                    _ = advance(handles.poolErrors[index][kind], from: oldErrors[kind].count, to: newErrors[kind].count)
                }
                previous.errors = Self.maximum(previous.errors, pool.errors)
                handles.poolConnections[index][0].set(Double(pool.activeConnections))
                handles.poolConnections[index][1].set(Double(pool.idleConnections))
                handles.poolConnections[index][2].set(Double(pool.startingConnections))
                handles.poolQueueDepth[index].set(Double(pool.queueDepth))
                handles.poolWaiting[index].set(Double(pool.waiting))
                last.pools[index] = previous
            }
            handles.openConnections.set(Double(snapshot.openConnections))
        }
    }

    /// The Prometheus text (format 0.0.4) of everything registered.
    func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    private func advance(_ counters: [Counter], from old: inout [Int], to new: [Int]) {
        for index in new.indices where index < old.count {
            old[index] = advance(counters[index], from: old[index], to: new[index])
        }
    }

    /// Returns the new high-water mark.
    private func advance(_ counter: Counter, from old: Int, to new: Int) -> Int {
        guard new > old else { return old }
        counter.increment(by: Int64(new - old))
        return new
    }

    /// Each bucket's new requests go to the registry at their mean duration, which lies inside
    /// the bucket: counts and sum come out exact.
    private func replayDurations(from old: inout LoopMetrics, to new: LoopMetrics, histograms: [ValueHistogram]) {
        let buckets = LoopMetrics.bucketCount
        for route in 0..<min(old.routeCount, new.routeCount) {
            let histogram = histograms[route]
            for bucket in 0..<buckets {
                let slot = route * buckets + bucket
                let count = new.durationCounts[slot] - old.durationCounts[slot]
                guard count > 0 else { continue }
                let nanoseconds = new.durationNanos[slot] - old.durationNanos[slot]
                var mean = Double(nanoseconds) / Double(count) / 1e9
                // Rounding must not push the mean across a bucket edge.
                if bucket < Self.durationBounds.count { mean = min(mean, Self.durationBounds[bucket]) }
                if bucket > 0 { mean = max(mean, Self.durationBounds[bucket - 1].nextUp) }
                for _ in 0..<count {
                    histogram.record(mean)
                }
                old.durationCounts[slot] = new.durationCounts[slot]
                old.durationNanos[slot] = new.durationNanos[slot]
            }
        }
    }

    private static func maximum(
        _ a: FastCGIPoolStateMachine.Counters.Errors, _ b: FastCGIPoolStateMachine.Counters.Errors
    ) -> FastCGIPoolStateMachine.Counters.Errors {
        var result = a
        result.connectFailed = max(a.connectFailed, b.connectFailed)
        result.connectTimeout = max(a.connectTimeout, b.connectTimeout)
        result.connectOverloaded = max(a.connectOverloaded, b.connectOverloaded)
        result.readTimeout = max(a.readTimeout, b.readTimeout)
        result.closedEarly = max(a.closedEarly, b.closedEarly)
        result.protocolViolation = max(a.protocolViolation, b.protocolViolation)
        result.rejected = max(a.rejected, b.rejected)
        result.queueFull = max(a.queueFull, b.queueFull)
        result.queueTimeout = max(a.queueTimeout, b.queueTimeout)
        return result
    }
}
