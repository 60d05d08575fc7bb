import FastCGIWorker
import NIOCore

/// `/echo`, any method: sends the request body back, with its length and SHA-256 in headers.
///
/// The body is hashed chunk by chunk as it arrives; it is kept whole (up to ``maxBytes``) because the
/// headers, which carry the hash, must go out before it.
struct EchoEndpoint: FastCGIResponder {
    static let maxBytes = 64 << 20

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        var body = ByteBuffer()
        var hash = SHA256()
        for try await chunk in request.body {
            guard body.readableBytes + chunk.readableBytes <= Self.maxBytes else {
                try await writer.writeText(status: 413, "the echo takes at most \(Self.maxBytes) bytes\n")
                return
            }
            hash.update(chunk)
            body.writeImmutableBuffer(chunk)
        }
        try await writer.writeHead(
            status: 200,
            headers: [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", "\(body.readableBytes)"),
                ("X-Echo-Length", "\(body.readableBytes)"),
                ("X-Echo-SHA256", hash.finalize()),
            ]
        )
        if request.method != "HEAD" {
            try await writer.write(body)
        }
    }
}
