import FastCGI
import NIOCore

/// One connection to a FastCGI backend: the pipeline's last handler and the object the front end
/// drives. A thin shell over ``FastCGIConnectionStateMachine``.
///
/// Loop-bound: every method must be called on the channel's event loop (the pool guarantees the
/// front end runs there too).
public final class FastCGIConnection: ChannelDuplexHandler {
    public typealias InboundIn = FastCGIRecord
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var stateMachine = FastCGIConnectionStateMachine()
    private var context: ChannelHandlerContext?
    private weak var receiver: (any FastCGIResponseReceiver)?

    /// Reads are gated by the front end: a client that does not read stops us reading STDOUT.
    private var readingPaused = false
    private var pendingRead = false

    private var readTimeout: TimeAmount = .seconds(60)
    private var lastReadAt: NIODeadline = .now()
    private var readTimer: Scheduled<Void>?

    /// Called once when the channel closes (the pool forgets the connection).
    var onClose: ((FastCGIConnection) -> Void)?
    /// Which backend of its pool this connection goes to.
    public let backendIndex: Int
    /// How many requests this connection has carried (for logs and tests).
    public private(set) var requestCount = 0

    init(backendIndex: Int) {
        self.backendIndex = backendIndex
    }

    public var channel: (any Channel)? { context?.channel }
    public var isWritable: Bool { context?.channel.isWritable ?? false }
    /// True when a new request may start on this connection.
    public var isReusable: Bool { stateMachine.isIdle && (context?.channel.isActive ?? false) }

    // MARK: Driving a request

    /// Starts a request: `records` holds BEGIN_REQUEST and the whole PARAMS stream.
    public func start(
        requestID: UInt16,
        records: ByteBuffer,
        receiver: any FastCGIResponseReceiver,
        readTimeout: TimeAmount
    ) {
        stateMachine.start(requestID: requestID)
        self.receiver = receiver
        self.readTimeout = readTimeout
        requestCount += 1
        lastReadAt = .now()
        armReadTimer(in: readTimeout)
        context?.write(wrapOutboundOut(records), promise: nil)
    }

    /// Writes request-body bytes (already framed as STDIN records).
    public func write(_ records: ByteBuffer) {
        context?.write(wrapOutboundOut(records), promise: nil)
    }

    public func flush() {
        context?.flush()
    }

    /// Stop reading from the backend until ``resumeReading()``.
    public func pauseReading() {
        readingPaused = true
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        // The read timer counts only time we were willing to read.
        lastReadAt = .now()
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    /// Abandons the connection (client went away, or the exchange no longer wants it).
    public func close() {
        receiver = nil
        context?.close(promise: nil)
    }

    // MARK: ChannelHandler

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        lastReadAt = .now()
        switch stateMachine.received(record) {
        case .forwardStdout:
            receiver?.backendStdout(record.content)
        case .forwardStderr:
            receiver?.backendStderr(record.content)
        case .ignore:
            break
        case .discardLateStdout:
            receiver?.backendStderr(ByteBuffer(string: "fcgiproxy: dropped \(record.content.readableBytes) STDOUT bytes sent after the end of STDOUT"))
        case .requestEnded(let appStatus):
            readTimer?.cancel()
            readTimer = nil
            let receiver = self.receiver
            self.receiver = nil
            // The pause belonged to that request's client (END_REQUEST can arrive in the same
            // read burst that made it pause): an idle connection must keep reading to notice
            // the backend closing it.
            resumeReading()
            receiver?.backendEnded(appStatus: appStatus)
        case .failAndClose(let error):
            failAndClose(context: context, error)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.backendReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        receiver?.backendWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        readTimer = nil
        if let error = stateMachine.closed() {
            let receiver = self.receiver
            self.receiver = nil
            receiver?.backendFailed(error)
        }
        onClose?(self)
        onClose = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAndClose(context: context, stateMachine.decodingFailed(error).error)
    }

    public func read(context: ChannelHandlerContext) {
        if readingPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: Internals

    private func failAndClose(context: ChannelHandlerContext, _ error: BackendError?) {
        readTimer?.cancel()
        readTimer = nil
        let receiver = self.receiver
        self.receiver = nil
        if let error { receiver?.backendFailed(error) }
        context.close(promise: nil)
    }

    /// One timer per request, re-armed for the remaining time instead of rescheduled per record:
    /// records arrive far more often than the timer fires.
    private func armReadTimer(in delay: TimeAmount) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        readTimer = context.eventLoop.scheduleTask(in: delay) {
            loopBound.value.readTimerFired()
        }
    }

    private func readTimerFired() {
        readTimer = nil
        guard case .running = stateMachine.state, let context else { return }
        if readingPaused {
            armReadTimer(in: readTimeout)
            return
        }
        let deadline = lastReadAt + readTimeout
        let now = NIODeadline.now()
        if deadline > now {
            armReadTimer(in: deadline - now)
            return
        }
        if case .failAndClose(let error)? = stateMachine.readTimedOut() {
            failAndClose(context: context, error)
        }
    }
}

extension FastCGIConnectionStateMachine.RecordAction {
    fileprivate var error: BackendError? {
        if case .failAndClose(let error) = self { return error }
        return nil
    }
}

@available(*, unavailable)
extension FastCGIConnection: Sendable {}
