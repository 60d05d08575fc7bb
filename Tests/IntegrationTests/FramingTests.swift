import Foundation
import Testing

extension Integration {
    /// RFC 9112 framing errors, sent byte for byte with the raw client.
    @Suite struct Framing {
        static let post = "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"

        /// Sends `request` and expects `status` (and, with `closes`, that the server then closes).
        func expectStatus(
            _ request: String, _ statuses: Set<Int>, closes: Bool = false,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let f = try await Fixture.shared()
            let reply = try f.raw(request, untilClose: closes, timeout: .seconds(closes ? 8 : 5))
            let status = reply.status
            #expect(status.map { statuses.contains($0) } == true,
                    "expected \(statuses.sorted()), got: \(reply.text.prefix(300).debugDescription)",
                    sourceLocation: sourceLocation)
            if closes {
                #expect(reply.closed, "connection left open after \(status ?? 0)", sourceLocation: sourceLocation)
                // Nothing after the bad request may be taken as a further request.
                #expect(reply.finals.count == 1, "\(reply.finals.count) responses", sourceLocation: sourceLocation)
            }
        }

        @Test func contentLengthAndTransferEncodingIs400AndClose() async throws {
            try await expectStatus(
                Self.post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                [400], closes: true)
        }

        @Test func conflictingContentLengthsIs400() async throws {
            try await expectStatus(Self.post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", [400], closes: true)
        }

        @Test func badChunkSizeIs400() async throws {
            try await expectStatus(
                Self.post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", [400], closes: true)
        }

        @Test
        func obsFoldIs400() async throws {
            try await expectStatus("GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n  folded\r\n\r\n", [400])
        }

        @Test
        func bareCRIs400() async throws {
            try await expectStatus("GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n", [400])
        }

        @Test func spaceBeforeColonIs400() async throws {
            try await expectStatus("GET / HTTP/1.1\r\nHost: localhost\r\nX-A : a\r\n\r\n", [400])
        }

        @Test func missingHostInHTTP11Is400() async throws {
            try await expectStatus("GET / HTTP/1.1\r\nX-A: a\r\n\r\n", [400])
        }

        @Test func unknownTransferEncodingIs501() async throws {
            try await expectStatus(Self.post + "Transfer-Encoding: gzip\r\n\r\n", [501])
        }

        @Test func connectIsRefused() async throws {
            try await expectStatus("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", [400, 405])
        }

        @Test(.fcgiproxyOnly("nginx answers 400 for a too large head"))
        func headOverMaxHeaderSizeIs431() async throws {
            let big = String(repeating: "a", count: 40 * 1024)
            try await expectStatus("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: \(big)\r\n\r\n", [431])
        }

        @Test(.fcgiproxyOnly("nginx takes a bare LF as a line end"))
        func bareLFIs400AndCloses() async throws {
            // RFC 9112 §2.2 allows it in the head; not taking it anywhere keeps every line end one shape.
            try await expectStatus("GET / HTTP/1.1\nHost: localhost\n\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n", [400], closes: true)
        }

        @Test func chunkSizeOverflowIs400AndCloses() async throws {
            try await expectStatus(
                Self.post + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", [400], closes: true)
        }

        @Test func chunkLongerThanItsSizeIs400AndCloses() async throws {
            // The byte after the chunk must be its CRLF: the rest must never become a request.
            try await expectStatus(
                Self.post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloGET /status.php?code=202 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                [400], closes: true)
        }

        @Test func unsupportedVersionIs505() async throws {
            try await expectStatus("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", [505], closes: true)
        }

        @Test func chunkedPostPipelinedWithAGetStaysInStep() async throws {
            let f = try await Fixture.shared()
            let reply = try f.raw(
                Self.post + "Transfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
                    + "GET /status.php?code=202 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                responses: 2)
            #expect(reply.finals.map(\.status) == [200, 202])
            let json = try Util.json(Data(try #require(reply.finals.first).body))
            #expect(json["size"] as? Int == 5)
        }

        @Test func uriOver8KIs414() async throws {
            let long = String(repeating: "a", count: 9 * 1024)
            try await expectStatus("GET /info.php?q=\(long) HTTP/1.1\r\nHost: localhost\r\n\r\n", [414])
        }
    }
}
