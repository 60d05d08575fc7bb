import HTTPFieldBytes
import NIOCore

/// The CGI response header block (RFC 3875 §6) turned into what the front end sends or does.
public struct CGIResponseHead: Sendable, Equatable {
    /// What the response asks the proxy to do.
    public enum Kind: Sendable, Equatable {
        /// Send status, headers and body to the client.
        case document
        /// RFC 3875 §6.2.2: the only field is `Location: /path?query` (not `//…`) and there is no
        /// `Status`: re-dispatch the path internally as a GET, send nothing of this response.
        case localRedirect(String)
        /// A `Location` without `Status` that is not a local redirect: status 302 to the client.
        case clientRedirect
    }

    /// From `Status:`; 200 when absent, 302 for both redirect kinds.
    public var status: Int
    /// The reason phrase after the code in `Status:`, if any.
    public var reason: String?
    /// Fields in order, `Status` and hop-by-hop/framing fields removed; repeated fields such as
    /// `Set-Cookie` stay separate entries.
    public var headers: [(name: String, value: String)]
    public var kind: Kind
    /// From a valid `Content-Length` field; nil when there is none.
    public var contentLength: Int?

    /// Memberwise.
    public init(
        status: Int, reason: String? = nil, headers: [(name: String, value: String)] = [], kind: Kind = .document,
        contentLength: Int? = nil
    ) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.kind = kind
        self.contentLength = contentLength
    }

    /// Whether the script sent its own `Date` and `Server`: the front ends add ours only when
    /// it did not (RFC 9110 §6.6.1: to the client, we are the origin).
    public var sendsDateAndServer: (date: Bool, server: Bool) {
        var result = (date: false, server: false)
        for field in headers {
            switch field.name.utf8.count {
            case 4 where field.name.equalsLowercasedASCII("date"): result.date = true
            case 6 where field.name.equalsLowercasedASCII("server"): result.server = true
            default: break
            }
        }
        return result
    }

    /// Field by field; header order matters.
    public static func == (lhs: CGIResponseHead, rhs: CGIResponseHead) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason && lhs.kind == rhs.kind
            && lhs.contentLength == rhs.contentLength && lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Incremental parser of the CGI header block at the start of FastCGI STDOUT.
///
/// Feed it STDOUT bytes as they come, split anywhere (a CR and its LF may arrive in different
/// records). Lines end in LF or CRLF; an empty line ends the block. Every malformed or
/// smuggling-shaped block is `HTTPError(502)`:
/// - `Status` not `3DIGIT [SP reason]`, outside 200…599 (so also 1xx: a CGI script cannot
///   switch protocols), or given twice;
/// - a field name that is not a token (so also a space before the colon, or a first line like
///   `HTTP/1.1 200 OK`: non-parsed-header responses are not supported), a line without colon;
/// - an obs-fold continuation line, a bare CR, NUL or any other control but HTAB in a value;
/// - an invalid `Content-Length`, or two that differ (identical repeats collapse to one);
///   a list form like `5, 5` counts as invalid;
/// - two `Location` fields;
/// - a block larger than `maxHeaderSize` bytes (line ends included).
///
/// An empty block (the blank line straight away) is accepted as a 200 with no fields, as nginx
/// does, although RFC 3875 asks for at least one field. Values are decoded as UTF-8; bytes that
/// are not valid UTF-8 (obs-text) become U+FFFD.
public struct CGIResponseHeadParser: Sendable {
    /// What one `feed` produced.
    public enum Result: Sendable {
        /// The block is not complete yet; every byte fed so far has been consumed.
        case needMoreData
        /// The block is complete; `body` is the rest of the fed buffer after the blank line
        /// (a slice, possibly empty). The parser must not be fed again.
        case head(CGIResponseHead, body: ByteBuffer)
    }

    private let maxHeaderSize: Int
    private var consumedBytes = 0
    /// The line being assembled across feeds (without its LF).
    private var line: [UInt8] = []
    private var isComplete = false

    private var status: Int?
    private var reason: String?
    private var headers: [(name: String, value: String)] = []
    private var location: String?
    private var contentLength: Int?

    /// `maxHeaderSize`: the largest header block accepted, in bytes.
    public init(maxHeaderSize: Int = 64 * 1024) {
        self.maxHeaderSize = maxHeaderSize
    }

    /// True until the parser has room for fields: before the first ``feed(_:)``, unless
    /// ``useFieldStorage(_:)`` gave it some.
    public var needsFieldStorage: Bool { headers.capacity == 0 }

    /// Lets the head's fields take the room of `list` (a loop recycles one list from head to
    /// head, which saves an allocation per response); its elements, if any, are dropped. Only
    /// before the first field.
    public mutating func useFieldStorage(_ list: [(name: String, value: String)]) {
        guard headers.isEmpty else { return }
        headers = list
        if !headers.isEmpty { headers.removeAll(keepingCapacity: true) }
    }

    /// Consumes header bytes from `buffer` (all of them, unless the block ends inside it).
    ///
    /// Lines that lie whole in `buffer` are parsed where they are; only a line split across
    /// feeds is assembled in `line`.
    public mutating func feed(_ buffer: inout ByteBuffer) throws(HTTPError) -> Result {
        guard !isComplete else {
            throw HTTPError(500, "CGI response head parser fed after the head was complete")
        }
        if headers.capacity == 0 { headers.reserveCapacity(12) }
        // withUnsafeReadableBytes rethrows untyped errors: carry ours out as a value.
        let outcome = buffer.withUnsafeReadableBytes { bytes -> Swift.Result<(Int, Bool), HTTPError> in
            Swift.Result { () throws(HTTPError) -> (Int, Bool) in
                var start = 0
                while start < bytes.count {
                    guard let lineFeed = HTTPSyntax.lineFeed(in: bytes, from: start) else {
                        try count(bytes.count - start)
                        line.append(contentsOf: bytes[start...])
                        return (bytes.count, false)
                    }
                    try count(lineFeed - start + 1)
                    let done: Bool
                    if line.isEmpty {
                        done = try takeLine(UnsafeRawBufferPointer(rebasing: bytes[start..<lineFeed]))
                    } else {
                        line.append(contentsOf: bytes[start..<lineFeed])
                        var assembled: [UInt8] = []
                        swap(&assembled, &line)
                        let result = assembled.withUnsafeBytes { whole in
                            Swift.Result { () throws(HTTPError) -> Bool in try takeLine(whole) }
                        }
                        done = try result.get()
                    }
                    start = lineFeed + 1
                    if done { return (start, true) }
                }
                return (start, false)
            }
        }
        let (consumed, complete) = try outcome.get()
        buffer.moveReaderIndex(forwardBy: consumed)
        guard complete else { return .needMoreData }
        isComplete = true
        let body = buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
        return .head(takeHead(), body: body)
    }

    /// One line without its LF; true when it is the blank line that ends the block.
    private mutating func takeLine(_ raw: UnsafeRawBufferPointer) throws(HTTPError) -> Bool {
        var line = raw
        if line.last == UInt8(ascii: "\r") {
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        if line.isEmpty { return true }
        let (name, value) = try Self.splitField(line)
        try addField(name: UnsafeRawBufferPointer(rebasing: line[name]), value: UnsafeRawBufferPointer(rebasing: line[value]))
        return false
    }

    private mutating func count(_ bytes: Int) throws(HTTPError) {
        consumedBytes += bytes
        if consumedBytes > maxHeaderSize {
            throw HTTPError(502, "CGI response header block larger than \(maxHeaderSize) bytes")
        }
    }

    /// Ranges of the name and of the trimmed value in `line` (which has no line end).
    private static func splitField(_ line: UnsafeRawBufferPointer) throws(HTTPError) -> (Range<Int>, Range<Int>) {
        if line[0] == UInt8(ascii: " ") || line[0] == UInt8(ascii: "\t") {
            throw HTTPError(502, "CGI response uses an obs-fold continuation line")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw HTTPError(502, "CGI response header line without colon")
        }
        guard colon > 0, line[..<colon].allSatisfy(HTTPSyntax.isTokenByte) else {
            throw HTTPError(502, "CGI response header name is not a token")
        }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") {
            start += 1
        }
        while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") {
            end -= 1
        }
        // Checked after trimming so a trailing bare CR ("a\r\r\n") cannot hide as whitespace.
        for byte in line[start..<end] where (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
            throw HTTPError(502, "control character in CGI response header value")
        }
        return (0..<colon, start..<end)
    }

    private mutating func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(HTTPError) {
        if HTTPSyntax.equalsLowercased(name, "status") {
            guard status == nil else {
                throw HTTPError(502, "CGI response has two Status fields")
            }
            let (code, reason) = try Self.parseStatus(value)
            self.status = code
            self.reason = reason
            return
        }
        if Self.hopByHopFields.contains(where: { HTTPSyntax.equalsLowercased(name, $0) }) {
            return
        }
        let valueString = FieldBytes.string(value)
        if HTTPSyntax.equalsLowercased(name, "content-length") {
            guard let length = HTTPSyntax.decimal(value) else {
                throw HTTPError(502, "invalid Content-Length in CGI response")
            }
            if let contentLength {
                guard contentLength == length else {
                    throw HTTPError(502, "conflicting Content-Length fields in CGI response")
                }
                return
            }
            contentLength = length
        } else if HTTPSyntax.equalsLowercased(name, "location") {
            guard location == nil else {
                throw HTTPError(502, "CGI response has two Location fields")
            }
            location = valueString
        }
        headers.append((String(decoding: name, as: UTF8.self), valueString))
    }

    /// The head, with the field list moved out of the parser (done with it) rather than copied.
    private mutating func takeHead() -> CGIResponseHead {
        var headers: [(name: String, value: String)] = []
        swap(&headers, &self.headers)
        if let status {
            return CGIResponseHead(
                status: status, reason: reason, headers: headers, kind: .document, contentLength: contentLength)
        }
        guard let location else {
            return CGIResponseHead(status: 200, headers: headers, kind: .document, contentLength: contentLength)
        }
        // RFC 3875 §6.2.2: a local redirect has no other field; with others it goes to the client.
        let isLocal = location.hasPrefix("/") && !location.hasPrefix("//")
        let kind: CGIResponseHead.Kind = isLocal && headers.count == 1 ? .localRedirect(location) : .clientRedirect
        return CGIResponseHead(status: 302, headers: headers, kind: kind, contentLength: contentLength)
    }

    /// Fields that describe the backend hop or its framing; the front end frames the response itself.
    private static let hopByHopFields: [StaticString] = [
        "transfer-encoding", "connection", "keep-alive", "upgrade", "proxy-connection", "te", "trailer",
    ]

    private static func parseStatus(_ value: UnsafeRawBufferPointer) throws(HTTPError) -> (Int, String?) {
        let digits = value.prefix(3)
        guard digits.count == 3, digits.allSatisfy(HTTPSyntax.isDigit) else {
            throw HTTPError(502, "CGI Status is not a 3-digit code")
        }
        let rest = value.dropFirst(3)
        if let separator = rest.first, separator != UInt8(ascii: " ") && separator != UInt8(ascii: "\t") {
            throw HTTPError(502, "CGI Status is not a 3-digit code")
        }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        // RFC 9110 defines nothing above 5xx; a code clients cannot classify is a broken backend.
        guard (200...599).contains(code) else {
            throw HTTPError(502, "CGI Status \(code) is outside 200...599")
        }
        let reasonBytes = rest.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        return (code, reasonBytes.isEmpty ? nil : FieldBytes.string(reasonBytes))
    }
}
