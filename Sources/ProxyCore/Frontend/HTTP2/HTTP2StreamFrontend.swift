#if HTTP2
import NIOCore
import NIOHTTP1
import ProxyHTTP2

/// One HTTP/2 stream as the client side of an ``Exchange``.
///
/// Backpressure is flow control: the stream's receive window opens (`consume`) only for body
/// bytes the exchange passed on while it was reading, and the stream counts as writable while
/// its queued response bytes are at or below the session's low watermark (the exchange pauses
/// the backend beyond it; `responseDrained` resumes it).
final class HTTP2StreamFrontend: ExchangeFrontend {
    unowned let connection: HTTP2FrontendHandler
    let streamID: Int32
    /// Set from ``HTTP2FrontendHandler`` right after init; nil once the exchange ended.
    var exchange: Exchange?
    private(set) var requestEnded = false
    /// The exchange's work is over (finished, aborted, or the stream went away first).
    private(set) var exchangeEnded = false
    private var readingPaused = false
    /// Body bytes passed on while reading was paused: the window opens for them on resume.
    private var unconsumed = 0
    /// Answered before the request body was read (closeAfterCurrentResponse).
    private var stopBodyAfterResponse = false

    init(connection: HTTP2FrontendHandler, streamID: Int32) {
        self.connection = connection
        self.streamID = streamID
    }

    private var session: HTTP2ServerSession { connection.session }

    // MARK: Events from the session

    func receiveBody(_ body: ByteBuffer) {
        let count = body.readableBytes
        if let exchange, !exchangeEnded {
            exchange.requestBody(body)
        }
        if readingPaused && !exchangeEnded {
            unconsumed += count
        } else {
            session.consume(streamID: streamID, count: count)
        }
    }

    func receiveEnd() {
        requestEnded = true
        if !exchangeEnded { exchange?.requestEnd() }
    }

    /// RST_STREAM from the client, or the stream closed before the exchange ended.
    func clientWentAway() {
        guard !exchangeEnded, let exchange else { return }
        exchange.frontendClosed()
        endExchange(clientReset: true)
    }

    private func endExchange(clientReset: Bool = false) {
        guard !exchangeEnded else { return }
        exchangeEnded = true
        exchange = nil
        session.releaseStream(streamID)
        if unconsumed > 0 {
            session.consume(streamID: streamID, count: unconsumed)
            unconsumed = 0
        }
        connection.exchangeEnded(clientReset: clientReset)
    }

    // MARK: ExchangeFrontend

    var shared: ProxyContext { connection.shared }
    var resources: LoopResources { connection.resources }
    var connectionInfo: ConnectionInfo { connection.connectionInfo }
    var allocator: ByteBufferAllocator { connection.allocator }

    /// Also false while the streams of the connection together hold more than
    /// `connection_buffer` in the session: a hundred streams whose windows stay shut would
    /// otherwise hold a low watermark and a record each (~25 MB a connection).
    var isWritable: Bool {
        guard session.pendingResponseBytes(streamID: streamID) <= session.configuration.responseLowWatermark else {
            return false
        }
        return connection.sessionHasRoom()
    }

    var bufferBudget: BufferBudget { connection.bufferBudget }

    /// What the session still holds for this stream (flow control or a full socket).
    var unsentResponseBytes: Int { session.pendingResponseBytes(streamID: streamID) }

    /// Streams end on their own; the connection goes on (a graceful stop is GOAWAY's business).
    var willClose: Bool { false }
    /// Only streams whose body moved in a read get its end (`bodyTouched`): never wait for it.
    var readCompleteFollows: Bool { false }

    func pauseReading() {
        readingPaused = true
    }

    func resumeReading() {
        readingPaused = false
        if unconsumed > 0 {
            session.consume(streamID: streamID, count: unconsumed)
            unconsumed = 0
            connection.flushOutput()
        }
    }

    /// Never asked for: `Expect: 100-continue` is only honoured for HTTP/1.1 (the exchange checks
    /// it there), and an HTTP/2 client sends its body without waiting anyway.
    func sendContinue() {}

    func writeResponseHead(_ head: CGIResponseHead, request: HTTPRequestHead, hasBody: Bool, firstBody: ByteBuffer) {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(head.headers.count + 2)
        let origin = OriginFields(for: head, resources: resources, serverSoftware: shared.configuration.server.serverSoftware)
        for field in head.headers {
            // RFC 9110 §8.6: no Content-Length in a 204.
            if head.status == 204, field.name.utf8.count == 14, field.name.lowercased() == "content-length" { continue }
            fields.append(field)
        }
        if let date = origin.date { fields.append(("date", date)) }
        if let server = origin.server { fields.append(("server", server)) }
        session.submitResponse(streamID: streamID, status: head.status, headers: fields, endStream: !hasBody)
        if hasBody, firstBody.readableBytes > 0 {
            session.sendResponseBody(streamID: streamID, firstBody, endStream: false)
        }
    }

    func writeResponseBody(_ data: ByteBuffer) {
        session.sendResponseBody(streamID: streamID, data, endStream: false)
    }

    /// DATA frames carry the file: it is read in chunks (StaticFileBody).
    var canSendFileRegion: Bool { false }

    func writeResponseFile(_ region: FileRegion, promise: EventLoopPromise<Void>) {
        promise.fail(ChannelError.operationUnsupported)
    }

    func flush() {
        connection.flushOutput()
    }

    @discardableResult
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, keepAlive: Bool, isHead: Bool) -> Int {
        let page = ErrorPage(error, allocator: allocator)
        let body = page.body
        var fields = page.fields
        let origin = OriginFields(resources: resources, serverSoftware: shared.configuration.server.serverSoftware)
        if let date = origin.date { fields.append(("date", date)) }
        if let server = origin.server { fields.append(("server", server)) }
        session.submitResponse(streamID: streamID, status: error.status, headers: fields, endStream: isHead)
        if isHead { return 0 }
        session.sendResponseBody(streamID: streamID, body, endStream: true)
        return body.readableBytes
    }

    func finish(_ exchange: Exchange, keepAlive: Bool, now: NIODeadline?) {
        guard self.exchange === exchange else { return }
        // Ends the DATA (a no-op when the response already ended with its head or simple body).
        session.sendResponseBody(streamID: streamID, ByteBuffer(), endStream: true)
        if stopBodyAfterResponse, !requestEnded {
            session.resetAfterResponse(streamID: streamID)
        }
        endExchange()
        connection.flushOutput()
    }

    /// A reset stream drops what the session holds for it either way.
    func abort(_ exchange: Exchange, reset: Bool) {
        guard self.exchange === exchange else { return }
        // The client must see a truncated response: no END_STREAM, but an error. Not
        // REFUSED_STREAM, even for a response spool over its cap: an abort comes after the
        // backend was asked, and that error code would tell the client a retry is safe.
        session.resetStream(streamID, errorCode: HTTP2FrontendHandler.internalError)
        endExchange()
        connection.flushOutput()
    }

    var canRefuseRequest: Bool { true }

    /// RST_STREAM(REFUSED_STREAM): the client may send the request again, on this connection or
    /// another (RFC 9113 §8.7). A 503 with the connection closed, as HTTP/1 gets, would end
    /// every other stream of the connection too.
    func refuseRequest(_ exchange: Exchange) {
        guard self.exchange === exchange else { return }
        session.resetStream(streamID, errorCode: HTTP2FrontendHandler.refusedStream)
        endExchange()
        connection.flushOutput()
    }

    func closeAfterCurrentResponse() {
        stopBodyAfterResponse = true
    }
}

@available(*, unavailable)
extension HTTP2StreamFrontend: Sendable {}
#endif
