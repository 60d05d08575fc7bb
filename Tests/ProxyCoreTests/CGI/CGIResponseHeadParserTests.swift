import NIOCore
import ProxyCore
import Testing

@Suite struct CGIResponseHeadParserTests {
    /// Feeds `chunks` in order; returns the head and the body bytes (the slice from the chunk that
    /// completed the head plus every later chunk).
    private func parse(
        _ chunks: [String], maxHeaderSize: Int = 64 * 1024
    ) throws(HTTPError) -> (CGIResponseHead, String)? {
        var parser = CGIResponseHeadParser(maxHeaderSize: maxHeaderSize)
        var head: CGIResponseHead?
        var body = ""
        for chunk in chunks {
            var buffer = ByteBuffer(string: chunk)
            if head != nil {
                body += chunk
                continue
            }
            switch try parser.feed(&buffer) {
            case .needMoreData:
                #expect(buffer.readableBytes == 0)
            case .head(let parsed, let rest):
                head = parsed
                body += String(buffer: rest)
                #expect(buffer.readableBytes == 0)
            }
        }
        return head.map { ($0, body) }
    }

    private func parse(_ response: String, maxHeaderSize: Int = 64 * 1024) throws(HTTPError) -> CGIResponseHead? {
        try parse([response], maxHeaderSize: maxHeaderSize)?.0
    }

    private static let sample =
        "Status: 404 Not Found\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nX-Powered-By:  PHP \n"
        + "Set-Cookie: b=2\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"

    private static let sampleHead = CGIResponseHead(
        status: 404, reason: "Not Found",
        headers: [
            ("Content-Type", "text/html"), ("Set-Cookie", "a=1"), ("X-Powered-By", "PHP"), ("Set-Cookie", "b=2"),
            ("Content-Length", "5"),
        ],
        kind: .document, contentLength: 5)

    @Test func wholeSample() throws {
        let result = try #require(try parse([Self.sample]))
        #expect(result.0 == Self.sampleHead)
        #expect(result.1 == "hello")
    }

    @Test func everySplitPoint() throws {
        let bytes = Array(Self.sample.utf8)
        for split in 0...bytes.count {
            let first = String(decoding: bytes[..<split], as: UTF8.self)
            let second = String(decoding: bytes[split...], as: UTF8.self)
            let result = try #require(try parse([first, second]), "split at \(split)")
            #expect(result.0 == Self.sampleHead, "split at \(split)")
            #expect(result.1 == "hello", "split at \(split)")
        }
    }

    @Test func everyPairOfSplitPoints() throws {
        let bytes = Array(Self.sample.utf8)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let chunks = [bytes[..<first], bytes[first..<second], bytes[second...]].map {
                    String(decoding: $0, as: UTF8.self)
                }
                let result = try #require(try parse(chunks))
                #expect(result.0 == Self.sampleHead && result.1 == "hello", "splits at \(first), \(second)")
            }
        }
    }

    @Test func oneByteAtATime() throws {
        let chunks = Self.sample.utf8.map { String(decoding: [$0], as: UTF8.self) }
        let result = try #require(try parse(chunks))
        #expect(result.0 == Self.sampleHead)
        #expect(result.1 == "hello")
    }

    @Test func crAndLFInDifferentChunks() throws {
        let result = try #require(try parse(["Content-Type: text/plain\r", "\n\r", "\nbody"]))
        #expect(result.0 == CGIResponseHead(status: 200, headers: [("Content-Type", "text/plain")]))
        #expect(result.1 == "body")
    }

    @Test func needsMoreDataUntilBlankLine() throws {
        var parser = CGIResponseHeadParser()
        var buffer = ByteBuffer(string: "Content-Type: text/plain\r\n")
        guard case .needMoreData = try parser.feed(&buffer) else {
            Issue.record("head before the blank line")
            return
        }
        var end = ByteBuffer(string: "\r\n")
        guard case .head(_, let body) = try parser.feed(&end) else {
            Issue.record("no head after the blank line")
            return
        }
        #expect(body.readableBytes == 0)
    }

    @Test func defaultStatusIs200() throws {
        let head = try #require(try parse("Content-Type: text/html\n\n"))
        #expect(head.status == 200)
        #expect(head.reason == nil)
        #expect(head.kind == .document)
        #expect(head.contentLength == nil)
    }

    @Test func emptyHeaderBlockIsAccepted() throws {
        let result = try #require(try parse(["\r\nbody"]))
        #expect(result.0 == CGIResponseHead(status: 200))
        #expect(result.1 == "body")
        #expect(try parse("\n") == CGIResponseHead(status: 200))
    }

    @Test(arguments: [
        ("Status: 404", 404, nil),
        ("Status: 404 Not Found", 404, "Not Found"),
        ("status:301   Moved  Permanently ", 301, "Moved  Permanently"),
        ("STATUS: 200", 200, nil),
        ("Status: 599 Custom", 599, "Custom"),
    ] as [(String, Int, String?)])
    func statusField(line: String, status: Int, reason: String?) throws {
        let head = try #require(try parse(line + "\r\nContent-Type: text/plain\r\n\r\n"))
        #expect(head.status == status)
        #expect(head.reason == reason)
        #expect(head.headers.count == 1)
    }

    @Test(arguments: [
        "Status: abc", "Status: 2000", "Status: 099", "Status: 100 Continue", "Status: 101 Switching Protocols",
        "Status: 199", "Status:", "Status: 20", "Status: 200OK", "Status: -200", "Status: 2 00",
    ])
    func invalidStatus(line: String) {
        expectStatus(502) { _ = try parse(line + "\r\n\r\n") }
    }

    @Test func duplicateStatus() {
        expectStatus(502) { _ = try parse("Status: 200\r\nStatus: 200\r\n\r\n") }
    }

    @Test(arguments: [
        "Content-Type : text/html",
        "Content Type: text/html",
        "NoColonHere",
        ": value",
        "HTTP/1.1 200 OK",
        "X-A\u{0}: v",
        "X-\u{e9}: v",
    ])
    func invalidFieldName(line: String) {
        expectStatus(502) { _ = try parse(line + "\r\n\r\n") }
    }

    @Test(arguments: [
        "X-A: a\rb\r\n\r\n",
        "X-A: a\r\r\n\r\n",
        "X-A: a\u{0}b\r\n\r\n",
        "X-A: a\u{1}b\r\n\r\n",
        "X-A: a\u{7f}\r\n\r\n",
        "X-A: a\r\n continued\r\n\r\n",
        "X-A: a\r\n\tcontinued\r\n\r\n",
        " X-A: leading space\r\n\r\n",
    ])
    func invalidValueOrFolding(response: String) {
        expectStatus(502) { _ = try parse(response) }
    }

    @Test func valuesTrimmedTabsInsideKept() throws {
        let head = try #require(try parse("X-A: \t a\tb \t\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n"))
        #expect(head.headers.map(\.value) == ["a\tb", "", ""])
    }

    @Test func hopByHopAndFramingFieldsDropped() throws {
        let head = try #require(
            try parse(
                "Transfer-Encoding: chunked\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\n"
                    + "Proxy-Connection: x\r\nTE: trailers\r\nTrailer: X\r\nX-Kept: 1\r\n\r\n"))
        #expect(head.headers.map(\.name) == ["X-Kept"])
    }

    @Test func setCookieKeptSeparateAndInOrder() throws {
        let head = try #require(
            try parse("Set-Cookie: a=1\r\nX-A: 1\r\nSet-Cookie: b=2, c=3\r\nSet-Cookie: d=4\r\n\r\n"))
        #expect(head.headers.map(\.name) == ["Set-Cookie", "X-A", "Set-Cookie", "Set-Cookie"])
        #expect(head.headers.map(\.value) == ["a=1", "1", "b=2, c=3", "d=4"])
    }

    @Test func contentLength() throws {
        #expect(try parse("Content-Length: 42\r\n\r\n")?.contentLength == 42)
        let repeated = try #require(try parse("Content-Length: 7\r\nContent-Length: 7\r\n\r\n"))
        #expect(repeated.contentLength == 7)
        #expect(repeated.headers.count == 1)
    }

    @Test(arguments: [
        "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "Content-Length: abc\r\n\r\n",
        "Content-Length: -1\r\n\r\n",
        "Content-Length: +5\r\n\r\n",
        "Content-Length: 5, 5\r\n\r\n",
        "Content-Length: \r\n\r\n",
        "Content-Length: 99999999999999999999999\r\n\r\n",
    ])
    func invalidContentLength(response: String) {
        expectStatus(502) { _ = try parse(response) }
    }

    @Test func localRedirect() throws {
        let head = try #require(try parse("Location: /other.php?x=1\r\n\r\n"))
        #expect(head.kind == .localRedirect("/other.php?x=1"))
    }

    @Test func protocolRelativeLocationIsNotLocal() throws {
        let head = try #require(try parse("Location: //evil.example/x\r\n\r\n"))
        #expect(head.kind == .clientRedirect)
        #expect(head.status == 302)
    }

    @Test func localLocationWithOtherFieldsGoesToClient() throws {
        let head = try #require(try parse("Location: /x\r\nSet-Cookie: a=1\r\n\r\n"))
        #expect(head.kind == .clientRedirect)
        #expect(head.status == 302)
        #expect(head.headers.map(\.name) == ["Location", "Set-Cookie"])
    }

    @Test func clientRedirect() throws {
        let head = try #require(try parse("Location: https://example.com/x\r\n\r\n"))
        #expect(head.kind == .clientRedirect)
        #expect(head.status == 302)
        #expect(head.headers.first?.value == "https://example.com/x")
    }

    @Test func locationWithStatusIsADocument() throws {
        let local = try #require(try parse("Status: 301 Moved\r\nLocation: /x\r\n\r\n"))
        #expect(local.kind == .document)
        #expect(local.status == 301)
        #expect(local.headers.map(\.name) == ["Location"])
        let absolute = try #require(try parse("Location: http://a/\r\nStatus: 307\r\n\r\n"))
        #expect(absolute.kind == .document)
        #expect(absolute.status == 307)
    }

    @Test func duplicateLocation() {
        expectStatus(502) { _ = try parse("Location: /a\r\nLocation: /b\r\n\r\n") }
    }

    @Test func headerBlockSizeLimit() throws {
        let line = "X-A: " + String(repeating: "v", count: 90) + "\r\n"  // 97 bytes
        let block = String(repeating: line, count: 10) + "\r\n"  // 972 bytes
        #expect(try parse(block, maxHeaderSize: 972) != nil)
        expectStatus(502) { _ = try parse(block, maxHeaderSize: 971) }
        // A block without any line end is cut off at the limit too, fed however it comes.
        let endless = Array(repeating: String(repeating: "x", count: 100), count: 20)
        expectStatus(502) { _ = try parse(endless, maxHeaderSize: 1000) }
    }

    @Test func bodyIsASliceAndMayBeEmpty() throws {
        var parser = CGIResponseHeadParser()
        var buffer = ByteBuffer(string: "X-A: 1\n\n")
        guard case .head(_, let body) = try parser.feed(&buffer) else {
            Issue.record("no head")
            return
        }
        #expect(body.readableBytes == 0)
    }

    @Test func feedingAfterTheHeadIsAnError() throws {
        var parser = CGIResponseHeadParser()
        var buffer = ByteBuffer(string: "\n")
        _ = try parser.feed(&buffer)
        var more = ByteBuffer(string: "x")
        let error = #expect(throws: HTTPError.self) { _ = try parser.feed(&more) }
        #expect(error?.status == 500)
    }
}
