import FastCGI
import NIOCore

/// The decisions of one shard of one backend pool: the connections of a pool's backends on one
/// event loop, the requests waiting for them, backend health and load balancing.
///
/// Pure: it owns no channel, no timer and reads no clock. The I/O layer feeds it events (with the
/// current time) and performs the ``Action``s it returns, in order. That keeps every pool decision
/// (who gets a slot, when to connect, when to give up) testable with explicit time values, in the
/// style of async-http-client's `HTTPConnectionPool` state machines.
///
/// Life of a request: ``requestArrived(_:now:)`` answers ``Action/execute(_:on:)`` at once or later
/// (after queueing), or ``Action/failRequest(_:_:)``. Once executing, the request leaves through
/// exactly one of ``requestFinished(_:aborted:now:)`` or ``requestFailed(_:error:replayable:now:)``;
/// the latter may answer another `execute` (a retry) instead of `failRequest`. A request that has not
/// been failed by an action is still owned by the pool and will get one of the two.
///
/// Policies worth knowing:
/// - Connections are opened only for a waiting request, at most one per waiting request (no connect
///   storms, no pre-opening), and never more than a backend's `maxConnections`, idle ones included.
/// - Waiting requests are not bound to a backend: the first slot that frees serves the oldest one.
/// - Backends down (passive health) or backing off are skipped while another can take the request.
///   A request waits only while something can serve it (a connect in flight, a running request
///   whose slot comes back); when every backend is out, it probes one, and when a connect fails
///   with nothing else left to serve it, it fails at once with that error (see
///   `FastCGIPoolStateMachine+FailFast.swift`). A queue timeout reports the last connect error
///   (502, 504 for a connect timeout) rather than a generic 503.
/// - A backend comes back when its down period ends (on probation: one more failure within
///   `failTimeout` takes it out again) or at once when anything on it succeeds.
///
/// Timers: the I/O layer keeps one idle timer per connection, one queue timer per waiting request and
/// one timer per backend; scheduling a timer that already exists replaces it. A timer that fires after
/// the machine moved on is harmless: every `…TimerFired` call checks its deadline and ignores stale ones.
public struct FastCGIPoolStateMachine: Sendable {
    /// A request, numbered by the caller (unique among the requests the pool currently holds).
    public struct RequestID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int
        public init(_ rawValue: Int) { self.rawValue = rawValue }
        public var description: String { "request \(rawValue)" }
    }

    /// A connection, numbered by the machine when it asks for one (``Action/createConnection(_:backend:)``).
    public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int
        public init(_ rawValue: Int) { self.rawValue = rawValue }
        public var description: String { "connection \(rawValue)" }
    }

    /// One backend as this shard sees it.
    public struct BackendSettings: Sendable, Equatable {
        /// Relative share of requests under both balancing policies; at least 1.
        public var weight: Int
        /// Connections this shard may hold to the backend (its share of the pool's `max_conns`); at least 1.
        public var maxConnections: Int
        /// `nil`: one request per connection. A number: the most requests one connection may carry,
        /// further capped by what the backend announces
        /// (``FastCGIPoolStateMachine/connectionCapacityKnown(_:capacity:now:)``).
        public var multiplexCapacity: Int?

        public init(weight: Int = 1, maxConnections: Int, multiplexCapacity: Int? = nil) {
            precondition(weight >= 1, "backend weight must be at least 1")
            precondition(maxConnections >= 1, "a backend needs at least one connection per shard")
            precondition(multiplexCapacity.map { $0 >= 1 } ?? true, "multiplex capacity must be at least 1")
            self.weight = weight
            self.maxConnections = maxConnections
            self.multiplexCapacity = multiplexCapacity
        }
    }

    /// How a backend is chosen for a request.
    public enum Balance: Sendable, Equatable {
        /// Smooth weighted round robin (as nginx): weights 3:1 give A A B A, not A A A B.
        case roundRobin
        /// Fewest leased slots relative to weight; ties are broken by weighted round robin.
        case leastConnections
    }

    /// Pool-wide behaviour.
    public struct PoolSettings: Sendable {
        /// Requests that may wait beyond those a connection is already being opened for.
        public var queueSize: Int
        /// Longest wait for a slot, including the wait for a new connection.
        public var queueTimeout: TimeAmount
        /// An unused connection is closed after this long.
        public var idleTimeout: TimeAmount
        /// `false`: every connection carries one request and is closed after it (no FCGI_KEEP_CONN).
        public var keepalive: Bool
        /// Failures within `failTimeout` that take a backend out for `failTimeout`; 0 disables.
        public var maxFails: Int
        public var failTimeout: TimeAmount
        /// Attempts per request, the first included.
        public var tries: Int
        public var balance: Balance
        /// First delay after a failed connect; grows by 1.25 per further consecutive failure.
        public var backoffBase: TimeAmount
        public var backoffCap: TimeAmount
        /// Applied to every backoff delay; `nil` keeps delays exact (tests). Spreads reconnects of
        /// many shards that saw the same failure at the same moment.
        public var backoffJitter: (@Sendable (TimeAmount) -> TimeAmount)?

        public init(
            queueSize: Int = 256,
            queueTimeout: TimeAmount = .seconds(5),
            idleTimeout: TimeAmount = .seconds(60),
            keepalive: Bool = true,
            maxFails: Int = 3,
            failTimeout: TimeAmount = .seconds(10),
            tries: Int = 2,
            balance: Balance = .roundRobin,
            backoffBase: TimeAmount = .milliseconds(100),
            backoffCap: TimeAmount = .seconds(10),
            backoffJitter: (@Sendable (TimeAmount) -> TimeAmount)? = nil
        ) {
            precondition(queueSize >= 0 && maxFails >= 0 && tries >= 1, "invalid pool settings")
            self.queueSize = queueSize
            self.queueTimeout = queueTimeout
            self.idleTimeout = idleTimeout
            self.keepalive = keepalive
            self.maxFails = maxFails
            self.failTimeout = failTimeout
            self.tries = tries
            self.balance = balance
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
            self.backoffJitter = backoffJitter
        }

        /// A jitter of ±`percent`% drawn from the system generator.
        public static func randomJitter(percent: Int) -> @Sendable (TimeAmount) -> TimeAmount {
            { delay in
                let range = delay.nanoseconds / 100 * Int64(percent)
                return delay + .nanoseconds(Int64.random(in: -range...range))
            }
        }
    }

    /// Why the pool gave up on a request.
    public enum FailureReason: Sendable, Equatable, CustomStringConvertible {
        /// The queue was full on arrival: 503 with Retry-After.
        case queueFull
        /// No slot within `queueTimeout` and no connect error to blame: 503.
        case queueTimeout
        /// No slot within `queueTimeout`; the last connect attempt found the backend's backlog full (EAGAIN): 503.
        case overloaded
        /// The last connect error when waiting timed out, or the request's own error when no retry is left.
        case backend(BackendError)
        /// The pool is shutting down: 503.
        case shuttingDown

        /// The status the client gets.
        public var httpStatus: Int {
            switch self {
            case .queueFull, .queueTimeout, .overloaded, .shuttingDown: return 503
            case .backend(let error): return error.httpStatus
            }
        }

        public var description: String {
            switch self {
            case .queueFull: return "queue full"
            case .queueTimeout: return "queue timeout"
            case .overloaded: return "backend overloaded"
            case .backend(let error): return error.description
            case .shuttingDown: return "pool shutting down"
            }
        }
    }

    /// How a connect attempt failed.
    public enum ConnectFailure: Sendable, Equatable {
        /// Refused, timed out, no such socket…: counts against the backend's health.
        case failed(BackendError)
        /// EAGAIN on a Unix socket (listen backlog full): the backend is busy, not broken.
        case overloaded
    }

    /// Work for the I/O layer, performed in order.
    public enum Action: Sendable, Equatable {
        /// Send the request on the connection.
        case execute(RequestID, on: ConnectionID)
        /// Open a connection to `backends[backend]`; report ``connectionEstablished(_:now:)`` or
        /// ``connectionFailed(_:_:now:)``.
        case createConnection(ConnectionID, backend: Int)
        /// Close the connection (idempotent for the I/O layer; a later ``connectionClosed(_:now:)`` is ignored).
        case closeConnection(ConnectionID)
        case scheduleIdleTimer(ConnectionID, at: NIODeadline)
        case cancelIdleTimer(ConnectionID)
        case scheduleQueueTimer(RequestID, at: NIODeadline)
        case cancelQueueTimer(RequestID)
        /// The backend's backoff or down period ends then; report ``backoffTimerFired(backend:now:)``.
        case scheduleBackoffTimer(backend: Int, at: NIODeadline)
        /// Answer the client with `reason.httpStatus`; the pool has forgotten the request.
        case failRequest(RequestID, FailureReason)
        /// After ``shutdown(now:)``: no connection and no request is left.
        case shutdownComplete
    }

    enum Lifecycle: Sendable {
        case running
        /// Retired by a configuration reload: requests already in the pool are still served
        /// (queued ones, retries), but connections close as soon as they are idle.
        case draining
        case shuttingDown
        case shutDown
    }

    /// Running or draining: requests in the pool still get connections, retries and backends.
    var servesRequests: Bool {
        switch lifecycle {
        case .running, .draining: return true
        case .shuttingDown, .shutDown: return false
        }
    }

    /// A request sent on a connection (or whose connection just closed under it).
    struct InFlight: Sendable {
        var backend: Int
        /// `nil` once the connection closed before the request was reported finished or failed.
        var connection: ConnectionID?
        /// Attempts so far, this one included.
        var tries: Int
    }

    let settings: PoolSettings
    var backends: [Backend]
    var connections: [Connection] = []
    var waiters = WaiterQueue()
    var inFlight: [RequestID: InFlight] = [:]
    var lifecycle = Lifecycle.running
    var nextConnectionID = 0
    /// What to blame when a waiting request times out; cleared by the next successful connect.
    var lastConnectFailure: FailureReason?
    var poolCounters = Counters.Pool()

    public init(backends: [BackendSettings], settings: PoolSettings) {
        precondition(!backends.isEmpty, "a pool needs a backend")
        self.settings = settings
        self.backends = backends.map { Backend(settings: $0) }
    }

    /// The backend said how many connections it serves at once (FCGI_MAX_CONNS; PHP-FPM answers
    /// `pm.max_children`). Each keep-alive connection to PHP-FPM pins one worker, so connections
    /// beyond that would only sit in its listen queue while idle ones hold every worker: this
    /// shard's limit drops to `limit` (never above the configured one). Connections already open
    /// stay; only new ones obey.
    public mutating func backendConnectionLimitKnown(backend: Int, limit: Int) {
        backends[backend].settings.maxConnections = max(1, min(backends[backend].configuredMaxConnections, limit))
    }

    /// A backend's connection limit in this shard now.
    public func maxConnections(backend: Int) -> Int {
        backends[backend].settings.maxConnections
    }

    // MARK: Requests

    /// A request wants a connection.
    public mutating func requestArrived(_ request: RequestID, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        requestArrived(request, now: now, into: &actions)
        return actions
    }

    /// ``requestArrived(_:now:)`` appending to the caller's list, which the pool reuses from
    /// request to request (an array per call would be an allocation per request).
    public mutating func requestArrived(_ request: RequestID, now: NIODeadline, into actions: inout [Action]) {
        // A debug check only: the queue scan is linear and this is the hot path.
        assert(inFlight[request] == nil && !waiters.contains(request), "\(request) is already in the pool")
        poolCounters.requests += 1
        // A draining pool still takes requests: a local redirect of an exchange that started
        // before the reload re-dispatches on the pools it started with.
        guard servesRequests else {
            actions.append(.failRequest(request, .shuttingDown))
            return
        }
        let waiter = Waiter(id: request, deadline: now + settings.queueTimeout, tries: 0, avoid: nil)
        dispatch(waiter, isRetry: false, now: now, into: &actions)
    }

    /// The request got END_REQUEST with REQUEST_COMPLETE (or, `aborted`, ended after FCGI_ABORT_REQUEST
    /// because the client left). Its slot goes straight to the next waiter.
    public mutating func requestFinished(_ request: RequestID, aborted: Bool = false, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        requestFinished(request, aborted: aborted, now: now, into: &actions)
        return actions
    }

    /// ``requestFinished(_:aborted:now:)`` appending to the caller's list.
    public mutating func requestFinished(
        _ request: RequestID, aborted: Bool = false, now: NIODeadline, into actions: inout [Action]
    ) {
        guard let entry = inFlight.removeValue(forKey: request) else { return }
        if aborted {
            poolCounters.aborts += 1
            backends[entry.backend].counters.aborts += 1
        } else {
            recordSuccess(backend: entry.backend, now: now, into: &actions)
        }
        if let connection = entry.connection {
            release(request, from: connection, connectionBroken: false, now: now, into: &actions)
        }
        createConnectionsForUncoveredWaiters(into: &actions)
        finishShutdownIfDone(into: &actions)
    }

    /// The request cannot complete where it ran: the connection broke, timed out or the backend
    /// rejected it (END_REQUEST with a protocol status other than REQUEST_COMPLETE).
    ///
    /// `replayable`: nothing reached the client yet and the caller can send the request again (body
    /// buffered, method safe to repeat). The answer is either a retry (an `execute`, now or after
    /// queueing) or ``Action/failRequest(_:_:)`` with `.backend(error)`.
    /// CANT_MPX_CONN turns multiplexing off for the backend and retries without spending a try.
    public mutating func requestFailed(
        _ request: RequestID,
        error: BackendError,
        replayable: Bool,
        now: NIODeadline
    ) -> [Action] {
        guard var entry = inFlight.removeValue(forKey: request) else { return [] }
        var actions: [Action] = []
        let backend = entry.backend
        poolCounters.errors.count(error)
        backends[backend].counters.errors.count(error)

        var freeRetry = false
        if case .rejected(let status) = error, status == FastCGIProtocolStatus.cantMultiplexConnection.rawValue {
            // Our mistake, not the backend's: it told us it cannot multiplex, so stop trying and
            // send the request again alone. Only free once per backend, so a confused backend cannot loop us.
            freeRetry = backends[backend].multiplexAllowed
            disableMultiplexing(backend: backend)
        }
        if let connection = entry.connection {
            let broken = !Self.leavesConnectionUsable(error)
            release(request, from: connection, connectionBroken: broken, now: now, into: &actions)
        }
        if Self.countsAgainstHealth(error) {
            recordFailure(backend: backend, now: now, into: &actions)
        }

        if freeRetry { entry.tries -= 1 }
        if servesRequests, replayable, Self.isRetryable(error), entry.tries < settings.tries {
            poolCounters.retries += 1
            backends[backend].counters.retries += 1
            // A CANT_MPX retry may go back to the same backend: it is healthy, just not multiplexing.
            let waiter = Waiter(
                id: request,
                deadline: now + settings.queueTimeout,
                tries: entry.tries,
                avoid: freeRetry ? nil : backend
            )
            dispatch(waiter, isRetry: true, now: now, into: &actions)
        } else {
            actions.append(.failRequest(request, .backend(error)))
        }
        createConnectionsForUncoveredWaiters(into: &actions)
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// The client left while its request was waiting. A request already executing is not touched:
    /// the caller sends FCGI_ABORT_REQUEST and reports ``requestFinished(_:aborted:now:)`` on END_REQUEST,
    /// so the slot is not reused while the backend still works on it.
    public mutating func cancelQueuedRequest(_ request: RequestID, now: NIODeadline) -> [Action] {
        guard waiters.remove(request) != nil else { return [] }
        poolCounters.aborts += 1
        var actions: [Action] = [.cancelQueueTimer(request)]
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// A waiting request's queue timer fired.
    public mutating func queueTimerFired(_ request: RequestID, now: NIODeadline) -> [Action] {
        guard let waiter = waiters.first(request), now >= waiter.deadline else { return [] }
        waiters.remove(request)
        // Blame the backend when connecting failed: "connection refused" helps more than "timeout".
        let reason = lastConnectFailure ?? .queueTimeout
        poolCounters.errors.queueTimeout += 1
        var actions: [Action] = [.failRequest(request, reason)]
        finishShutdownIfDone(into: &actions)
        return actions
    }

    // MARK: Shutdown

    /// Stops taking requests: idle connections close, waiting requests fail, running requests finish
    /// on their connections, connects in flight are closed when they complete.
    /// ``Action/shutdownComplete`` follows once nothing is left (possibly in this very answer).
    public mutating func shutdown(now: NIODeadline) -> [Action] {
        guard servesRequests else { return [] }
        lifecycle = .shuttingDown
        var actions: [Action] = []
        while let waiter = waiters.popFirst() {
            actions.append(.cancelQueueTimer(waiter.id))
            actions.append(.failRequest(waiter.id, .shuttingDown))
        }
        var index = connections.startIndex
        while index < connections.endIndex {
            switch connections[index].state {
            case .starting, .draining:
                index += 1
            case .active(_, let leased, _):
                if leased.isEmpty {
                    actions.append(.cancelIdleTimer(connections[index].id))
                    actions.append(.closeConnection(connections[index].id))
                    connections.remove(at: index)
                } else {
                    connections[index].state = .draining(leased: leased, closing: false)
                    index += 1
                }
            }
        }
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// Retires the pool after a configuration reload: no new requests are expected, those it
    /// holds finish (queued ones still get a slot, failed ones may be retried), idle connections
    /// close now and busy ones once their requests end. ``Action/shutdownComplete`` follows once
    /// nothing is left (possibly in this very answer). ``shutdown(now:)`` may still follow.
    public mutating func drain(now: NIODeadline) -> [Action] {
        guard case .running = lifecycle else { return [] }
        lifecycle = .draining
        var actions: [Action] = []
        var index = connections.startIndex
        while index < connections.endIndex {
            if connections[index].isIdle {
                actions.append(.cancelIdleTimer(connections[index].id))
                actions.append(.closeConnection(connections[index].id))
                connections.remove(at: index)
            } else {
                index += 1
            }
        }
        finishShutdownIfDone(into: &actions)
        return actions
    }

    /// True once ``Action/shutdownComplete`` was returned.
    public var isShutDown: Bool {
        if case .shutDown = lifecycle { return true }
        return false
    }

    mutating func finishShutdownIfDone(into actions: inout [Action]) {
        switch lifecycle {
        case .shuttingDown, .draining: break
        case .running, .shutDown: return
        }
        guard connections.isEmpty, inFlight.isEmpty, waiters.isEmpty else { return }
        lifecycle = .shutDown
        actions.append(.shutdownComplete)
    }

    // MARK: Error classification

    /// END_REQUEST arrived in good order, so the connection can carry the next request.
    static func leavesConnectionUsable(_ error: BackendError) -> Bool {
        if case .rejected = error { return true }
        return false
    }

    /// Signs of a broken backend, as opposed to a busy one (OVERLOADED) or a configuration mismatch.
    static func countsAgainstHealth(_ error: BackendError) -> Bool {
        switch error {
        case .connectFailed, .connectTimeout, .readTimeout, .closedEarly, .protocolViolation, .staleRecord: return true
        case .rejected: return false
        }
    }

    /// UNKNOWN_ROLE would be rejected again anywhere: the role is ours, not the backend's fault.
    static func isRetryable(_ error: BackendError) -> Bool {
        error != .rejected(protocolStatus: FastCGIProtocolStatus.unknownRole.rawValue)
    }
}
