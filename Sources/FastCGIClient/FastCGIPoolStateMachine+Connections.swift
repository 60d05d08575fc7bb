import NIOCore

extension FastCGIPoolStateMachine {
    /// One connection of the shard. Connections are few per shard (the backend's share of
    /// `max_conns`), so they live in a plain array and are found by linear search.
    struct Connection: Sendable {
        enum State: Sendable {
            /// Connect in flight. Valid transitions: `active` (established), removed (failed).
            case starting
            /// Takes requests while `leased.count < capacity`. `idleSince`: set while unused, with its
            /// idle timer armed; orders idle connections (most recently used first) and unmasks stale
            /// idle timers. `nil` while busy, and while just connected (about to be used or parked).
            /// Valid transitions: `draining`, removed.
            case active(capacity: Int, leased: [RequestID], idleSince: NIODeadline?)
            /// Takes no new request (keepalive off, broken, shutting down); removed when the last leased
            /// request leaves. `closing`: ``Action/closeConnection(_:)`` was already sent.
            case draining(leased: [RequestID], closing: Bool)
        }

        let id: ConnectionID
        let backend: Int
        var state: State

        var freeSlots: Int {
            switch state {
            case .starting, .draining: return 0
            case .active(let capacity, let leased, _): return max(capacity - leased.count, 0)
            }
        }

        var leasedCount: Int {
            switch state {
            case .starting: return 0
            case .active(_, let leased, _), .draining(let leased, _): return leased.count
            }
        }

        var isStarting: Bool {
            if case .starting = state { return true }
            return false
        }

        var isIdle: Bool {
            if case .active(_, let leased, _) = state { return leased.isEmpty }
            return false
        }
    }

    // MARK: Connection events

    /// The connect succeeded. The connection starts with room for one request; a multiplexing
    /// backend raises that with ``connectionCapacityKnown(_:capacity:now:)``.
    public mutating func connectionEstablished(_ connection: ConnectionID, now: NIODeadline) -> [Action] {
        guard let index = connectionIndex(connection), connections[index].isStarting else { return [] }
        var actions: [Action] = []
        let backend = connections[index].backend
        guard servesRequests else {
            // Connects cannot be cancelled, so shutdown waits for them and closes them here.
            connections.remove(at: index)
            actions.append(.closeConnection(connection))
            finishShutdownIfDone(into: &actions)
            return actions
        }
        connections[index].state = .active(capacity: 1, leased: [], idleSince: nil)
        lastConnectFailure = nil
        recordSuccess(backend: backend, now: now, into: &actions)
        serveWaiters(connectionAt: index, now: now, into: &actions)
        createConnectionsForUncoveredWaiters(into: &actions)
        return actions
    }

    /// The connection can carry `capacity` requests at once (FCGI_MAX_REQS, or 1 when FCGI_MPXS_CONNS
    /// is 0), capped by the backend's `multiplexCapacity`. New room goes straight to waiters.
    public mutating func connectionCapacityKnown(_ connection: ConnectionID, capacity: Int, now: NIODeadline) -> [Action] {
        guard let index = connectionIndex(connection),
            case .active(_, let leased, let idleSince) = connections[index].state
        else { return [] }
        let backend = backends[connections[index].backend]
        let allowed = backend.multiplexAllowed ? backend.settings.multiplexCapacity ?? 1 : 1
        let granted = min(max(capacity, 1), allowed)
        connections[index].state = .active(capacity: granted, leased: leased, idleSince: idleSince)
        if granted > 1 { backends[connections[index].backend].mayMultiplex = true }
        var actions: [Action] = []
        serveWaiters(connectionAt: index, now: now, into: &actions)
        return actions
    }

    /// The backend (or the network) closed the connection. Idle: it is simply gone. Leased: its
    /// requests stay in the pool without a connection; the caller fails each through
    /// ``requestFailed(_:error:replayable:now:)``, which decides about retries.
    public mutating func connectionClosed(_ connection: ConnectionID, now: NIODeadline) -> [Action] {
        guard let index = connectionIndex(connection) else { return [] }
        var actions: [Action] = []
        let removed = connections.remove(at: index)
        switch removed.state {
        case .starting:
            // The I/O layer should have said connectionFailed; without an error there is nothing to
            // blame, so the need is simply re-covered below.
            break
        case .active(_, let leased, _), .draining(let leased, _):
            if removed.isIdle { actions.append(.cancelIdleTimer(connection)) }
            for request in leased { inFlight[request]?.connection = nil }
        }
        createConnectionsForUncoveredWaiters(into: &actions)
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// An idle timer fired. Ignored unless the connection has been idle for the full `idleTimeout`
    /// (it may have been leased and released again since the timer was set).
    public mutating func idleTimerFired(_ connection: ConnectionID, now: NIODeadline) -> [Action] {
        guard let index = connectionIndex(connection), let idleSince = parkedSince(at: index),
            now >= idleSince + settings.idleTimeout
        else { return [] }
        connections.remove(at: index)
        return [.closeConnection(connection)]
    }

    /// When the connection's idle time runs out, while it is parked (`nil` once it is leased or
    /// gone). Lets the I/O layer keep one lazy timer per connection without a deadline table.
    public func idleDeadline(_ connection: ConnectionID) -> NIODeadline? {
        guard let index = connectionIndex(connection), let idleSince = parkedSince(at: index) else { return nil }
        return idleSince + settings.idleTimeout
    }

    /// When the connection at `index` was parked, if it is parked (open, nothing leased).
    func parkedSince(at index: Int) -> NIODeadline? {
        guard case .active(_, let leased, let idleSince?) = connections[index].state, leased.isEmpty else { return nil }
        return idleSince
    }

    // MARK: Leasing

    /// Connections are appended with growing ids and never reordered, so the array is sorted by
    /// id: a binary search, which matters on the hot path with dozens of connections per shard.
    func connectionIndex(_ id: ConnectionID) -> Int? {
        var low = connections.startIndex
        var high = connections.endIndex
        while low < high {
            let middle = (low + high) / 2
            let found = connections[middle].id.rawValue
            if found == id.rawValue { return middle }
            if found < id.rawValue { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// A connection's place on its backend's idle stack, with the moment it was parked: an entry
    /// whose connection has been leased, parked again or removed since is stale.
    struct IdleEntry: Sendable {
        let id: ConnectionID
        let since: NIODeadline
    }

    /// The index of the entry's connection if it is still parked as the entry says.
    func parkedIndex(_ entry: IdleEntry) -> Int? {
        guard let index = connectionIndex(entry.id), parkedSince(at: index) == entry.since else { return nil }
        return index
    }

    /// The connection of `backend` that should take the next request: idle ones first, most recently
    /// used first (least likely to have been closed by the backend meanwhile); otherwise the
    /// multiplexed one with most room, to spread head-of-line blocking.
    ///
    /// Idle connections come off the backend's idle stack (pushed when parked, so the top is the
    /// most recently used) instead of a scan of every connection, which cost more than the rest
    /// of a lease with 64 connections. Stale entries are dropped as they surface.
    mutating func connectionWithFreeSlot(backend: Int) -> Int? {
        while let top = backends[backend].idle.last {
            guard let index = parkedIndex(top) else {
                backends[backend].idle.removeLast()
                continue
            }
            return lowestParkedIndex(tiedWith: top, at: index, backend: backend)
        }
        guard backends[backend].mayMultiplex else { return nil }
        return busyConnectionWithFreeSlot(backend: backend)
    }

    /// Connections parked at the same instant (a clock that did not move, as in tests) are taken
    /// in connection order, lowest id first.
    private func lowestParkedIndex(tiedWith top: IdleEntry, at index: Int, backend: Int) -> Int {
        var best = index
        let stack = backends[backend].idle
        var position = stack.count - 2
        while position >= 0, stack[position].since == top.since {
            if let other = parkedIndex(stack[position]), other < best { best = other }
            position -= 1
        }
        return best
    }

    /// With no idle connection: the multiplexed one with most room, first in order on a tie.
    private func busyConnectionWithFreeSlot(backend: Int) -> Int? {
        var best: Int?
        for index in connections.indices where connections[index].backend == backend && connections[index].freeSlots > 0 {
            guard let current = best else {
                best = index
                continue
            }
            if Self.isBetterCandidate(connections[index], than: connections[current]) { best = index }
        }
        return best
    }

    private static func isBetterCandidate(_ candidate: Connection, than current: Connection) -> Bool {
        guard case .active(_, let leased, let idleSince) = candidate.state,
            case .active(_, let currentLeased, let currentIdleSince) = current.state
        else { return false }
        switch (leased.isEmpty, currentLeased.isEmpty) {
        // Just connected counts as most recently used.
        case (true, true): return (idleSince ?? .distantFuture) > (currentIdleSince ?? .distantFuture)
        case (true, false): return true
        case (false, true): return false
        case (false, false): return candidate.freeSlots > current.freeSlots
        }
    }

    func hasFreeSlot(backend: Int) -> Bool {
        if backends[backend].idle.reversed().contains(where: { parkedIndex($0) != nil }) { return true }
        guard backends[backend].mayMultiplex else { return false }
        return connections.contains { $0.backend == backend && $0.freeSlots > 0 }
    }

    func connectionCount(backend: Int) -> Int {
        connections.reduce(0) { $1.backend == backend ? $0 + 1 : $0 }
    }

    func leasedSlots(backend: Int) -> Int {
        connections.reduce(0) { $1.backend == backend ? $0 + $1.leasedCount : $0 }
    }

    var startingCount: Int {
        connections.reduce(0) { $1.isStarting ? $0 + 1 : $0 }
    }

    /// Puts `waiter` on the connection at `index`, which must have a free slot.
    mutating func lease(_ waiter: Waiter, connectionAt index: Int, into actions: inout [Action]) {
        guard case .active(let capacity, var leased, let idleSince) = connections[index].state else {
            preconditionFailure("lease on a connection without a free slot")
        }
        let id = connections[index].id
        let backend = connections[index].backend
        if idleSince != nil { actions.append(.cancelIdleTimer(id)) }
        // Out of the enum first, so that `leased` is the array's only owner and grows in place.
        connections[index].state = .starting
        leased.append(waiter.id)
        if settings.keepalive {
            connections[index].state = .active(capacity: capacity, leased: leased, idleSince: nil)
        } else {
            // Without FCGI_KEEP_CONN the backend closes after this request: never lease it again.
            connections[index].state = .draining(leased: leased, closing: false)
        }
        inFlight[waiter.id] = InFlight(backend: backend, connection: id, tries: waiter.tries + 1)
        backends[backend].counters.requests += 1
        actions.append(.execute(waiter.id, on: id))
    }

    /// Hands free slots of the connection to waiters in FIFO order; closes or parks it when it ends up unused.
    mutating func serveWaiters(connectionAt index: Int, now: NIODeadline, into actions: inout [Action]) {
        let backend = connections[index].backend
        if servesRequests, !backends[backend].isDown {
            while connections[index].freeSlots > 0, let waiter = waiters.popFirst() {
                actions.append(.cancelQueueTimer(waiter.id))
                lease(waiter, connectionAt: index, into: &actions)
            }
        }
        guard connections[index].isIdle else { return }
        let running: Bool
        if case .running = lifecycle { running = true } else { running = false }
        if !running || backends[backend].isDown {
            // A down backend's idle connections are suspect, and shutdown or drain keeps none.
            actions.append(.closeConnection(connections[index].id))
            connections.remove(at: index)
            return
        }
        // Already parked (e.g. capacity news for an idle connection): keep its timer.
        guard case .active(let capacity, let leased, nil) = connections[index].state else { return }
        connections[index].state = .active(capacity: capacity, leased: leased, idleSince: now)
        pushIdle(IdleEntry(id: connections[index].id, since: now), backend: backend)
        actions.append(.scheduleIdleTimer(connections[index].id, at: now + settings.idleTimeout))
    }

    /// `request` left its connection. A broken connection takes no more requests and is closed.
    mutating func release(
        _ request: RequestID,
        from connection: ConnectionID,
        connectionBroken: Bool,
        now: NIODeadline,
        into actions: inout [Action]
    ) {
        guard let index = connectionIndex(connection) else { return }
        switch connections[index].state {
        case .starting:
            return
        case .active(let capacity, var leased, let idleSince):
            connections[index].state = .starting
            leased.removeAll { $0 == request }
            if connectionBroken {
                connections[index].state = .draining(leased: leased, closing: false)
                drainOrClose(connectionAt: index, broken: true, into: &actions)
                return
            }
            connections[index].state = .active(capacity: capacity, leased: leased, idleSince: idleSince)
            serveWaiters(connectionAt: index, now: now, into: &actions)
        case .draining(var leased, let closing):
            connections[index].state = .starting
            leased.removeAll { $0 == request }
            connections[index].state = .draining(leased: leased, closing: closing)
            drainOrClose(connectionAt: index, broken: connectionBroken, into: &actions)
        }
    }

    /// Closes a draining connection now if it is broken or empty; removes it once empty.
    private mutating func drainOrClose(connectionAt index: Int, broken: Bool, into actions: inout [Action]) {
        guard case .draining(let leased, var closing) = connections[index].state else { return }
        if (broken || leased.isEmpty) && !closing {
            actions.append(.closeConnection(connections[index].id))
            closing = true
        }
        if leased.isEmpty {
            connections.remove(at: index)
        } else {
            connections[index].state = .draining(leased: leased, closing: closing)
        }
    }

    /// Stale entries (connections leased or removed since) stay until they surface; the stack is
    /// swept when they outnumber the connections, so it stays bounded.
    private mutating func pushIdle(_ entry: IdleEntry, backend: Int) {
        backends[backend].idle.append(entry)
        if backends[backend].idle.count > 2 * connections.count + 8 {
            let stack = backends[backend].idle
            backends[backend].idle = stack.filter { parkedIndex($0) != nil }
        }
    }

    /// Opens a connection for every waiter no connect is in flight for, where limits, backoff and
    /// health allow. Never more connects than waiters: no connect storms. With `probing`, a
    /// backend that is out is probed when nothing else can serve a waiter (see +FailFast).
    mutating func createConnectionsForUncoveredWaiters(probing: Bool = true, into actions: inout [Action]) {
        // Checked first: `startingCount` walks every connection, and there is rarely a waiter.
        guard servesRequests, !waiters.isEmpty else { return }
        while waiters.count > startingCount, let backend = pickBackend(.canConnect) {
            createConnection(backend: backend, into: &actions)
        }
        if probing { probeForUncoveredWaiters(into: &actions) }
    }

    mutating func createConnection(backend: Int, into actions: inout [Action]) {
        let id = ConnectionID(nextConnectionID)
        nextConnectionID += 1
        connections.append(Connection(id: id, backend: backend, state: .starting))
        actions.append(.createConnection(id, backend: backend))
    }

    func canConnect(backend: Int) -> Bool {
        let state = backends[backend]
        return !state.isDown && !state.isBackingOff && connectionCount(backend: backend) < connectionLimit(backend: backend)
    }
}
