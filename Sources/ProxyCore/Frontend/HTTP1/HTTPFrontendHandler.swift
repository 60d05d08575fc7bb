#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1

/// The HTTP/1.1 side of one client connection.
///
/// It reads the socket's bytes itself, through ``HTTP1RequestParser`` (one handler instead of
/// NIO's decoder behind a `ByteToMessageHandler`). Each request becomes an ``Exchange``; this
/// handler routes events to it, keeps pipelined requests in order, answers parser errors, and
/// gates reads for backpressure.
///
/// Pipelining is handled here rather than by NIO's `HTTPServerPipelineHandler`: that one stops
/// reading the socket for the length of every response, which costs two `epoll_ctl` calls per
/// request even for clients that never pipeline. Here reads stop only when pipelined requests
/// pile up beyond a small bound.
final class HTTPFrontendHandler: ChannelDuplexHandler, RemovableChannelHandler, ExchangeFrontend {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    /// Responses are encoded here (`ByteBuffer+HTTP1Response.swift`), not by NIO's encoder.
    typealias OutboundOut = ByteBuffer

    let shared: ProxyContext
    let resources: LoopResources
    let timeouts: ConnectionTimeouts
    let connectionInfo: ConnectionInfo
    private(set) var context: ChannelHandlerContext?
    private var parser: HTTP1RequestParser
    /// Bytes of an incomplete message, kept for the next read.
    private var unparsed: ByteBuffer?
    /// The parser failed: the rest of the input is not looked at.
    private var inputFailed = false
    /// The exchange whose response is being produced: at most one, so responses stay in order.
    private var exchange: Exchange?
    /// True between a processed head and its `.end`: body parts then belong to `exchange` (or
    /// are dropped, when that exchange already answered).
    private var inRequestBody = false
    /// Set once the connection is known to end after the current response.
    private var closeAfterResponse = false

    /// Pipelined requests (and a parser error behind them) waiting for the current response.
    /// An array, not a CircularBuffer: that one allocates room for 16 on creation, for every
    /// connection, and most connections never pipeline. At most `maxQueuedEvents` entries, so
    /// removing from the front is cheap.
    private var queue: [QueuedEvent] = []
    private var queuedBytes = 0
    private var draining = false
    private static let maxQueuedBytes = 64 * 1024
    private static let maxQueuedEvents = 64

    private enum QueuedEvent {
        case part(HTTPServerRequestPart)
        case parserError(HTTPError)
    }

    /// The exchange asks us to stop reading (request body faster than the backend takes it).
    private var exchangePausedReading = false
    /// Too many pipelined requests are queued.
    private var queuePausedReading = false
    private var pendingRead = false
    private let sendTimer: ConnectionSendTimer

    /// The current response's body is sent in chunks (HTTP/1.1 without Content-Length).
    private var responseChunked = false
    /// A chunk was written whose closing CRLF has not been: it goes with the next size line.
    private var chunkOpen = false
    /// The channel's writability, as channelWritabilityChanged last reported it.
    private var channelIsWritable = false
    private var channelAllocator = ByteBufferAllocator()
    /// A body part this small is copied behind the head: one buffer, one iovec.
    private static let coalesceLimit = 4096

    init(shared: ProxyContext, resources: LoopResources, timeouts: ConnectionTimeouts, connectionInfo: ConnectionInfo) {
        self.shared = shared
        self.sendTimer = ConnectionSendTimer(timeout: TimeAmount(shared.configuration.server.sendTimeout))
        self.resources = resources
        self.timeouts = timeouts
        self.connectionInfo = connectionInfo
        let server = shared.configuration.server
        self.parser = HTTP1RequestParser(
            // The field-count limit stays the parser's default (1000, as NIO's decoder had): the
            // byte limit is what binds.
            limits: HTTP1RequestParser.Limits(maxHeadSize: server.maxHeaderSize))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Kept here rather than asked of the channel each time: every `context.channel` is a
        // protocol call and a retain/release pair, several per request.
        channelIsWritable = context.channel.isWritable
        channelAllocator = context.channel.allocator
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        channelIsWritable = false
        // An upgrade hands the connection on: its send clock is the next handler's.
        sendTimer.stop()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inputFailed else { return }
        readCompleteFollows = true
        timeouts.bytesArrived()
        defer { timeouts.readHandled() }
        var buffer = unwrapInboundIn(data)
        if var pending = unparsed {
            unparsed = nil
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        parse(&buffer)
        #if HTTP2
        if switchedToHTTP2 {
            // Bytes behind the upgrade request are the client's HTTP/2 preface and frames.
            if buffer.readableBytes > 0 { context.fireChannelRead(NIOAny(buffer)) }
            // Removable only here, with nothing in flight (`h2cUpgradeSettings` checked).
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        #endif
        if buffer.readableBytes > 0 && !inputFailed {
            // A partial message: usually a few bytes of a large read buffer, so keep a copy that
            // fits rather than the whole buffer (idle connections hold this).
            if buffer.readerIndex > 0 || buffer.capacity > 2 * buffer.readableBytes + 1024 {
                var copy = channelAllocator.buffer(capacity: buffer.readableBytes)
                copy.writeBuffer(&buffer)
                unparsed = copy
            } else {
                unparsed = buffer
            }
        }
    }

    /// Feeds parser events to the exchanges until the parser needs more bytes, or until the
    /// queue of pipelined requests is full: the rest stays bytes (far smaller than parsed
    /// requests) until a response makes room (`parseUnparsed`).
    private func parse(_ buffer: inout ByteBuffer) {
        while !queuePausedReading {
            #if HTTP2
            if switchedToHTTP2 { return }
            #endif
            let event: HTTP1RequestParser.Event?
            do {
                event = try parser.next(&buffer)
            } catch {
                inputFailed = true
                parserFailed(error)
                return
            }
            switch event {
            case .head(let head): received(.head(head))
            case .body(let body): received(.body(body))
            case .end: received(.end(nil))
            case nil: return
            }
        }
    }

    private func received(_ part: HTTPServerRequestPart) {
        if queue.isEmpty {
            if case .head = part, exchange != nil {
                enqueue(.part(part))
            } else {
                process(part)
            }
        } else {
            enqueue(.part(part))
        }
    }

    private func process(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            inRequestBody = true
            timeouts.requestHeadReceived()
            #if HTTP2
            if let settings = h2cUpgradeSettings(head) {
                // Switched at `.end`: the decoder still has to deliver it.
                pendingUpgrade = (head, settings)
                return
            }
            #endif
            let exchange = Exchange(head: head, frontend: self)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end:
            inRequestBody = false
            #if HTTP2
            if let upgrade = pendingUpgrade {
                pendingUpgrade = nil
                switchToHTTP2(upgrade)
                return
            }
            #endif
            exchange?.requestEnd()
        }
    }

    #if HTTP2
    private var pendingUpgrade: (head: HTTPRequestHead, settings: [UInt8])?
    /// The HTTP/2 handler is in place behind this one, which leaves once the read is parsed.
    private var switchedToHTTP2 = false

    /// The decoded HTTP2-Settings of a request that may switch to h2c (RFC 7540 §3.2): HTTP/1.1
    /// on a cleartext connection with `http2` and `h2c_upgrade` on, `Upgrade: h2c`, `Connection: upgrade`, exactly
    /// one valid HTTP2-Settings, no body (a body would have to be read over HTTP/1.1 first), and
    /// nothing else in flight on the connection. Otherwise nil: served over HTTP/1.1, as RFC 9113
    /// allows.
    private func h2cUpgradeSettings(_ head: HTTPRequestHead) -> [UInt8]? {
        guard shared.configuration.server.http2, shared.configuration.server.h2cUpgrade, !connectionInfo.isTLS, head.version == .http1_1,
            exchange == nil, queue.isEmpty, !closeAfterResponse,
            head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "h2c" }),
            head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }),
            head.headers["transfer-encoding"].isEmpty,
            head.headers["content-length"].allSatisfy({ $0 == "0" })
        else { return nil }
        let values = head.headers["http2-settings"]
        guard values.count == 1 else { return nil }
        return Self.base64URLDecode(values[0])
    }

    /// 101, then the pipeline becomes HTTP/2's: the request becomes stream 1 and is answered there.
    private func switchToHTTP2(_ upgrade: (head: HTTPRequestHead, settings: [UInt8])) {
        guard let context else { return }
        var response = channelAllocator.buffer(capacity: 80)
        response.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        context.write(wrapOutboundOut(response), promise: nil)
        let sync = context.pipeline.syncOperations
        do {
            let http2 = HTTP2FrontendHandler(
                shared: shared, resources: resources, timeouts: timeouts, connectionInfo: connectionInfo, upgrade: upgrade)
            try sync.addHandler(http2, position: .after(self))
            switchedToHTTP2 = true
        } catch {
            shared.logger.error("h2c upgrade failed: \(error)")
            context.close(promise: nil)
        }
    }

    /// RFC 4648 §5 base64url, padding optional; nil when malformed.
    static func base64URLDecode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }
    #endif

    private func enqueue(_ event: QueuedEvent) {
        if case .part(.body(let body)) = event {
            queuedBytes += body.readableBytes
        }
        queue.append(event)
        if queuedBytes > Self.maxQueuedBytes || queue.count > Self.maxQueuedEvents {
            queuePausedReading = true
        }
    }

    /// Runs queued requests after a response ended, until one of them is still responding.
    private func drainQueue() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while let event = queue.first {
            if case .part(.head) = event, exchange != nil { break }
            if case .parserError = event, exchange != nil { break }
            queue.removeFirst()
            switch event {
            case .part(let part):
                if case .body(let body) = part { queuedBytes -= body.readableBytes }
                process(part)
            case .parserError(let error):
                respondToParserError(error)
            }
            if closeAfterResponse {
                queue.removeAll()
                queuedBytes = 0
            }
        }
        if queuedBytes <= Self.maxQueuedBytes / 2, queue.count <= Self.maxQueuedEvents / 2 {
            queuePausedReading = false
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readCompleteFollows = false
        exchange?.frontendReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        channelIsWritable = writable
        sendTimer.writabilityChanged(isWritable: writable, channel: context.channel)
        exchange?.frontendWritabilityChanged(isWritable: writable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeouts.stop()
        sendTimer.stop()
        let exchange = self.exchange
        self.exchange = nil
        exchange?.frontendClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiesce(context: context)
    }

    /// Graceful stop: an idle connection closes now, a busy one after its current response
    /// (``Exchange`` sees ``willClose`` and answers with `Connection: close`); pipelined requests
    /// behind it are not started.
    private func quiesce(context: ChannelHandlerContext) {
        let wasClosing = closeAfterResponse
        closeAfterResponse = true
        guard exchange == nil, queue.isEmpty, !wasClosing else { return }
        // Idle, but the last response may still sit in the channel's outbound buffer (a slow
        // reader): an empty write behind it completes after it, then close.
        closeAfterFlush(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        shared.logger.debug("client connection error: \(error)")
        context.close(promise: nil)
    }

    private func parserFailed(_ parserError: HTTPError) {
        shared.logger.debug("bad request: \(parserError)", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
        if queue.isEmpty && (inRequestBody || exchange == nil) {
            respondToParserError(parserError)
        } else {
            // The broken bytes belong to a request behind the current response: answer in order.
            enqueue(.parserError(parserError))
        }
    }

    /// A parser error means the byte stream can no longer be framed: answer and close.
    private func respondToParserError(_ httpError: HTTPError) {
        guard let context else { return }
        if exchange == nil && closeAfterResponse {
            // The last response already said `Connection: close`; its close is under way.
            return
        }
        closeAfterResponse = true
        if let exchange {
            // Mid-body of the current request (a bad chunk): that request fails.
            exchange.frontendFailed(httpError)
        } else {
            let bytes = writeSimpleResponse(httpError, version: .http1_1, keepAlive: false, isHead: false)
            responseChunked = false
            // No head was parsed: log what nginx logs for such lines, a placeholder request.
            resources.requestRejected(remoteAddress: connectionInfo.remoteAddress, status: httpError.status, bytesSent: bytes)
            closeAfterFlush(context)
        }
    }

    /// Flushes what is written, then closes (a write of nothing completes after the others).
    private func closeAfterFlush(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(channelAllocator.buffer(capacity: 0))).whenComplete {
            [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if exchangePausedReading || queuePausedReading {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: ExchangeFrontend

    var isWritable: Bool { channelIsWritable }

    var allocator: ByteBufferAllocator { channelAllocator }

    func pauseReading() {
        exchangePausedReading = true
    }

    func resumeReading() {
        exchangePausedReading = false
        readIfPending()
    }

    /// Bytes kept while the queue was full, parsed once it has room again.
    private func parseUnparsed() {
        guard !queuePausedReading, !inputFailed, var pending = unparsed else { return }
        unparsed = nil
        parse(&pending)
        // A response that ended during the parse may have parsed (and so emptied) `unparsed`.
        if pending.readableBytes > 0, !inputFailed, unparsed == nil {
            unparsed = pending
        }
    }

    private func readIfPending() {
        guard pendingRead, !exchangePausedReading, !queuePausedReading, let context else { return }
        pendingRead = false
        context.read()
    }

    func sendContinue() {
        guard let context else { return }
        var buffer = channelAllocator.buffer(capacity: 25)
        buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func writeResponseHead(_ head: CGIResponseHead, request: HTTPRequestHead, hasBody: Bool, firstBody: ByteBuffer) {
        guard let context else { return }
        let isHTTP10 = request.version.major == 1 && request.version.minor == 0
        // The exchange read it from the head already (NIO's isKeepAlive scans the fields each time).
        var keepAlive = (exchange?.keepAliveRequested ?? request.isKeepAlive) && !closeAfterResponse
        if hasBody && head.contentLength == nil && isHTTP10 {
            // No chunked encoding in HTTP/1.0: the end of the body is the end of the connection.
            keepAlive = false
        }
        if !keepAlive { closeAfterResponse = true }
        let connectionField: HTTP1ConnectionField = !keepAlive ? .close : (isHTTP10 ? .keepAlive : .none)
        responseChunked = hasBody && head.contentLength == nil && !isHTTP10
        chunkOpen = false
        let origin = OriginFields(for: head, resources: resources, serverSoftware: shared.configuration.server.serverSoftware)
        let coalesce = firstBody.readableBytes <= Self.coalesceLimit
        var buffer = resources.takeScratch(minimumCapacity: 512 + (coalesce ? firstBody.readableBytes + 16 : 0))
        buffer.writeHTTP1ResponseHead(
            isHTTP10: isHTTP10,
            status: head.status,
            reason: head.reason,
            fields: head.headers,
            // RFC 9110 §8.6: no Content-Length in a 204.
            omitContentLength: head.status == 204,
            date: origin.date,
            server: origin.server,
            connection: connectionField,
            chunked: responseChunked
        )
        let bodyFollows = hasBody && firstBody.readableBytes > 0
        if bodyFollows && coalesce {
            appendBody(firstBody, to: &buffer)
        }
        resources.keepScratch(buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
        if bodyFollows && !coalesce {
            writeResponseBody(firstBody)
        }
    }

    func writeResponseBody(_ data: ByteBuffer) {
        guard let context, data.readableBytes > 0 else { return }
        if responseChunked {
            var header = channelAllocator.buffer(capacity: 24)
            header.writeHTTP1ChunkHeader(length: data.readableBytes, closingPrevious: chunkOpen)
            chunkOpen = true
            context.write(wrapOutboundOut(header), promise: nil)
        }
        context.write(wrapOutboundOut(data), promise: nil)
    }

    /// A body of known length only (static files): no chunk framing around the region.
    var canSendFileRegion: Bool { !connectionInfo.isTLS && !responseChunked }

    func writeResponseFile(_ region: FileRegion, promise: EventLoopPromise<Void>) {
        guard let context else {
            promise.fail(ChannelError.ioOnClosedChannel)
            return
        }
        // Below this handler there is only the socket (a TLS handler would take ByteBuffers
        // only, hence canSendFileRegion).
        context.write(NIOAny(IOData.fileRegion(region)), promise: promise)
    }

    /// `data` framed as the response needs, copied into `buffer`.
    private func appendBody(_ data: ByteBuffer, to buffer: inout ByteBuffer) {
        if responseChunked {
            buffer.writeHTTP1ChunkHeader(length: data.readableBytes, closingPrevious: chunkOpen)
            chunkOpen = true
        }
        buffer.writeImmutableBuffer(data)
    }

    func flush() {
        context?.flush()
    }

    /// Ends the exchange's response. Must be the exchange's last call.
    func finish(_ exchange: Exchange, keepAlive: Bool, now: NIODeadline?) {
        guard self.exchange === exchange, let context else { return }
        self.exchange = nil
        exchangePausedReading = false
        if responseChunked {
            var end = channelAllocator.buffer(capacity: 8)
            end.writeHTTP1ChunkedEnd(closingPrevious: chunkOpen)
            context.write(wrapOutboundOut(end), promise: nil)
            responseChunked = false
            chunkOpen = false
        }
        if keepAlive && !closeAfterResponse {
            // Before the queue runs: a queued head puts the clock back to "busy".
            timeouts.exchangeFinished(now: now)
            drainQueue()
            parseUnparsed()
            context.flush()
            readIfPending()
        } else {
            closeAfterResponse = true
            queue.removeAll()
            queuedBytes = 0
            closeAfterFlush(context)
        }
    }

    /// A close without a response is no refusal an HTTP/1 client can tell from a failure: the
    /// exchange answers 503 with Retry-After instead.
    var canRefuseRequest: Bool { false }

    /// Never asked for (``canRefuseRequest`` is false); should it be, the connection closes.
    func refuseRequest(_ exchange: Exchange) {
        abort(exchange, reset: false)
    }

    /// Tears the connection down without a clean end (the client must see a truncated response).
    func abort(_ exchange: Exchange, reset: Bool) {
        guard self.exchange === exchange, let context else { return }
        self.exchange = nil
        closeAfterResponse = true
        queue.removeAll()
        queuedBytes = 0
        if reset {
            ConnectionSendTimer.resetOnClose(context.channel)
        } else {
            context.flush()
        }
        context.close(promise: nil)
    }

    /// Head and body of a small response for an error the proxy itself decided; the caller ends it.
    /// Returns the body bytes written (for the access log).
    @discardableResult
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, keepAlive: Bool, isHead: Bool) -> Int {
        guard let context else { return 0 }
        let page = ErrorPage(error, allocator: channelAllocator)
        let origin = OriginFields(resources: resources, serverSoftware: shared.configuration.server.serverSoftware)
        var body = page.body
        if error.closeConnection || !keepAlive {
            closeAfterResponse = true
        }
        let isHTTP10 = version.major == 1 && version.minor == 0
        responseChunked = false
        chunkOpen = false
        var buffer = channelAllocator.buffer(capacity: 256 + body.readableBytes)
        buffer.writeHTTP1ResponseHead(
            isHTTP10: isHTTP10,
            status: error.status,
            reason: nil,
            fields: page.fields,
            date: origin.date,
            server: origin.server,
            connection: closeAfterResponse ? .close : (isHTTP10 ? .keepAlive : .none),
            chunked: false
        )
        if isHead {
            context.write(wrapOutboundOut(buffer), promise: nil)
            return 0
        }
        let length = body.readableBytes
        buffer.writeBuffer(&body)
        context.write(wrapOutboundOut(buffer), promise: nil)
        return length
    }

    /// Marks that the connection must close after the current response (set before its head).
    func closeAfterCurrentResponse() {
        closeAfterResponse = true
    }

    var willClose: Bool { closeAfterResponse }

    private(set) var readCompleteFollows = false

    /// Made when a request first holds bytes: most connections never do.
    private var connectionBudget: BufferBudget?

    var bufferBudget: BufferBudget { resources.connectionBudget(cached: &connectionBudget) }

    /// What the channel still buffers (asked only when a send window ends, not per write).
    var unsentResponseBytes: Int {
        guard let channel = context?.channel else { return 0 }
        return (try? channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }
}

@available(*, unavailable)
extension HTTPFrontendHandler: Sendable {}
