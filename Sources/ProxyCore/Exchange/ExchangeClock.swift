import NIOCore

/// The progress rules of one exchange, as a state machine with explicit times and no I/O:
/// `body_timeout` (the longest pause in a request body), `min_body_rate` (bytes per second over
/// each `body_timeout` window) and `min_send_rate` (bytes the client takes per second over each
/// `send_timeout` window, while a response waits for it).
///
/// The exchange tells it what happened and when, keeps one timer for ``nextDeadline``, and asks
/// ``check(at:bodyReceived:taken:waiting:)`` when the timer fires.
struct ExchangeClock {
    struct Rules {
        var bodyTimeout: TimeAmount
        /// Bytes per second; 0: no rule.
        var minBodyRate: Int
        var sendWindow: TimeAmount
        var minSendRate: Int
    }

    /// What ``check(at:bodyReceived:taken:waiting:)`` found.
    enum Verdict: Equatable {
        /// Nothing is wrong; check again at `next` (nil: no clock is running).
        case keepGoing(next: NIODeadline?)
        /// No body byte for `body_timeout`.
        case bodyTimedOut
        /// `received` body bytes in a whole window of `seconds`.
        case bodyTooSlow(received: Int, seconds: Double)
        /// The client took `taken` bytes in a whole window of `seconds`.
        case clientTooSlow(taken: Int, seconds: Double)
    }

    var rules: Rules
    /// A request body is being received: its clocks run (unless paused).
    private var bodyRunning = false
    private var lastBodyAt = NIODeadline.uptimeNanoseconds(0)
    /// We stopped reading the body ourselves (the backend or the disk is slower): its clocks
    /// do not run.
    private(set) var bodyIsPaused = false
    /// The `min_body_rate` window under way: its start and the body bytes received then.
    private var bodyWindow = (start: NIODeadline.uptimeNanoseconds(0), received: 0)
    /// A send window is open: response bytes wait for the client. Its start and the bytes the
    /// client had taken then.
    private var sendWindow: (start: NIODeadline, taken: Int)?

    init(rules: Rules) {
        self.rules = rules
    }

    // MARK: Request body

    /// A body is expected from `now` on, `received` bytes of it already here, with this route's
    /// `body_timeout`. Returns the deadline to arm.
    mutating func bodyStarted(at now: NIODeadline, received: Int, bodyTimeout: TimeAmount) -> NIODeadline {
        rules.bodyTimeout = bodyTimeout
        bodyRunning = true
        lastBodyAt = now
        bodyWindow = (now, received)
        return now + bodyTimeout
    }

    mutating func bodyArrived(at now: NIODeadline) {
        lastBodyAt = now
    }

    mutating func bodyPaused() {
        bodyIsPaused = true
    }

    /// Reading resumed at `now`: a window that we paused says nothing of the client's rate, so
    /// a new one starts. Returns the deadline to arm, or nil when the body was not paused.
    mutating func bodyResumed(at now: NIODeadline, received: Int) -> NIODeadline? {
        guard bodyIsPaused else { return nil }
        bodyIsPaused = false
        lastBodyAt = now
        bodyWindow = (now, received)
        return now + rules.bodyTimeout
    }

    /// The body is complete (or no longer wanted): its clocks stop.
    mutating func bodyEnded() {
        bodyRunning = false
    }

    // MARK: Response

    /// The client stopped taking bytes at `now`, having taken `taken`: a send window opens if
    /// none is. Returns the deadline to arm, or nil when one was open already.
    mutating func clientFellBehind(at now: NIODeadline, taken: Int) -> NIODeadline? {
        guard sendWindow == nil else { return nil }
        sendWindow = (now, taken)
        return now + rules.sendWindow
    }

    // MARK: Checking

    /// Applies every running rule at `now`. `bodyReceived`: body bytes so far; `taken`: response
    /// bytes the client has taken off the socket or stream; `waiting`: response bytes are still
    /// unsent or spooled.
    mutating func check(at now: NIODeadline, bodyReceived: Int, taken: Int, waiting: Bool) -> Verdict {
        var next: NIODeadline?
        if bodyRunning {
            if bodyIsPaused {
                next = now + rules.bodyTimeout
            } else if now - lastBodyAt >= rules.bodyTimeout {
                return .bodyTimedOut
            } else {
                var windowEnd = bodyWindow.start + rules.bodyTimeout
                if rules.minBodyRate > 0, now >= windowEnd {
                    let seconds = Self.seconds(now - bodyWindow.start)
                    let received = bodyReceived - bodyWindow.received
                    if received < Int(Double(rules.minBodyRate) * seconds) {
                        return .bodyTooSlow(received: received, seconds: seconds)
                    }
                    bodyWindow = (now, bodyReceived)
                    windowEnd = now + rules.bodyTimeout
                }
                let pauseEnd = lastBodyAt + rules.bodyTimeout
                next = rules.minBodyRate > 0 ? min(pauseEnd, windowEnd) : pauseEnd
            }
        }
        if let window = sendWindow, now - window.start >= rules.sendWindow {
            if !waiting {
                // The client keeps up: no window until it falls behind again.
                sendWindow = nil
            } else {
                let seconds = Self.seconds(now - window.start)
                let required = max(1, Int(Double(rules.minSendRate) * seconds))
                if taken - window.taken < required {
                    return .clientTooSlow(taken: taken - window.taken, seconds: seconds)
                }
                sendWindow = (now, taken)
            }
        }
        if let window = sendWindow {
            let end = window.start + rules.sendWindow
            next = next.map { min($0, end) } ?? end
        }
        return .keepGoing(next: next)
    }

    private static func seconds(_ amount: TimeAmount) -> Double {
        Double(amount.nanoseconds) / 1e9
    }
}
