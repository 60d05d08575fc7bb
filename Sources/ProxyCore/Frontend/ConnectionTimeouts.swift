import NIOCore

/// Enforces `header_timeout` and `keepalive_timeout` on a client connection.
///
/// Not a channel handler of its own: the front-end handler that reads the connection's bytes
/// (HTTP/1 or HTTP/2) reports them, which saves a pipeline hop on every read. The first bytes
/// of a new request switch the idle (keep-alive) clock to the head clock, which a slow-loris
/// head cannot stretch. While a request is being served no clock runs here (backend timeouts
/// apply).
final class ConnectionTimeouts: NIOScheduledCallbackHandler {
    private enum State {
        case waitingForRequest
        case readingHead
        case busy
    }

    private let headerTimeout: TimeAmount
    private let keepaliveTimeout: TimeAmount
    private var state: State = .readingHead
    /// Bytes of a new request came in this read; the head clock starts at its end unless the
    /// head was complete by then (the usual case: no clock reading, no timer change).
    private var headClockPending = false
    /// When the connection is due to close, if it stays as it is (nil while busy).
    private var deadline: NIODeadline?
    /// The one armed timer and when it fires. Lazy: state changes only move `deadline`; a timer
    /// that fires early re-arms for it. Scheduling and cancelling a timer for every request
    /// would cost two heap operations each time. A scheduled callback rather than a task: a
    /// task's promise, future and closures were ~150 bytes of every idle connection.
    private var timer: NIOScheduledCallback?
    private var timerFiresAt: NIODeadline?
    private var eventLoop: (any EventLoop)?
    /// Dropped when the channel closes.
    private var channel: (any Channel)?

    init(headerTimeout: TimeAmount, keepaliveTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.keepaliveTimeout = keepaliveTimeout
    }

    /// The first request's head is on the clock from accept (as nginx's client_header_timeout).
    func start(on channel: any Channel) {
        self.channel = channel
        eventLoop = channel.eventLoop
        arm(headerTimeout)
    }

    /// The connection is gone: no timer, and through it this clock and the channel, outlives
    /// it. Called by whichever handler holds the connection when it closes (a front end, or the
    /// HTTP/2 preface detector before one was chosen): one `closeFuture` callback per
    /// connection would cost ~160 bytes of every idle keep-alive connection.
    func stop() {
        timer?.cancel()
        timer = nil
        eventLoop = nil
        channel = nil
    }

    /// Bytes arrived; call before handing them on.
    func bytesArrived() {
        guard case .waitingForRequest = state else { return }
        state = .readingHead
        headClockPending = true
    }

    /// The bytes of this read were handed on.
    func readHandled() {
        guard headClockPending else { return }
        headClockPending = false
        if case .readingHead = state {
            arm(headerTimeout)
        }
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
    private var now: NIODeadline { eventLoop?.now ?? .now() }

    private func arm(_ delay: TimeAmount, now: NIODeadline? = nil) {
        let due = (now ?? self.now) + delay
        deadline = due
        if let firesAt = timerFiresAt, timer != nil, firesAt <= due { return }
        schedule(at: due)
    }

    private func schedule(at due: NIODeadline) {
        timer?.cancel()
        timer = nil
        guard let eventLoop else { return }
        timerFiresAt = due
        // Throws only when the loop is shutting down, which closes the connection anyway.
        timer = try? eventLoop.assumeIsolated().scheduleCallback(at: due, handler: self)
    }

    /// The timer fired: close the connection if its deadline has passed, else wait for it.
    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        timerFiresAt = nil
        guard let deadline, state != .busy else { return }
        if deadline > now {
            schedule(at: deadline)
            return
        }
        // Neither an idle keep-alive connection nor a half-sent head gets a response:
        // closing is the cheapest answer and what nginx does.
        channel?.close(promise: nil)
    }
}

@available(*, unavailable)
extension ConnectionTimeouts: Sendable {}
