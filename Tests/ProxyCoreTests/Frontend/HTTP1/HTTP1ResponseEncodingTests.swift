import HTTPFieldBytes
import NIOCore
import Testing

@testable import ProxyCore

@Suite struct HTTP1ResponseEncodingTests {
    private func head(
        isHTTP10: Bool = false, status: Int = 200, reason: String? = nil, fields: [(name: String, value: String)] = [],
        omitContentLength: Bool = false, date: String? = nil, server: String? = nil,
        connection: HTTP1ConnectionField = .none, chunked: Bool = false
    ) -> String {
        var buffer = ByteBuffer()
        buffer.writeHTTP1ResponseHead(
            isHTTP10: isHTTP10, status: status, reason: reason, fields: fields, omitContentLength: omitContentLength,
            date: date, server: server, connection: connection, chunked: chunked)
        return String(buffer: buffer)
    }

    @Test func statusLineUsesTheStandardPhraseOrTheScriptsOwn() {
        #expect(head() == "HTTP/1.1 200 OK\r\n\r\n")
        #expect(head(status: 404) == "HTTP/1.1 404 Not Found\r\n\r\n")
        #expect(head(status: 299) == "HTTP/1.1 299 \r\n\r\n")
        #expect(head(status: 418, reason: "Short And Stout") == "HTTP/1.1 418 Short And Stout\r\n\r\n")
        #expect(head(isHTTP10: true, status: 503) == "HTTP/1.0 503 Service Unavailable\r\n\r\n")
    }

    @Test func fieldsInOrderThenDateServerConnectionAndFraming() {
        let text = head(
            fields: [("Content-Type", "text/html"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            date: "Fri, 27 Nov 2026 02:00:00 GMT", server: "fcgiproxy", connection: .close, chunked: true)
        #expect(
            text == "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                + "Date: Fri, 27 Nov 2026 02:00:00 GMT\r\nServer: fcgiproxy\r\nConnection: close\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n")
        #expect(head(isHTTP10: true, connection: .keepAlive) == "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func contentLengthCanBeLeftOut() {
        let fields = [(name: "content-LENGTH", value: "5"), (name: "X-A", value: "b")]
        #expect(head(status: 204, fields: fields, omitContentLength: true) == "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")
        #expect(head(fields: fields) == "HTTP/1.1 200 OK\r\ncontent-LENGTH: 5\r\nX-A: b\r\n\r\n")
    }

    @Test func nonASCIIValuesAreCopiedAsTheirUTF8Bytes() {
        let text = head(fields: [("X-Name", "Grüße ☃")])
        #expect(text == "HTTP/1.1 200 OK\r\nX-Name: Grüße ☃\r\n\r\n")
    }

    /// A backend's Latin-1 value (or reason) goes out as the bytes it sent.
    @Test func valuesThatWereNotUTF8GoOutAsTheirBytes() {
        let latin = [UInt8]([0xE9, 0x74, 0xE9]).withUnsafeBytes { FieldBytes.string($0) }
        var buffer = ByteBuffer()
        buffer.writeHTTP1ResponseHead(
            isHTTP10: false, status: 200, reason: "OK " + latin, fields: [("X-Latin", latin)],
            date: nil, server: nil, connection: .none, chunked: false)
        let expected = Array("HTTP/1.1 200 OK ".utf8) + [0xE9, 0x74, 0xE9] + Array("\r\nX-Latin: ".utf8) + [0xE9, 0x74, 0xE9]
            + Array("\r\n\r\n".utf8)
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func chunkFramingSharesTheClosingCRLFWithTheNextSizeLine() {
        var buffer = ByteBuffer()
        buffer.writeHTTP1ChunkHeader(length: 1, closingPrevious: false)
        buffer.writeString("a")
        buffer.writeHTTP1ChunkHeader(length: 0x1f40, closingPrevious: true)
        #expect(String(buffer: buffer) == "1\r\na\r\n1f40\r\n")
        var end = ByteBuffer()
        end.writeHTTP1ChunkedEnd(closingPrevious: true)
        #expect(String(buffer: end) == "\r\n0\r\n\r\n")
        end.clear()
        end.writeHTTP1ChunkedEnd(closingPrevious: false)
        #expect(String(buffer: end) == "0\r\n\r\n")
    }

    @Test func hexSizesAcrossDigitCounts() {
        for (length, text) in [(15, "f"), (16, "10"), (255, "ff"), (65536, "10000"), (0x7fff_ffff, "7fffffff")] {
            var buffer = ByteBuffer()
            buffer.writeHTTP1ChunkHeader(length: length, closingPrevious: false)
            #expect(String(buffer: buffer) == text + "\r\n")
        }
    }
}
