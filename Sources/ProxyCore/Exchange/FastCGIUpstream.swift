import FastCGI
import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1
import ProxyConfig

/// The FastCGI responder as the answer: leases a connection from the route's pool, sends
/// BEGIN_REQUEST, PARAMS and the body as STDIN, and turns STDOUT into the HTTP response, with
/// backpressure both ways. A client slower than the backend gets a spool
/// (`FastCGIUpstream+Spool`); a backend's X-Accel-Redirect or X-Sendfile hands the exchange on
/// (`FastCGIUpstream+FileRedirect`).
///
/// Lives on the exchange's event loop, which is also the loop of its backend connection.
final class FastCGIUpstream: Upstream, FastCGIResponseReceiver, FastCGIConnectionPool.Receiver {
    /// Strong: the pool's queue and the backend connection hold this upstream as their receiver
    /// and may call it after the exchange's front end has let go (a connection that fails or
    /// closes later); the exchange must outlive those calls. The exchange drops its upstream when
    /// it ends, which breaks the cycle.
    let exchange: Exchange
    let poolIndex: Int

    enum BodyMode {
        case none
        /// Streamed to STDIN as it comes (a multiplexed pool, or `request_buffering = off`).
        case contentLength(Int)
        /// Read whole before the backend is asked: a body of unknown length (PHP-FPM needs
        /// CONTENT_LENGTH up front), or any body for a pool that does not multiplex, so that a
        /// slow upload never holds a PHP-FPM worker.
        case buffered(SpillBuffer)
    }

    var bodyMode: BodyMode = .none
    /// Content-Length body parts that arrived before the backend connection was ready.
    var pendingBody: [ByteBuffer] = []
    var pendingBodyBytes = 0
    /// STDIN records were written since the client's last read burst and await its flush.
    var stdinUnflushed = false
    var stdinEnded = false

    /// What the PARAMS are made of, kept once the request is known. They are encoded into the
    /// loop's PARAMS buffer right away (a pair too large fails the request before any backend
    /// is asked) and framed when a connection (and so a request id) is known; encoded again if
    /// another request used the buffer meanwhile (a queued or retried request).
    private var paramsInput: (requestPath: RequestPath, script: ResolvedScript, contentLength: Int?)?
    /// The request path and script of a buffered body's request, until the body is complete.
    private var deferredParams: (RequestPath, ResolvedScript)?
    /// The loop's `paramsSerial` of this request's encoding.
    private var paramsSerial = 0
    /// Assigned by the connection (ids are per connection).
    var requestID: UInt16 = 0
    var connection: FastCGIConnection?
    /// Our place in the pool from lease to END_REQUEST (nil before and after).
    private var ticket: FastCGIConnectionPool.Ticket?
    /// The clock reading of a lease being asked for, for a connection granted at once.
    private var leaseTime: NIODeadline?
    /// The current backend attempt's response head, until it is complete.
    private var headParser = CGIResponseHeadParser()
    private var stderrLines = 0

    /// Response bytes held for a client that is not reading: memory, then a temporary file
    /// (`response_buffer`, `response_spill`). Always on a multiplexed connection, whose socket
    /// we must not pause; with `response_buffering` on a connection of its own. Drained when
    /// the client becomes writable again.
    var spool: SpillBuffer?
    /// The spool is at a limit and the backend's reads are paused until it drains.
    var spoolPausedBackend = false
    /// The spool's file writes fell behind and the backend's reads are paused until they
    /// catch up.
    var diskPausedBackend = false

    private let requestPath: RequestPath
    private let script: ResolvedScript

    var pool: FastCGIConnectionPool { exchange.generation.pools[poolIndex] }
    var poolConfig: PoolConfig { exchange.shared.pools[poolIndex].config }

    private static let maxStderrLinesPerRequest = 50

    init(exchange: Exchange, poolIndex: Int, requestPath: RequestPath, script: ResolvedScript) {
        self.exchange = exchange
        self.poolIndex = poolIndex
        self.requestPath = requestPath
        self.script = script
    }

    var heldBytes: Int { spool?.heldBytes ?? 0 }
    var backendAsked: Bool { exchange.upstreamStart != nil || ticket != nil || connection != nil }

    /// Chooses how the body travels, then asks the pool now or once a buffered body is whole.
    func start(now: NIODeadline) throws(HTTPError) {
        switch exchange.bodyFraming {
        case .none:
            bodyMode = .none
        case .contentLength(let length):
            // Nothing of the body has arrived yet (the head was just parsed).
            bodyMode =
                exchange.route?.config.requestBuffering == true && poolConfig.multiplex != .on
                ? .buffered(makeBodyBuffer()) : .contentLength(length)
        case .unknownLength:
            bodyMode = .buffered(makeBodyBuffer())
        }
        if case .none = bodyMode {} else { exchange.startBodyClock(now: now) }

        let contentLength: Int?
        switch bodyMode {
        case .none: contentLength = exchange.declaredEmptyBody ? 0 : nil
        case .contentLength(let length): contentLength = length
        case .buffered(let buffer):
            if !exchange.requestEnded {
                // The proxy will read the body: now is the time for 100 Continue.
                exchange.sendContinueIfWanted()
                deferredParams = (requestPath, script)
                _ = exchange.machine.backendChosen(bufferBody: true)
                return
            }
            contentLength = buffer.length
        }
        try prepareParams(contentLength: contentLength)
        exchange.sendContinueIfWanted()
        if exchange.machine.backendChosen(bufferBody: false) {
            connect(now: now)
        }
    }

    /// The buffered body is complete: the PARAMS can say its length, and the pool is asked.
    func bufferedBodyEnded(length: Int) {
        guard deferredParams != nil else { return }
        deferredParams = nil
        do {
            try prepareParams(contentLength: length)
            if exchange.machine.bodyBuffered() { connect() }
        } catch {
            exchange.fail(error)
        }
    }

    func abandon() {
        spool = nil
        if let ticket {
            self.ticket = nil
            pool.abandon(ticket)
        }
        guard let connection else { return }
        self.connection = nil
        // With the whole request sent, the backend may still be running it (PHP-FPM finishes an
        // aborted script): the connection keeps its place under max_conns until the backend
        // ends it, or the grace ends. Without the whole body, the backend notices the close.
        let grace = stdinEnded ? TimeAmount(poolConfig.abortGrace) : nil
        connection.abort(requestID: requestID, grace: grace)
    }

    // MARK: PARAMS

    private func prepareParams(contentLength: Int?) throws(HTTPError) {
        paramsInput = (requestPath, script, contentLength)
        try encodeParams(requestPath: requestPath, script: script, contentLength: contentLength)
    }

    /// Encodes the PARAMS into the loop's buffer. (The inputs are passed, not read back from
    /// `paramsInput`: a copy out of a stored property costs a retain and release per string.)
    private func encodeParams(requestPath: RequestPath, script: ResolvedScript, contentLength: Int?) throws(HTTPError) {
        guard let route = exchange.route else { return }
        let frontend = exchange.frontend
        let resources = frontend.resources
        let routeParams = route.config.params
        let connectionInfo = frontend.connectionInfo
        let serverSoftware = exchange.server.serverSoftware
        let head = exchange.head
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
        let resources = exchange.frontend.resources
        if resources.paramsSerial != paramsSerial, let input = paramsInput {
            // The same inputs as when they were first encoded, which succeeded.
            try? encodeParams(requestPath: input.requestPath, script: input.script, contentLength: input.contentLength)
        }
        // Typical PHP params fit; the writer reserves more when they do not.
        var buffer = resources.takeScratch(minimumCapacity: 1024)
        resources.paramsBuffer.writeRequestStart(
            requestID: requestID,
            flags: poolConfig.keepalive ? FastCGIConstants.keepConnectionFlag : 0,
            endingStdin: endingStdin,
            into: &buffer
        )
        resources.keepScratch(buffer)
        return buffer
    }

    // MARK: Backend connection

    private func connect(now: NIODeadline = .now()) {
        // The pool may answer more than once: it retries a replayable request elsewhere.
        leaseTime = now
        ticket = pool.lease(self, now: now)
        leaseTime = nil
    }

    func leaseGranted(_ connection: FastCGIConnection, ticket: FastCGIConnectionPool.Ticket) {
        // Set here, not only from `lease`'s return: a grant inside `lease` can fail at once (an
        // idle connection whose close is not processed yet breaks on our write), and a failure
        // without a ticket would be dropped and leave the client waiting.
        self.ticket = ticket
        connected(connection)
    }

    func leaseFailed(_ reason: FastCGIPoolStateMachine.FailureReason) {
        ticket = nil
        guard !exchange.machine.isDone else { return }
        exchange.shared.logger.error("backend request failed: \(reason)", metadata: exchange.logMetadata)
        // 503 (queue full or timed out, overloaded, shutting down) says when to come back.
        let status = reason.httpStatus
        exchange.fail(HTTPError(status, reason.description, retryAfter: status == 503 ? 1 : nil))
    }

    private func connected(_ connection: FastCGIConnection) {
        guard paramsInput != nil, exchange.machine.connected() else {
            // Nobody wants it any more: take the slot and give it straight back.
            let id = connection.startRequest(receiver: self, readTimeout: .seconds(1))
            connection.abort(requestID: id)
            return
        }
        self.connection = connection
        let now = leaseTime ?? NIODeadline.now()
        exchange.upstreamStarted(at: now, backend: connection.backendIndex)
        headParser = CGIResponseHeadParser()
        let readTimeout = TimeAmount(poolConfig.readTimeout)
        requestID = connection.startRequest(receiver: self, readTimeout: readTimeout, now: now)
        if case .none = bodyMode {
            connection.write(framedParams(requestID: requestID, endingStdin: true))
            connection.flush()
            stdinEnded = true
            return
        }
        connection.write(framedParams(requestID: requestID, endingStdin: false))
        sendBodyOnConnect(connection)
    }

    // MARK: FastCGIResponseReceiver

    func backendStdout(_ data: ByteBuffer) {
        exchange.machine.stdoutReceived()
        switch exchange.machine.state {
        case .sending:
            var data = data
            if headParser.needsFieldStorage {
                // Taken now, not at connect: the head is usually parsed and written in this
                // call, and the list is back (keepFieldList) before any other exchange asks.
                headParser.useFieldStorage(exchange.frontend.resources.takeFieldList())
            }
            do {
                switch try headParser.feed(&data) {
                case .needMoreData:
                    return
                case .head(let cgiHead, let body):
                    responseHeadReceived(cgiHead, body: body)
                }
            } catch {
                exchange.shared.logger.error("bad response head from backend: \(error.reason)", metadata: exchange.logMetadata)
                abandon()
                exchange.fail(HTTPError(502, error.reason))
            }
        case .streaming:
            writeResponseBody(data)
        default:
            return
        }
    }

    private func responseHeadReceived(_ cgiHead: CGIResponseHead, body: ByteBuffer) {
        if case .localRedirect(let location) = cgiHead.kind {
            exchange.redirect(to: location)
            return
        }
        if fileRedirect(cgiHead) { return }
        var cgiHead = cgiHead
        if let added = exchange.route?.config.headers, !added.isEmpty, cgiHead.status < 400 {
            // The route's `header` lines, after the backend's own (nginx's add_header).
            cgiHead.headers += added
        }
        let status = cgiHead.status
        guard case .send(let sendBody) = exchange.machine.responseHead(
            status: status, contentLength: cgiHead.contentLength, isHeadRequest: exchange.isHead)
        else { return }
        exchange.responseStatus = status
        var firstBody = body
        if sendBody {
            // Bytes beyond the backend's own Content-Length are cut, never passed on.
            let passed = exchange.machine.responseBody(firstBody.readableBytes)
            if passed < firstBody.readableBytes {
                firstBody = firstBody.getSlice(at: firstBody.readerIndex, length: passed)!
            }
        } else {
            firstBody.clear()
        }
        exchange.bytesSent += firstBody.readableBytes
        let frontend = exchange.frontend
        frontend.writeResponseHead(cgiHead, request: exchange.head, hasBody: sendBody, firstBody: firstBody)
        frontend.resources.keepFieldList(cgiHead.headers)
        if firstBody.readableBytes > 0 { applyClientBackpressure() }
    }

    private func writeResponseBody(_ data: ByteBuffer) {
        // Bytes beyond the backend's own Content-Length are cut, never passed on.
        let passed = exchange.machine.responseBody(data.readableBytes)
        guard passed > 0 else { return }
        var data = data
        if passed < data.readableBytes {
            data = data.getSlice(at: data.readerIndex, length: passed)!
        }
        if spool != nil {
            holdForSlowClient(data)
            return
        }
        exchange.bytesSent += data.readableBytes
        exchange.frontend.writeResponseBody(data)
        applyClientBackpressure()
    }

    func backendStderr(_ data: ByteBuffer) {
        stderrLines += 1
        let logger = exchange.shared.logger
        exchange.frontend.resources.metrics.recordStderrLine(pool: exchange.generation.recording.poolSlots[poolIndex])
        if stderrLines > Self.maxStderrLinesPerRequest {
            if stderrLines == Self.maxStderrLinesPerRequest + 1 {
                logger.warning("backend stderr: further messages of this request suppressed", metadata: exchange.logMetadata)
            }
            return
        }
        logger.warning("backend stderr: \(LogEscaping.escape(data, limit: 2048))", metadata: exchange.logMetadata)
    }

    func backendReadComplete() {
        exchange.frontend.flush()
    }

    func backendEnded(appStatus: UInt32) {
        // Called from the connection's read: its clock reading is a few records old at most.
        let now = connection?.readTime ?? .now()
        exchange.upstreamEnd = now
        exchange.frontend.resources.metrics.recordEndRequest(
            pool: exchange.generation.recording.poolSlots[poolIndex], protocolStatus: 0)
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
        guard !exchange.machine.isDone else { return }
        exchange.end(exchange.machine.backendEnded(spoolHolds: spool != nil), now: now)
    }

    func backendFailed(_ error: BackendError) {
        exchange.upstreamEnd = .now()
        if case .rejected(let protocolStatus) = error {
            exchange.frontend.resources.metrics.recordEndRequest(
                pool: exchange.generation.recording.poolSlots[poolIndex], protocolStatus: Int(protocolStatus))
        }
        let connection = self.connection
        self.connection = nil
        guard let ticket else { return }
        let logger = exchange.shared.logger
        if error == .readTimeout, connection?.isMultiplexed == true {
            // The connection aborted the request and keeps its id until END_REQUEST; the pool
            // learns the slot is free from the connection, not from us.
            self.ticket = nil
            pool.abandon(ticket)
            logger.error("backend failed: \(error)", metadata: exchange.logMetadata)
            exchange.fail(HTTPError(error.httpStatus, error.description))
            return
        }
        let hasBody: Bool
        if case .none = bodyMode { hasBody = false } else { hasBody = true }
        let replayable = exchange.machine.mayRetry(after: error, hasBody: hasBody, method: exchange.head.method)
        if !replayable, !exchange.machine.isDone {
            self.ticket = nil
        }
        // The pool decides: a retry calls `connected` again, a failure ends up in `fail`.
        pool.failed(ticket, error: error, replayable: replayable)
        guard !replayable, !exchange.machine.isDone else { return }
        logger.error(
            "backend failed\(exchange.machine.headWritten ? " mid-response" : ""): \(error)", metadata: exchange.logMetadata)
        // Before any head: the error's status; after one: a cut response.
        exchange.fail(HTTPError(error.httpStatus, error.description))
    }

    func backendWritabilityChanged(isWritable: Bool) {
        guard isWritable, let connection else { return }
        if case .buffered = bodyMode {
            pumpBufferedBody(to: connection)
        } else {
            exchange.resumeBody()
        }
    }

    // MARK: Client side

    func clientWritable() {
        if spool != nil {
            // The backend resumes when the spool is empty, if it had to pause.
            drainSpool()
        } else {
            connection?.resumeReading()
        }
    }
}

@available(*, unavailable)
extension FastCGIUpstream: Sendable {}
