import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1
import ProxyConfig

/// One HTTP request from validation to the end of its response: validates and routes the head,
/// has the route's ``Upstream`` answer it (the FastCGI responder, a file, a fixed status), keeps
/// the body and send clocks, and ends the exchange the one way its state machine says.
///
/// Lives on the client channel's event loop, which is also the loop of any backend connection.
final class Exchange {
    unowned let frontend: any ExchangeFrontend
    /// Routes and pools as they were when the request started: a reload does not change them
    /// under a request in flight.
    let generation: ProxyGeneration
    /// The request as the upstream sees it: a local redirect changes method and target.
    private(set) var head: HTTPRequestHead
    let isHead: Bool
    /// The client's wish (Connection, version), read from the head once.
    let keepAliveRequested: Bool
    /// A body follows whose length the head does not give (an HTTP/2 request without
    /// content-length).
    private let bodyWithoutLength: Bool

    /// How the request's body is delimited, as its head says.
    enum BodyFraming {
        case none
        case contentLength(Int)
        /// Chunked, or an HTTP/2 body without content-length: its length is known at its end.
        case unknownLength
    }

    /// The body the client sends; a redirected request's upstream gets none.
    private(set) var bodyFraming: BodyFraming = .none
    /// `Content-Length: 0`: no body to read, but the backend is told "0" (as nginx does, and as
    /// for an empty chunked body), not "" as for a request without any.
    private(set) var declaredEmptyBody = false
    private(set) var bodyReceived = 0
    private(set) var requestEnded = false
    private var wantsContinue = false

    private(set) var route: Router.Route?
    /// What answers the request; replaced by a redirect.
    private var upstream: (any Upstream)?
    /// The request was routed again by a backend's X-Accel-Redirect: `internal` routes take it.
    private var isInternalRedirect = false
    /// Fields of a backend's response that its X-Accel-Redirect or X-Sendfile keeps for the
    /// file's response (nginx keeps the same ones).
    private var keptFields: [(name: String, value: String)] = []

    /// Where the exchange is and what each event means there (no I/O).
    var machine = ExchangeStateMachine()
    /// For the access log.
    var responseStatus = 0
    var bytesSent = 0
    /// For the access log and metrics: head received; backend lease to END_REQUEST.
    let startTime = NIODeadline.now()
    private(set) var upstreamStart: NIODeadline?
    var upstreamEnd: NIODeadline?
    private var backendIndex: Int?
    /// The pool of the FastCGI upstream, once one was chosen.
    private var poolIndex: Int?

    var shared: ProxyContext { generation.context }
    var server: ServerConfig { generation.context.configuration.server }

    /// What `validateHead` needs to know of the fields, from one pass over them (names by length
    /// first, then an ASCII case-insensitive compare) instead of one search per name.
    private struct FramingFields {
        var transferEncodings = 0
        var contentLengths = 0
        var hosts = 0
        /// The first Host value.
        var host: String?
        /// The first Expect value.
        var expect: String?
    }

    private static func framingFields(of headers: HTTPHeaders) -> FramingFields {
        var fields = FramingFields()
        for field in headers {
            switch field.name.utf8.count {
            case 4 where field.name.equalsLowercasedASCII("host"):
                if fields.hosts == 0 { fields.host = field.value }
                fields.hosts += 1
            case 6 where fields.expect == nil && field.name.equalsLowercasedASCII("expect"):
                fields.expect = field.value
            case 14 where field.name.equalsLowercasedASCII("content-length"):
                fields.contentLengths += 1
            case 17 where field.name.equalsLowercasedASCII("transfer-encoding"):
                fields.transferEncodings += 1
            default:
                break
            }
        }
        return fields
    }

    init(head: HTTPRequestHead, frontend: any ExchangeFrontend, bodyWithoutLength: Bool = false) {
        self.head = head
        self.bodyWithoutLength = bodyWithoutLength
        self.frontend = frontend
        let generation = frontend.resources.current
        self.generation = generation
        self.clock = ExchangeClock(rules: generation.context.clockRules)
        self.isHead = head.method == .HEAD
        self.keepAliveRequested = head.isKeepAlive
    }

    // MARK: Request side

    func start() {
        do {
            try validateHead()
            // The head arrived microseconds ago: its clock reading serves the lease too.
            try dispatch(now: startTime)
        } catch {
            fail(error)
        }
    }

    /// Framing and limits, in the order a demanding server checks them.
    private func validateHead() throws(HTTPError) {
        if head.method == .CONNECT {
            throw HTTPError(405, "CONNECT is not supported", closeConnection: true)
        }
        if head.uri.utf8.count > server.maxURISize {
            throw HTTPError(414, "request-target longer than \(server.maxURISize) bytes", closeConnection: true)
        }
        let fields = Self.framingFields(of: head.headers)
        // Most requests have neither field: the value lists are built only when there is one.
        let transferEncodings = fields.transferEncodings > 0 ? head.headers[canonicalForm: "transfer-encoding"] : []
        let contentLengths = fields.contentLengths > 0 ? head.headers["content-length"] : []
        if !transferEncodings.isEmpty {
            if !contentLengths.isEmpty {
                throw HTTPError(400, "both Content-Length and Transfer-Encoding", closeConnection: true)
            }
            guard transferEncodings.count == 1, transferEncodings[0].lowercased() == "chunked" else {
                throw HTTPError(501, "unsupported Transfer-Encoding", closeConnection: true)
            }
            if head.version.minor == 0 {
                throw HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request", closeConnection: true)
            }
            bodyFraming = .unknownLength
        } else if !contentLengths.isEmpty {
            guard contentLengths.count == 1, let length = Int(contentLengths[0]), length >= 0,
                contentLengths[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else {
                throw HTTPError(400, "invalid Content-Length", closeConnection: true)
            }
            if length > server.maxBodySize {
                throw HTTPError(413, "body of \(length) bytes over max_body_size", closeConnection: true)
            }
            if length > 0 { bodyFraming = .contentLength(length) } else { declaredEmptyBody = true }
        } else if bodyWithoutLength {
            bodyFraming = .unknownLength
        }
        if let host = fields.host, !HostField.isValid(host) {
            throw HTTPError(400, "invalid Host", closeConnection: true)
        }
        if head.version.major == 1, head.version.minor >= 1 {
            if fields.hosts != 1 {
                throw HTTPError(400, "HTTP/1.1 request without exactly one Host", closeConnection: true)
            }
            if let expect = fields.expect {
                guard expect.lowercased() == "100-continue" else {
                    throw HTTPError(417, "unsupported expectation", closeConnection: true)
                }
                if case .none = bodyFraming {} else { wantsContinue = true }
            }
        }
    }

    /// Routes the request and starts the upstream its target calls for.
    private func dispatch(now: NIODeadline? = nil) throws(HTTPError) {
        let requestPath = try RequestPath(target: head.uri)
        let host = requestPath.absoluteFormHost ?? head.headers.first(name: "host")
        guard let matched = shared.router.match(path: requestPath.path, host: host) else {
            throw HTTPError(404, "no route for \(requestPath.path)")
        }
        // Set before the target is looked up: its 404 counts under the route (metrics).
        self.route = matched
        if matched.config.internal, !isInternalRedirect {
            // As nginx's `internal`: clients do not learn that the route exists.
            throw HTTPError(404, "route \(matched.config.name) is internal")
        }
        let upstream = try makeUpstream(for: requestPath, route: matched)
        self.upstream = upstream
        try upstream.start(now: now ?? .now())
    }

    /// The route's answer for the path: a fixed status (no file is looked up, no backend asked),
    /// a file, a directory's redirect, or the pool's script.
    private func makeUpstream(for requestPath: RequestPath, route: Router.Route) throws(HTTPError) -> any Upstream {
        if let status = route.config.status {
            return StatusUpstream(HTTPError(status, "route \(route.config.name) answers \(status)"))
        }
        switch try shared.targetResolver.resolve(path: requestPath.path, route: route) {
        case .file(let path, let info):
            return FileUpstream(exchange: self, path: path, info: info)
        case .directoryRedirect(let location):
            let query = requestPath.query.isEmpty ? "" : "?" + requestPath.query
            return StatusUpstream(HTTPError(
                301, "directory without trailing slash",
                fields: [HTTPError.Field("Location", Self.percentEncodedPath(location) + query)]))
        case .script(let script):
            guard let poolIndex = route.poolIndex else {
                throw HTTPError(500, "route \(route.config.name) names unknown pool \(route.config.pool)")
            }
            self.poolIndex = poolIndex
            return FastCGIUpstream(exchange: self, poolIndex: poolIndex, requestPath: requestPath, script: script)
        }
    }

    /// 100 Continue, once, when the client asked for it and the body is wanted now.
    func sendContinueIfWanted() {
        guard wantsContinue, !requestEnded else { return }
        wantsContinue = false
        frontend.sendContinue()
    }

    /// A body part from the client: counted, timed, and handed to the upstream.
    func requestBody(_ body: ByteBuffer) {
        guard !machine.isDone else { return }
        bodyReceived += body.readableBytes
        clock.bodyArrived(at: .now())
        if case .unknownLength = bodyFraming, bodyReceived > server.maxBodySize {
            // A length given up front was checked with the head.
            fail(HTTPError(413, "request body over max_body_size", closeConnection: true))
            return
        }
        upstream?.requestBody(body)
    }

    func requestEnd() {
        requestEnded = true
        clock.bodyEnded()
        guard !machine.isDone else { return }
        upstream?.requestEnd()
    }

    func frontendReadComplete() {
        upstream?.frontendReadComplete()
    }

    /// Part of the client's body has not arrived yet: if nobody reads it, the connection must
    /// close after the response, or the rest would be parsed as the next request.
    var requestBodyPending: Bool {
        if case .none = bodyFraming { return false }
        return !requestEnded
    }

    /// Turns the request down before any backend work where the protocol tells the client that a
    /// retry is safe (an HTTP/2 stream: REFUSED_STREAM, the connection's other streams go on);
    /// otherwise answers `error`.
    func refuse(_ error: HTTPError) {
        let backendAsked = upstream?.backendAsked ?? false
        guard machine.mayRefuse(protocolCanRefuse: frontend.canRefuseRequest, backendAsked: backendAsked) else {
            fail(error)
            return
        }
        _ = machine.close()
        didEnd()
        // The status the client would have got: the access log and metrics count it as such.
        responseStatus = error.status
        shared.logger.notice("refused \(head.method) \(head.uri): \(error.reason)", metadata: logMetadata)
        logAccess()
        frontend.refuseRequest(self)
    }

    /// A backend connection took the request (the first attempt's time and the latest backend
    /// count for the access log).
    func upstreamStarted(at now: NIODeadline, backend: Int) {
        if upstreamStart == nil { upstreamStart = now }
        backendIndex = backend
    }

    // MARK: Front end events

    func frontendWritabilityChanged(isWritable: Bool) {
        guard isWritable else { return }
        upstream?.clientWritable()
    }

    /// The client connection closed under us.
    func frontendClosed() {
        guard machine.close() else { return }
        didEnd()
        // nginx's 499: the client closed the connection before the response was complete.
        if responseStatus == 0 { responseStatus = 499 }
        logAccess()
    }

    /// The client's byte stream broke (parser error) mid-request.
    func frontendFailed(_ error: HTTPError) {
        guard !machine.isDone else { return }
        if machine.headWritten {
            abortResponse(reset: false)
        } else {
            fail(error)
        }
    }

    // MARK: Redirects

    /// Routes `location` again: a backend's local redirect (RFC 3875 §6.2.2, as a GET), or its
    /// X-Accel-Redirect (`internal`: `internal` routes take it, HEAD stays HEAD, `keeping` the
    /// backend's fields the file's response carries).
    func redirect(to location: String, internal isInternal: Bool = false, keeping kept: [(name: String, value: String)] = []) {
        guard case .redirect = machine.redirected(to: location) else {
            upstream?.abandon()
            fail(HTTPError(500, "local redirect loop"))
            return
        }
        // The rest of this response is not wanted: abort it rather than drain it.
        upstream?.abandon()
        upstream = nil
        keptFields = kept
        // nginx keeps HEAD through an X-Accel-Redirect: the file's response has no body then.
        head.method = isInternal && isHead ? .HEAD : .GET
        head.uri = location
        isInternalRedirect = isInternal
        head.headers.remove(name: "content-length")
        head.headers.remove(name: "content-type")
        head.headers.remove(name: "transfer-encoding")
        bodyFraming = .none
        declaredEmptyBody = false
        clock.bodyEnded()
        do {
            try dispatch()
        } catch {
            fail(error)
        }
    }

    /// A backend's X-Sendfile: the file at `path` answers the request, whatever its method,
    /// with the backend's fields `keeping`.
    func sendFile(at path: String, keeping kept: [(name: String, value: String)]) {
        upstream?.abandon()
        keptFields = kept
        let file = FileUpstream(exchange: self, path: path, anyMethod: true)
        upstream = file
        do {
            try file.start(now: .now())
        } catch {
            fail(error)
        }
    }

    /// The fields a redirecting backend kept for the file's response, handed over once.
    func takeKeptFields() -> [(name: String, value: String)] {
        defer { keptFields = [] }
        return keptFields
    }

    // MARK: Ending

    /// Carries out how the machine says the response ends. `now`: the clock reading of the
    /// backend's end, when the response ends with it.
    func end(_ action: ExchangeStateMachine.EndAction, now: NIODeadline? = nil) {
        switch action {
        case .finish:
            didEnd()
            logAccess(now: now)
            frontend.finish(self, keepAlive: keepAliveRequested, now: now)
        case .truncated(let missing):
            // Short body: the client must see a truncated response, not a clean end.
            didEnd()
            logAccess(now: now)
            shared.logger.error("backend response shorter than its Content-Length by \(missing) bytes", metadata: logMetadata)
            frontend.abort(self, reset: false)
        case .waitForSpool:
            // The backend is done (its slot is free again); the client still has to read.
            // Writes of this read burst are not flushed yet (the connection's read-complete
            // no longer reaches us): flushing lets the socket drain and the spool follow.
            frontend.flush()
        case .noHead:
            fail(HTTPError(502, "backend ended the request without a response head"))
        case .ignore:
            return
        }
    }

    /// What ends with the exchange whichever way it ends: its timer, and whatever its upstream
    /// still holds (a backend request, a file, a spool).
    private func didEnd() {
        cancelTimer()
        upstream?.abandon()
        upstream = nil
    }

    /// Answers with an error the proxy decided, if no response has started; cuts the response
    /// if one has.
    func fail(_ error: any Error) {
        let httpError = error as? HTTPError ?? HTTPError(500, "\(error)")
        let ending = machine.fail()
        guard ending != .none else { return }
        didEnd()
        if ending == .cut {
            logAccess()
            frontend.abort(self, reset: false)
            return
        }
        if httpError.closeConnection || requestBodyPending {
            // An unread body would be parsed as the next request: close instead of draining.
            frontend.closeAfterCurrentResponse()
        }
        if httpError.status >= 500 {
            shared.logger.notice("\(httpError.status) for \(head.method) \(head.uri): \(httpError.reason)", metadata: logMetadata)
        } else {
            shared.logger.debug("\(httpError.status) for \(head.method) \(head.uri): \(httpError.reason)", metadata: logMetadata)
        }
        bytesSent = frontend.writeSimpleResponse(httpError, version: head.version, keepAlive: keepAliveRequested, isHead: isHead)
        responseStatus = httpError.status
        logAccess()
        frontend.finish(self, keepAlive: keepAliveRequested, now: nil)
    }

    /// Ends a response that has started, without a clean end: the upstream's work is given up,
    /// the client sees a truncated response (`reset`: a TCP reset).
    func abortResponse(reset: Bool) {
        _ = machine.close()
        didEnd()
        logAccess()
        frontend.abort(self, reset: reset)
    }

    /// A decoded path as a `Location` value: bytes outside RFC 3986's unreserved set, `/` and
    /// sub-delimiters are percent-encoded.
    static func percentEncodedPath(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                out.append(byte)
            case _ where "-._~/!$&'()*+,;=:@".utf8.contains(byte):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Timer: body and send progress

    /// `body_timeout`, `min_body_rate` and `min_send_rate`: when each window started and
    /// what had moved by then.
    private var clock: ExchangeClock
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    var bodyIsPaused: Bool { clock.bodyIsPaused }

    /// Stops reading the client's body until ``resumeBody()``; the body clock pauses too.
    func pauseBody() {
        clock.bodyPaused()
        frontend.pauseReading()
    }

    func resumeBody() {
        if let deadline = clock.bodyResumed(at: .now(), received: bodyReceived) {
            armTimer(at: deadline)
        }
        frontend.resumeReading()
    }

    /// The client fell behind the response: the send clock (`min_send_rate`) runs from now.
    func startSendWindow() {
        // Bytes the client has taken off the socket (or the HTTP/2 stream) so far.
        if let deadline = clock.clientFellBehind(at: .now(), taken: bytesSent - frontend.unsentResponseBytes) {
            armTimer(at: deadline)
        }
    }

    /// The upstream will read the body: `body_timeout` (the route's, else the server's) runs.
    func startBodyClock(now: NIODeadline) {
        guard !requestEnded else { return }
        let bodyTimeout = TimeAmount(route?.config.bodyTimeout ?? server.bodyTimeout)
        armTimer(at: clock.bodyStarted(at: now, received: bodyReceived, bodyTimeout: bodyTimeout))
    }

    /// One timer for both clocks; it fires at the earlier one and is re-armed for the next.
    private func armTimer(at deadline: NIODeadline) {
        // An ended exchange has no clock: a timer armed now would hold it until it fired.
        guard !machine.isDone else { return }
        if let timerDeadline, timer != nil, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = frontend.resources.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            timerFired()
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    private func timerFired() {
        guard !machine.isDone else { return }
        let unsent = frontend.unsentResponseBytes
        let verdict = clock.check(
            at: .now(), bodyReceived: bodyReceived, taken: bytesSent - unsent,
            waiting: unsent > 0 || (upstream?.heldBytes ?? 0) > 0)
        switch verdict {
        case .keepGoing(let next):
            if let next { armTimer(at: next) }
        case .bodyTimedOut:
            bodyTimedOut()
        case .bodyTooSlow(let received, let seconds):
            bodyTooSlow(received: received, seconds: seconds)
        case .clientTooSlow(let taken, let seconds):
            clientTooSlow(taken: taken, seconds: seconds)
        }
    }

    private func bodyTimedOut() {
        shared.logger.info("request body timed out: nothing for \(clock.rules.bodyTimeout)", metadata: logMetadata)
        giveUpBody("request body timed out")
    }

    /// The body arrives slower than `min_body_rate` over a whole `body_timeout` window: a byte
    /// just before each timeout would otherwise hold the connection and the body's buffer for ever.
    private func bodyTooSlow(received: Int, seconds: Double) {
        shared.logger.info(
            "request body too slow: \(received) bytes in \(Int(seconds)) s; request ended", metadata: logMetadata)
        giveUpBody("request body too slow")
    }

    /// 408 before the response has begun; a response under way (the body was streaming to a
    /// backend that answered early) can only be cut.
    private func giveUpBody(_ reason: String) {
        if machine.headWritten {
            abortResponse(reset: false)
        } else {
            fail(HTTPError(408, reason, closeConnection: true))
        }
    }

    /// The client takes the response slower than `min_send_rate` (or not at all) for a whole
    /// `send_timeout` window: it would hold the response, its spool and perhaps a backend.
    private func clientTooSlow(taken: Int, seconds: Double) {
        shared.logger.info(
            "client too slow: took \(taken) bytes in \(Int(seconds)) s; response aborted", metadata: logMetadata)
        abortResponse(reset: true)
    }

    private func logAccess(now: NIODeadline? = nil) {
        let routeID = route.map { (line: $0.config.line, name: $0.config.name) }
        guard generation.accessLogBuffer != nil else {
            // Counters only: no record (a copy of the head and a dozen fields) to build.
            frontend.resources.countExchange(
                route: routeID, status: responseStatus, bodyBytesIn: bodyReceived,
                bodyBytesOut: bytesSent, start: startTime, in: generation, now: now ?? .now())
            return
        }
        frontend.resources.exchangeEnded(
            ExchangeRecord(
                remoteAddress: frontend.connectionInfo.remoteAddress,
                head: head,
                status: responseStatus,
                bodyBytesIn: bodyReceived,
                bodyBytesOut: bytesSent,
                route: routeID,
                pool: poolIndex,
                backend: backendIndex,
                start: startTime,
                upstreamStart: upstreamStart,
                upstreamEnd: upstreamEnd
            ),
            in: generation,
            now: now
        )
    }

    var logMetadata: Logger.Metadata {
        [
            "pool": "\(poolIndex.map { shared.pools[$0].config.name } ?? "-")",
            "uri": "\(head.uri)",
            "peer": "\(frontend.connectionInfo.remoteAddress)",
        ]
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}
