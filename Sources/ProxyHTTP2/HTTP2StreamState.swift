#if HTTP2
import NIOCore

/// What the bridge keeps for one stream nghttp2 has open.
struct HTTP2StreamState {
    // Request head, gathered field by field.
    var headerListSize = 0
    var headerListTooLarge = false
    var method: String?
    var scheme: String?
    var path: String?
    var authority: String?
    var headers: [(name: String, value: String)] = []
    var cookieIndex: Int?

    /// Answered or refused by the bridge itself: no events, its DATA is consumed at once.
    var handledByBridge = false
    /// Send RST_STREAM(NO_ERROR) once the bridge's own response went out (request body unread).
    var resetAfterResponse = false
    /// Shown to the owner as `requestHead`.
    var shownToOwner = false
    /// The owner has not called `releaseStream` yet.
    var heldByOwner = false
    /// Request body bytes shown and not yet consumed (given back to the connection on close).
    var unconsumed = 0

    // Response.
    var responseSubmitted = false
    var responseEnded = false
    var responseDeferred = false
    var responseBody = CircularBuffer<ByteBuffer>()
    var responseBytes = 0
    var responseAboveLowWatermark = false
    /// A frame with END_STREAM went out for this stream.
    var responseComplete = false

    mutating func addField(name: String, value: String) {
        if name == "cookie" {
            if let cookieIndex {
                headers[cookieIndex].value += "; " + value
                return
            }
            cookieIndex = headers.count
        }
        headers.append((name, value))
    }

    func requestHead(endStream: Bool) -> HTTP2RequestHead? {
        // nghttp2's HTTP messaging validation guarantees these for non-CONNECT requests; CONNECT
        // (no :scheme, :path) is shown with empty ones and refused by the exchange (405).
        guard let method else { return nil }
        return HTTP2RequestHead(
            method: method, scheme: scheme ?? "", path: path ?? "", authority: authority,
            headers: headers, endStream: endStream)
    }
}
#endif
