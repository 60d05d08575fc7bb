import NIOCore

extension FastCGIPoolStateMachine {
    /// What the shard knows about one backend besides its connections.
    struct Backend: Sendable {
        var settings: BackendSettings
        /// `settings.maxConnections` as configured: what the backend says can only lower it.
        let configuredMaxConnections: Int
        /// Cleared for good by END_REQUEST with CANT_MPX_CONN.
        var multiplexAllowed: Bool
        /// Failures in the current `failTimeout` window (passive health).
        var failures = 0
        var failureWindowStart: NIODeadline?
        /// Set while the backend is out of the balancer after `maxFails` failures.
        var downUntil: NIODeadline?
        /// Consecutive failed connects: drives backoff growth; reset by a successful connect.
        var connectFailuresInARow = 0
        /// Set while no new connection may be opened after a failed connect.
        var backoffUntil: NIODeadline?
        /// The last connect failed with a full listen backlog: busy, not broken, so not probed.
        var lastConnectOverloaded = false
        /// Connections the backend serves at once, as stalls showed (see +WorkerLimit), and when
        /// the last stall set it.
        var learnedWorkerLimit: Int?
        var workerLimitSince: NIODeadline?
        /// Smooth weighted round robin state.
        var currentWeight = 0
        /// Parked connections, most recently parked last; entries may be stale (see
        /// ``FastCGIPoolStateMachine/connectionWithFreeSlot(backend:)``).
        var idle: [IdleEntry] = []
        /// Some connection got room for more than one request: a busy connection may have a free
        /// slot, so finding one takes a scan. Never cleared; without it, free means idle.
        var mayMultiplex = false
        var counters = Counters.Backend()

        init(settings: BackendSettings) {
            self.settings = settings
            self.configuredMaxConnections = settings.maxConnections
            self.multiplexAllowed = settings.multiplexCapacity != nil
        }

        var isDown: Bool { downUntil != nil }
        var isBackingOff: Bool { backoffUntil != nil }

        /// When the backend's single timer must fire: the later of the two ends.
        var unavailableUntil: NIODeadline? {
            switch (downUntil, backoffUntil) {
            case (nil, nil): return nil
            case (let down?, nil): return down
            case (nil, let backoff?): return backoff
            case (let down?, let backoff?): return max(down, backoff)
            }
        }
    }

    // MARK: Events

    /// A connect attempt failed. The waiters it was meant for stay queued: another backend is
    /// tried at once if one can take a connection, this one after its backoff.
    public mutating func connectionFailed(
        _ connection: ConnectionID,
        _ failure: ConnectFailure,
        now: NIODeadline
    ) -> [Action] {
        guard let index = connectionIndex(connection), connections[index].isStarting else { return [] }
        let backend = connections.remove(at: index).backend
        var actions: [Action] = []
        if servesRequests {
            backends[backend].connectFailuresInARow += 1
            let delay = backoffDelay(failedAttempts: backends[backend].connectFailuresInARow)
            backends[backend].backoffUntil = now + delay
        }
        var timerScheduled = false
        backends[backend].lastConnectOverloaded = failure == .overloaded
        switch failure {
        case .failed(let error):
            lastConnectFailure = .backend(error)
            poolCounters.errors.count(error)
            backends[backend].counters.errors.count(error)
            timerScheduled = recordFailure(backend: backend, now: now, into: &actions)
        case .overloaded:
            // A full listen backlog is load, not breakage: no health penalty, but still back off so
            // that we do not hammer a saturated backend with connects.
            lastConnectFailure = .overloaded
            poolCounters.errors.connectOverloaded += 1
            backends[backend].counters.errors.connectOverloaded += 1
        }
        if servesRequests, !timerScheduled {
            scheduleBackendTimer(backend, into: &actions)
        }
        // Another backend may take the waiters; what is left uncovered fails now rather than
        // waiting for a backend that just refused (a probe right away would refuse again).
        createConnectionsForUncoveredWaiters(probing: false, into: &actions)
        if case .failed(let error) = failure {
            failUncoveredWaiters(.backend(error), into: &actions)
        }
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// The backend's backoff or down period may be over. Stale firings (the deadline moved or was
    /// cleared by a success) change nothing.
    public mutating func backoffTimerFired(backend: Int, now: NIODeadline) -> [Action] {
        guard servesRequests else { return [] }
        var changed = false
        if let until = backends[backend].backoffUntil, now >= until {
            backends[backend].backoffUntil = nil
            changed = true
        }
        if let until = backends[backend].downUntil, now >= until {
            backends[backend].downUntil = nil
            // On probation: one more failure within `failTimeout` takes it out again, one success clears it.
            backends[backend].failures = max(settings.maxFails - 1, 0)
            backends[backend].failureWindowStart = now
            changed = true
        }
        guard changed else { return [] }
        var actions: [Action] = []
        serveWaiters(backend: backend, now: now, into: &actions)
        createConnectionsForUncoveredWaiters(into: &actions)
        return actions
    }

    // MARK: Passive health

    /// Counts a failure; `maxFails` of them within `failTimeout` take the backend out for `failTimeout`.
    /// Returns whether it did (and scheduled the backend's timer for the end of the down period).
    @discardableResult
    mutating func recordFailure(backend: Int, now: NIODeadline, into actions: inout [Action]) -> Bool {
        guard settings.maxFails > 0, !backends[backend].isDown else { return false }
        if let start = backends[backend].failureWindowStart, now < start + settings.failTimeout {
            backends[backend].failures += 1
        } else {
            backends[backend].failureWindowStart = now
            backends[backend].failures = 1
        }
        guard backends[backend].failures >= settings.maxFails else { return false }
        backends[backend].downUntil = now + settings.failTimeout
        backends[backend].counters.markedDown += 1
        // Idle connections to a failing backend are likely dead too; running requests finish.
        var index = connections.startIndex
        while index < connections.endIndex {
            if connections[index].backend == backend, connections[index].isIdle {
                actions.append(.cancelIdleTimer(connections[index].id))
                actions.append(.closeConnection(connections[index].id))
                connections.remove(at: index)
            } else {
                index += 1
            }
        }
        scheduleBackendTimer(backend, into: &actions)
        return true
    }

    /// The first success (a connect or a completed request) clears failures and backoff and brings
    /// a down backend back at once: it evidently works. Its pending timer then fires stale.
    mutating func recordSuccess(backend: Int, now: NIODeadline, into actions: inout [Action]) {
        let wasDown = backends[backend].isDown
        backends[backend].connectFailuresInARow = 0
        backends[backend].backoffUntil = nil
        backends[backend].lastConnectOverloaded = false
        backends[backend].failures = 0
        backends[backend].failureWindowStart = nil
        backends[backend].downUntil = nil
        if wasDown { serveWaiters(backend: backend, now: now, into: &actions) }
    }

    private func scheduleBackendTimer(_ backend: Int, into actions: inout [Action]) {
        if let until = backends[backend].unavailableUntil {
            actions.append(.scheduleBackoffTimer(backend: backend, at: until))
        }
    }

    /// Offers the free slots of a backend that just became usable again to the waiters.
    private mutating func serveWaiters(backend: Int, now: NIODeadline, into actions: inout [Action]) {
        var index = connections.startIndex
        while index < connections.endIndex, !waiters.isEmpty {
            let id = connections[index].id
            if connections[index].backend == backend, connections[index].freeSlots > 0 {
                serveWaiters(connectionAt: index, now: now, into: &actions)
            }
            // serveWaiters may remove the connection; step on only if it is still here.
            if index < connections.endIndex, connections[index].id == id { index += 1 }
        }
    }

    /// `backoffBase · 1.25^(n-1)`, capped at `backoffCap`, then jittered.
    func backoffDelay(failedAttempts: Int) -> TimeAmount {
        let cap = Double(settings.backoffCap.nanoseconds)
        var delay = Double(settings.backoffBase.nanoseconds)
        var attempt = 1
        // Stop multiplying at the cap: no overflow however long the backend stays away.
        while attempt < failedAttempts, delay < cap {
            delay *= 1.25
            attempt += 1
        }
        let capped = TimeAmount.nanoseconds(Int64(min(delay, cap)))
        return settings.backoffJitter?(capped) ?? capped
    }

    // MARK: Multiplexing

    /// After CANT_MPX_CONN: one request per connection to this backend from now on. Requests already
    /// sharing a connection finish; it just takes no more until it is down to one.
    mutating func disableMultiplexing(backend: Int) {
        guard backends[backend].multiplexAllowed else { return }
        backends[backend].multiplexAllowed = false
        for index in connections.indices where connections[index].backend == backend {
            if case .active(_, let leased, let idleSince) = connections[index].state {
                connections[index].state = .active(capacity: 1, leased: leased, idleSince: idleSince)
            }
        }
    }
}
