import HTTPFieldBytes
import NIOCore
import NIOHTTP1

/// What an HTTP/1 response head says about the connection.
enum HTTP1ConnectionField {
    /// Nothing: the HTTP/1.1 default (persistent).
    case none
    case close
    /// `Connection: keep-alive`, which an HTTP/1.0 client needs to keep the connection.
    case keepAlive
}

/// The HTTP/1 response encoding, written by hand rather than by NIO's `HTTPResponseEncoder`:
/// the head goes from the CGI fields straight into one buffer (no `HTTPHeaders` built and
/// scanned again), and chunk framing costs one small write per body part.
extension ByteBuffer {
    /// Status line and header block, blank line included: one reservation, raw copies.
    ///
    /// `fields` are written as given (the CGI parser validated them); `Date` and `Server` are
    /// added when not nil, then the `Connection` and `Transfer-Encoding` the framing needs.
    mutating func writeHTTP1ResponseHead(
        isHTTP10: Bool,
        status: Int,
        reason: String?,
        fields: [(name: String, value: String)],
        omitContentLength: Bool = false,
        date: String?,
        server: String?,
        connection: HTTP1ConnectionField,
        chunked: Bool
    ) {
        let reason = reason ?? HTTPResponseStatus(statusCode: status).reasonPhrase
        var size = 13 + reason.utf8.count + 2 + 2
        for field in fields {
            size += field.name.utf8.count + field.value.utf8.count + 4
        }
        if let date { size += 8 + date.utf8.count }
        if let server { size += 10 + server.utf8.count }
        switch connection {
        case .none: break
        case .close: size += 19
        case .keepAlive: size += 24
        }
        if chunked { size += 28 }
        writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var writer = RawByteWriter(out)
            writer.append(isHTTP10 ? "HTTP/1.0 " : "HTTP/1.1 ")
            writer.appendStatusCode(status)
            writer.append(" ")
            writer.appendFieldBytes(reason)
            writer.append("\r\n")
            for field in fields {
                if omitContentLength, field.name.utf8.count == 14, field.name.lowercased() == "content-length" {
                    continue
                }
                writer.append(field.name)
                writer.append(": ")
                writer.appendFieldBytes(field.value)
                writer.append("\r\n")
            }
            if let date {
                writer.append("Date: ")
                writer.append(date)
                writer.append("\r\n")
            }
            if let server {
                writer.append("Server: ")
                writer.append(server)
                writer.append("\r\n")
            }
            switch connection {
            case .none: break
            case .close: writer.append("Connection: close\r\n")
            case .keepAlive: writer.append("Connection: keep-alive\r\n")
            }
            if chunked { writer.append("Transfer-Encoding: chunked\r\n") }
            writer.append("\r\n")
            return writer.position
        }
    }

    /// The size line of a chunk of `length` bytes (`length` > 0), preceded by the CRLF that
    /// closes the previous chunk when there is one: the two share a write.
    mutating func writeHTTP1ChunkHeader(length: Int, closingPrevious: Bool) {
        precondition(length > 0, "a zero-length chunk would end the body")
        writeWithUnsafeMutableBytes(minimumWritableBytes: 2 + 16 + 2) { out in
            var writer = RawByteWriter(out)
            if closingPrevious { writer.append("\r\n") }
            writer.appendHex(length)
            writer.append("\r\n")
            return writer.position
        }
    }

    /// The end of a chunked body (no trailers).
    mutating func writeHTTP1ChunkedEnd(closingPrevious: Bool) {
        writeStaticString(closingPrevious ? "\r\n0\r\n\r\n" : "0\r\n\r\n")
    }
}

/// Appends bytes to memory reserved beforehand; the caller computed the size.
struct RawByteWriter {
    private let out: UnsafeMutableRawBufferPointer
    private(set) var position = 0

    init(_ out: UnsafeMutableRawBufferPointer) {
        self.out = out
    }

    mutating func append(_ text: StaticString) {
        let count = text.utf8CodeUnitCount
        UnsafeMutableRawBufferPointer(rebasing: out[position..<position + count])
            .copyMemory(from: UnsafeRawBufferPointer(start: text.utf8Start, count: count))
        position += count
    }

    mutating func append(_ text: String) {
        // Not `withUTF8`: it is mutating, so it needs a copy of the string to call it on.
        text.withUTF8Bytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: out[position..<position + bytes.count])
                .copyMemory(from: UnsafeRawBufferPointer(bytes))
            position += bytes.count
        }
    }

    /// The bytes a field value stands for (``FieldBytes``): never more than its UTF-8, so the
    /// sizes reserved from `utf8.count` hold.
    mutating func appendFieldBytes(_ text: String) {
        FieldBytes.withBytes(text) { bytes in
            UnsafeMutableRawBufferPointer(rebasing: out[position..<position + bytes.count]).copyMemory(from: bytes)
            position += bytes.count
        }
    }

    /// Three digits (statuses are 100...999).
    mutating func appendStatusCode(_ code: Int) {
        out[position] = UInt8(ascii: "0") + UInt8(code / 100 % 10)
        out[position + 1] = UInt8(ascii: "0") + UInt8(code / 10 % 10)
        out[position + 2] = UInt8(ascii: "0") + UInt8(code % 10)
        position += 3
    }

    /// Lowercase hexadecimal without leading zeros.
    mutating func appendHex(_ value: Int) {
        var digits = 1
        while digits < 16, value >> (4 * digits) != 0 { digits += 1 }
        for index in 0..<digits {
            let nibble = (value >> (4 * (digits - 1 - index))) & 0xf
            out[position + index] = nibble < 10 ? UInt8(ascii: "0") + UInt8(nibble) : UInt8(ascii: "a") + UInt8(nibble - 10)
        }
        position += digits
    }
}
