#if HTTP2

/// Limits and windows of one server-side HTTP/2 connection. nghttp2 leaves most limits to the
/// application (or defaults them generously), so every one is set from here explicitly.
public struct HTTP2SessionConfiguration: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS. Streams whose backend work is still running after the
    /// peer reset them count too (rapid reset), see `HTTP2ServerSession.releaseStream(_:)`.
    public var maxConcurrentStreams: UInt32 = 100

    /// Largest request header list (RFC 7541 size: name + value + 32 per field, pseudo-headers
    /// included), advertised as SETTINGS_MAX_HEADER_LIST_SIZE and enforced with a 431 response.
    public var maxHeaderListSize: Int = 32 * 1024

    /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may have received and not yet
    /// consumed (`HTTP2ServerSession.consume(streamID:count:)`): the per-stream body buffer bound.
    public var initialStreamWindowSize: UInt32 = 65_535

    /// Receive window of the whole connection; nil makes it large enough that streams which do not
    /// consume cannot starve the others (`maxConcurrentStreams` × `initialStreamWindowSize`).
    public var connectionWindowSize: UInt32? = nil

    /// A stream's response buffer, once it was above this many bytes, reports
    /// `HTTP2SessionEvent.responseDrained` when the peer's window let it fall to this or below.
    public var responseLowWatermark: Int = 64 * 1024

    /// nghttp2_option_set_max_outbound_ack: queued SETTINGS/PING ACKs before the peer counts as
    /// flooding (the connection is then closed).
    public var maxOutboundAck: Int = 1000

    /// nghttp2_option_set_max_settings: entries per SETTINGS frame.
    public var maxSettings: Int = 32

    /// nghttp2_option_set_max_send_header_block_length: largest header block we send.
    public var maxSendHeaderBlockLength: Int = 64 * 1024

    /// nghttp2_option_set_max_continuations (where the library has it).
    public var maxContinuations: Int = 8

    /// nghttp2_option_set_stream_reset_rate_limit (where the library has it): a token bucket of
    /// RST_STREAM frames from the peer; beyond it the connection ends with GOAWAY.
    public var streamResetBurst: UInt64 = 1000
    public var streamResetRate: UInt64 = 33

    public init() {}

    var effectiveConnectionWindowSize: UInt32 {
        if let connectionWindowSize { return connectionWindowSize }
        let product = UInt64(maxConcurrentStreams) * UInt64(initialStreamWindowSize)
        return UInt32(min(max(product, 65_535), UInt64(Int32.max)))
    }
}
#endif
