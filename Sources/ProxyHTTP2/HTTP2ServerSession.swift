#if HTTP2
import CNGHTTP2
import HTTPFieldBytes
import NIOCore

/// A server-side HTTP/2 connection state over an nghttp2 session: bytes in, events and bytes out.
///
/// It does no I/O and is owned by one event loop (it is not Sendable): the channel handler feeds
/// it what the socket read (`receive(_:)`), handles the `HTTP2SessionEvent`s it queues
/// (`nextEvent()`), answers with commands (`submitResponse`, `sendResponseBody`, `consume`,
/// `resetStream`, `goAway`...) and writes what `flush(into:)` produces. Flow control is manual
/// both ways: request DATA opens the peer's window only when the owner consumes it, and response
/// DATA is pulled by nghttp2 from a per-stream buffer as the peer's window allows.
public final class HTTP2ServerSession {
    public let configuration: HTTP2SessionConfiguration

    /// nghttp2's session; it keeps an unretained pointer to `self` as user data.
    private var session: OpaquePointer!
    var events = CircularBuffer<HTTP2SessionEvent>(initialCapacity: 8)
    var streams: [Int32: HTTP2StreamState] = [:]
    /// Streams shown to the owner that nghttp2 has closed but the owner has not released: their
    /// backend requests may still run, so they keep counting against the concurrency budget.
    var closedButHeld: Set<Int32> = []

    /// The buffer being parsed by `receive(_:)`, so DATA chunks can be sliced instead of copied.
    var currentInput: ByteBuffer?
    var currentInputBase: UnsafeRawPointer?

    /// Whether the library had the rapid-reset and CONTINUATION flood limits to set.
    public private(set) var hasStreamResetRateLimit = false
    public private(set) var hasContinuationLimit = false

    public init(configuration: HTTP2SessionConfiguration = .init()) {
        self.configuration = configuration
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2: out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks)

        var option: OpaquePointer?
        precondition(nghttp2_option_new(&option) == 0, "nghttp2: out of memory")
        defer { nghttp2_option_del(option) }
        // The owner opens windows as the backend takes the body: nghttp2 must not do it on receipt.
        nghttp2_option_set_no_auto_window_update(option, 1)
        // HTTP messaging validation stays on (nghttp2_option_set_no_http_messaging is not called).
        nghttp2_option_set_max_outbound_ack(option, configuration.maxOutboundAck)
        nghttp2_option_set_max_settings(option, configuration.maxSettings)
        nghttp2_option_set_max_send_header_block_length(option, configuration.maxSendHeaderBlockLength)
        // Closed streams are not kept for the priority tree: memory is bounded by open streams.
        nghttp2_option_set_no_closed_streams(option, 1)
        hasStreamResetRateLimit =
            cnghttp2_option_set_stream_reset_rate_limit(
                option, configuration.streamResetBurst, configuration.streamResetRate) == 1
        hasContinuationLimit =
            cnghttp2_option_set_max_continuations(option, configuration.maxContinuations) == 1

        var session: OpaquePointer?
        let rc = nghttp2_session_server_new2(&session, callbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        precondition(rc == 0, "nghttp2_session_server_new2: \(rc)")
        self.session = session

        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: configuration.maxConcurrentStreams),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: configuration.initialStreamWindowSize),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(clamping: configuration.maxHeaderListSize)),
        ]
        precondition(nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count) == 0)
        let window = Int32(configuration.effectiveConnectionWindowSize)
        if window > 65_535 {
            precondition(nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, window) == 0)
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input and output

    /// Parses bytes read from the peer; events are queued for `nextEvent()`. A fatal error queues
    /// `.connectionError` (flush, then close).
    public func receive(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        currentInput = bytes
        defer {
            currentInput = nil
            currentInputBase = nil
        }
        let rc = bytes.withUnsafeReadableBytes { raw -> Int in
            currentInputBase = raw.baseAddress
            return cnghttp2_session_mem_recv(
                session, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count)
        }
        if rc < 0 {
            events.append(.connectionError(HTTP2SessionError(code: Int32(truncatingIfNeeded: rc))))
        }
    }

    /// Appends everything nghttp2 has to send (frames, and response DATA the peer's windows allow).
    /// Response buffers drain here, so events may be queued too.
    public func flush(into buffer: inout ByteBuffer) {
        while true {
            var data: UnsafePointer<UInt8>?
            let count = cnghttp2_session_mem_send(session, &data)
            if count < 0 {
                events.append(.connectionError(HTTP2SessionError(code: Int32(truncatingIfNeeded: count))))
                return
            }
            guard count > 0, let data else { return }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
    }

    /// The next queued event, oldest first.
    /// HTTP/1.1 `Upgrade: h2c` (RFC 7540 §3.2): the request that asked becomes stream 1,
    /// half-closed on the client's side, held by the owner as if shown by `requestHead`.
    /// `settings` is the decoded HTTP2-Settings payload; `headRequest`: the request was HEAD.
    /// False when nghttp2 refuses the payload (the caller answers over HTTP/1.1 then).
    public func upgrade(settings: [UInt8], headRequest: Bool) -> Bool {
        let result = settings.withUnsafeBufferPointer { payload in
            nghttp2_session_upgrade2(session, payload.baseAddress, payload.count, headRequest ? 1 : 0, nil)
        }
        guard result == 0 else { return false }
        var state = HTTP2StreamState()
        state.shownToOwner = true
        state.heldByOwner = true
        streams[1] = state
        return true
    }

    public func nextEvent() -> HTTP2SessionEvent? {
        events.popFirst()
    }

    /// Neither side has anything left to say (after GOAWAY both ways, or a fatal error): close.
    public var isFinished: Bool {
        nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    /// Streams nghttp2 knows plus closed ones whose backend work the owner has not released.
    public var activeStreamCount: Int {
        streams.count + closedButHeld.count
    }

    // MARK: Commands

    /// Marks the end of the owner's work for a stream it was shown (`requestHead`): its backend
    /// request finished or was aborted. Until then the stream counts against
    /// `maxConcurrentStreams`, also after the peer reset it (rapid reset).
    public func releaseStream(_ streamID: Int32) {
        if closedButHeld.remove(streamID) != nil { return }
        streams[streamID]?.heldByOwner = false
    }

    /// Opens the peer's window for `count` bytes of request body the owner passed on.
    public func consume(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        if streams[streamID] != nil {
            let n = min(count, streams[streamID]!.unconsumed)
            guard n > 0 else { return }
            streams[streamID]!.unconsumed -= n
            nghttp2_session_consume(session, streamID, n)
        }
        // A closed stream's leftover was given back to the connection window when it closed.
    }

    /// Submits the response head. With `endStream`, the response has no body; otherwise its body
    /// comes from `sendResponseBody(streamID:_:endStream:)`. Names are lowercased and
    /// connection-specific fields dropped (RFC 9113 §8.2.2).
    @discardableResult
    public func submitResponse(
        streamID: Int32, status: Int, headers: [(name: String, value: String)], endStream: Bool
    ) -> Bool {
        guard streams[streamID] != nil, !streams[streamID]!.responseSubmitted else { return false }
        streams[streamID]!.responseSubmitted = true
        streams[streamID]!.responseEnded = endStream
        let rc = Self.withNameValues(status: status, headers: headers) { nva, count in
            cnghttp2_submit_response(session, streamID, nva, count, endStream ? nil : Self.readResponseBody)
        }
        return rc == 0
    }

    /// Queues response body bytes for the stream; nghttp2 sends them as the peer's window allows.
    public func sendResponseBody(streamID: Int32, _ bytes: ByteBuffer, endStream: Bool) {
        guard streams[streamID] != nil, streams[streamID]!.responseSubmitted, !streams[streamID]!.responseEnded
        else { return }
        if bytes.readableBytes > 0 {
            streams[streamID]!.responseBody.append(bytes)
            streams[streamID]!.responseBytes += bytes.readableBytes
            totalResponseBytes += bytes.readableBytes
            if streams[streamID]!.responseBytes > configuration.responseLowWatermark {
                streams[streamID]!.responseAboveLowWatermark = true
            }
        }
        if endStream { streams[streamID]!.responseEnded = true }
        if streams[streamID]!.responseDeferred {
            streams[streamID]!.responseDeferred = false
            nghttp2_session_resume_data(session, streamID)
        }
    }

    /// Response body bytes queued for the stream and not yet framed.
    /// Response bytes queued over all streams (what the peer's windows or the socket hold up).
    public internal(set) var totalResponseBytes = 0

    public func pendingResponseBytes(streamID: Int32) -> Int {
        streams[streamID]?.responseBytes ?? 0
    }

    /// Sends RST_STREAM (e.g. CANCEL/INTERNAL_ERROR when the backend failed mid-response).
    public func resetStream(_ streamID: Int32, errorCode: UInt32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// The owner answered without reading the whole request body: once the response is out,
    /// RST_STREAM(NO_ERROR) tells the peer to stop sending it (RFC 9113 §8.1). Not at once: a
    /// queued RST_STREAM makes nghttp2 drop the response still queued.
    public func resetAfterResponse(streamID: Int32) {
        guard streams[streamID] != nil else { return }
        if streams[streamID]!.responseComplete {
            resetStream(streamID, errorCode: NGHTTP2_NO_ERROR.rawValue)
        } else {
            streams[streamID]!.resetAfterResponse = true
        }
    }

    /// Graceful stop, first step: GOAWAY with the largest stream id (the peer stops opening
    /// streams, those already in flight are still accepted). Follow with `goAway(errorCode:)`.
    public func sendShutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// GOAWAY naming the last stream processed: newer streams are refused, older ones finish;
    /// the session is finished once they have.
    public func goAway(errorCode: UInt32 = 0) {
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            errorCode, nil, 0)
    }

    // MARK: Helpers

    /// Serializes ":status" and the fields into one byte array and calls `body` with nghttp2_nv
    /// entries pointing into it (nghttp2 copies them during the submit call).
    static func withNameValues<R>(
        status: Int, headers: [(name: String, value: String)],
        _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
    ) -> R {
        var bytes: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        bytes.reserveCapacity(64 + headers.count * 32)
        spans.reserveCapacity(headers.count + 1)
        func add(_ name: some Sequence<UInt8>, _ value: some Sequence<UInt8>, lowercase: Bool) {
            let nameStart = bytes.count
            for b in name { bytes.append(lowercase && b >= 0x41 && b <= 0x5A ? b | 0x20 : b) }
            let valueStart = bytes.count
            bytes.append(contentsOf: value)
            spans.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
        }
        add(":status".utf8, String(status).utf8, lowercase: false)
        for (name, value) in headers where !isConnectionSpecific(name) {
            FieldBytes.withBytes(value) { add(name.utf8, $0, lowercase: true) }
        }
        return bytes.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let nva = spans.map { span in
                nghttp2_nv(
                    name: base + span.0, value: base + span.2, namelen: span.1, valuelen: span.3,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.lowercased() {
        case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade": true
        default: false
        }
    }

    func appendEvent(_ event: HTTP2SessionEvent) {
        events.append(event)
    }

    func submitRejection(streamID: Int32, status: Int, requestEnded: Bool) {
        _ = Self.withNameValues(status: status, headers: [("content-length", "0")]) { nva, count in
            cnghttp2_submit_response(session, streamID, nva, count, nil)
        }
        // Once the response is out, RST_STREAM(NO_ERROR) tells the client to stop sending the body
        // (RFC 9113 §8.1). Not now: a queued RST_STREAM makes nghttp2 drop the queued HEADERS.
        streams[streamID]?.resetAfterResponse = !requestEnded
        events.append(.requestRejected(streamID: streamID, status: status))
    }

    func refuseStream(_ streamID: Int32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_REFUSED_STREAM.rawValue)
    }

    func consumeNow(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume(session, streamID, count)
    }

    func consumeConnectionOnly(_ count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume_connection(session, count)
    }
}
#endif
