import NIOCore
import NIOHTTP1

/// What the proxy answers when it decides the status itself (no backend response): one page
/// and one set of fields for HTTP/1 and HTTP/2, so the two never drift apart.
struct ErrorPage {
    let body: ByteBuffer
    /// Content-Type, Content-Length and, for a 503 that says when to come back, Retry-After;
    /// then the error's own fields.
    /// (The HTTP/2 session lowercases names as it encodes them.)
    let fields: [(name: String, value: String)]

    init(_ error: HTTPError, allocator: ByteBufferAllocator) {
        let reason = HTTPResponseStatus(statusCode: error.status).reasonPhrase
        var body = allocator.buffer(capacity: 160)
        body.writeString(
            "<html><head><title>\(error.status) \(reason)</title></head><body><h1>\(error.status) \(reason)</h1></body></html>\n"
        )
        var fields: [(name: String, value: String)] = [
            ("Content-Type", "text/html"),
            ("Content-Length", String(body.readableBytes)),
        ]
        if let retryAfter = error.retryAfter {
            fields.append(("Retry-After", String(retryAfter)))
        }
        for field in error.fields {
            fields.append((field.name, field.value))
        }
        self.body = body
        self.fields = fields
    }
}
