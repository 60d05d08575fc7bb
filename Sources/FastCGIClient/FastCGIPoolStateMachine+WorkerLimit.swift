import NIOCore

/// How many connections a backend really serves at once, learned from stalls.
///
/// PHP-FPM does not say how many workers it has (GET_VALUES answers MPXS_CONNS only), and it
/// accepts a connection only when a worker is free; a keep-alive connection keeps its worker. A
/// shard that opens more connections than that finds the extra ones waiting in FPM's listen
/// queue, the pool's stall check frees a worker for them, the waiters that follow open more
/// connections, and so on: every few requests one waits a stall interval (8 clients on 4
/// workers with `max_conns = 16`: 33 ms on average, 200 ms at the worst, for a 1 ms script).
/// So each stall lowers the backend's limit in this shard to one less than the connections it
/// holds: after a few stalls the shard holds what FPM serves, and requests beyond that wait in
/// our queue for a slot that frees at END_REQUEST instead of in FPM's. The learned limit is
/// forgotten ``workerLimitLifetime`` after the last stall (FPM may have been given more workers),
/// which costs one more stall then if it has not.
extension FastCGIPoolStateMachine {
    /// How long a learned limit holds after the stall that set it.
    public static let workerLimitLifetime: TimeAmount = .seconds(60)

    /// The most connections this shard may hold to `backend` now.
    func connectionLimit(backend: Int) -> Int {
        min(backends[backend].settings.maxConnections, backends[backend].learnedWorkerLimit ?? .max)
    }

    /// A connection to `backend` waited in its listen queue (or this shard gave up a connection
    /// for another shard's that did): one connection fewer than held now, at least one. Returns
    /// when to report ``workerLimitTimerFired(backend:now:)``.
    public mutating func backendStalled(backend: Int, now: NIODeadline) -> NIODeadline {
        backends[backend].learnedWorkerLimit = max(1, connectionCount(backend: backend) - 1)
        backends[backend].workerLimitSince = now
        return now + Self.workerLimitLifetime
    }

    /// The learned limit may have run out: without a stall since, the configured one holds again.
    public mutating func workerLimitTimerFired(backend: Int, now: NIODeadline) -> [Action] {
        guard let since = backends[backend].workerLimitSince, now >= since + Self.workerLimitLifetime else { return [] }
        backends[backend].learnedWorkerLimit = nil
        backends[backend].workerLimitSince = nil
        var actions: [Action] = []
        createConnectionsForUncoveredWaiters(into: &actions)
        return actions
    }

    /// The limit learned from stalls, if one holds.
    func learnedWorkerLimit(backend: Int) -> Int? {
        backends[backend].learnedWorkerLimit
    }
}
