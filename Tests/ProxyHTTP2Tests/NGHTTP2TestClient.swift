#if HTTP2
import CNGHTTP2
import NIOCore
import ProxyHTTP2
import Testing

/// An nghttp2 client session in the test process: it produces the frames a real client would
/// send, and records what the server side answered.
final class NGHTTP2TestClient {
    struct Response {
        var headers: [(name: String, value: String)] = []
        var body: [UInt8] = []
        var closedWith: UInt32?
        var status: String? { headers.first { $0.name == ":status" }?.value }
    }

    private var session: OpaquePointer!
    var responses: [Int32: Response] = [:]
    var goAway: (lastStreamID: Int32, errorCode: UInt32)?
    private var requestBodies: [Int32: [UInt8]] = [:]

    /// `window`: the client's receive window (stream and connection); `autoWindowUpdate` off
    /// lets a test decide when response DATA may flow (`consume`).
    init(window: UInt32 = 65_535, autoWindowUpdate: Bool = true) {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, user in
            let client = NGHTTP2TestClient.from(user)
            client.responses[frame!.pointee.hd.stream_id, default: Response()].headers.append(
                (String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
                 String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)))
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, user in
            NGHTTP2TestClient.from(user).responses[streamID, default: Response()].body
                .append(contentsOf: UnsafeBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, user in
            NGHTTP2TestClient.from(user).responses[streamID, default: Response()].closedWith = errorCode
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            if frame!.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
                NGHTTP2TestClient.from(user).goAway = (frame!.pointee.goaway.last_stream_id, frame!.pointee.goaway.error_code)
            }
            return 0
        }
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, autoWindowUpdate ? 0 : 1)
        var session: OpaquePointer?
        nghttp2_session_client_new2(&session, callbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        self.session = session
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: window)
        ]
        nghttp2_submit_settings(session, 0, &settings, settings.count)
    }

    deinit { nghttp2_session_del(session) }

    static func from(_ user: UnsafeMutableRawPointer?) -> NGHTTP2TestClient {
        Unmanaged<NGHTTP2TestClient>.fromOpaque(user!).takeUnretainedValue()
    }

    /// Submits a request; `body` nil sends END_STREAM with the headers. Returns the stream id.
    @discardableResult
    func request(
        method: String = "GET", path: String = "/", authority: String? = "example.com",
        headers: [(String, String)] = [], body: [UInt8]? = nil
    ) -> Int32 {
        var fields = [(":method", method), (":scheme", "http"), (":path", path)]
        if let authority { fields.append((":authority", authority)) }
        fields += headers
        let streamID = withNameValues(fields) { nva, count in
            cnghttp2_submit_request(session, nva, count, body == nil ? nil : NGHTTP2TestClient.readBody, nil)
        }
        precondition(streamID > 0, "submit_request: \(streamID)")
        if let body { requestBodies[streamID] = body }
        return streamID
    }

    static let readBody:
        @convention(c) (
            OpaquePointer?, Int32, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<UInt32>?,
            UnsafeMutablePointer<nghttp2_data_source>?, UnsafeMutableRawPointer?
        ) -> Int = { _, streamID, buffer, length, flags, _, user in
            let client = NGHTTP2TestClient.from(user)
            let body = client.requestBodies[streamID] ?? []
            let n = min(length, body.count)
            body.withUnsafeBufferPointer { buffer!.update(from: $0.baseAddress!, count: n) }
            client.requestBodies[streamID] = Array(body.dropFirst(n))
            if n == body.count { flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
            return n
        }

    func reset(_ streamID: Int32, errorCode: UInt32 = NGHTTP2_CANCEL.rawValue) {
        nghttp2_submit_rst_stream(session, 0, streamID, errorCode)
    }

    func sendGoAway(errorCode: UInt32 = 0) {
        nghttp2_submit_goaway(session, 0, 0, errorCode, nil, 0)
    }

    /// Opens the server's window for `count` response bytes of the stream (and the connection).
    func consume(_ streamID: Int32, _ count: Int) {
        nghttp2_session_consume(session, streamID, count)
    }

    func produce() -> ByteBuffer {
        var buffer = ByteBuffer()
        while true {
            var data: UnsafePointer<UInt8>?
            let n = cnghttp2_session_mem_send(session, &data)
            precondition(n >= 0, "client mem_send: \(n)")
            guard n > 0, let data else { return buffer }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    func receive(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        let n = buffer.withUnsafeReadableBytes {
            cnghttp2_session_mem_recv(session, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count)
        }
        precondition(n == buffer.readableBytes, "client mem_recv: \(n)")
    }

    private func withNameValues<R>(_ fields: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var storage: [[UInt8]] = []
        for (name, value) in fields {
            storage.append(Array(name.utf8))
            storage.append(Array(value.utf8))
        }
        let pointers = storage.map { bytes -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            p.initialize(from: bytes, count: bytes.count)
            return p
        }
        defer { pointers.forEach { $0.deallocate() } }
        let nva = (0..<fields.count).map { i in
            nghttp2_nv(
                name: pointers[2 * i], value: pointers[2 * i + 1], namelen: storage[2 * i].count,
                valuelen: storage[2 * i + 1].count, flags: 0)
        }
        return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}

/// Moves bytes both ways until neither side has anything to say; returns the server's events.
@discardableResult
func pump(_ client: NGHTTP2TestClient, _ server: HTTP2ServerSession) -> [HTTP2SessionEvent] {
    var events: [HTTP2SessionEvent] = []
    for _ in 0..<1000 {
        let toServer = client.produce()
        server.receive(toServer)
        var toClient = ByteBuffer()
        server.flush(into: &toClient)
        while let event = server.nextEvent() { events.append(event) }
        client.receive(toClient)
        if toServer.readableBytes == 0 && toClient.readableBytes == 0 { return events }
    }
    Issue.record("the sessions kept talking")
    return events
}
#endif
