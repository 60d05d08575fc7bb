import FastCGI
import NIOCore

/// One connection to a FastCGI backend: the pipeline's last handler and the object the front end
/// drives. A thin shell over ``FastCGIConnectionStateMachine``.
///
/// It carries one request at a time (capacity 1) or, on a multiplexing backend, several, each
/// with its own request id and receiver. Loop-bound: every method must be called on the channel's
/// event loop (the pool guarantees the front end runs there too).
public final class FastCGIConnection: ChannelDuplexHandler {
    /// Raw bytes: records are decoded here, not by a `ByteToMessageHandler` in front, which saves
    /// a pipeline hop and an `NIOAny` box per record (three records per typical response).
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// A request id in use, who waits for its records, and its read clock. Kept until the id is
    /// free again (END_REQUEST or close), also after the receiver left (abort).
    private struct Waiter {
        let requestID: UInt16
        /// The pool's ticket for this request.
        let ticket: Int
        /// Strong, and set to nil on abort; the waiter itself goes at END_REQUEST or close, so
        /// a receiver is never held past its request. (A weak reference would give every
        /// exchange a side table: one more allocation and a slow release per request.)
        var receiver: (any FastCGIResponseReceiver)?
        var readTimeout: TimeAmount
        var lastReadAt: NIODeadline
    }

    private var stateMachine: FastCGIConnectionStateMachine
    private var waiters: [Waiter] = []
    private var context: ChannelHandlerContext?

    /// Reads are gated by the front end on a connection of its own: a client that does not read
    /// stops us reading STDOUT. Never on a shared (multiplexed) connection, where that would stall
    /// every other request: there the exchange buffers instead.
    private var readingPaused = false
    private var pendingRead = false
    private var readTimer: Scheduled<Void>?
    /// Closes a connection whose aborted request the backend has not ended in time.
    private var graceTimer: Scheduled<Void>?

    /// Called once when the channel closes, with the tickets of requests that still held a slot.
    var onClose: ((FastCGIConnection, [Int]) -> Void)?
    /// When the current (or last) read began: the clock is read once per read, and what the
    /// records of that read cause (read clocks, END_REQUEST times, slots freed) uses this.
    public private(set) var readTime = NIODeadline.now()
    /// Called when a request's id is free again (END_REQUEST, or a rejection nobody waits for);
    /// `aborted` when its receiver had left; with the clock reading of the read that freed it.
    var onSlotFreed: ((FastCGIConnection, Int, Bool, NIODeadline) -> Void)?
    /// The ticket the pool handed this connection out for; taken by the next ``startRequest``.
    private var assignedTicket = 0
    /// Requests that ended in the current read burst: (ticket, aborted), reported to the pool at
    /// `channelReadComplete`.
    private var freedSlots: [(Int, Bool)] = []
    /// Called for GET_VALUES_RESULT and UNKNOWN_TYPE records (the pool learns capacities).
    var onManagementRecord: ((FastCGIRecord) -> Void)?
    /// Which backend of its pool this connection goes to.
    public let backendIndex: Int
    /// The pool's own number for this connection.
    public let id: Int
    /// How many requests this connection has carried (for logs and tests).
    public private(set) var requestCount = 0
    /// Any record received since connect. A fresh connection that stays silent may be waiting in
    /// the backend's listen queue for a worker (see the pool's stall check).
    public private(set) var hasHeardFromBackend = false
    private var channelIsActive = false
    private var channelIsWritable = false

    init(backendIndex: Int, id: Int = 0, capacity: Int = 1) {
        self.backendIndex = backendIndex
        self.id = id
        self.stateMachine = FastCGIConnectionStateMachine(capacity: capacity)
        waiters.reserveCapacity(capacity)
    }

    public var channel: (any Channel)? { context?.channel }
    public var isWritable: Bool { channelIsWritable }
    /// More than one request may run at once on this connection.
    public var isMultiplexed: Bool { stateMachine.capacity > 1 }
    public var capacity: Int { stateMachine.capacity }
    public var activeCount: Int { stateMachine.activeCount }
    /// True when a new request may start on this connection now.
    public var hasFreeSlot: Bool { stateMachine.hasFreeSlot && isActive }
    /// True when nothing runs and the connection may carry more requests.
    public var isReusable: Bool { stateMachine.isIdle && isActive }
    /// The channel is open and connected. Remembered once seen: asking the channel costs a
    /// protocol call and a retain/release pair, several times per request. Asked again while
    /// not yet seen, because the connect future completes before channelActive reaches us (TCP).
    private var isActive: Bool {
        if channelIsActive { return true }
        guard let context, context.channel.isActive else { return false }
        channelIsActive = true
        return true
    }
    /// False once the connection must not take new requests (retired, tainted, closed).
    public var isUsable: Bool { stateMachine.state == .open && !stateMachine.tainted && isActive }

    /// Called by the pool right before handing the connection out for `ticket`.
    func assign(ticket: Int) {
        assignedTicket = ticket
    }

    /// No new requests on this connection; it closes once the running ones ended. Used when
    /// the backend answered before taking the whole request body: STDIN records still in flight
    /// would reach the next request.
    public func retire() {
        stateMachine.retire()
    }

    /// The backend said how many requests it takes at once on a connection.
    public func setCapacity(_ capacity: Int) {
        stateMachine.setCapacity(capacity)
    }

    // MARK: Driving requests

    /// Takes a request id for `receiver`. The caller then writes BEGIN_REQUEST, PARAMS and
    /// STDIN for that id with ``write(_:)``.
    /// `now`: the caller's clock reading, when it has just taken one.
    public func startRequest(receiver: any FastCGIResponseReceiver, readTimeout: TimeAmount, now: NIODeadline = .now()) -> UInt16 {
        let requestID = stateMachine.startRequest(receivedBytes: bytesReceived)
        requestCount += 1
        waiters.append(
            Waiter(requestID: requestID, ticket: assignedTicket, receiver: receiver, readTimeout: readTimeout, lastReadAt: now)
        )
        if readTimer == nil { armReadTimer(in: readTimeout) }
        return requestID
    }

    /// Writes framed records (BEGIN_REQUEST, PARAMS, STDIN).
    public func write(_ records: ByteBuffer) {
        context?.write(wrapOutboundOut(records), promise: nil)
    }

    /// Sends what was written. On a multiplexed connection the flush waits for the end of the
    /// event loop's current batch of events: the requests that several clients sent in one loop
    /// iteration then share one write to the backend (and the backend one wake-up), instead of a
    /// syscall each. A connection of its own carries one request at a time: it flushes at once.
    public func flush() {
        guard let context else { return }
        guard isMultiplexed else {
            context.flush()
            return
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        // Tasks run after the loop has handled every event of the current epoll batch.
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            guard channelIsActive else { return }
            self.context?.flush()
        }
    }

    private var flushScheduled = false

    /// Stop reading from the backend until ``resumeReading()``. Ignored on multiplexed
    /// connections (see `readingPaused`).
    public func pauseReading() {
        guard !isMultiplexed else { return }
        readingPaused = true
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        // The read clock counts only time we were willing to read.
        let now = NIODeadline.now()
        for index in waiters.indices { waiters[index].lastReadAt = now }
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    /// The request's client went away (or the exchange gave up on it). On a shared connection
    /// ABORT_REQUEST is sent and the id stays reserved until END_REQUEST. On a connection of its
    /// own (PHP-FPM ignores ABORT_REQUEST and only notices a closed socket): with a `grace`, the
    /// connection takes no new request, its output is read and dropped, and it closes at
    /// END_REQUEST or when the grace ends, whichever comes first, so the pool counts it busy
    /// while the backend may still run the request; without one it closes now.
    public func abort(requestID: UInt16, grace: TimeAmount? = nil) {
        if let index = waiters.firstIndex(where: { $0.requestID == requestID }) {
            waiters[index].receiver = nil
        }
        guard isMultiplexed else {
            guard let grace, let context, isActive else {
                close()
                return
            }
            stateMachine.retire()
            resumeReading()
            // PHP-FPM ignores it; a backend that honours it (our worker library) ends the
            // request at once. The connection carries nothing after it.
            sendAbortRequest(requestID, on: context)
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            graceTimer?.cancel()
            graceTimer = context.eventLoop.scheduleTask(in: grace) {
                loopBound.value.close()
            }
            return
        }
        if stateMachine.abort(requestID: requestID), let context {
            sendAbortRequest(requestID, on: context)
        }
    }

    private func sendAbortRequest(_ requestID: UInt16, on context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 16)
        buffer.writeFastCGIAbortRequest(requestID: requestID)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Closes the connection; requests still on it fail with ``BackendError/closedEarly``
    /// (except those whose receivers already left).
    /// Out of use at once: the pool must not hand it out between the close and the
    /// channelInactive that follows.
    public func close() {
        channelIsActive = false
        context?.close(promise: nil)
    }

    // MARK: ChannelHandler

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Tracked from the channel's events rather than asked of it per request (see isActive).
        channelIsActive = context.channel.isActive
        channelIsWritable = context.channel.isWritable
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        channelIsActive = false
        channelIsWritable = false
    }

    public func channelActive(context: ChannelHandlerContext) {
        channelIsActive = true
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readTime = .now()
        let buffer = unwrapInboundIn(data)
        bytesReceived += buffer.readableBytes
        do {
            try decoder.process(buffer: buffer) { record in
                // The decoder has put the bytes after this record back: what it holds now, plus
                // the record, is where the record began in the stream.
                let start = recordsEnd
                recordsEnd = bytesReceived - decoder.unprocessedBytes
                received(record, at: start)
            }
            if decoder.unprocessedBytes > 0, case .failAndClose(let error)? = stateMachine.partialRecordPending(at: recordsEnd) {
                failAll(error, startedAfter: recordsEnd)
                close()
            }
        } catch {
            errorCaught(context: context, error: error)
        }
    }

    /// Records are bounded (8 + 65535 + 255 bytes); more buffered than this is a broken peer.
    private var decoder = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20)
    /// Bytes read from the backend so far, and where the last decoded record ended: together they
    /// place each record in the stream, so a request never takes records sent before it existed.
    private var bytesReceived = 0
    private var recordsEnd = 0

    private func received(_ record: FastCGIRecord, at offset: Int) {
        hasHeardFromBackend = true
        switch stateMachine.received(record, at: offset) {
        case .forwardStdout(let requestID):
            touch(requestID)?.backendStdout(record.content)
        case .forwardStderr(let requestID):
            touch(requestID)?.backendStderr(record.content)
        case .ignore:
            break
        case .discardLateStdout(let requestID):
            touch(requestID)?.backendStderr(
                ByteBuffer(string: "fcgiproxy: dropped \(record.content.readableBytes) STDOUT bytes sent after the end of STDOUT")
            )
        case .requestEnded(let requestID, let appStatus, _):
            guard let waiter = removeWaiter(requestID) else { break }
            if waiters.isEmpty {
                // The pause belonged to that request's client (END_REQUEST can arrive in the same
                // read burst that made it pause): an idle connection must keep reading to notice
                // the backend closing it.
                resumeReading()
            }
            let receiver = waiter.receiver
            receiver?.backendEnded(appStatus: appStatus)
            // The slot goes back to the pool at the end of this read burst, not now: a stray
            // record behind END_REQUEST in the same read must mark the connection bad before a
            // waiting request is written to it.
            freedSlots.append((waiter.ticket, receiver == nil))
        case .requestRejected(let requestID, let protocolStatus):
            if protocolStatus == FastCGIProtocolStatus.cantMultiplexConnection.rawValue {
                stateMachine.setCapacity(1)
            }
            guard let waiter = removeWaiter(requestID) else { break }
            if waiters.isEmpty { resumeReading() }
            if let receiver = waiter.receiver {
                // The receiver reports it to the pool, which decides about a retry.
                receiver.backendFailed(.rejected(protocolStatus: protocolStatus))
            } else {
                freedSlots.append((waiter.ticket, true))
            }
        case .management:
            onManagementRecord?(record)
        case .failAndClose(let error):
            failAll(error, startedAfter: offset)
            close()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        for waiter in waiters {
            waiter.receiver?.backendReadComplete()
        }
        releaseFreedSlots(now: readTime)
    }

    private func releaseFreedSlots(now: NIODeadline) {
        guard !freedSlots.isEmpty else { return }
        // Swapped out rather than copied: the list keeps its storage from call to call.
        var freed: [(Int, Bool)] = []
        swap(&freed, &freedSlots)
        for (ticket, aborted) in freed {
            onSlotFreed?(self, ticket, aborted, now)
        }
        freed.removeAll(keepingCapacity: true)
        if freedSlots.isEmpty { swap(&freed, &freedSlots) }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        channelIsWritable = writable
        for waiter in waiters {
            waiter.receiver?.backendWritabilityChanged(isWritable: writable)
        }
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        channelIsActive = false
        readTimer?.cancel()
        readTimer = nil
        graceTimer?.cancel()
        graceTimer = nil
        _ = stateMachine.closed()
        // Ended requests not yet reported are freed slots too; the closed connection is
        // forgotten with them.
        releaseFreedSlots(now: .now())
        let held = waiters.map(\.ticket)
        failAll(.closedEarly)
        onClose?(self, held)
        onClose = nil
        onSlotFreed = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is IOError {
            // ECONNRESET, EPIPE: the backend went away (a recycled PHP-FPM worker with our
            // request unread in its socket). That is an early close, which may be retried, not a
            // protocol violation, which may not.
            failAll(.closedEarly)
        } else if case .failAndClose(let failure) = stateMachine.decodingFailed(error) {
            failAll(failure)
        }
        close()
    }

    public func read(context: ChannelHandlerContext) {
        if readingPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: Internals

    /// The receiver of a running request, with its read clock reset.
    @inline(__always)
    private func touch(_ requestID: UInt16) -> (any FastCGIResponseReceiver)? {
        guard let index = waiters.firstIndex(where: { $0.requestID == requestID }) else { return nil }
        waiters[index].lastReadAt = readTime
        return waiters[index].receiver
    }

    private func removeWaiter(_ requestID: UInt16) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.requestID == requestID }) else { return nil }
        // The read timer stays armed when the connection goes idle: cancelling and re-arming it for
        // every request would cost more than it saves; firing with nothing to watch ends it.
        return waiters.remove(at: index)
    }

    /// `startedAfter`: the stream offset of the bytes that broke the connection. Requests that
    /// started after those bytes had arrived are not to blame and heard nothing yet: they fail
    /// as closed early, which lets the pool send them again elsewhere.
    private func failAll(_ error: BackendError, startedAfter offset: Int = .max) {
        readTimer?.cancel()
        readTimer = nil
        let failed = waiters
        waiters.removeAll()
        for waiter in failed {
            // The machine keeps its slots when it fails (they go at `closed()`): it knows when each began.
            let startedAfter = stateMachine.slots.first { $0.requestID == waiter.requestID }.map { $0.firstByte > offset } ?? false
            waiter.receiver?.backendFailed(startedAfter ? .closedEarly : error)
        }
    }

    /// One timer per connection, re-armed for the earliest remaining deadline instead of
    /// rescheduled per record: records arrive far more often than the timer fires.
    private func armReadTimer(in delay: TimeAmount) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        readTimer = context.eventLoop.scheduleTask(in: delay) {
            loopBound.value.readTimerFired()
        }
    }

    private func readTimerFired() {
        readTimer = nil
        guard waiters.contains(where: { $0.receiver != nil }), context != nil else { return }
        let now = NIODeadline.now()
        if readingPaused {
            armReadTimer(in: waiters.map(\.readTimeout).min()!)
            return
        }
        var expired: [UInt16] = []
        var next: NIODeadline?
        for waiter in waiters {
            let deadline = waiter.lastReadAt + waiter.readTimeout
            if deadline <= now {
                expired.append(waiter.requestID)
            } else {
                next = next.map { min($0, deadline) } ?? deadline
            }
        }
        for requestID in expired {
            let receiver = waiters.first { $0.requestID == requestID }?.receiver
            if receiver == nil { continue }
            if case .failAndClose? = stateMachine.readTimedOut(requestID: requestID) {
                // Alone on its connection: closing is the only abort PHP-FPM notices.
                failAll(.readTimeout)
                close()
                return
            }
            abort(requestID: requestID)
            receiver?.backendFailed(.readTimeout)
        }
        if let next { armReadTimer(in: next - now) }
    }
}

@available(*, unavailable)
extension FastCGIConnection: Sendable {}
