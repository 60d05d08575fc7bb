#if HTTP2
import CNGHTTP2
import NIOCore

/// What an `HTTP2ServerSession` tells its owner, in order, after `receive(_:)` or
/// `flush(into:)`.
public enum HTTP2SessionEvent: Equatable, Sendable {
    /// A new request: start its exchange. The stream counts against the concurrency budget until
    /// `releaseStream(_:)`.
    case requestHead(streamID: Int32, HTTP2RequestHead)
    /// Request body bytes (a slice of the received buffer, not a copy). The peer may send no more
    /// than the stream's window until they are passed to `consume(streamID:count:)`.
    case requestBody(streamID: Int32, ByteBuffer)
    /// The request body is complete (END_STREAM); trailers, if any, were dropped.
    case requestEnd(streamID: Int32)
    /// The stream's response buffer fell to the low watermark: read more of the backend's output.
    case responseDrained(streamID: Int32)
    /// The bridge answered a stream itself (431: header list too large) and never showed it.
    case requestRejected(streamID: Int32, status: Int)
    /// The peer sent RST_STREAM (a cancelled request): abort the backend request.
    case streamReset(streamID: Int32, errorCode: UInt32)
    /// nghttp2 closed a stream that was shown as `requestHead`; commands for it are ignored from
    /// now on. `responseComplete` is false when it ended before the whole response was sent.
    case streamClosed(streamID: Int32, errorCode: UInt32, responseComplete: Bool)
    /// The peer sent GOAWAY: it opens no streams beyond `lastStreamID`.
    case goAway(lastStreamID: Int32, errorCode: UInt32)
    /// The connection cannot go on (bad preface, flood, ...): flush what is left, then close.
    case connectionError(HTTP2SessionError)
}

/// A fatal error of the session, from libnghttp2's error codes.
public struct HTTP2SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The nghttp2 error code (negative), e.g. NGHTTP2_ERR_BAD_CLIENT_MAGIC.
    public var code: Int32

    public init(code: Int32) {
        self.code = code
    }

    /// nghttp2's own wording, e.g. "Received bad client magic byte string".
    public var description: String {
        String(cString: nghttp2_strerror(code))
    }
}
#endif
