import NIOCore

/// Enforces `header_timeout` and `keepalive_timeout` on a client connection.
///
/// It sits before the HTTP decoder so it sees raw bytes: the first byte of a new request
/// switches the idle (keep-alive) clock to the head clock, which a slow-loris head cannot
/// stretch. While a request is being served no clock runs here (backend timeouts apply).
final class ConnectionTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        case waitingForRequest
        case readingHead
        case busy
    }

    private let headerTimeout: TimeAmount
    private let keepaliveTimeout: TimeAmount
    private var state: State = .readingHead
    /// When the connection is due to close, if it stays as it is (nil while busy).
    private var deadline: NIODeadline?
    /// The one armed timer and when it fires. Lazy: state changes only move `deadline`; a timer
    /// that fires early re-arms for it. Scheduling and cancelling a timer for every request
    /// would cost an allocation and two heap operations each time.
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?
    private var context: ChannelHandlerContext?

    init(headerTimeout: TimeAmount, keepaliveTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.keepaliveTimeout = keepaliveTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The first request's head is on the clock from accept (as nginx's client_header_timeout).
        arm(headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .waitingForRequest = state else {
            context.fireChannelRead(data)
            return
        }
        state = .readingHead
        context.fireChannelRead(data)
        // Usually the whole head came with these bytes and the exchange owns the clock already:
        // the head clock (and its clock reading) is needed only when it did not.
        if case .readingHead = state {
            arm(headerTimeout)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    /// A whole request head arrived: the exchange owns the clock now.
    func requestHeadReceived() {
        state = .busy
        deadline = nil
    }

    /// The response is complete and the connection stays open. `now`: a clock reading taken
    /// just before, if the caller has one.
    func exchangeFinished(now: NIODeadline? = nil) {
        state = .waitingForRequest
        arm(keepaliveTimeout, now: now)
    }

    /// The loop's clock (virtual on an EmbeddedEventLoop, so the handler tests can drive it).
    private var now: NIODeadline { context?.eventLoop.now ?? .now() }

    private func arm(_ delay: TimeAmount, now: NIODeadline? = nil) {
        let due = (now ?? self.now) + delay
        deadline = due
        if let firesAt = timerFiresAt, timer != nil, firesAt <= due { return }
        schedule(at: due)
    }

    private func schedule(at due: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timerFiresAt = due
        timer = context.eventLoop.scheduleTask(deadline: due) {
            loopBound.value.fired()
        }
    }

    private func fired() {
        timer = nil
        timerFiresAt = nil
        guard let deadline, state != .busy else { return }
        if deadline > now {
            schedule(at: deadline)
            return
        }
        // Neither an idle keep-alive connection nor a half-sent head gets a response:
        // closing is the cheapest answer and what nginx does.
        context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension ConnectionTimeoutHandler: Sendable {}
