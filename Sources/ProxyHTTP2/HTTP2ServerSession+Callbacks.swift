#if HTTP2
import CNGHTTP2
import HTTPFieldBytes
import NIOCore

/// The nghttp2 callbacks: C function pointers that find the session through the user data.
extension HTTP2ServerSession {
    static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(userData!).takeUnretainedValue()
    }

    static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            HTTP2ServerSession.from(userData).onBeginHeaders(frame!.pointee)
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            HTTP2ServerSession.from(userData).onHeader(
                frame!.pointee,
                name: UnsafeBufferPointer(start: name, count: nameLength),
                value: UnsafeBufferPointer(start: value, count: valueLength))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            HTTP2ServerSession.from(userData).onFrameReceived(frame!.pointee)
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            HTTP2ServerSession.from(userData).onFrameSent(frame!.pointee)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            HTTP2ServerSession.from(userData).onData(streamID: streamID, UnsafeRawBufferPointer(start: data, count: length))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            HTTP2ServerSession.from(userData).onStreamClose(streamID: streamID, errorCode: errorCode)
        }
    }

    static let readResponseBody:
        @convention(c) (
            OpaquePointer?, Int32, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<UInt32>?,
            UnsafeMutablePointer<nghttp2_data_source>?, UnsafeMutableRawPointer?
        ) -> Int = { _, streamID, buffer, length, flags, _, userData in
            HTTP2ServerSession.from(userData).readResponseBody(
                streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length),
                flags: flags!)
        }

    private static let frameHeaders = UInt8(NGHTTP2_HEADERS.rawValue)
    private static let frameData = UInt8(NGHTTP2_DATA.rawValue)
    private static let frameRSTStream = UInt8(NGHTTP2_RST_STREAM.rawValue)
    private static let frameGoAway = UInt8(NGHTTP2_GOAWAY.rawValue)
    private static let flagEndStream = UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)

    private static func isRequestHeaders(_ frame: nghttp2_frame) -> Bool {
        frame.hd.type == frameHeaders && frame.headers.cat == NGHTTP2_HCAT_REQUEST
    }

    func onBeginHeaders(_ frame: nghttp2_frame) -> Int32 {
        guard Self.isRequestHeaders(frame) else { return 0 }
        let streamID = frame.hd.stream_id
        var state = HTTP2StreamState()
        // nghttp2 enforces SETTINGS_MAX_CONCURRENT_STREAMS on the streams it has open; streams the
        // peer reset whose backend work still runs count here too, so resets cannot be used to
        // start unbounded backend requests (CVE-2023-44487).
        if activeStreamCount >= Int(configuration.maxConcurrentStreams) {
            state.handledByBridge = true
            refuseStream(streamID)
        }
        streams[streamID] = state
        return 0
    }

    func onHeader(
        _ frame: nghttp2_frame, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>
    ) -> Int32 {
        // Trailers (a second HEADERS) are not passed on: FastCGI has no place for them.
        guard Self.isRequestHeaders(frame) else { return 0 }
        let streamID = frame.hd.stream_id
        guard streams[streamID] != nil, !streams[streamID]!.handledByBridge,
            !streams[streamID]!.headerListTooLarge
        else { return 0 }
        // RFC 7541 §4.1 size, as SETTINGS_MAX_HEADER_LIST_SIZE counts it; nghttp2 does not enforce it.
        streams[streamID]!.headerListSize += name.count + value.count + 32
        if streams[streamID]!.headerListSize > configuration.maxHeaderListSize {
            streams[streamID]!.headerListTooLarge = true
            streams[streamID]!.headers = []
            return 0
        }
        let valueString = FieldBytes.string(UnsafeRawBufferPointer(value))
        if name.first == UInt8(ascii: ":") {
            switch String(decoding: name, as: UTF8.self) {
            case ":method": streams[streamID]!.method = valueString
            case ":path": streams[streamID]!.path = valueString
            case ":scheme": streams[streamID]!.scheme = valueString
            case ":authority": streams[streamID]!.authority = valueString
            default: break  // nghttp2 rejects unknown pseudo-headers before this (HTTP messaging).
            }
        } else {
            streams[streamID]!.addField(name: String(decoding: name, as: UTF8.self), value: valueString)
        }
        return 0
    }

    func onFrameReceived(_ frame: nghttp2_frame) -> Int32 {
        let streamID = frame.hd.stream_id
        let endStream = frame.hd.flags & Self.flagEndStream != 0
        switch frame.hd.type {
        case Self.frameHeaders:
            guard streams[streamID] != nil, !streams[streamID]!.handledByBridge else { return 0 }
            if Self.isRequestHeaders(frame) {
                if streams[streamID]!.headerListTooLarge {
                    streams[streamID]!.handledByBridge = true
                    submitRejection(streamID: streamID, status: 431, requestEnded: endStream)
                    return 0
                }
                guard let head = streams[streamID]!.requestHead(endStream: endStream) else { return 0 }
                streams[streamID]!.shownToOwner = true
                streams[streamID]!.heldByOwner = true
                streams[streamID]!.headers = []
                appendEvent(.requestHead(streamID: streamID, head))
            }
            if endStream, streams[streamID]!.shownToOwner {
                appendEvent(.requestEnd(streamID: streamID))
            }
        case Self.frameData:
            if endStream, let state = streams[streamID], state.shownToOwner, !state.handledByBridge {
                appendEvent(.requestEnd(streamID: streamID))
            }
        case Self.frameRSTStream:
            if let state = streams[streamID], state.shownToOwner {
                appendEvent(.streamReset(streamID: streamID, errorCode: frame.rst_stream.error_code))
            }
        case Self.frameGoAway:
            appendEvent(.goAway(lastStreamID: frame.goaway.last_stream_id, errorCode: frame.goaway.error_code))
        default:
            break
        }
        return 0
    }

    func onFrameSent(_ frame: nghttp2_frame) -> Int32 {
        if frame.hd.flags & Self.flagEndStream != 0,
            frame.hd.type == Self.frameHeaders || frame.hd.type == Self.frameData,
            streams[frame.hd.stream_id] != nil
        {
            streams[frame.hd.stream_id]!.responseComplete = true
            if streams[frame.hd.stream_id]!.resetAfterResponse {
                resetStream(frame.hd.stream_id, errorCode: NGHTTP2_NO_ERROR.rawValue)
            }
        }
        return 0
    }

    func onData(streamID: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        guard data.count > 0 else { return 0 }
        guard streams[streamID] != nil, streams[streamID]!.shownToOwner, !streams[streamID]!.handledByBridge
        else {
            consumeNow(streamID: streamID, count: data.count)
            return 0
        }
        streams[streamID]!.unconsumed += data.count
        appendEvent(.requestBody(streamID: streamID, slice(data)))
        return 0
    }

    /// The chunk as a slice of the buffer being parsed when it lies inside it (always, with
    /// mem_recv), else a copy.
    private func slice(_ data: UnsafeRawBufferPointer) -> ByteBuffer {
        if let input = currentInput, let base = currentInputBase, let start = data.baseAddress,
            start >= base, start + data.count <= base + input.readableBytes,
            let slice = input.getSlice(at: input.readerIndex + (start - base), length: data.count)
        {
            return slice
        }
        return ByteBuffer(bytes: data)
    }

    func onStreamClose(streamID: Int32, errorCode: UInt32) -> Int32 {
        guard let state = streams.removeValue(forKey: streamID) else { return 0 }
        totalResponseBytes -= state.responseBytes
        // Body bytes the owner was shown but did not consume would otherwise shrink the
        // connection window for good.
        consumeConnectionOnly(state.unconsumed)
        if state.shownToOwner {
            if state.heldByOwner { closedButHeld.insert(streamID) }
            appendEvent(
                .streamClosed(streamID: streamID, errorCode: errorCode, responseComplete: state.responseComplete))
        }
        return 0
    }

    func readResponseBody(
        streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard streams[streamID] != nil else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        var copied = 0
        while copied < buffer.count, var first = streams[streamID]!.responseBody.first {
            let n = min(buffer.count - copied, first.readableBytes)
            first.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            }
            copied += n
            first.moveReaderIndex(forwardBy: n)
            if first.readableBytes == 0 {
                streams[streamID]!.responseBody.removeFirst()
            } else {
                streams[streamID]!.responseBody[streams[streamID]!.responseBody.startIndex] = first
            }
        }
        streams[streamID]!.responseBytes -= copied
        totalResponseBytes -= copied
        if streams[streamID]!.responseBytes == 0, streams[streamID]!.responseEnded {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        } else if copied == 0 {
            streams[streamID]!.responseDeferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        if streams[streamID]!.responseAboveLowWatermark,
            streams[streamID]!.responseBytes <= configuration.responseLowWatermark
        {
            streams[streamID]!.responseAboveLowWatermark = false
            appendEvent(.responseDrained(streamID: streamID))
        }
        return copied
    }
}
#endif
