import FastCGIClient
import NIOHTTP1

/// The life of one exchange, without I/O: where the request is (routing, reading its body,
/// waiting for a backend, sending, streaming the response, spooling, a file, done) and what
/// each event means there. The `Exchange` owns the sockets, buffers and timers and does what
/// the answers say; every decision about retries, local redirects, truncated responses,
/// refusals and how a failure reaches the client is made here and unit-tested without a loop.
struct ExchangeStateMachine {
    enum State: Equatable {
        /// The head is valid; the target is being resolved (again after a local redirect).
        case routing
        /// A buffered body is read whole before any backend is asked.
        case awaitingBody
        /// The pool has the request (queued or connecting).
        case leasing
        /// The request is on a backend connection; no response head yet.
        case sending
        /// The response head went out and the backend's body follows. `remaining`: bytes its
        /// Content-Length still announces (nil: it gave none); `sendBody`: false for HEAD, 204, 304.
        case streaming(remaining: Int?, sendBody: Bool)
        /// The backend ended while the spool still held bytes for the client: the response
        /// ends when the spool is empty, cut if the backend sent `missing` bytes too few.
        case drainingSpool(missing: Int)
        /// A static file's body is going out.
        case sendingFile
        /// Nothing more goes to the client: the response ended, was cut, or the client left.
        case done
    }

    private(set) var state: State = .routing
    /// Local redirects and X-Accel-Redirects so far.
    private(set) var redirects = 0
    /// The current backend attempt sent STDOUT: the script ran, a retry is no longer safe.
    private(set) var receivedStdout = false

    /// Longest redirect chain (RFC 3875 §6.2.2 re-dispatch, X-Accel-Redirect), nginx's 10.
    static let maxRedirects = 10
    /// Methods never sent twice, even when the backend closed without a byte: the script may
    /// have acted before it died.
    static let nonIdempotent: [HTTPMethod] = [.POST, .PATCH, .LOCK]

    var isDone: Bool { state == .done }

    /// A response head has gone to the client (its status can no longer change).
    var headWritten: Bool {
        switch state {
        case .streaming, .drainingSpool, .sendingFile: return true
        default: return false
        }
    }

    // MARK: Request side

    /// The target is a backend: its body is read first (`bufferBody`, and it has not all
    /// arrived) or the pool is asked now. True when the caller leases now.
    mutating func backendChosen(bufferBody: Bool) -> Bool {
        guard state == .routing else { return false }
        state = bufferBody ? .awaitingBody : .leasing
        return !bufferBody
    }

    /// The buffered body is complete: true when the caller leases now.
    mutating func bodyBuffered() -> Bool {
        guard state == .awaitingBody else { return false }
        state = .leasing
        return true
    }

    /// A connection was granted: a new attempt begins (also a retry on another connection).
    /// False when nobody wants it any more.
    mutating func connected() -> Bool {
        switch state {
        case .leasing, .sending:
            state = .sending
            receivedStdout = false
            return true
        default:
            return false
        }
    }

    /// The target is a static file whose head goes out now.
    mutating func fileStarted() {
        state = .sendingFile
    }

    /// Whether the request may be turned down as never seen (HTTP/2 REFUSED_STREAM) instead of
    /// answered: only when the protocol can say so and no backend was asked yet, so that the
    /// client's retry is safe.
    func mayRefuse(protocolCanRefuse: Bool, backendAsked: Bool) -> Bool {
        protocolCanRefuse && !backendAsked && !isDone && !headWritten
    }

    // MARK: Response side

    /// What a backend's response head asks for.
    enum HeadAction: Equatable {
        /// Route `location` again (a local redirect or X-Accel-Redirect).
        case redirect(String)
        /// The chain is longer than ``maxRedirects``: answer 500.
        case redirectLoop
        /// Send the head; `sendBody` false when the response has none.
        case send(sendBody: Bool)
        /// The exchange had ended.
        case ignore
    }

    /// A response head to send (not a redirect: see ``redirected(to:)``).
    mutating func responseHead(status: Int, contentLength: Int?, isHeadRequest: Bool) -> HeadAction {
        guard state == .sending else { return .ignore }
        let sendBody = !isHeadRequest && status != 204 && status != 304 && !(100..<200).contains(status)
        state = .streaming(remaining: sendBody ? contentLength : 0, sendBody: sendBody)
        return .send(sendBody: sendBody)
    }

    /// The backend's head asks to route `location` again (a local redirect, X-Accel-Redirect):
    /// another round of routing, within the limit.
    mutating func redirected(to location: String) -> HeadAction {
        guard state == .sending else { return .ignore }
        redirects += 1
        guard redirects <= Self.maxRedirects else { return .redirectLoop }
        state = .routing
        return .redirect(location)
    }

    /// How many of `count` backend body bytes go to the client: none without a body, none
    /// beyond the backend's own Content-Length.
    mutating func responseBody(_ count: Int) -> Int {
        guard case .streaming(let remaining, let sendBody) = state, sendBody else { return 0 }
        guard let remaining else { return count }
        let passed = min(count, remaining)
        state = .streaming(remaining: remaining - passed, sendBody: true)
        return passed
    }

    /// How the response ends.
    enum EndAction: Equatable {
        /// A clean end.
        case finish
        /// The backend sent fewer bytes than it announced: the client must see a cut response.
        case truncated(missing: Int)
        /// The spool still holds bytes: end when it is empty (``spoolDrained()``).
        case waitForSpool
        /// END_REQUEST before any response head: 502.
        case noHead
        case ignore
    }

    /// END_REQUEST arrived. `spoolHolds`: bytes still wait in the spool for the client.
    mutating func backendEnded(spoolHolds: Bool) -> EndAction {
        switch state {
        case .sending:
            return .noHead
        case .streaming(let remaining, _):
            let missing = remaining ?? 0
            if spoolHolds {
                state = .drainingSpool(missing: missing)
                return .waitForSpool
            }
            state = .done
            return missing > 0 ? .truncated(missing: missing) : .finish
        default:
            return .ignore
        }
    }

    /// The spool is empty: the end that waited for it, if any.
    mutating func spoolDrained() -> EndAction {
        guard case .drainingSpool(let missing) = state else { return .ignore }
        state = .done
        return missing > 0 ? .truncated(missing: missing) : .finish
    }

    /// The file's last piece went out.
    mutating func fileSent() -> EndAction {
        guard state == .sendingFile else { return .ignore }
        state = .done
        return .finish
    }

    // MARK: Failures

    /// Whether a backend failure leaves the request replayable on another connection: nothing of
    /// the response reached the client and the whole request can be sent again (it has no body;
    /// a buffered one would have to be replayed too, which the pool does not do).
    ///
    /// - closed early / stale record: the backend never answered (a keep-alive connection it had
    ///   just closed), and never for non-idempotent methods, whose script may have died half-way;
    /// - rejected (OVERLOADED, CANT_MPX_CONN): the backend says it did not take the request;
    /// - never after a read timeout or a garbled answer: the script got the request and may have
    ///   acted on it.
    func mayRetry(after error: BackendError, hasBody: Bool, method: HTTPMethod) -> Bool {
        guard !hasBody, state == .sending || state == .leasing, !receivedStdout else { return false }
        switch error {
        case .closedEarly, .staleRecord:
            return !Self.nonIdempotent.contains(method)
        case .rejected:
            return true
        default:
            return false
        }
    }

    /// STDOUT arrived on the current attempt.
    mutating func stdoutReceived() {
        receivedStdout = true
    }

    /// How an exchange that cannot go on shows it to the client.
    enum Ending: Equatable {
        /// No head went out: the proxy's own error page.
        case errorPage
        /// A head went out: the response is cut (the client sees it was not completed).
        case cut
        /// It had already ended.
        case none
    }

    /// Ends the exchange for a failure; what the client gets depends on whether a head went out.
    mutating func fail() -> Ending {
        if isDone { return .none }
        let ending: Ending = headWritten ? .cut : .errorPage
        state = .done
        return ending
    }

    /// Ends the exchange without a response to send: the client left, or the request was
    /// refused. False when it had ended already.
    mutating func close() -> Bool {
        if isDone { return false }
        state = .done
        return true
    }
}
