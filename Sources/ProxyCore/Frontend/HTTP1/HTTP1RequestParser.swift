import HTTPFieldBytes
import NIOCore
import NIOHTTP1

/// A strict, incremental HTTP/1.1 request parser (RFC 9112), fed straight from the socket.
///
/// It replaces NIO's `HTTPRequestDecoder` on the client connection. That decoder runs llhttp
/// through a `ByteToMessageHandler` and a pipeline hop, with callbacks and a String per piece;
/// this one scans a complete head in one pass and hands body bytes on as slices of the read
/// buffer. Being our own, its policy is the one in `docs/architecture.md` ("HTTP/1 parsing"):
/// everything RFC 9112 lets a server reject is rejected, because an intermediary that is more
/// lenient than the server behind it is where request smuggling lives.
///
/// - CRLF only: a bare LF or bare CR anywhere in the framing is a 400 (RFC 9112 §2.2 allows
///   accepting bare LF; accepting it in one place and not another is what desyncs peers).
/// - No obs-fold, no whitespace before a colon, no control bytes in names or values.
/// - Framing needs exactly one way: one Content-Length of digits, or one Transfer-Encoding that
///   is exactly `chunked` (other codings 501), never both, never Transfer-Encoding in HTTP/1.0.
/// - Every error closes the connection: after one, the byte stream cannot be framed.
public struct HTTP1RequestParser: Sendable {
    /// How large a head may be.
    public struct Limits: Sendable {
        /// Request line, fields and the final CRLF (and, separately, a trailer section).
        public var maxHeadSize: Int
        /// More fields than this is a 431.
        public var maxFieldCount: Int

        public init(maxHeadSize: Int = 32 * 1024, maxFieldCount: Int = 1000) {
            self.maxHeadSize = maxHeadSize
            self.maxFieldCount = maxFieldCount
        }
    }

    /// What one call of ``next(_:)`` found.
    public enum Event: Sendable {
        /// A complete request head; its body (if any) follows as `.body` parts, then `.end`.
        case head(HTTPRequestHead)
        /// A slice of the buffer passed in: no copy.
        case body(ByteBuffer)
        /// The request is complete (for a body-less request, right after its head).
        case end
    }

    private enum State {
        /// Waiting for a whole head: the first `scanned` readable bytes hold no end of head.
        case head(scanned: Int)
        /// The message is complete; `.end` is due.
        case messageEnd
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        /// After the last chunk: trailer fields, then CRLF.
        case trailers(scanned: Int)
        case failed(HTTPError)
    }

    /// A chunk-size line with its extensions (Node's CVE-2024-22019: unbounded extensions).
    static let maxChunkLineSize = 4096
    /// Longer methods are not methods (nginx caps them too).
    static let maxMethodLength = 32

    public let limits: Limits
    private var state: State = .head(scanned: 0)

    /// A parser at the start of a connection.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Consumes bytes from the front of `buffer` and returns the next event, or nil when it needs
    /// more bytes. After it throws, every later call throws the same error.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTPError) -> Event? {
        do {
            return try step(&buffer)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(HTTPError) -> Event? {
        switch state {
        case .head(let scanned):
            return try head(&buffer, scanned: scanned)
        case .messageEnd:
            state = .head(scanned: 0)
            return .end
        case .fixedBody(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let length = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: length)!
            state = length == remaining ? .messageEnd : .fixedBody(remaining: remaining - length)
            return .body(slice)
        case .chunkSize:
            guard let size = try Self.chunkSizeLine(&buffer) else { return nil }
            state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size)
            return try step(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let length = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: length)!
            state = length == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - length)
            return .body(slice)
        case .chunkDataEnd:
            let available = buffer.readableBytes
            guard available > 0 else { return nil }
            guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == .cr else {
                throw Self.malformed("chunk data longer than its size")
            }
            guard available > 1 else { return nil }
            guard buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) == .lf else {
                throw Self.malformed("chunk data not followed by CRLF")
            }
            buffer.moveReaderIndex(forwardBy: 2)
            state = .chunkSize
            return try step(&buffer)
        case .trailers(let scanned):
            guard try trailers(&buffer, scanned: scanned) else { return nil }
            state = .head(scanned: 0)
            return .end
        case .failed(let error):
            throw error
        }
    }

    static func malformed(_ reason: String) -> HTTPError {
        HTTPError(400, reason, closeConnection: true)
    }

    // MARK: Head

    private mutating func head(_ buffer: inout ByteBuffer, scanned: Int) throws(HTTPError) -> Event? {
        if scanned == 0 {
            // RFC 9112 §2.2: empty lines before a request line are ignored.
            while buffer.readableBytes >= 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == .cr {
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) == .lf else {
                    throw Self.malformed("bare CR before the request line")
                }
                buffer.moveReaderIndex(forwardBy: 2)
            }
        }
        let limits = self.limits
        let found = try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) -> Int? in
            try Self.endOfSection(bytes, from: scanned, limit: limits.maxHeadSize, what: "request head")
        }
        guard let length = found else {
            state = .head(scanned: buffer.readableBytes)
            return nil
        }
        let parsed = try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) -> ParsedHead in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[0..<length]), limits: limits)
        }
        buffer.moveReaderIndex(forwardBy: length)
        switch parsed.framing {
        case .none: state = .messageEnd
        case .contentLength(let length): state = length == 0 ? .messageEnd : .fixedBody(remaining: length)
        case .chunked: state = .chunkSize
        }
        return .head(parsed.head)
    }

    /// The length of a section (head or trailers) that ends with an empty line, or nil when its
    /// end is not in `bytes` yet. Bytes before `from` were scanned before. Checks on the way that
    /// every LF follows a CR, and that the section stays within `limit`.
    private static func endOfSection(
        _ bytes: UnsafeRawBufferPointer, from: Int, limit: Int, what: String
    ) throws(HTTPError) -> Int? {
        var index = from
        let count = bytes.count
        while let lineFeed = HTTPSyntax.lineFeed(in: bytes, from: index) {
            index = lineFeed
            guard index > 0, bytes[index - 1] == .cr else {
                throw malformed("bare LF in the \(what)")
            }
            // CRLF CRLF, or a section that is one empty line (trailers).
            if index == 1 || bytes[index - 2] == .lf {
                guard index < limit else { throw tooLarge(what) }
                return index + 1
            }
            index += 1
        }
        if count > limit { throw tooLarge(what) }
        return nil
    }

    private static func tooLarge(_ what: String) -> HTTPError {
        HTTPError(431, "\(what) over the size limit", closeConnection: true)
    }

    private enum Framing {
        case none
        case contentLength(Int)
        case chunked
    }

    private struct ParsedHead {
        var head: HTTPRequestHead
        var framing: Framing
    }

    /// Parses a complete head: `bytes` ends with CRLF CRLF and every LF in it follows a CR.
    private static func parseHead(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws(HTTPError) -> ParsedHead {
        // Request line: method SP request-target SP HTTP-version CRLF (RFC 9112 §3).
        var index = 0
        while isMethodByte(bytes[index]) { index += 1 }
        guard index > 0, index <= maxMethodLength, bytes[index] == .space else {
            throw malformed("invalid method")
        }
        let method = Self.method(UnsafeRawBufferPointer(rebasing: bytes[0..<index]))
        index += 1
        let targetStart = index
        while isTargetByte(bytes[index]) { index += 1 }
        guard index > targetStart, bytes[index] == .space else {
            throw malformed("invalid request-target")
        }
        let uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)
        index += 1
        let version = try Self.version(bytes, at: index)
        index += 10

        // Field lines (RFC 9112 §5), until the empty line.
        var fields: [(String, String)] = []
        // One allocation of about the right size: field lines average well over 32 bytes.
        fields.reserveCapacity(min(64, max(4, bytes.count / 32)))
        var contentLength: Int?
        var contentLengthCount = 0
        var transferEncodingCount = 0
        var chunked = false
        while bytes[index] != .cr {
            let line = try fieldLine(bytes, at: index)
            guard fields.count < limits.maxFieldCount else {
                throw HTTPError(431, "more than \(limits.maxFieldCount) header fields", closeConnection: true)
            }
            let name = UnsafeRawBufferPointer(rebasing: bytes[line.nameStart..<line.nameEnd])
            let value = UnsafeRawBufferPointer(rebasing: bytes[line.valueStart..<line.valueEnd])
            if HTTPSyntax.equalsLowercased(name, "content-length") {
                contentLengthCount += 1
                contentLength = HTTPSyntax.decimal(value)
            } else if HTTPSyntax.equalsLowercased(name, "transfer-encoding") {
                transferEncodingCount += 1
                chunked = HTTPSyntax.equalsLowercased(value, "chunked")
            }
            // Values travel as bytes: obs-text that is not UTF-8 reaches the backend unchanged.
            fields.append((String(decoding: name, as: UTF8.self), FieldBytes.string(value)))
            index = line.next
        }
        // The loop stops at a CR; only the final CRLF may be there (else it was a bare CR).
        guard index == bytes.count - 2 else { throw malformed("bare CR in the request head") }

        let framing: Framing
        if transferEncodingCount > 0 {
            if transferEncodingCount > 1 { throw malformed("more than one Transfer-Encoding") }
            if contentLengthCount > 0 { throw malformed("both Content-Length and Transfer-Encoding") }
            if version.minor == 0 { throw malformed("Transfer-Encoding in an HTTP/1.0 request") }
            guard chunked else { throw HTTPError(501, "unsupported Transfer-Encoding", closeConnection: true) }
            framing = .chunked
        } else if contentLengthCount > 0 {
            guard contentLengthCount == 1, let length = contentLength else {
                throw malformed(contentLengthCount > 1 ? "more than one Content-Length" : "invalid Content-Length")
            }
            framing = .contentLength(length)
        } else {
            framing = .none
        }
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(fields))
        return ParsedHead(head: head, framing: framing)
    }

    /// `HTTP/1.1 CRLF` or `HTTP/1.0 CRLF` at `index`; another well-formed version is a 505.
    private static func version(_ bytes: UnsafeRawBufferPointer, at index: Int) throws(HTTPError) -> HTTPVersion {
        guard index + 10 <= bytes.count,
            bytes[index] == UInt8(ascii: "H"), bytes[index + 1] == UInt8(ascii: "T"),
            bytes[index + 2] == UInt8(ascii: "T"), bytes[index + 3] == UInt8(ascii: "P"),
            bytes[index + 4] == UInt8(ascii: "/"), HTTPSyntax.isDigit(bytes[index + 5]),
            bytes[index + 6] == UInt8(ascii: "."), HTTPSyntax.isDigit(bytes[index + 7]),
            bytes[index + 8] == .cr, bytes[index + 9] == .lf
        else {
            throw malformed("invalid HTTP version")
        }
        let major = Int(bytes[index + 5] - UInt8(ascii: "0"))
        let minor = Int(bytes[index + 7] - UInt8(ascii: "0"))
        guard major == 1, minor <= 1 else {
            throw HTTPError(505, "HTTP/\(major).\(minor) not supported", closeConnection: true)
        }
        return HTTPVersion(major: 1, minor: minor)
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        // The common ones without building a String.
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"):
            return .GET
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S")
            && bytes[3] == UInt8(ascii: "T"):
            return .POST
        case 4 where bytes[0] == UInt8(ascii: "H") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "A")
            && bytes[3] == UInt8(ascii: "D"):
            return .HEAD
        default:
            return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
        }
    }

    private struct FieldLine {
        var nameStart: Int
        var nameEnd: Int
        var valueStart: Int
        var valueEnd: Int
        /// The start of the next line.
        var next: Int
    }

    /// `name ":" OWS value OWS CRLF` at `index` (RFC 9112 §5.1). A line that starts with
    /// whitespace (obs-fold) fails here: its name is empty.
    private static func fieldLine(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(HTTPError) -> FieldLine {
        var index = start
        while HTTPSyntax.isTokenByte(bytes[index]) { index += 1 }
        guard index > start, bytes[index] == UInt8(ascii: ":") else {
            throw malformed(index == start ? "field line without a name (or obs-fold)" : "invalid byte in a field name")
        }
        let nameEnd = index
        index += 1
        while bytes[index] == .space || bytes[index] == .tab { index += 1 }
        let valueStart = index
        while isFieldByte(bytes[index]) { index += 1 }
        // The scan stops at CR, or at a control byte; a CR must start CRLF.
        guard bytes[index] == .cr, bytes[index + 1] == .lf else {
            throw malformed("invalid byte in a field value")
        }
        var valueEnd = index
        while valueEnd > valueStart, bytes[valueEnd - 1] == .space || bytes[valueEnd - 1] == .tab {
            valueEnd -= 1
        }
        return FieldLine(nameStart: start, nameEnd: nameEnd, valueStart: valueStart, valueEnd: valueEnd, next: index + 2)
    }

    // MARK: Chunked body

    /// Reads a chunk-size line (RFC 9112 §7.1): 1*HEXDIG, optional `;` extensions, CRLF. nil
    /// when the line is not complete yet.
    private static func chunkSizeLine(_ buffer: inout ByteBuffer) throws(HTTPError) -> Int? {
        let parsed = try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) -> (size: Int, length: Int)? in
            var index = 0
            var size = 0
            while index < bytes.count, let digit = hexValue(bytes[index]) {
                // At most 15 significant digits: no chunk is 2^60 bytes, and no shift overflows.
                guard size < 1 << 56 else { throw malformed("chunk size overflows") }
                size = size << 4 | digit
                index += 1
            }
            if index == bytes.count {
                guard index < maxChunkLineSize else { throw malformed("chunk-size line too long") }
                return nil
            }
            guard index > 0 else { throw malformed("invalid chunk size") }
            // Extensions are ignored, but must have their grammar: a line that one parser reads
            // as extensions and another as something else is how chunked smuggling starts.
            guard let end = try chunkExtensionsEnd(bytes, from: index) else {
                guard bytes.count < maxChunkLineSize else { throw malformed("chunk-size line too long") }
                return nil
            }
            index = end
            guard index + 1 < bytes.count else { return nil }
            guard bytes[index + 1] == .lf else { throw malformed("bare CR in a chunk-size line") }
            guard index + 2 <= maxChunkLineSize else { throw malformed("chunk-size line too long") }
            return (size, index + 2)
        }
        guard let parsed else { return nil }
        buffer.moveReaderIndex(forwardBy: parsed.length)
        return parsed.size
    }

    /// The index of the CR that ends `*( BWS ";" BWS token [ BWS "=" BWS ( token /
    /// quoted-string ) ] )` from `start` (RFC 9112 §7.1.1); nil when the line is not complete.
    private static func chunkExtensionsEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(HTTPError) -> Int? {
        var index = start
        func skipWhitespace() {
            while index < bytes.count, bytes[index] == .space || bytes[index] == .tab { index += 1 }
        }
        func token() throws(HTTPError) -> Bool {
            let first = index
            while index < bytes.count, HTTPSyntax.isTokenByte(bytes[index]) { index += 1 }
            if index == bytes.count { return false }
            guard index > first else { throw malformed("invalid chunk extension") }
            return true
        }
        /// Past the quoted-string that opens at `index`; false when it is not complete.
        func quotedString() throws(HTTPError) -> Bool {
            var position = index + 1
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    index = position + 1
                    return true
                }
                if byte == UInt8(ascii: "\\") {
                    position += 1
                    guard position < bytes.count else { return false }
                    guard isFieldByte(bytes[position]) else { throw malformed("invalid chunk extension") }
                } else if !isFieldByte(byte) {
                    // Also CR and LF: a quote left open does not swallow the line end.
                    throw malformed("invalid chunk extension")
                }
                position += 1
            }
            return false
        }
        while true {
            let beforeWhitespace = index
            skipWhitespace()
            guard index < bytes.count else { return nil }
            if bytes[index] == .cr {
                // Whitespace is only allowed in front of ";" and around "=".
                guard index == beforeWhitespace else { throw malformed("invalid chunk extension") }
                return index
            }
            guard bytes[index] == UInt8(ascii: ";") else { throw malformed("invalid chunk size") }
            index += 1
            skipWhitespace()
            guard try token() else { return nil }
            let afterName = index
            skipWhitespace()
            guard index < bytes.count else { return nil }
            guard bytes[index] == UInt8(ascii: "=") else {
                index = afterName
                continue
            }
            index += 1
            skipWhitespace()
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "\"") {
                guard try quotedString() else { return nil }
            } else {
                guard try token() else { return nil }
            }
        }
    }

    /// Consumes the trailer section once it is complete (true); its fields are checked and
    /// dropped: trailers never become request fields or PARAMS.
    private mutating func trailers(_ buffer: inout ByteBuffer, scanned: Int) throws(HTTPError) -> Bool {
        let limit = limits.maxHeadSize
        let length = try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) -> Int? in
            guard let length = try Self.endOfSection(bytes, from: scanned, limit: limit, what: "trailer section") else {
                return nil
            }
            var index = 0
            while bytes[index] != .cr {
                index = try Self.fieldLine(bytes, at: index).next
            }
            guard index == length - 2 else { throw Self.malformed("bare CR in the trailer section") }
            return length
        }
        guard let length else {
            state = .trailers(scanned: buffer.readableBytes)
            return false
        }
        buffer.moveReaderIndex(forwardBy: length)
        return true
    }

    // MARK: Byte classes

    /// Methods as nginx takes them: upper-case letters, `-` and `_`.
    @inline(__always)
    private static func isMethodByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// Visible bytes, obs-text included; no space, no control.
    @inline(__always)
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != 0x7F
    }

    /// field-vchar, SP and HTAB (RFC 9110 §5.5).
    @inline(__always)
    private static func isFieldByte(_ byte: UInt8) -> Bool {
        byte == .tab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

extension UInt8 {
    fileprivate static let cr = UInt8(ascii: "\r")
    fileprivate static let lf = UInt8(ascii: "\n")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let tab = UInt8(ascii: "\t")
}
