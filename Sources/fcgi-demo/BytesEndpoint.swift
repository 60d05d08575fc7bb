import FastCGIWorker
import NIOCore

/// `GET /bytes?n=N`: N bytes of "abc…z" repeated, with Content-Length, written in chunks. Each write waits
/// while the web server is not reading, so a large N takes no more memory than a chunk.
struct BytesEndpoint: FastCGIResponder {
    static let range = 0...(1 << 40)
    /// A multiple of 26, so that every chunk continues the alphabet where the previous one stopped.
    static let chunk = ByteBuffer(bytes: (0..<(26 * 2520)).map { UInt8(ascii: "a") + UInt8($0 % 26) })

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        guard let count = request.integerQuery("n", default: 1024, in: Self.range) else {
            try await writer.badParameter("n", Self.range)
            return
        }
        try await writer.writeHead(
            status: 200,
            headers: [("Content-Type", "application/octet-stream"), ("Content-Length", "\(count)")]
        )
        guard request.method != "HEAD" else { return }
        var remaining = count
        while remaining > 0 {
            try Task.checkCancellation()
            let size = min(remaining, Self.chunk.readableBytes)
            try await writer.write(Self.chunk.getSlice(at: Self.chunk.readerIndex, length: size)!)
            remaining -= size
        }
    }
}
