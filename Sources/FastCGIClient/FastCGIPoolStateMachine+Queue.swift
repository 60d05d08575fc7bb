import NIOCore

extension FastCGIPoolStateMachine {
    /// A request waiting for a slot.
    struct Waiter: Sendable {
        var id: RequestID
        /// When its queue timer fails it; a firing before that is stale.
        var deadline: NIODeadline
        /// Attempts made before this wait.
        var tries: Int
        /// The backend a retry should stay away from when it can be served elsewhere right away.
        var avoid: Int?
    }

    /// The waiters in arrival order (retries in front: they have waited longest).
    ///
    /// One queue for all backends: requests are not bound to a backend while they wait, so whichever
    /// slot frees first serves the oldest waiter.
    struct WaiterQueue: Sendable {
        private var buffer = CircularBuffer<Waiter>()

        var count: Int { buffer.count }
        var isEmpty: Bool { buffer.isEmpty }

        func contains(_ id: RequestID) -> Bool {
            buffer.contains { $0.id == id }
        }

        func first(_ id: RequestID) -> Waiter? {
            buffer.first { $0.id == id }
        }

        mutating func append(_ waiter: Waiter) { buffer.append(waiter) }
        mutating func prepend(_ waiter: Waiter) { buffer.prepend(waiter) }
        mutating func popFirst() -> Waiter? { buffer.popFirst() }
        mutating func popLast() -> Waiter? { buffer.popLast() }

        @discardableResult
        mutating func remove(_ id: RequestID) -> Waiter? {
            guard let index = buffer.firstIndex(where: { $0.id == id }) else { return nil }
            return buffer.remove(at: index)
        }
    }

    /// Requests waiting beyond those a connect is already in flight for: what `queueSize` bounds.
    var queueDepth: Int { max(waiters.count - startingCount, 0) }

    /// Finds a slot for a new or retried request, or queues it (opening a connection for it when
    /// allowed), or rejects it when the queue is full. Retries are never rejected for a full queue:
    /// they already held a slot once.
    mutating func dispatch(_ waiter: Waiter, isRetry: Bool, now: NIODeadline, into actions: inout [Action]) {
        var chosen = pickBackend(.canServe(avoiding: waiter.avoid))
        if chosen == nil, waiter.avoid != nil {
            chosen = pickBackend(.canServe(avoiding: nil))
        }
        if let backend = chosen {
            if let index = connectionWithFreeSlot(backend: backend) {
                if let oldest = waiters.popFirst() {
                    // A slot is free while others wait (they wait for a connect elsewhere): first come,
                    // first served. The newcomer takes the oldest waiter's place in line, and with it
                    // the connect in flight, so the number of connects still matches the need.
                    actions.append(.cancelQueueTimer(oldest.id))
                    lease(oldest, connectionAt: index, into: &actions)
                    enqueue(waiter, front: isRetry, into: &actions)
                } else {
                    lease(waiter, connectionAt: index, into: &actions)
                }
                return
            }
            // The chosen backend has no room but may open a connection; one per uncovered waiter.
            enqueue(waiter, front: isRetry, into: &actions)
            if waiters.count > startingCount {
                createConnection(backend: backend, into: &actions)
            }
            return
        }
        // Nothing can take the request now: all backends full, backing off or down. It waits for a
        // release or a connect in flight, or for a probe of a backend that is out (see
        // +FailFast), until its queue timeout.
        if !isRetry, queueDepth >= settings.queueSize {
            poolCounters.errors.queueFull += 1
            actions.append(.failRequest(waiter.id, .queueFull))
            return
        }
        enqueue(waiter, front: isRetry, into: &actions)
        probeForUncoveredWaiters(into: &actions)
    }

    private mutating func enqueue(_ waiter: Waiter, front: Bool, into actions: inout [Action]) {
        if front { waiters.prepend(waiter) } else { waiters.append(waiter) }
        actions.append(.scheduleQueueTimer(waiter.id, at: waiter.deadline))
    }
}
