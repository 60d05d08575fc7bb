import FastCGIClient

/// Everything a scrape reads, summed over the event loops: the loops' request counters, each
/// pool's state-machine counters (shards added up) and server-wide gauges.
struct MetricsSnapshot: Sendable, Equatable {
    var loops: LoopMetrics
    /// In configuration order.
    var pools: [FastCGIPoolStateMachine.Counters.Pool]
    var openConnections: Int
}

extension FastCGIPoolStateMachine.Counters.Pool {
    /// Two shards of one pool added up (totals and gauges alike).
    func adding(_ other: Self) -> Self {
        var sum = self
        sum.requests += other.requests
        sum.errors = errors.adding(other.errors)
        sum.retries += other.retries
        sum.aborts += other.aborts
        sum.queueDepth += other.queueDepth
        sum.waiting += other.waiting
        sum.activeConnections += other.activeConnections
        sum.idleConnections += other.idleConnections
        sum.startingConnections += other.startingConnections
        return sum
    }
}

extension FastCGIPoolStateMachine.Counters.Errors {
    func adding(_ other: Self) -> Self {
        var sum = self
        sum.connectFailed += other.connectFailed
        sum.connectTimeout += other.connectTimeout
        sum.connectOverloaded += other.connectOverloaded
        sum.readTimeout += other.readTimeout
        sum.closedEarly += other.closedEarly
        sum.protocolViolation += other.protocolViolation
        sum.rejected += other.rejected
        sum.queueFull += other.queueFull
        sum.queueTimeout += other.queueTimeout
        return sum
    }

    /// `kind` label values and counts, in a fixed order.
    var byKind: [(kind: String, count: Int)] {
        [
            ("connect_failed", connectFailed), ("connect_timeout", connectTimeout),
            ("connect_overloaded", connectOverloaded), ("read_timeout", readTimeout),
            ("closed_early", closedEarly), ("protocol_violation", protocolViolation),
            ("rejected", rejected), ("queue_full", queueFull), ("queue_timeout", queueTimeout),
        ]
    }
}
