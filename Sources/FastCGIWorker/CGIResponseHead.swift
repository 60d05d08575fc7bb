import NIOCore

/// Encodes the CGI response head a handler writes first on `FCGI_STDOUT` (RFC 3875 section 6):
/// a `Status:` line, the headers, and an empty line.
enum CGIResponseHead {
    /// Validates and encodes a head.
    /// - Throws: ``FastCGIWorkerError/invalidStatus(_:)`` or ``FastCGIWorkerError/invalidHeader(name:)``:
    ///   a CR or LF in a header would let request data forge response headers.
    static func encode(status: Int, headers: some Sequence<(String, String)>) throws(FastCGIWorkerError) -> ByteBuffer {
        guard (100...999).contains(status) else {
            throw .invalidStatus(status)
        }
        var buffer = ByteBuffer()
        buffer.writeString("Status: \(status) \(self.reasonPhrase(for: status))\r\n")
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(self.isNameByte), value.utf8.allSatisfy(self.isValueByte) else {
                throw .invalidHeader(name: name)
            }
            buffer.writeString(name)
            buffer.writeString(": ")
            buffer.writeString(value)
            buffer.writeString("\r\n")
        }
        buffer.writeString("\r\n")
        return buffer
    }

    /// The head a response gets when the handler wrote a body (or nothing) without one.
    static let defaultHead = try! CGIResponseHead.encode(status: 200, headers: [])

    /// The head sent when a handler throws before writing its own; the error itself stays in the log.
    static let internalServerError = try! CGIResponseHead.encode(
        status: 500,
        headers: [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")]
    )

    private static func isNameByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7f && byte != UInt8(ascii: ":")
    }

    private static func isValueByte(_ byte: UInt8) -> Bool {
        byte != 0 && byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n")
    }

    /// RFC 3875 wants a reason phrase; web servers pass it on, so a readable one is worth a small table.
    private static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status \(status)"
        }
    }
}
