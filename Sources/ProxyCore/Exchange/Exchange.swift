import FastCGI
import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1
import ProxyConfig

/// One HTTP request and its FastCGI request: validates and routes the head, streams the body to
/// STDIN, turns STDOUT into the HTTP response, with backpressure both ways.
///
/// Lives on the client channel's event loop, which is also the loop of its backend connection.
final class Exchange: FastCGIResponseReceiver, FastCGIConnectionPool.Receiver {
    private unowned let frontend: any ExchangeFrontend
    /// Routes and pools as they were when the request started: a reload does not change them
    /// under a request in flight.
    private let generation: ProxyGeneration
    private var head: HTTPRequestHead
    private let isHead: Bool
    /// The client's wish (Connection, version), read from the head once.
    let keepAliveRequested: Bool
    /// A body follows whose length the head does not give (an HTTP/2 request without
    /// content-length): buffered whole, as a chunked HTTP/1 body.
    private let bodyWithoutLength: Bool

    private enum BodyMode {
        case none
        /// Streamed to STDIN as it comes (a multiplexed pool, or `request_buffering = off`).
        case contentLength(Int)
        /// Read whole before the backend is asked: a chunked body (PHP-FPM needs CONTENT_LENGTH
        /// up front), or any body for a pool that does not multiplex, so that a slow upload
        /// never holds a PHP-FPM worker.
        case buffered(SpillBuffer)
    }

    private var bodyMode: BodyMode = .none
    private var bodyReceived = 0
    private var requestEnded = false
    /// Content-Length body parts that arrived before the backend connection was ready.
    private var pendingBody: [ByteBuffer] = []
    private var pendingBodyBytes = 0
    private var wantsContinue = false

    private var route: Router.Route?
    private var poolIndex = 0
    /// What the PARAMS are made of, kept once routing succeeded. They are encoded into the
    /// loop's PARAMS buffer right away (a pair too large fails the request before any backend
    /// is asked) and framed when a connection (and so a request id) is known; encoded again if
    /// another request used the buffer meanwhile (a queued or retried request).
    private var paramsInput: (requestPath: RequestPath, script: ResolvedScript, contentLength: Int?)?
    /// The loop's `paramsSerial` of this request's encoding.
    private var paramsSerial = 0
    /// Assigned by the connection (ids are per connection).
    private var requestID: UInt16 = 0
    private var connection: FastCGIConnection?
    /// Response bytes held for a client that is not reading: memory, then a temporary file
    /// (`response_buffer`, `response_spill`). Always on a multiplexed connection, whose socket
    /// we must not pause; with `response_buffering` on a connection of its own. Drained when
    /// the client becomes writable again.
    private var spool: SpillBuffer?
    /// The spool is at a limit and the backend's reads are paused until it drains.
    private var spoolPausedBackend = false
    /// The spool's file writes fell behind and the backend's reads are paused until they
    /// catch up.
    private var diskPausedBackend = false
    /// Our place in the pool from lease to END_REQUEST (nil before and after).
    private var ticket: FastCGIConnectionPool.Ticket?
    private var stdinEnded = false

    /// Where the exchange is and what each event means there (no I/O).
    private var machine = ExchangeStateMachine()
    /// The current backend attempt's response head, until it is complete.
    private var headParser = CGIResponseHeadParser()
    /// Nothing more goes to the client: the response ended or the connection is gone.
    private var finished: Bool { machine.isDone }
    private var headWritten: Bool { machine.headWritten }
    /// The body of a static file being sent.
    private var fileBody: StaticFileBody?
    /// The request was routed again by a backend's X-Accel-Redirect: `internal` routes take it.
    private var isInternalRedirect = false
    /// Fields of a backend's response that its X-Accel-Redirect or X-Sendfile keeps for the
    /// file's response (nginx keeps the same ones).
    private var keptFields: [(name: String, value: String)] = []
    private var stderrLines = 0
    /// For the access log.
    private var responseStatus = 0
    private var bytesSent = 0
    /// For the access log and metrics: head received; backend lease to END_REQUEST.
    private let startTime = NIODeadline.now()
    private var upstreamStart: NIODeadline?
    private var upstreamEnd: NIODeadline?
    private var backendIndex: Int?

    private var shared: ProxyContext { generation.context }
    private var server: ServerConfig { generation.context.configuration.server }

    /// Pending request-body bytes that make us stop reading the client.
    private static let pendingBodyLimit = 256 * 1024
    private static let maxStderrLinesPerRequest = 50

    /// What `validateHead` needs to know of the fields, from one pass over them (names by length
    /// first, then an ASCII case-insensitive compare) instead of one search per name.
    private struct FramingFields {
        var transferEncodings = 0
        var contentLengths = 0
        var hosts = 0
        /// The first Expect value.
        var expect: String?
    }

    private static func framingFields(of headers: HTTPHeaders) -> FramingFields {
        var fields = FramingFields()
        for field in headers {
            switch field.name.utf8.count {
            case 4 where field.name.equalsLowercasedASCII("host"):
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
            bodyMode = .buffered(makeBodyBuffer())
        } else if !contentLengths.isEmpty {
            guard contentLengths.count == 1, let length = Int(contentLengths[0]), length >= 0,
                contentLengths[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else {
                throw HTTPError(400, "invalid Content-Length", closeConnection: true)
            }
            if length > server.maxBodySize {
                throw HTTPError(413, "body of \(length) bytes over max_body_size", closeConnection: true)
            }
            if length > 0 { bodyMode = .contentLength(length) }
        } else if bodyWithoutLength {
            bodyMode = .buffered(makeBodyBuffer())
        }
        if head.version.major == 1, head.version.minor >= 1 {
            if fields.hosts != 1 {
                throw HTTPError(400, "HTTP/1.1 request without exactly one Host", closeConnection: true)
            }
            if let expect = fields.expect {
                guard expect.lowercased() == "100-continue" else {
                    throw HTTPError(417, "unsupported expectation", closeConnection: true)
                }
                if case .none = bodyMode {} else { wantsContinue = true }
            }
        }
    }

    /// Routes the request and, when the body length is known, starts the backend request.
    private func dispatch(now: NIODeadline? = nil) throws(HTTPError) {
        let requestPath = try RequestPath(target: head.uri)
        let host = requestPath.absoluteFormHost ?? head.headers.first(name: "host")
        guard let matched = shared.router.match(path: requestPath.path, host: host) else {
            throw HTTPError(404, "no route for \(requestPath.path)")
        }
        // Set before the script check: its 404 counts under the route (metrics).
        self.route = matched
        if matched.config.internal, !isInternalRedirect {
            // As nginx's `internal`: clients do not learn that the route exists.
            throw HTTPError(404, "route \(matched.config.name) is internal")
        }
        if let status = matched.config.status {
            // A deny rule (or a fixed answer): no script is looked up, no backend asked.
            throw HTTPError(status, "route \(matched.config.name) answers \(status)")
        }
        let script: ResolvedScript
        switch try shared.targetResolver.resolve(path: requestPath.path, route: matched) {
        case .script(let resolved):
            script = resolved
        case .file(let path, _):
            try serveFile(path: path)
            return
        case .directoryRedirect(let location):
            let query = requestPath.query.isEmpty ? "" : "?" + requestPath.query
            throw HTTPError(
                301, "directory without trailing slash",
                fields: [HTTPError.Field("Location", Self.percentEncodedPath(location) + query)])
        }
        guard let poolIndex = matched.poolIndex else {
            throw HTTPError(500, "route \(matched.config.name) names unknown pool \(matched.config.pool)")
        }
        self.poolIndex = poolIndex
        if case .contentLength = bodyMode, matched.config.requestBuffering,
            shared.pools[poolIndex].config.multiplex != .on
        {
            // Nothing of the body has arrived yet (the head was just parsed).
            bodyMode = .buffered(makeBodyBuffer())
        }
        if case .none = bodyMode {} else if !requestEnded {
            let bodyTimeout = TimeAmount(matched.config.bodyTimeout ?? server.bodyTimeout)
            armTimer(at: clock.bodyStarted(at: now ?? .now(), received: bodyReceived, bodyTimeout: bodyTimeout))
        }

        let contentLength: Int?
        switch bodyMode {
        case .none: contentLength = nil
        case .contentLength(let length): contentLength = length
        case .buffered(let buffer):
            if !requestEnded {
                // The proxy will read the body: now is the time for 100 Continue.
                sendContinueIfWanted()
                deferredParams = (requestPath, script)
                _ = machine.backendChosen(bufferBody: true)
                return
            }
            contentLength = buffer.length
        }
        try prepareParams(requestPath: requestPath, script: script, contentLength: contentLength)
        sendContinueIfWanted()
        if machine.backendChosen(bufferBody: false) {
            connect(now: now ?? .now())
        }
    }

    private var deferredParams: (RequestPath, ResolvedScript)?

    private func makeBodyBuffer() -> SpillBuffer {
        let buffer = SpillBuffer(
            memoryLimit: server.bodyBufferSize, spillLimit: server.maxBodySize, budget: frontend.bufferBudget,
            tempDir: server.tempDir, allocator: frontend.allocator, io: frontend.resources.spillIO)
        buffer.onProgress = { [weak self] in self?.bodyBufferProgressed() }
        return buffer
    }

    /// A file write or read of the buffered body finished: the body may go on to the backend,
    /// or the client may send more.
    private func bodyBufferProgressed() {
        guard !finished, case .buffered(let buffer) = bodyMode else { return }
        if let connection, !stdinEnded {
            pumpBufferedBody(to: connection)
            return
        }
        do {
            try buffer.throwIfFailed()
        } catch {
            fail(error)
            return
        }
        if !requestEnded, clock.bodyIsPaused, !buffer.isBacklogged { resumeBody() }
    }

    private func sendContinueIfWanted() {
        guard wantsContinue, !requestEnded else { return }
        wantsContinue = false
        frontend.sendContinue()
    }

    private func prepareParams(requestPath: RequestPath, script: ResolvedScript, contentLength: Int?) throws(HTTPError) {
        guard route != nil else { return }
        paramsInput = (requestPath, script, contentLength)
        try encodeParams(requestPath: requestPath, script: script, contentLength: contentLength)
    }

    /// Encodes the PARAMS into the loop's buffer. (The inputs are passed, not read back from
    /// `paramsInput`: a copy out of a stored property costs a retain and release per string.)
    private func encodeParams(requestPath: RequestPath, script: ResolvedScript, contentLength: Int?) throws(HTTPError) {
        guard let route else { return }
        let resources = frontend.resources
        let routeParams = route.config.params
        let connectionInfo = frontend.connectionInfo
        let serverSoftware = server.serverSoftware
        resources.paramsBuffer.encode { encoder in
            CGIParameters.emit(
                head: head,
                requestPath: requestPath,
                script: script,
                routeParams: routeParams,
                contentLength: contentLength,
                connection: connectionInfo,
                serverSoftware: serverSoftware,
                into: &encoder
            )
        }
        resources.paramsSerial &+= 1
        paramsSerial = resources.paramsSerial
        // PHP-FPM parses each PARAMS record alone, so one pair must fit one record.
        if let oversized = resources.paramsBuffer.oversizedPair {
            throw HTTPError(431, "header \(oversized.name) does not fit one FastCGI record")
        }
    }

    /// BEGIN_REQUEST and the PARAMS stream for the id the connection gave us; with
    /// `endingStdin`, the empty STDIN of a request without body too.
    private func framedParams(requestID: UInt16, endingStdin: Bool) -> ByteBuffer {
        let keepConnection = shared.pools[poolIndex].config.keepalive
        let resources = frontend.resources
        if resources.paramsSerial != paramsSerial, let input = paramsInput {
            // The same inputs as when they were first encoded, which succeeded.
            try? encodeParams(requestPath: input.requestPath, script: input.script, contentLength: input.contentLength)
        }
        // Typical PHP params fit; the writer reserves more when they do not.
        var buffer = resources.takeScratch(minimumCapacity: 1024)
        resources.paramsBuffer.writeRequestStart(
            requestID: requestID,
            flags: keepConnection ? FastCGIConstants.keepConnectionFlag : 0,
            endingStdin: endingStdin,
            into: &buffer
        )
        resources.keepScratch(buffer)
        return buffer
    }

    func requestBody(_ body: ByteBuffer) {
        guard !finished else { return }
        bodyReceived += body.readableBytes
        clock.bodyArrived(at: .now())
        switch bodyMode {
        case .none:
            return
        case .buffered(let buffer):
            if bodyReceived > server.maxBodySize {
                fail(HTTPError(413, "request body over max_body_size", closeConnection: true))
                return
            }
            do {
                if case .full(let scope) = try buffer.append(body) {
                    // max_body_size is the request's own limit, checked above: this is the
                    // connection's or the server's allowance, which frees up as others finish.
                    refuse(HTTPError(
                        503, "no room to buffer the request body (\(scope) limit)", closeConnection: true, retryAfter: 1))
                } else if buffer.isBacklogged, !clock.bodyIsPaused {
                    // The disk is behind: the client waits, not our memory.
                    pauseBody()
                }
            } catch {
                fail(error)
            }
        case .contentLength:
            if let connection, !stdinEnded {
                writeStdin(body, to: connection)
                if !connection.isWritable { pauseBody() }
            } else if connection == nil, paramsInput != nil {
                pendingBody.append(body)
                pendingBodyBytes += body.readableBytes
                if pendingBodyBytes > Self.pendingBodyLimit { pauseBody() }
            }
        }
    }

    /// Turns the request down before any backend work where the protocol tells the client that a
    /// retry is safe (an HTTP/2 stream: REFUSED_STREAM, the connection's other streams go on);
    /// otherwise answers `error`.
    private func refuse(_ error: HTTPError) {
        let backendAsked = upstreamStart != nil || ticket != nil || connection != nil
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

    func requestEnd() {
        requestEnded = true
        clock.bodyEnded()
        guard !finished else { return }
        switch bodyMode {
        case .none:
            return
        case .contentLength:
            if let connection, !stdinEnded {
                endStdin(on: connection)
            }
        case .buffered(let buffer):
            guard let (requestPath, script) = deferredParams else { return }
            deferredParams = nil
            do {
                try prepareParams(requestPath: requestPath, script: script, contentLength: buffer.length)
                if machine.bodyBuffered() { connect() }
            } catch {
                fail(error)
            }
        }
    }

    func frontendReadComplete() {
        // Only body parts wait for this flush; every other write flushes itself. An empty flush
        // still walks the backend pipeline, once per request.
        guard stdinUnflushed else { return }
        stdinUnflushed = false
        connection?.flush()
    }

    /// STDIN records were written since the client's last read burst and await its flush.
    private var stdinUnflushed = false

    // MARK: Backend connection

    private var pool: FastCGIConnectionPool { generation.pools[poolIndex] }

    private func connect(now: NIODeadline = .now()) {
        // The pool may answer more than once: it retries a replayable request elsewhere.
        leaseTime = now
        ticket = pool.lease(self, now: now)
        leaseTime = nil
    }

    /// The clock reading of a lease being asked for, for a connection granted at once.
    private var leaseTime: NIODeadline?

    func leaseGranted(_ connection: FastCGIConnection, ticket: FastCGIConnectionPool.Ticket) {
        // Set here, not only from `lease`'s return: a grant inside `lease` can fail at once (an
        // idle connection whose close is not processed yet breaks on our write), and a failure
        // without a ticket would be dropped and leave the client waiting.
        self.ticket = ticket
        connected(connection)
    }

    func leaseFailed(_ reason: FastCGIPoolStateMachine.FailureReason) {
        ticket = nil
        guard !finished else { return }
        shared.logger.error("backend request failed: \(reason)", metadata: logMetadata)
        // 503 (queue full or timed out, overloaded, shutting down) says when to come back.
        let status = reason.httpStatus
        fail(HTTPError(status, reason.description, retryAfter: status == 503 ? 1 : nil))
    }

    private func connected(_ connection: FastCGIConnection) {
        guard paramsInput != nil, machine.connected() else {
            // Nobody wants it any more: take the slot and give it straight back.
            let id = connection.startRequest(receiver: self, readTimeout: .seconds(1))
            connection.abort(requestID: id)
            return
        }
        self.connection = connection
        let now = leaseTime ?? NIODeadline.now()
        if upstreamStart == nil { upstreamStart = now }
        backendIndex = connection.backendIndex
        headParser = CGIResponseHeadParser()
        let readTimeout = TimeAmount(shared.pools[poolIndex].config.readTimeout)
        requestID = connection.startRequest(receiver: self, readTimeout: readTimeout, now: now)
        if case .none = bodyMode {
            connection.write(framedParams(requestID: requestID, endingStdin: true))
            connection.flush()
            stdinEnded = true
            return
        }
        connection.write(framedParams(requestID: requestID, endingStdin: false))
        switch bodyMode {
        case .none:
            break
        case .contentLength:
            for part in pendingBody {
                writeStdin(part, to: connection)
            }
            pendingBody = []
            pendingBodyBytes = 0
            if requestEnded {
                endStdin(on: connection)
            } else {
                if frontend.readCompleteFollows {
                    // The body usually came in the same read as the head: the read's end sends
                    // the request start and what follows in one flush.
                    stdinUnflushed = true
                } else {
                    connection.flush()
                }
                if connection.isWritable { resumeBody() }
            }
        case .buffered:
            pumpBufferedBody(to: connection)
        }
    }

    private func writeStdin(_ body: ByteBuffer, to connection: FastCGIConnection) {
        if body.readableBytes <= Self.stdinCopyLimit {
            var framed = frontend.allocator.buffer(capacity: body.readableBytes + 16)
            framed.writeFastCGIStream(type: .stdin, requestID: requestID, content: body)
            connection.write(framed)
        } else {
            // Larger parts go out as they came, behind a record header of their own (no padding:
            // it is optional), one more iovec instead of a copy.
            var rest = body
            while rest.readableBytes > 0 {
                let content = rest.readSlice(length: min(rest.readableBytes, FastCGIConstants.maxAlignedContentLength))!
                var header = frontend.allocator.buffer(capacity: FastCGIConstants.headerLength)
                header.writeFastCGIRecordHeader(
                    type: .stdin, requestID: requestID, contentLength: content.readableBytes, paddingLength: 0)
                connection.write(header)
                connection.write(content)
            }
        }
        stdinUnflushed = true
    }

    /// Body parts up to this size are copied behind their record header (one buffer); larger ones
    /// are sent as slices of the read buffer.
    private static let stdinCopyLimit = 4096

    private func endStdin(on connection: FastCGIConnection) {
        var framed = frontend.allocator.buffer(capacity: 8)
        framed.writeFastCGIStreamEnd(type: .stdin, requestID: requestID)
        connection.write(framed)
        connection.flush()
        stdinEnded = true
    }

    /// Sends the buffered (chunked) body while the backend socket takes it.
    private func pumpBufferedBody(to connection: FastCGIConnection) {
        guard case .buffered(let buffer) = bodyMode, !stdinEnded else { return }
        do {
            while connection.isWritable {
                switch try buffer.next(maxLength: 64 * 1024) {
                case .chunk(let chunk):
                    writeStdin(chunk, to: connection)
                case .waiting:
                    // Read from the file off the loop; progress brings us back.
                    connection.flush()
                    return
                case .empty:
                    endStdin(on: connection)
                    return
                }
            }
            connection.flush()
        } catch {
            fail(error)
        }
    }

    // MARK: FastCGIResponseReceiver

    func backendStdout(_ data: ByteBuffer) {
        machine.stdoutReceived()
        switch machine.state {
        case .sending:
            var data = data
            if headParser.needsFieldStorage {
                // Taken now, not at connect: the head is usually parsed and written in this
                // call, and the list is back (keepFieldList) before any other exchange asks.
                headParser.useFieldStorage(frontend.resources.takeFieldList())
            }
            do {
                switch try headParser.feed(&data) {
                case .needMoreData:
                    return
                case .head(let cgiHead, let body):
                    responseHeadReceived(cgiHead, body: body)
                }
            } catch {
                shared.logger.error("bad response head from backend: \(error.reason)", metadata: logMetadata)
                abandonBackend()
                fail(HTTPError(502, error.reason))
            }
        case .streaming:
            writeResponseBody(data)
        default:
            return
        }
    }

    private func responseHeadReceived(_ cgiHead: CGIResponseHead, body: ByteBuffer) {
        if case .localRedirect(let location) = cgiHead.kind {
            keptFields = []
            redirect(to: location)
            return
        }
        if fileRedirect(cgiHead) { return }
        var cgiHead = cgiHead
        if let added = route?.config.headers, !added.isEmpty, cgiHead.status < 400 {
            // The route's `header` lines, after the backend's own (nginx's add_header).
            cgiHead.headers += added
        }
        let status = cgiHead.status
        guard case .send(let sendBody) = machine.responseHead(
            status: status, contentLength: cgiHead.contentLength, isHeadRequest: isHead)
        else { return }
        responseStatus = status
        var firstBody = body
        if sendBody {
            // Bytes beyond the backend's own Content-Length are cut, never passed on.
            let passed = machine.responseBody(firstBody.readableBytes)
            if passed < firstBody.readableBytes {
                firstBody = firstBody.getSlice(at: firstBody.readerIndex, length: passed)!
            }
        } else {
            firstBody.clear()
        }
        bytesSent += firstBody.readableBytes
        frontend.writeResponseHead(cgiHead, request: head, hasBody: sendBody, firstBody: firstBody)
        frontend.resources.keepFieldList(cgiHead.headers)
        if firstBody.readableBytes > 0 { applyClientBackpressure() }
    }

    private func writeResponseBody(_ data: ByteBuffer) {
        // Bytes beyond the backend's own Content-Length are cut, never passed on.
        let passed = machine.responseBody(data.readableBytes)
        guard passed > 0 else { return }
        var data = data
        if passed < data.readableBytes {
            data = data.getSlice(at: data.readerIndex, length: passed)!
        }
        if spool != nil {
            holdForSlowClient(data)
            return
        }
        bytesSent += data.readableBytes
        frontend.writeResponseBody(data)
        applyClientBackpressure()
    }

    /// The client stopped taking bytes: spool this request's output (a shared connection must
    /// not stall for one client; a connection of its own is released sooner), or, with
    /// `response_buffering = off` on a connection of its own, pause the backend.
    private func applyClientBackpressure() {
        guard !frontend.isWritable, let connection else { return }
        startSendWindow()
        guard spool == nil else { return }
        if !connection.isMultiplexed, route?.config.responseBuffering == false {
            connection.pauseReading()
            return
        }
        let poolConfig = shared.pools[poolIndex].config
        let spool = SpillBuffer(
            memoryLimit: poolConfig.responseBuffer, spillLimit: poolConfig.responseSpill, budget: frontend.bufferBudget,
            tempDir: server.tempDir, allocator: frontend.allocator, io: frontend.resources.spillIO)
        spool.onProgress = { [weak self] in self?.spoolProgressed() }
        self.spool = spool
    }

    /// A file write or read of the spool finished: the backend may go on, the client may get
    /// the bytes read back.
    private func spoolProgressed() {
        guard !finished, let spool else { return }
        do {
            try spool.throwIfFailed()
        } catch {
            shared.logger.error("\(error.reason); request aborted", metadata: logMetadata)
            abortResponse(reset: true)
            return
        }
        if diskPausedBackend, !spool.isBacklogged {
            diskPausedBackend = false
            if !spoolPausedBackend { connection?.resumeReading() }
        }
        drainSpool()
    }

    /// Spools output for a client that is not reading. At a limit (the request's
    /// `response_buffer` + `response_spill`, the connection's or the server's), a connection of
    /// its own pauses until the client drained the spool; a request on a shared connection,
    /// which cannot pause, is aborted.
    private func holdForSlowClient(_ data: ByteBuffer) {
        guard let spool else { return }
        do throws(HTTPError) {
            switch try spool.append(data, force: spoolPausedBackend || diskPausedBackend) {
            case .held:
                break
            case .full(let scope):
                guard let connection, !connection.isMultiplexed else {
                    throw HTTPError(502, "client too slow on a multiplexed connection: \(scope) spool limit reached")
                }
                // The bytes of the read under way still have to go somewhere.
                _ = try spool.append(data, force: true)
                spoolPausedBackend = true
                connection.pauseReading()
            }
            if let connection, connection.isMultiplexed {
                // temp_dir takes bytes slower than the backend sends them: they pile up in
                // memory, and a shared connection cannot wait for the disk. Only the loop's total
                // bounds them: one spool a few MiB behind a fast backend is normal (a 20 MB
                // response at loopback speed), a thousand of them is not.
                if spool.loopIsBacklogged {
                    throw HTTPError(502, "client too slow on a multiplexed connection and temp_dir writes behind")
                }
            } else if spool.isBacklogged, !diskPausedBackend {
                // A connection of its own waits for its own writes (so at most max_conns of these).
                diskPausedBackend = true
                connection?.pauseReading()
            }
        } catch {
            shared.logger.warning("\(error.reason); request aborted", metadata: logMetadata)
            abortResponse(reset: true)
        }
    }

    /// Writes spooled output while the client takes it; ends the response when the backend had
    /// already ended and the spool is empty.
    private func drainSpool() {
        guard let spool else { return }
        do {
            while frontend.isWritable {
                let chunk: ByteBuffer
                switch try spool.next(maxLength: 64 * 1024) {
                case .chunk(let next):
                    chunk = next
                case .waiting:
                    // Read from the file off the loop; progress brings us back.
                    frontend.flush()
                    return
                case .empty:
                    self.spool = nil
                    if spoolPausedBackend || diskPausedBackend {
                        spoolPausedBackend = false
                        diskPausedBackend = false
                        connection?.resumeReading()
                    }
                    frontend.flush()
                    end(machine.spoolDrained())
                    return
                }
                bytesSent += chunk.readableBytes
                frontend.writeResponseBody(chunk)
            }
            frontend.flush()
        } catch {
            shared.logger.error("\(error.reason)", metadata: logMetadata)
            self.spool = nil
            _ = machine.close()
            didEnd()
            logAccess()
            frontend.abort(self, reset: false)
        }
    }

    /// Carries out how the machine says the response ends. `now`: the clock reading of the
    /// backend's end, when the response ends with it.
    private func end(_ action: ExchangeStateMachine.EndAction, now: NIODeadline? = nil) {
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

    /// What ends with the exchange whichever way it ends: its timer and its file.
    private func didEnd() {
        cancelTimer()
        // Its descriptor closes once the writes under way no longer need it.
        fileBody?.close()
        fileBody = nil
    }

    func backendStderr(_ data: ByteBuffer) {
        stderrLines += 1
        frontend.resources.metrics.recordStderrLine(pool: generation.recording.poolSlots[poolIndex])
        if stderrLines > Self.maxStderrLinesPerRequest {
            if stderrLines == Self.maxStderrLinesPerRequest + 1 {
                shared.logger.warning("backend stderr: further messages of this request suppressed", metadata: logMetadata)
            }
            return
        }
        shared.logger.warning("backend stderr: \(LogEscaping.escape(data, limit: 2048))", metadata: logMetadata)
    }

    func backendReadComplete() {
        frontend.flush()
    }

    func backendEnded(appStatus: UInt32) {
        // Called from the connection's read: its clock reading is a few records old at most.
        upstreamEnd = connection?.readTime ?? .now()
        frontend.resources.metrics.recordEndRequest(pool: generation.recording.poolSlots[poolIndex], protocolStatus: 0)
        let connection = self.connection
        self.connection = nil
        // The connection tells the pool that the slot is free; we only say whether the
        // connection may carry another request.
        ticket = nil
        if let connection, !stdinEnded, !connection.isMultiplexed {
            // The backend answered before taking the whole body: STDIN records still in flight
            // would reach whatever request runs next on this connection. (On a shared connection
            // the backend drops STDIN for an ended id, and ids are not reused soon.)
            connection.retire()
        }
        guard !finished else { return }
        end(machine.backendEnded(spoolHolds: spool != nil), now: upstreamEnd)
    }

    func backendFailed(_ error: BackendError) {
        upstreamEnd = .now()
        if case .rejected(let protocolStatus) = error {
            frontend.resources.metrics.recordEndRequest(
                pool: generation.recording.poolSlots[poolIndex], protocolStatus: Int(protocolStatus))
        }
        let connection = self.connection
        self.connection = nil
        guard let ticket else { return }
        if error == .readTimeout, connection?.isMultiplexed == true {
            // The connection aborted the request and keeps its id until END_REQUEST; the pool
            // learns the slot is free from the connection, not from us.
            self.ticket = nil
            pool.abandon(ticket)
            shared.logger.error("backend failed: \(error)", metadata: logMetadata)
            fail(HTTPError(error.httpStatus, error.description))
            return
        }
        let hasBody: Bool
        if case .none = bodyMode { hasBody = false } else { hasBody = true }
        let replayable = machine.mayRetry(after: error, hasBody: hasBody, method: head.method)
        if !replayable, !finished {
            self.ticket = nil
        }
        // The pool decides: a retry calls `connected` again, a failure ends up in `fail`.
        pool.failed(ticket, error: error, replayable: replayable)
        guard !replayable, !finished else { return }
        shared.logger.error(
            "backend failed\(headWritten ? " mid-response" : ""): \(error)", metadata: logMetadata)
        // Before any head: the error's status; after one: a cut response.
        fail(HTTPError(error.httpStatus, error.description))
    }

    func backendWritabilityChanged(isWritable: Bool) {
        guard isWritable, let connection else { return }
        if case .buffered = bodyMode {
            pumpBufferedBody(to: connection)
        } else {
            resumeBody()
        }
    }

    // MARK: Front end events

    func frontendWritabilityChanged(isWritable: Bool) {
        guard isWritable else { return }
        if fileBody != nil {
            pumpFile()
        } else if spool != nil {
            // The backend resumes when the spool is empty, if it had to pause.
            drainSpool()
        } else {
            connection?.resumeReading()
        }
    }

    /// The client connection closed under us.
    func frontendClosed() {
        guard machine.close() else { return }
        didEnd()
        // nginx's 499: the client closed the connection before the response was complete.
        if responseStatus == 0 { responseStatus = 499 }
        logAccess()
        abandonBackend()
    }

    /// The client's byte stream broke (parser error) mid-request.
    func frontendFailed(_ error: HTTPError) {
        guard !finished else { return }
        // Both give up the backend request first.
        if headWritten {
            abortResponse(reset: false)
        } else {
            fail(error)
        }
    }

    // MARK: Ending

    private func redirect(to location: String, internal isInternal: Bool = false) {
        guard case .redirect = machine.redirected(to: location) else {
            abandonBackend()
            fail(HTTPError(500, "local redirect loop"))
            return
        }
        // The rest of this response is not wanted: abort it rather than drain it.
        abandonBackend()
        // nginx keeps HEAD through an X-Accel-Redirect: the file's response has no body then.
        head.method = isInternal && isHead ? .HEAD : .GET
        head.uri = location
        isInternalRedirect = isInternal
        head.headers.remove(name: "content-length")
        head.headers.remove(name: "content-type")
        head.headers.remove(name: "transfer-encoding")
        bodyMode = .none
        clock.bodyEnded()
        paramsInput = nil
        stdinEnded = false
        do {
            try dispatch()
        } catch {
            fail(error)
        }
    }

    /// Answers with an error the proxy decided, if no response has started; cuts the response
    /// if one has.
    private func fail(_ error: any Error) {
        let httpError = error as? HTTPError ?? HTTPError(500, "\(error)")
        let ending = machine.fail()
        guard ending != .none else { return }
        didEnd()
        abandonBackend()
        if ending == .cut {
            logAccess()
            frontend.abort(self, reset: false)
            return
        }
        let bodyPending: Bool
        if case .none = bodyMode { bodyPending = false } else { bodyPending = !requestEnded }
        if httpError.closeConnection || bodyPending {
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

    /// Gives up the backend request: ABORT_REQUEST on a shared connection, close otherwise; a
    /// request still queued leaves the queue.
    private func abandonBackend() {
        if let ticket {
            self.ticket = nil
            pool.abandon(ticket)
        }
        guard let connection else { return }
        self.connection = nil
        // With the whole request sent, the backend may still be running it (PHP-FPM finishes an
        // aborted script): the connection keeps its place under max_conns until the backend
        // ends it, or the grace ends. Without the whole body, the backend notices the close.
        let grace = stdinEnded ? TimeAmount(shared.pools[poolIndex].config.abortGrace) : nil
        connection.abort(requestID: requestID, grace: grace)
    }

    // MARK: Static files

    /// Sends the regular file at `path` (or its precompressed sibling) as the response: GET and
    /// HEAD only, conditionals and ranges answered here, the body from the file itself.
    /// `anyMethod`: the backend chose the file (X-Sendfile) for whatever the request was.
    private func serveFile(path: String, anyMethod: Bool = false) throws(HTTPError) {
        guard anyMethod || head.method == .GET || head.method == .HEAD else {
            throw HTTPError(
                405, "\(head.method) on a static file", fields: [HTTPError.Field("Allow", "GET, HEAD")])
        }
        let precompressed = route?.config.precompressed ?? false
        var coding: PrecompressedCoding?
        var opened: StaticFile?
        if precompressed {
            for candidate in PrecompressedCoding.accepted(acceptEncoding: head.headers.first(name: "accept-encoding")) {
                if let file = try StaticFile.opened(at: path + candidate.fileSuffix) {
                    opened = file
                    coding = candidate
                    break
                }
            }
        }
        if opened == nil { opened = try StaticFile.opened(at: path) }
        guard let file = opened else {
            throw HTTPError(404, "no file \(path)")
        }
        var contentType: String?
        var extraFields: [(name: String, value: String)] = []
        for field in keptFields {
            if field.name.utf8.count == 12, field.name.equalsLowercasedASCII("content-type") {
                contentType = field.value
            } else {
                extraFields.append(field)
            }
        }
        keptFields = []
        if let added = route?.config.headers { extraFields += added }
        let response = StaticFileResponse(
            request: head,
            file: StaticFileResponse.File(
                validators: FileValidators(size: file.size, modified: file.modified),
                contentType: contentType ?? shared.mediaTypes.contentType(forPath: path[...]),
                coding: coding, varyOnEncoding: precompressed),
            extraFields: extraFields, allocator: frontend.allocator,
            boundary: { [startTime] in MultipartByteRanges.makeBoundary(UInt64(startTime.uptimeNanoseconds)) })

        if case .none = bodyMode {} else if !requestEnded {
            // A body nobody reads would be parsed as the next request.
            frontend.closeAfterCurrentResponse()
        }
        machine.fileStarted()
        responseStatus = response.head.status
        let hasBody = !response.body.isEmpty
        frontend.writeResponseHead(response.head, request: head, hasBody: hasBody, firstBody: ByteBuffer())
        guard hasBody else {
            try? file.handle.close()
            end(machine.fileSent())
            return
        }
        fileBody = StaticFileBody(handle: file.handle, pieces: response.body)
        pumpFile()
    }

    /// Hands the file to the client while it takes it; ends the response with the last piece.
    private func pumpFile() {
        guard let body = fileBody, !finished else { return }
        do {
            let progress = try body.pump(to: frontend, eventLoop: frontend.resources.eventLoop)
            bytesSent += progress.bytes
            if progress.done {
                end(machine.fileSent())
                return
            }
            frontend.flush()
            // The flush can let the socket take the rest at once, and the writability change
            // that brings re-enters here and ends the exchange.
            guard !finished else { return }
            // The client does not take it as fast: the send clock (min_send_rate) runs.
            startSendWindow()
        } catch {
            shared.logger.error("\(error.reason); response cut", metadata: logMetadata)
            abortResponse(reset: false)
        }
    }

    /// X-Accel-Redirect (a path routed again, `internal` routes included) or X-Sendfile (a file
    /// under the pool's `x_sendfile`): the backend's body is dropped, the file is the response.
    /// False when the head asks for neither.
    private func fileRedirect(_ cgiHead: CGIResponseHead) -> Bool {
        var accel: String?
        var sendfile: String?
        for field in cgiHead.headers {
            switch field.name.utf8.count {
            case 16 where field.name.equalsLowercasedASCII("x-accel-redirect"): accel = field.value
            case 10 where field.name.equalsLowercasedASCII("x-sendfile"): sendfile = field.value
            default: break
            }
        }
        guard accel != nil || sendfile != nil else { return false }
        keptFields = cgiHead.headers.filter { Self.keptByFileRedirect.contains($0.name.lowercased()) }
        if let accel {
            guard accel.first == "/" else {
                abandonBackend()
                fail(HTTPError(502, "X-Accel-Redirect is not a path: \(accel)"))
                return true
            }
            redirect(to: accel, internal: true)
            return true
        }
        abandonBackend()
        let directory = shared.pools[poolIndex].config.xSendfile
        guard let sendfile, let directory, Self.isFile(sendfile, inside: directory) else {
            let reason =
                directory == nil
                ? "X-Sendfile from pool \(shared.pools[poolIndex].config.name) without x_sendfile"
                : "X-Sendfile outside x_sendfile: \(sendfile ?? "")"
            shared.logger.error("\(reason)", metadata: logMetadata)
            fail(HTTPError(500, reason))
            return true
        }
        do {
            try serveFile(path: sendfile, anyMethod: true)
        } catch {
            fail(error)
        }
        return true
    }

    /// The backend's fields an X-Accel-Redirect or X-Sendfile response keeps (nginx's list).
    private static let keptByFileRedirect: Set<String> = [
        "content-type", "content-disposition", "cache-control", "expires", "set-cookie",
    ]

    /// `path` is absolute, names something below `directory`, and has no `.`, `..` or empty
    /// segment that could lead out of it.
    static func isFile(_ path: String, inside directory: String) -> Bool {
        let prefix = directory == "/" ? "/" : directory + "/"
        guard path.hasPrefix(prefix), path.utf8.count > prefix.utf8.count, !path.utf8.contains(0) else {
            return false
        }
        for segment in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            if segment.isEmpty || segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                return false
            }
        }
        return true
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

    private func pauseBody() {
        clock.bodyPaused()
        frontend.pauseReading()
    }

    private func resumeBody() {
        if let deadline = clock.bodyResumed(at: .now(), received: bodyReceived) {
            armTimer(at: deadline)
        }
        frontend.resumeReading()
    }

    private func startSendWindow() {
        // Bytes the client has taken off the socket (or the HTTP/2 stream) so far.
        if let deadline = clock.clientFellBehind(at: .now(), taken: bytesSent - frontend.unsentResponseBytes) {
            armTimer(at: deadline)
        }
    }

    /// One timer for both clocks; it fires at the earlier one and is re-armed for the next.
    private func armTimer(at deadline: NIODeadline) {
        // An ended exchange has no clock: a timer armed now would hold it until it fired.
        guard !finished else { return }
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
        guard !finished else { return }
        let unsent = frontend.unsentResponseBytes
        let verdict = clock.check(
            at: .now(), bodyReceived: bodyReceived, taken: bytesSent - unsent,
            waiting: unsent > 0 || (spool?.heldBytes ?? 0) > 0)
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
        if headWritten {
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

    /// Ends a response that has started, without a clean end: the backend request is given up,
    /// the spool dropped, the client sees a truncated response (`reset`: a TCP reset).
    private func abortResponse(reset: Bool) {
        abandonBackend()
        _ = machine.close()
        didEnd()
        spool = nil
        logAccess()
        frontend.abort(self, reset: reset)
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
                pool: route?.poolIndex == nil ? nil : poolIndex,
                backend: backendIndex,
                start: startTime,
                upstreamStart: upstreamStart,
                upstreamEnd: upstreamEnd
            ),
            in: generation,
            now: now
        )
    }

    private var logMetadata: Logger.Metadata {
        [
            "pool": "\(shared.pools.indices.contains(poolIndex) ? shared.pools[poolIndex].config.name : "-")",
            "uri": "\(head.uri)",
            "peer": "\(frontend.connectionInfo.remoteAddress)",
        ]
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}
