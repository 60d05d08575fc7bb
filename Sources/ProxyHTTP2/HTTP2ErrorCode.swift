#if HTTP2
import CNGHTTP2

/// The HTTP/2 error codes (RFC 9113 §7) the session's owner sends in RST_STREAM and GOAWAY
/// (`HTTP2ServerSession.resetStream(_:errorCode:)`, `goAway(errorCode:)`), so that it needs
/// no nghttp2 import of its own.
public enum HTTP2ErrorCode {
    public static let internalError = NGHTTP2_INTERNAL_ERROR.rawValue
    public static let enhanceYourCalm = NGHTTP2_ENHANCE_YOUR_CALM.rawValue
    public static let refusedStream = NGHTTP2_REFUSED_STREAM.rawValue
}
#endif
