#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import NIOCore
import NIOPosix

/// One shard of a backend pool: its connections on one event loop, driven by
/// ``FastCGIPoolStateMachine``.
///
/// One instance per (pool, event loop): the front-end channel and its backend channels share a
/// thread, so nothing here needs a lock. This class only performs the machine's actions (connect,
/// timers, hand-outs) and translates channel events into machine events.
public final class FastCGIConnectionPool {
    public enum Multiplex: Sendable, Equatable {
        /// One request per connection.
        case off
        /// Multiplex up to this many requests per connection, without asking.
        case on(maxRequests: Int)
        /// Ask each backend (FCGI_GET_VALUES on a connection of its own) and multiplex when it
        /// says FCGI_MPXS_CONNS=1, up to its FCGI_MAX_REQS capped by `maxRequests`.
        case auto(maxRequests: Int)
    }

    public struct Settings: Sendable {
        public var backends: [SocketAddress]
        public var backendSettings: [FastCGIPoolStateMachine.BackendSettings]
        public var pool: FastCGIPoolStateMachine.PoolSettings
        public var connectTimeout: TimeAmount
        public var multiplex: Multiplex

        public init(
            backends: [SocketAddress],
            backendSettings: [FastCGIPoolStateMachine.BackendSettings],
            pool: FastCGIPoolStateMachine.PoolSettings,
            connectTimeout: TimeAmount,
            multiplex: Multiplex
        ) {
            precondition(backends.count == backendSettings.count && !backends.isEmpty)
            self.backends = backends
            self.backendSettings = backendSettings
            self.pool = pool
            self.connectTimeout = connectTimeout
            self.multiplex = multiplex
        }
    }

    /// A request's handle in the pool, given by ``lease(_:)``.
    public typealias Ticket = FastCGIPoolStateMachine.RequestID
    /// Called with a connection that has a free slot (again, if the request is retried) or with
    /// the reason the pool gave up on the request.
    public typealias LeaseCallback = (Result<FastCGIConnection, FastCGIPoolStateMachine.FailureReason>) -> Void

    /// What a request's owner hears from the pool, as an object rather than a closure: the
    /// owner (an exchange) exists anyway, a closure would be one more allocation per request.
    public protocol Receiver: AnyObject {
        /// A connection with a free slot (again, if the request is retried). `ticket` is the one
        /// ``lease(_:now:)`` returns: a grant can come before that call returns, and the
        /// connection may fail the request at once (a write to a backend that just closed), so
        /// the owner must know its ticket by then.
        func leaseGranted(_ connection: FastCGIConnection, ticket: Ticket)
        /// The pool gave up on the request.
        func leaseFailed(_ reason: FastCGIPoolStateMachine.FailureReason)
    }

    public let eventLoop: any EventLoop
    public let settings: Settings
    private var machine: FastCGIPoolStateMachine
    private var connections: [Int: FastCGIConnection] = [:]
    /// Requests whose exchange still waits for news. An abandoned request stays in the machine
    /// (its backend slot is busy until END_REQUEST) but has no callback.
    private var callbacks: [Int: any Receiver] = [:]
    /// The action list handed to the machine, reused from call to call; taken (left empty) while
    /// a call's actions run, so a nested call gets a list of its own.
    private var spareActions: [FastCGIPoolStateMachine.Action] = []
    private var nextTicket = 0
    /// Idle timers are lazy: every request end moves a connection's idle deadline, and
    /// rescheduling a timer per request (allocate, heap insert, cancel) would cost more than the
    /// request's own bookkeeping. One timer per connection stays armed; when it fires early it
    /// re-arms for the deadline it finds (the machine's, ``FastCGIPoolStateMachine/idleDeadline(_:)``),
    /// when the deadline is gone it just ends.
    private var idleTimers: [Int: (timer: Scheduled<Void>, fireAt: NIODeadline)] = [:]
    private var queueTimers: [Int: Scheduled<Void>] = [:]
    private var backoffTimers: [Int: Scheduled<Void>] = [:]
    /// For `multiplex = auto`: what each backend answered (nil: not asked yet or no answer).
    private var probedCapacity: [Int?]
    private var probing: Set<Int> = []
    /// Set by ``drain(whenEmpty:)``.
    private var onEmpty: (() -> Void)?
    /// In ``BackendWorkerRegistry`` (from the first connection until the shard is shut down).
    private var registered = false

    /// This shard's share of a backend's own connection limit (FCGI_MAX_CONNS): the caller's
    /// split, as for `max_conns`.
    public var shareOfBackendLimit: (Int) -> Int = { $0 }
    /// Opens backend channels: sockets, unless a test hands out embedded channels.
    public var connector: any FastCGIConnector = SocketConnector()

    public init(settings: Settings, eventLoop: any EventLoop) {
        self.settings = settings
        self.eventLoop = eventLoop
        var backendSettings = settings.backendSettings
        for index in backendSettings.indices {
            switch settings.multiplex {
            case .off: backendSettings[index].multiplexCapacity = nil
            case .on(let max), .auto(let max): backendSettings[index].multiplexCapacity = max
            }
        }
        self.machine = FastCGIPoolStateMachine(backends: backendSettings, settings: settings.pool)
        self.probedCapacity = Array(repeating: nil, count: settings.backends.count)
    }

    /// Counters of this shard (requests, errors, retries, connections, queue).
    public var counters: FastCGIPoolStateMachine.Counters { machine.counters }

    // MARK: Requests

    /// Asks for a connection slot. `callback` runs on this loop, now or later, possibly more than
    /// once (a retry hands out another connection).
    public func lease(_ callback: @escaping LeaseCallback) -> Ticket {
        lease(ClosureReceiver(callback))
    }

    /// Asks for a connection slot for `receiver`, which the pool holds until it answers finally.
    /// `now`: the caller's clock reading, when it has just taken one.
    public func lease(_ receiver: any Receiver, now: NIODeadline = .now()) -> Ticket {
        eventLoop.preconditionInEventLoop()
        nextTicket += 1
        let ticket = Ticket(nextTicket)
        callbacks[ticket.rawValue] = receiver
        var actions = takeActionList()
        machine.requestArrived(ticket, now: now, into: &actions)
        perform(actions)
        returnActionList(&actions)
        return ticket
    }

    private func takeActionList() -> [FastCGIPoolStateMachine.Action] {
        var list: [FastCGIPoolStateMachine.Action] = []
        swap(&list, &spareActions)
        if list.capacity == 0 { list.reserveCapacity(8) }
        return list
    }

    private func returnActionList(_ list: inout [FastCGIPoolStateMachine.Action]) {
        list.removeAll(keepingCapacity: true)
        if spareActions.capacity == 0 { swap(&list, &spareActions) }
    }

    /// The request failed where it ran. `replayable`: nothing reached the client and the request
    /// can be sent again. The pool retries it (the callback runs again) or fails it.
    public func failed(_ ticket: Ticket, error: BackendError, replayable: Bool) {
        perform(machine.requestFailed(ticket, error: error, replayable: replayable, now: .now()))
    }

    /// The exchange no longer wants the request (client gone, local redirect, proxy-side timeout).
    /// A queued request leaves the queue; a running one keeps its slot until the connection
    /// reports END_REQUEST or closes (the caller aborts it on the connection).
    public func abandon(_ ticket: Ticket) {
        guard callbacks.removeValue(forKey: ticket.rawValue) != nil else { return }
        perform(machine.cancelQueuedRequest(ticket, now: .now()))
    }

    /// Closes idle connections and fails queued requests; running ones finish.
    public func shutdown() {
        perform(machine.shutdown(now: .now()))
    }

    /// Retires the shard after a configuration reload: requests it holds finish (queued ones
    /// included), idle connections close now, busy ones after their request; `whenEmpty` runs
    /// on this loop once no connection and no request is left (at once if none is).
    public func drain(whenEmpty: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        onEmpty = whenEmpty
        perform(machine.drain(now: .now()))
    }

    // MARK: Actions

    private func perform(_ actions: [FastCGIPoolStateMachine.Action]) {
        for action in actions {
            switch action {
            case .execute(let ticket, let connectionID):
                guard let receiver = callbacks[ticket.rawValue], let connection = connections[connectionID.rawValue] else {
                    continue
                }
                guard connection.hasFreeSlot else {
                    // Closed (its close not processed yet: several connections to a killed
                    // backend go down in one burst) or retired: never start a request there, it
                    // would wait for a read timeout. Nothing was sent, so it may go elsewhere.
                    perform(machine.requestFailed(ticket, error: .closedEarly, replayable: true, now: .now()))
                    continue
                }
                connection.assign(ticket: ticket.rawValue)
                receiver.leaseGranted(connection, ticket: ticket)
            case .createConnection(let connectionID, let backend):
                connect(connectionID, backend: backend)
            case .closeConnection(let connectionID):
                connections[connectionID.rawValue]?.close()
            case .scheduleIdleTimer(let connectionID, let deadline):
                if let armed = idleTimers[connectionID.rawValue], armed.fireAt <= deadline {
                    break
                }
                armIdleTimer(connectionID, at: deadline)
            case .cancelIdleTimer:
                // Lazy: the armed timer finds no deadline when it fires.
                break
            case .scheduleQueueTimer(let ticket, let deadline):
                queueTimers[ticket.rawValue]?.cancel()
                queueTimers[ticket.rawValue] = schedule(at: deadline) { pool in
                    pool.queueTimers[ticket.rawValue] = nil
                    pool.perform(pool.machine.queueTimerFired(ticket, now: .now()))
                }
            case .cancelQueueTimer(let ticket):
                queueTimers.removeValue(forKey: ticket.rawValue)?.cancel()
            case .scheduleBackoffTimer(let backend, let deadline):
                backoffTimers[backend]?.cancel()
                backoffTimers[backend] = schedule(at: deadline) { pool in
                    pool.backoffTimers[backend] = nil
                    pool.perform(pool.machine.backoffTimerFired(backend: backend, now: .now()))
                }
            case .failRequest(let ticket, let reason):
                callbacks.removeValue(forKey: ticket.rawValue)?.leaseFailed(reason)
            case .shutdownComplete:
                if registered {
                    registered = false
                    BackendWorkerRegistry.shared.unregister(self)
                }
                let onEmpty = self.onEmpty
                self.onEmpty = nil
                onEmpty?()
            }
        }
    }

    private func armIdleTimer(_ connectionID: FastCGIPoolStateMachine.ConnectionID, at deadline: NIODeadline) {
        idleTimers[connectionID.rawValue]?.timer.cancel()
        let timer = schedule(at: deadline) { pool in
            pool.idleTimers[connectionID.rawValue] = nil
            guard let due = pool.machine.idleDeadline(connectionID) else { return }
            if due > .now() {
                pool.armIdleTimer(connectionID, at: due)
                return
            }
            pool.perform(pool.machine.idleTimerFired(connectionID, now: .now()))
        }
        idleTimers[connectionID.rawValue] = (timer, deadline)
    }

    private func schedule(at deadline: NIODeadline, _ body: @escaping (FastCGIConnectionPool) -> Void) -> Scheduled<Void> {
        // Strong: the task holds the pool until it fires or is cancelled, both bounded. No weak
        // reference to the pool anywhere: one would give it a side table, and every retain and
        // release of it on the request path would take the runtime's slow path.
        eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { body(self) }
    }

    // MARK: Connections

    private func connect(_ connectionID: FastCGIPoolStateMachine.ConnectionID, backend: Int) {
        let address = settings.backends[backend]
        connector.connect(to: address, on: eventLoop, timeout: settings.connectTimeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    FastCGIConnection(backendIndex: backend, id: connectionID.rawValue)
                )
            }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: FastCGIConnection.self) else {
                    channel.close(promise: nil)
                    self.perform(self.machine.connectionFailed(connectionID, .failed(.connectFailed("\(address): no handler")), now: .now()))
                    return
                }
                self.established(connection, connectionID)
            case .failure(let error):
                self.perform(self.machine.connectionFailed(connectionID, Self.classify(error, address: address), now: .now()))
            }
        }
        if case .auto = settings.multiplex, probedCapacity[backend] == nil, !probing.contains(backend) {
            probe(backend: backend)
        }
    }

    private func established(_ connection: FastCGIConnection, _ connectionID: FastCGIPoolStateMachine.ConnectionID) {
        connections[connectionID.rawValue] = connection
        if !registered {
            registered = true
            BackendWorkerRegistry.shared.register(self)
        }
        watchForStall(connection)
        // These two hold the pool strongly; the connection drops both when it closes, which
        // breaks the cycle (see FastCGIConnection.channelInactive).
        connection.onSlotFreed = { connection, ticket, aborted, now in
            self.callbacks.removeValue(forKey: ticket)
            if !connection.isUsable, self.connections.removeValue(forKey: connection.id) != nil {
                // Retired or tainted: out of the machine before the slot frees, so the slot is
                // not handed to the next waiter.
                self.perform(self.machine.connectionClosed(connectionID, now: now))
                if connection.activeCount == 0 { connection.close() }
            }
            var actions = self.takeActionList()
            self.machine.requestFinished(Ticket(ticket), aborted: aborted, now: now, into: &actions)
            self.perform(actions)
            self.returnActionList(&actions)
        }
        connection.onClose = { closed, heldTickets in
            self.idleTimers.removeValue(forKey: closed.id)?.timer.cancel()
            if self.connections.removeValue(forKey: closed.id) != nil {
                self.perform(self.machine.connectionClosed(connectionID, now: .now()))
            }
            // Requests whose exchanges left (we closed the connection to abort them): nobody will
            // report them, so do it here — as aborts, not failures: the backend did nothing wrong,
            // and counting them would take a healthy backend out when many clients leave at once.
            for ticket in heldTickets where self.callbacks[ticket] == nil {
                self.perform(self.machine.requestFinished(Ticket(ticket), aborted: true, now: .now()))
            }
        }
        var actions = machine.connectionEstablished(connectionID, now: .now())
        if let capacity = capacity(for: connection.backendIndex), capacity > 1 {
            connection.setCapacity(capacity)
            actions += machine.connectionCapacityKnown(connectionID, capacity: capacity, now: .now())
        }
        perform(actions)
    }

    /// PHP-FPM accepts a connection only when a worker is free, and a keep-alive connection holds
    /// its worker while idle. With more connections than workers (`max_conns` above
    /// `pm.max_children`, which PHP-FPM does not report, or shards on several event loops), a
    /// new connection can sit in the listen queue for ever while our other connections pin every
    /// worker. So: a new connection that has not heard from the backend within
    /// `stallCheckInterval` while it carries a request gets one worker freed at the same address
    /// (``freeWorker(at:)``: in this shard, else in another shard of the process through
    /// ``BackendWorkerRegistry``); again each interval until it hears something. A false alarm
    /// costs one reconnect.
    public static let stallCheckInterval: TimeAmount = .milliseconds(200)

    private func watchForStall(_ connection: FastCGIConnection) {
        // By id, not a weak reference (which would give every connection a side table).
        let id = connection.id
        _ = schedule(at: .now() + Self.stallCheckInterval) { pool in
            guard let connection = pool.connections[id], !connection.hasHeardFromBackend, connection.channel?.isActive == true else { return }
            // A multiplexing backend does not give each connection a worker: no stall to break.
            if connection.activeCount > 0, !connection.isMultiplexed {
                let address = pool.settings.backends[connection.backendIndex]
                if !pool.freeWorker(at: address) {
                    // None here: another loop's shard (or a pool a reload retired) may pin the workers.
                    BackendWorkerRegistry.shared.freeWorker(at: address, except: pool)
                }
            }
            pool.watchForStall(connection)
        }
    }

    /// Frees one backend worker that a connection of this shard to `address` pins, if there is
    /// one: an idle connection closes now; otherwise a busy one of its own (not multiplexed) that
    /// the backend serves (it has answered on it) takes no more requests and closes when its
    /// request ends. Under steady load connections are idle only for moments, so waiting for one
    /// to be idle at a stall check could miss them for seconds. The pool hears of the close as of
    /// any other. Giving one up shows the backend serves fewer connections than this shard was
    /// opening, so the shard learns to hold fewer (`FastCGIPoolStateMachine+WorkerLimit`). A
    /// stall with nothing to give up (every connection new and silent: slow scripts, not a full
    /// backend) teaches nothing.
    func freeWorker(at address: SocketAddress) -> Bool {
        eventLoop.preconditionInEventLoop()
        var idle: FastCGIConnection?
        var busy: FastCGIConnection?
        for connection in connections.values where settings.backends[connection.backendIndex] == address {
            if connection.isReusable {
                idle = connection
                break
            }
            if busy == nil, !connection.isMultiplexed, connection.isUsable, connection.hasHeardFromBackend {
                busy = connection
            }
        }
        guard let given = idle ?? busy else { return false }
        learnWorkerLimit(backend: given.backendIndex)
        if given === idle { given.close() } else { given.retire() }
        return true
    }

    private var workerLimitTimers: [Int: Scheduled<Void>] = [:]

    private func learnWorkerLimit(backend: Int) {
        let expiry = machine.backendStalled(backend: backend, now: .now())
        workerLimitTimers[backend]?.cancel()
        workerLimitTimers[backend] = schedule(at: expiry) { pool in
            pool.workerLimitTimers[backend] = nil
            pool.perform(pool.machine.workerLimitTimerFired(backend: backend, now: .now()))
        }
    }

    private func capacity(for backend: Int) -> Int? {
        // After CANT_MPX_CONN the machine grants one request per connection: the connection
        // must know it too (it flushes, pauses and aborts as a connection of its own).
        guard machine.backends[backend].multiplexAllowed else { return nil }
        switch settings.multiplex {
        case .off: return nil
        case .on(let max): return max
        case .auto: return probedCapacity[backend]
        }
    }

    /// EAGAIN on a Unix socket means its listen backlog is full: the backend is overloaded, not
    /// down (it must not count against its health).
    private static func classify(_ error: any Error, address: SocketAddress) -> FastCGIPoolStateMachine.ConnectFailure {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return .failed(.connectTimeout)
        }
        if let ioError = error as? IOError, ioError.errnoCode == EAGAIN {
            return .overloaded
        }
        return .failed(.connectFailed("\(address): \(error)"))
    }

    // MARK: multiplex = auto

    /// The probe runs alongside the backend's first connection, which is usually established
    /// before the answer comes and then starts with room for one request. Under steady load
    /// that connection never idles (every freed slot goes straight to the next waiter), so
    /// without this it would carry one request at a time for good while the queue times out.
    private func raiseCapacity(of backend: Int, to capacity: Int) {
        // A backend that already answered CANT_MPX_CONN keeps one request per connection.
        guard capacity > 1, machine.backends[backend].multiplexAllowed else { return }
        // In id order, so that waiters fill the oldest connection first, as they would have.
        let open = connections.values.filter { $0.backendIndex == backend && $0.isUsable }.sorted { $0.id < $1.id }
        for connection in open {
            connection.setCapacity(capacity)
            // A pause left by a slow client of the request that had the connection to itself
            // would now stall every request on it; that client's output is spooled from here on.
            connection.resumeReading()
            let id = FastCGIPoolStateMachine.ConnectionID(connection.id)
            perform(machine.connectionCapacityKnown(id, capacity: capacity, now: .now()))
        }
    }

    /// Asks a backend on a connection of its own whether it multiplexes. PHP-FPM answers
    /// FCGI_MPXS_CONNS=0 and closes; a backend that does not answer within a second counts as 0.
    private func probe(backend: Int) {
        probing.insert(backend)
        let address = settings.backends[backend]
        let configured: Int
        if case .auto(let max) = settings.multiplex { configured = max } else { configured = 1 }
        // nil: no answer (counts as "does not multiplex"); a dictionary: the answer.
        let finish: ([String: String]?) -> Void = { values in
            guard self.probing.remove(backend) != nil else { return }
            if let limit = values.flatMap({ Int($0[FastCGIConstants.maxConns] ?? "") }), limit > 0 {
                self.machine.backendConnectionLimitKnown(backend: backend, limit: self.shareOfBackendLimit(limit))
            }
            guard let values, values[FastCGIConstants.mpxsConns] == "1" else {
                self.probedCapacity[backend] = 1
                return
            }
            let offered = Int(values[FastCGIConstants.maxReqs] ?? "") ?? configured
            let capacity = max(1, min(offered, configured))
            self.probedCapacity[backend] = capacity
            self.raiseCapacity(of: backend, to: capacity)
        }
        let connecting = connector.connect(to: address, on: eventLoop, timeout: settings.connectTimeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(
                    ByteToMessageHandler(FastCGIRecordDecoder(), maximumBufferSize: 1 << 16),
                    GetValuesProbe()
                )
            }
        }
        connecting
            .assumeIsolated()
            .whenComplete { result in
                guard case .success(let channel) = result,
                    let probe = try? channel.pipeline.syncOperations.handler(type: GetValuesProbe.self)
                else {
                    // Could not connect: ask again with the next connection.
                    self.probing.remove(backend)
                    return
                }
                probe.onResult = { values in
                    finish(values)
                    channel.close(promise: nil)
                }
                var request = channel.allocator.buffer(capacity: 64)
                request.writeFastCGIGetValues(names: [FastCGIConstants.maxConns, FastCGIConstants.maxReqs, FastCGIConstants.mpxsConns])
                channel.writeAndFlush(request, promise: nil)
                channel.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
                    finish(nil)
                    channel.close(promise: nil)
                }
            }
    }

}

/// Collects one GET_VALUES_RESULT.
private final class GetValuesProbe: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord
    var onResult: (([String: String]) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        guard record.recordType == .getValuesResult, let onResult else { return }
        self.onResult = nil
        var values: [String: String] = [:]
        for pair in (try? FastCGINameValuePairs.parse(record.content)) ?? [] {
            values[String(buffer: pair.name)] = String(buffer: pair.value)
        }
        onResult(values)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let onResult {
            self.onResult = nil
            onResult([:])
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension FastCGIConnectionPool: Sendable {}

extension FastCGIPoolStateMachine.FailureReason: Error {}

/// ``FastCGIConnectionPool/lease(_:)-(LeaseCallback)`` for callers without an object of their own.
private final class ClosureReceiver: FastCGIConnectionPool.Receiver {
    let callback: FastCGIConnectionPool.LeaseCallback

    init(_ callback: @escaping FastCGIConnectionPool.LeaseCallback) {
        self.callback = callback
    }

    func leaseGranted(_ connection: FastCGIConnection, ticket: FastCGIConnectionPool.Ticket) {
        callback(.success(connection))
    }

    func leaseFailed(_ reason: FastCGIPoolStateMachine.FailureReason) {
        callback(.failure(reason))
    }
}
