import NIOCore

/// Failing fast when no backend can take a request, instead of queueing it until `queueTimeout`.
///
/// A request may wait in the queue only while something is on its way that can serve it: a
/// connect in flight, or a request running on an open connection (its slot comes back). A
/// request nothing will serve is *uncovered*:
/// - When every backend is out (down after `maxFails`, or backing off after a failed connect)
///   but under its connection limit, the pool **probes** one of them (the one whose time out
///   ends first): a connect for the waiting request despite the backoff. A pool's last backend
///   is never out in a way that makes requests wait: PHP-FPM restarting takes as long as it is
///   gone, not as long as a backoff or `fail_timeout` (nginx does the same for a single server:
///   every request tries it).
/// - When a connect fails and the waiters outnumber what can still serve them, the youngest
///   uncovered ones fail now with that connect's error (502, or 504 for a connect timeout),
///   the way nginx answers 502 as soon as its last try is refused.
/// A full listen backlog (EAGAIN) is different: the backend is alive and busy, so its waiters
/// keep waiting through its backoff, and it is not probed.
extension FastCGIPoolStateMachine {
    /// Slots that come back without a new connection: requests running on open connections. A
    /// draining connection takes no new request, so it does not count. One on a backend that is
    /// down counts too: its request completing brings the backend back (``recordSuccess``).
    var slotsComingBack: Int {
        var count = 0
        for connection in connections {
            guard case .active(_, let leased, _) = connection.state else { continue }
            count += leased.count
        }
        return count
    }

    /// Waiters that neither a connect in flight nor a running request will serve.
    var uncoveredWaiters: Int {
        // Cheap first: nearly always nobody waits.
        guard !waiters.isEmpty else { return 0 }
        return max(waiters.count - startingCount - slotsComingBack, 0)
    }

    /// Opens a connection to the backend that comes back first, despite its backoff or down
    /// period, when waiters are uncovered and no backend may be connected to normally. At most
    /// one connect in flight per backend: the waiters that arrive meanwhile wait for its outcome.
    mutating func probeForUncoveredWaiters(into actions: inout [Action]) {
        guard servesRequests, uncoveredWaiters > 0 else { return }
        var best: Int?
        for backend in backends.indices {
            let state = backends[backend]
            guard state.isDown || state.isBackingOff, !state.lastConnectOverloaded,
                connectionCount(backend: backend) < connectionLimit(backend: backend),
                !connections.contains(where: { $0.backend == backend && $0.isStarting })
            else { continue }
            if let current = best,
                (backends[current].unavailableUntil ?? .distantPast) <= (state.unavailableUntil ?? .distantPast)
            {
                continue
            }
            best = backend
        }
        guard let best else { return }
        createConnection(backend: best, into: &actions)
    }

    /// After a failed connect: the youngest waiters that nothing can serve any more fail now.
    mutating func failUncoveredWaiters(_ reason: FailureReason, into actions: inout [Action]) {
        var excess = uncoveredWaiters
        while excess > 0, let waiter = waiters.popLast() {
            actions.append(.cancelQueueTimer(waiter.id))
            actions.append(.failRequest(waiter.id, reason))
            excess -= 1
        }
    }
}
