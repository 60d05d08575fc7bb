import HTTPFieldBytes
import NIOCore
import NIOHTTP1
@testable import ProxyCore
import Testing

/// A parser event in comparable form. Adjacent body slices are joined: how a body is sliced depends on
/// how its bytes arrived and is not part of the contract.
enum ParseEvent: Equatable, Sendable, CustomStringConvertible {
    /// "METHOD target HTTP/x.y" and the fields as "name: value", in order.
    case head(String, [String] = [])
    case body(String)
    case end

    var description: String {
        switch self {
        case .head(let line, let fields): "head(\(line.debugDescription), \(fields))"
        case .body(let text): "body(\(text.debugDescription))"
        case .end: "end"
        }
    }
}

/// Feeds bytes to one parser and drains events after each feed, stopping at the first error.
struct Feeder {
    var parser: HTTP1RequestParser
    var buffer = ByteBuffer()
    var events: [ParseEvent] = []
    var heads: [HTTPRequestHead] = []
    var error: HTTPError?
    /// Whether a call after the error threw again.
    var errorIsSticky = false
    private var body: [UInt8] = []

    init(limits: HTTP1RequestParser.Limits = .init()) { parser = HTTP1RequestParser(limits: limits) }

    var leftover: String { String(decoding: buffer.readableBytesView, as: UTF8.self) }

    mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard error == nil else { return }
        buffer.writeBytes(bytes)
        do throws(HTTPError) {
            while let event = try parser.next(&buffer) { record(event) }
        } catch {
            self.error = error
            do throws(HTTPError) { _ = try parser.next(&buffer) } catch { errorIsSticky = true }
        }
    }

    private mutating func record(_ event: HTTP1RequestParser.Event) {
        switch event {
        case .head(let head):
            heads.append(head)
            let line = "\(head.method.rawValue) \(head.uri) HTTP/\(head.version.major).\(head.version.minor)"
            events.append(.head(line, head.headers.map { "\($0.name): \($0.value)" }))
        case .body(let slice):
            if case .body = events.last { events.removeLast() } else { body = [] }
            body += slice.readableBytesView
            events.append(.body(String(decoding: body, as: UTF8.self)))
        case .end:
            events.append(.end)
        }
    }
}

/// Feeds `input` whole (`pieces == nil`) or in pieces of `pieces` bytes.
func parse(_ input: [UInt8], pieces: Int? = nil, limits: HTTP1RequestParser.Limits = .init()) -> Feeder {
    var feeder = Feeder(limits: limits)
    let size = pieces ?? max(input.count, 1)
    for start in stride(from: 0, to: max(input.count, 1), by: size) {
        feeder.feed(input[start..<min(start + size, input.count)])
    }
    return feeder
}

func parse(_ input: String, pieces: Int? = nil, limits: HTTP1RequestParser.Limits = .init()) -> Feeder {
    parse(Array(input.utf8), pieces: pieces, limits: limits)
}

/// Every error must close the connection and leave the parser failed, however the bytes arrived.
func expectRejected(
    _ status: Int, _ input: [UInt8], limits: HTTP1RequestParser.Limits = .init(), pieces: [Int?] = [nil, 1],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let shown = String(decoding: input.prefix(120), as: UTF8.self).debugDescription
    for size in pieces {
        let outcome = parse(input, pieces: size, limits: limits)
        guard let error = outcome.error else {
            Issue.record("accepted \(shown) (pieces \(size ?? 0)): \(outcome.events)", sourceLocation: sourceLocation)
            continue
        }
        #expect(error.status == status, "\(shown) (pieces \(size ?? 0)): \(error)", sourceLocation: sourceLocation)
        #expect(error.closeConnection, "\(shown)", sourceLocation: sourceLocation)
        #expect(outcome.errorIsSticky, "\(shown)", sourceLocation: sourceLocation)
    }
}

func expectRejected(
    _ status: Int, _ input: String, limits: HTTP1RequestParser.Limits = .init(), pieces: [Int?] = [nil, 1],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    expectRejected(status, Array(input.utf8), limits: limits, pieces: pieces, sourceLocation: sourceLocation)
}

struct ValidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var events: [ParseEvent]
    var testDescription: String { name }
    init(_ name: String, _ input: String, _ events: [ParseEvent]) {
        (self.name, self.input, self.events) = (name, input, events)
    }
}

private let chunkedHead = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
private let chunkedHeadEvent = ParseEvent.head("POST / HTTP/1.1", ["Transfer-Encoding: chunked"])

@Suite struct HTTP1RequestParserTests {
    static let valid: [ValidCase] = [
        .init("GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", [.head("GET / HTTP/1.1", ["Host: a"]), .end]),
        .init("HTTP/1.0", "GET /x HTTP/1.0\r\n\r\n", [.head("GET /x HTTP/1.0"), .end]),
        // RFC 9112 §2.2: empty lines before the request line are ignored.
        .init("leading CRLFs", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", [.head("GET / HTTP/1.1"), .end]),
        // Target form is judged by RequestPath, not here (RFC 9112 §3.2).
        .init("asterisk", "OPTIONS * HTTP/1.1\r\n\r\n", [.head("OPTIONS * HTTP/1.1"), .end]),
        .init("absolute-form", "GET http://h/x HTTP/1.1\r\n\r\n", [.head("GET http://h/x HTTP/1.1"), .end]),
        .init("query, fragment", "GET /a?b=c#d HTTP/1.1\r\n\r\n", [.head("GET /a?b=c#d HTTP/1.1"), .end]),
        .init("unknown method", "FOO / HTTP/1.1\r\n\r\n", [.head("FOO / HTTP/1.1"), .end]),
        // RFC 9112 §5: OWS around the value is not part of it; case, order and duplicates are kept.
        .init(
            "field OWS, case, order",
            "GET / HTTP/1.1\r\nA:x\r\nB: \t x \t y \t \r\nC:\r\nD: \t \r\nx-MiXed: 1\r\nA: 2\r\n\r\n",
            [.head("GET / HTTP/1.1", ["A: x", "B: x \t y", "C: ", "D: ", "x-MiXed: 1", "A: 2"]), .end]),
        // RFC 9110 §5.6.2: every tchar.
        .init("tchar name", "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
              [.head("GET / HTTP/1.1", ["!#$%&'*+-.^_`|~09azAZ: v"]), .end]),
        .init("UTF-8 value", "GET / HTTP/1.1\r\nX: café\r\n\r\n", [.head("GET / HTTP/1.1", ["X: café"]), .end]),
        .init("Content-Length", "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
              [.head("POST /p HTTP/1.1", ["Content-Length: 5"]), .body("hello"), .end]),
        // Body bytes are opaque: CR, LF and NUL inside them mean nothing.
        .init("Content-Length zeros, OWS", "PUT / HTTP/1.1\r\ncontent-length: \t 0005 \t\r\n\r\na\r\n\0b",
              [.head("PUT / HTTP/1.1", ["content-length: 0005"]), .body("a\r\n\0b"), .end]),
        .init("Content-Length 0", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
              [.head("POST / HTTP/1.1", ["Content-Length: 0"]), .end]),
        .init("HTTP/1.0 body", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
              [.head("POST / HTTP/1.0", ["Content-Length: 2"]), .body("hi"), .end]),
        // RFC 9112 §7.1: extensions (quoted strings may hold ';' and '\"'), leading zeros, trailers dropped.
        .init(
            "chunked",
            chunkedHead + "5;foo=bar\r\nhello\r\nA;foo=\"b;a\\\"r\"\r\n0123456789\r\n000000000a\r\nabcdefghij\r\n"
                + "0;last=1\r\nX-Trailer: t\r\n\r\n",
            [chunkedHeadEvent, .body("hello0123456789abcdefghij"), .end]),
        .init("TE case, OWS",
              "POST / HTTP/1.1\r\nTransfer-Encoding: \t CHUNKED \t\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
              [.head("POST / HTTP/1.1", ["Transfer-Encoding: CHUNKED"]), .body("hello world"), .end]),
        .init("CRLF in chunk data", chunkedHead + "3\r\n\r\n\r\r\n0\r\n\r\n",
              [chunkedHeadEvent, .body("\r\n\r"), .end]),
        .init("extensions with BWS where RFC 9112 allows it",
              chunkedHead + "1 ;\ta = b ;d\t;e=\"q\\\"x y\" ; f\r\nx\r\n0\r\n\r\n",
              [chunkedHeadEvent, .body("x"), .end]),
        .init("many zeros", chunkedHead + "00000000000000000000005\r\nhello\r\n0\r\n\r\n",
              [chunkedHeadEvent, .body("hello"), .end]),
        .init("empty chunked", chunkedHead + "0\r\n\r\n", [chunkedHeadEvent, .end]),
        // A trailer is not framing: a Content-Length there is dropped, not a second length.
        .init("Content-Length trailer", chunkedHead + "2\r\nhi\r\n0\r\nContent-Length: 9\r\n\r\n",
              [chunkedHeadEvent, .body("hi"), .end]),
        .init("pipelined GETs", "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
              [.head("GET /a HTTP/1.1"), .end, .head("GET /b HTTP/1.1"), .end]),
        .init("pipelined CL + GET", "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n",
              [.head("POST /a HTTP/1.1", ["Content-Length: 3"]), .body("abc"), .end, .head("GET /b HTTP/1.1"), .end]),
        .init("pipelined chunked + GET", chunkedHead + "3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
              [chunkedHeadEvent, .body("abc"), .end, .head("GET /b HTTP/1.1"), .end]),
        // RFC 9112 §6.3: no framing means no body, whatever the method.
        .init("unframed POST + GET", "POST /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
              [.head("POST /a HTTP/1.1"), .end, .head("GET /b HTTP/1.1"), .end]),
        .init("CRLF between requests", "GET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
              [.head("GET /a HTTP/1.1"), .end, .head("GET /b HTTP/1.1"), .end]),
    ]

    @Test(arguments: valid)
    func parsesValid(_ request: ValidCase) {
        let outcome = parse(request.input)
        #expect(outcome.error == nil)
        #expect(outcome.events == request.events)
        #expect(outcome.leftover == "")
    }

    @Test(arguments: valid, [1, 2, 3, 7, 16])
    func splitFeedingMatchesWhole(_ request: ValidCase, pieces: Int) {
        let whole = parse(request.input), split = parse(request.input, pieces: pieces)
        #expect(split.error == whole.error)
        #expect(split.events == whole.events)
        #expect(split.leftover == whole.leftover)
    }

    @Test(arguments: [
        ("GET", HTTPMethod.GET), ("POST", .POST), ("PROPFIND", .PROPFIND), ("FOO", .RAW(value: "FOO")),
        // NIO's .MSEARCH spells itself "MSEARCH"; only .RAW keeps the name the client sent.
        ("M-SEARCH", .RAW(value: "M-SEARCH")), ("_-A", .RAW(value: "_-A")),
        (String(repeating: "A", count: 32), .RAW(value: String(repeating: "A", count: 32))),
    ] as [(String, HTTPMethod)])
    func methodIsMapped(_ raw: String, _ method: HTTPMethod) {
        let outcome = parse("\(raw) /t HTTP/1.1\r\n\r\n")
        #expect(outcome.heads.map(\.method) == [method])
        #expect(outcome.heads.map(\.method.rawValue) == [raw])
        #expect(outcome.heads.map(\.uri) == ["/t"])
        #expect(outcome.heads.map(\.version) == [.http1_1])
    }

    /// obs-text in a value is kept as the bytes sent, whether or not it is UTF-8.
    @Test func valueBytesAreKept() throws {
        let value: [UInt8] = [0xE9, 0xFF, 0x20, 0xC3, 0xA9]
        let outcome = parse(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Obs: ".utf8) + value + Array("\r\n\r\n".utf8))
        #expect(outcome.error == nil)
        let head = try #require(outcome.heads.first)
        #expect(FieldBytes.bytes(try #require(head.headers.first(name: "x-obs"))) == value)
        #expect(head.headers.first(name: "x-obs")?.unicodeScalars.contains("\u{FFFD}") == false)
    }

    /// Each byte in one position of the request, accepted exactly when the grammar allows it there.
    @Test(arguments: UInt8.min...UInt8.max)
    func byteClasses(_ byte: UInt8) {
        let tchar = Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            || (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        let visible = (0x21...0x7E).contains(byte) || byte >= 0x80
        let cases: [(String, String, accepted: Bool)] = [
            // RFC 9112 §3.1 method = token, narrowed here to A-Z, '-', '_'.
            ("G", "T / HTTP/1.1\r\n\r\n", (0x41...0x5A).contains(byte) || byte == 0x2D || byte == 0x5F),
            ("GET /", " HTTP/1.1\r\n\r\n", visible),
            // RFC 9110 §5.1: field-name = token (':' just ends the name early).
            ("GET / HTTP/1.1\r\nX", "Y: v\r\n\r\n", tchar || byte == 0x3A),
            // RFC 9110 §5.5: field-vchar, SP and HTAB only.
            ("GET / HTTP/1.1\r\nX: a", "b\r\n\r\n", visible || byte == 0x20 || byte == 0x09),
            // RFC 9112 §7.1.1: chunk-ext-name = token.
            (chunkedHead + "1;e", "\r\nx\r\n0\r\n\r\n", tchar),
            // chunk-ext-val = token / quoted-string (qdtext and quoted-pair: HTAB, SP, visible).
            (chunkedHead + "1;e=\"", "\"\r\nx\r\n0\r\n\r\n", (visible && byte != 0x22 && byte != 0x5C) || byte == 0x20 || byte == 0x09),
        ]
        for (before, after, accepted) in cases {
            let input = Array(before.utf8) + [byte] + Array(after.utf8)
            if accepted {
                let outcome = parse(input)
                #expect(outcome.error == nil, "\(before.debugDescription) + \(byte)")
                #expect(outcome.events.last == .end, "\(before.debugDescription) + \(byte)")
            } else {
                expectRejected(400, input)
            }
        }
    }

    @Test(arguments: [
        // RFC 9112 §3: exactly one SP between the three parts; no other whitespace.
        "GET  / HTTP/1.1", "GET /  HTTP/1.1", "GET\t/ HTTP/1.1", "GET /\tHTTP/1.1", " GET / HTTP/1.1",
        "GET / / HTTP/1.1", "get / HTTP/1.1", "GET HTTP/1.1", "/ HTTP/1.1", "GET / HTTP/1.1\r",
        String(repeating: "A", count: 33) + " / HTTP/1.1",
        // HTTP/0.9 simple request (RFC 9112 §2.3 leaves it unsupported).
        "GET /",
    ])
    func rejectsRequestLine(_ line: String) {
        expectRejected(400, line + "\r\n\r\n")
    }

    @Test(arguments: [
        ("HTTP/1.1", nil), ("HTTP/1.0", nil),
        // RFC 9112 §2.3: a well-formed version we do not speak is 505, not a syntax error.
        ("HTTP/2.0", 505), ("HTTP/1.2", 505), ("HTTP/0.9", 505), ("HTTP/9.9", 505),
        ("HTTP/1.10", 400), ("HTTP/01.1", 400), ("http/1.1", 400), ("Http/1.1", 400), ("HTTPS/1.1", 400),
        ("HTTP/1.1 ", 400), ("HTTP/1.1\t", 400), ("HTTP/1.1\0", 400), ("HTTP/1", 400), ("HTTP/1.", 400),
        ("HTTP/.1", 400), ("HTTP/a.1", 400), ("HTTP/1,1", 400), ("HTTP/2", 400), ("HTTP/", 400),
    ] as [(String, Int?)])
    func version(_ version: String, _ status: Int?) {
        let input = "GET / \(version)\r\n\r\n"
        if let status {
            expectRejected(status, input)
        } else {
            #expect(parse(input).events == [.head("GET / \(version)"), .end])
        }
    }

    @Test(arguments: [
        // RFC 9112 §2.2: a bare LF is not a line terminator here, anywhere.
        "\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\n\r\n", "GET / HTTP/1.1\r\n\n",
        "GET / HTTP/1.1\r\nX: a\n\r\n", "GET / HTTP/1.1\r\nX: a\r\n\n",
        // RFC 9112 §2.2: a bare CR is rejected.
        "\rGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "GET / HTTP/1.1\r\nX: a\r\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n\rY: b\r\n\r\n",
        // RFC 9112 §5.2 obs-fold, and §2.2 whitespace before the first field line.
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "GET / HTTP/1.1\r\n\tHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n \r\n\r\n",
        // RFC 9112 §5.1: no whitespace between name and colon (smuggling vector).
        "GET / HTTP/1.1\r\nX-A : a\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\nhello",
        "GET / HTTP/1.1\r\n: x\r\n\r\n", "GET / HTTP/1.1\r\nX a\r\n\r\n", "GET / HTTP/1.1\r\nX\r\n\r\n",
    ])
    func rejectsMalformedHead(_ input: String) {
        expectRejected(400, input)
    }

    @Test(arguments: [
        "+5", "-1", "0x5", "5 5", "5, 5", "5,5", "", " \t ", "5a", "9999999999999999999", "99999999999999999999",
    ])
    func rejectsContentLengthValue(_ value: String) {
        expectRejected(400, "POST / HTTP/1.1\r\nContent-Length: \(value)\r\n\r\nhello")
    }

    @Test func acceptsEighteenDigitContentLength() {
        let outcome = parse("POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\nab")
        #expect(outcome.error == nil)
        #expect(outcome.events.first == .head("POST / HTTP/1.1", ["Content-Length: 999999999999999999"]))
        #expect(outcome.events.last != .end)
    }

    @Test(arguments: [
        // RFC 9112 §6.3: ambiguous framing is a smuggling vector, so refuse rather than pick one.
        "Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5\r\nContent-Length: 6",
        "content-length: 5\r\nCONTENT-LENGTH: 5", "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
        "transfer-encoding: chunked\r\nTransfer-Encoding: chunked",
    ])
    func rejectsAmbiguousFraming(_ fields: String) {
        expectRejected(400, "POST / HTTP/1.1\r\n\(fields)\r\n\r\n0\r\n\r\n")
    }

    /// RFC 9112 §6.1: a 1.0 message with Transfer-Encoding is faulty framing.
    @Test func rejectsTransferEncodingInHTTP10() {
        expectRejected(400, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    }

    /// RFC 9112 §6.1: only `chunked` alone is understood; anything else is 501.
    @Test(arguments: [
        "gzip", "identity", "gzip, chunked", "chunked, identity", "chunkedchunked", "\"chunked\"", "chunked, chunked",
        "x-chunked",
    ])
    func rejectsTransferCoding(_ value: String) {
        expectRejected(501, "POST / HTTP/1.1\r\nTransfer-Encoding: \(value)\r\n\r\n0\r\n\r\n")
    }

    @Test(arguments: [
        // RFC 9112 §7.1: chunk-size = 1*HEXDIG, no sign, prefix or whitespace; 16 digits would overflow.
        "\r\n", ";x\r\n", "0x10\r\n", "+a\r\n", "-1\r\n", " a\r\n", "a \r\n", "a\t\r\n", "g\r\n",
        // RFC 9112 §7.1.1: each extension has a token name, a value is a token or a closed quoted-string.
        "5;\r\nhello\r\n0\r\n\r\n", "5;=x\r\nhello\r\n0\r\n\r\n", "5;a=\"x\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n", "5;a b\r\nhello\r\n0\r\n\r\n", "5;a=b c\r\nhello\r\n0\r\n\r\n",
        "5;a \r\nhello\r\n0\r\n\r\n", "5 x\r\nhello\r\n0\r\n\r\n", "5;é\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\\\r\nhello\r\n0\r\n\r\n", "5;;a\r\nhello\r\n0\r\n\r\n",
        "ffffffffffffffff\r\n", "1ffffffffffffffff\r\n", "10000000000000000\r\n",
        // 16 significant digits even when the value would fit an Int.
        "1000000000000000\r\n", "7fffffffffffffff\r\n", "0001000000000000000\r\n",
        // Chunk data is followed by exactly CRLF.
        "5\r\nhello!\r\n0\r\n\r\n", "5\r\nhello\r\r\n0\r\n\r\n", "5\r\nhelloXY",
        "5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5;x\nhello\r\n0\r\n\r\n",
        // RFC 9112 §7.1.2: trailer fields are validated like header fields.
        "0\r\n\n", "0\r\nX: t\n\r\n", "0\r\nX t\r\n\r\n", "0\r\n X: t\r\n\r\n", "0\r\nX: t\r\n u\r\n\r\n",
        "0\r\nX: \0\r\n\r\n", "0\r\nX : t\r\n\r\n", "0\r\nX: a\rb\r\n\r\n", "0\r\n\rX: t\r\n\r\n",
        "0\r\n: t\r\n\r\n",
    ])
    func rejectsChunkedBody(_ body: String) {
        expectRejected(400, chunkedHead + body)
    }

    @Test func acceptsFifteenHexDigitChunkSize() {
        let outcome = parse(chunkedHead + "fffffffffffffff\r\nab")
        #expect(outcome.error == nil)
        #expect(outcome.events.first == chunkedHeadEvent)
    }

    @Test func chunkSizeLineLimit() {
        let long = parse(chunkedHead + "5;" + String(repeating: "a", count: 3990) + "\r\nhello\r\n0\r\n\r\n", pieces: 1)
        #expect(long.error == nil)
        #expect(long.events == [chunkedHeadEvent, .body("hello"), .end])
        // Unterminated: must fail on what is buffered, not wait for a CRLF that may never come.
        expectRejected(400, chunkedHead + "5;" + String(repeating: "a", count: 5000))
        expectRejected(400, chunkedHead + String(repeating: "0", count: 5000))
    }

    @Test func headSizeLimit() {
        let limits = HTTP1RequestParser.Limits(maxHeadSize: 64)
        let exact = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 41) + "\r\n\r\n"
        #expect(exact.utf8.count == 64)
        // Skipped leading CRLFs (RFC 9112 §2.2) are not part of the head.
        for input in [exact, "\r\n\r\n\r\n" + exact] {
            for pieces in [nil, 1] {
                #expect(parse(input, pieces: pieces, limits: limits).events.count == 2)
            }
        }
        // One byte short of the terminator, within the limit: wait.
        let short = parse(String(exact.dropLast()), limits: limits)
        #expect(short.error == nil && short.events.isEmpty)
        expectRejected(431, "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 42) + "\r\n\r\n", limits: limits)
        // Incomplete but already over the limit: refuse now.
        expectRejected(431, "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 46), limits: limits)
        expectRejected(431, "GET /" + String(repeating: "a", count: 100), limits: limits)
        // The limit is per head: bodies and later pipelined requests in the buffer do not count.
        let body = String(repeating: "b", count: 100)
        let twice = "POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n\(body)GET /b HTTP/1.1\r\nX: y\r\n\r\n"
        #expect(parse(twice, limits: limits).events == [
            .head("POST /a HTTP/1.1", ["Content-Length: 100"]), .body(body), .end,
            .head("GET /b HTTP/1.1", ["X: y"]), .end,
        ])
    }

    @Test func defaultHeadSizeLimit() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 33 * 1024)
        expectRejected(431, big + "\r\n\r\n", pieces: [nil])
        expectRejected(431, big, pieces: [nil])
    }

    @Test func fieldCountLimit() {
        let two = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n"
        #expect(parse(two + "\r\n", limits: .init(maxFieldCount: 2)).events.last == .end)
        expectRejected(431, two + "C: 3\r\n\r\n", limits: .init(maxFieldCount: 2))
        let fields = String(repeating: "a:\r\n", count: 1000)
        #expect(parse("GET / HTTP/1.1\r\n" + fields + "\r\n").events.last == .end)
        expectRejected(431, "GET / HTTP/1.1\r\n" + fields + "b:\r\n\r\n", pieces: [nil])
    }

    @Test func trailerSizeLimit() {
        let limits = HTTP1RequestParser.Limits(maxHeadSize: 64)
        // Trailers are measured on their own, not added to the head.
        let fits = parse(chunkedHead + "0\r\nT: " + String(repeating: "t", count: 30) + "\r\n\r\n", limits: limits)
        #expect(fits.events == [chunkedHeadEvent, .end])
        expectRejected(431, chunkedHead + "0\r\nT: " + String(repeating: "t", count: 80) + "\r\n\r\n", limits: limits)
    }

    @Test func oneEventPerCallWithoutMoreBytes() throws {
        var parser = HTTP1RequestParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        let first = try parser.next(&buffer)
        guard case .head = first else { Issue.record("first: \(String(describing: first))"); return }
        #expect(buffer.readableBytes == 0)
        let second = try parser.next(&buffer)
        guard case .end = second else { Issue.record("second: \(String(describing: second))"); return }
        let third = try parser.next(&buffer)
        #expect(third == nil)
    }

    @Test func pipelinedRequestWaitsForItsRest() {
        var feeder = Feeder()
        feeder.feed("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTT".utf8)
        #expect(feeder.events == [.head("POST /a HTTP/1.1", ["Content-Length: 3"]), .body("abc"), .end])
        #expect(feeder.leftover == "GET /b HTT")
        feeder.feed("P/1.1\r\n\r\n".utf8)
        #expect(feeder.events.suffix(2) == [.head("GET /b HTTP/1.1"), .end])
        #expect(feeder.error == nil && feeder.leftover == "")
    }

    /// A bad second request fails only after the first one is fully delivered.
    @Test func errorAfterGoodRequest() {
        let outcome = parse("GET /a HTTP/1.1\r\n\r\nGET  /b HTTP/1.1\r\n\r\n")
        #expect(outcome.events == [.head("GET /a HTTP/1.1"), .end])
        #expect(outcome.error?.status == 400)
    }

    /// Once framing is lost the stream cannot be resynchronised: even clean bytes are refused.
    @Test func failedParserStaysFailed() {
        var parser = HTTP1RequestParser()
        var buffer = ByteBuffer(string: "get / HTTP/1.1\r\n\r\n")
        for round in 0..<3 {
            do throws(HTTPError) {
                let event = try parser.next(&buffer)
                Issue.record("round \(round): \(String(describing: event))")
            } catch {
                #expect(error.closeConnection)
                #expect(round > 0 || error.status == 400)
            }
            buffer = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        }
    }
}
