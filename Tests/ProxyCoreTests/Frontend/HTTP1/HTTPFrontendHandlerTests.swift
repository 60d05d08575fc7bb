import Foundation
import Logging
import NIOCore
import NIOEmbedded
import ProxyConfig
import Testing

@testable import ProxyCore

/// The client-facing pipeline on an EmbeddedChannel: every answer here is decided by the proxy
/// itself (no backend is ever reached), so bytes in → bytes out is the whole contract.
@Suite final class HTTPFrontendHandlerTests {
    private let fixture: ClientPipelineFixture

    init() throws {
        fixture = try ClientPipelineFixture(name: "frontend")
        #expect(FileManager.default.createFile(atPath: fixture.root + "/app/index.php", contents: Data("<?php".utf8)))
    }

    private func makeChannel(_ configure: (inout ServerConfig) -> Void = { _ in }) throws -> EmbeddedChannel {
        var server = ServerConfig(accessLog: .off)
        configure(&server)
        return try fixture.makeChannel(server: server).0
    }

    /// Sends raw request bytes, returns everything the proxy wrote back.
    private func exchange(_ channel: EmbeddedChannel, _ request: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: request))
        var out = ""
        while let buffer = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let bytes) = buffer { out += String(buffer: bytes) }
        }
        return out
    }

    private func statusLines(_ response: String) -> [String] {
        response.components(separatedBy: "\n").filter { $0.hasPrefix("HTTP/1.") }
    }

    @Test(arguments: [
        ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "405"),
        ("GET /app/\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
        ("POST /app/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", "413"),
        ("GET /app/index.php HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", "417"),
        ("GET /app/index.php HTTP/1.1\r\n\r\n", "400"),
        ("GET /app/index.php HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("GET /app/index.php HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 40000))\r\n\r\n", "431"),
        ("POST /app/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("POST /app/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"),
        ("GET /app/index.php HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "400"),
        ("GET /app/index.php HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", "400"),
        ("GET /app/index.php HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n", "400"),
        ("POST /app/index.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
    ])
    func rejectsWithStatusAndCloses(request: String, status: String) throws {
        let channel = try makeChannel()
        let response = try exchange(channel, request)
        #expect(statusLines(response).first?.hasPrefix("HTTP/1.1 \(status) ") == true, "\(response.prefix(200))")
        #expect(response.lowercased().contains("connection: close"))
        #expect(!channel.isActive, "the connection must close after a framing error")
    }

    @Test func unknownTransferCodingIs501() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "POST /app/index.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        #expect(statusLines(response).first?.hasPrefix("HTTP/1.1 501 ") == true, "\(response)")
        #expect(!channel.isActive)
    }

    @Test func pathErrorsAndMissingScriptsKeepTheConnection() throws {
        let channel = try makeChannel()
        // Pipelined: three answers, in order, on one connection.
        let response = try exchange(
            channel,
            "GET /app/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /elsewhere/index.php HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        #expect(statusLines(response).map { String($0.prefix(12)) } == ["HTTP/1.1 400", "HTTP/1.1 404", "HTTP/1.1 404"], "\(response)")
        #expect(!response.lowercased().contains("connection: close"))
        #expect(channel.isActive)
    }

    @Test func encodedNewlineInPathIs400() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "GET /app/index.php/%0a HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(statusLines(response).first?.hasPrefix("HTTP/1.1 400 ") == true, "\(response)")
    }

    @Test func headRequestsGetHeadersButNoBody() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "HEAD /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 404 "))
        #expect(response.contains("Content-Length: "))
        #expect(response.range(of: #"\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"#, options: .regularExpression) != nil)
        #expect(response.contains("\r\nServer: fcgiproxy\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"), "no body after the head: \(response)")
    }

    @Test func http10ClientsGetHTTP10AndAClose() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "GET /app/missing.php HTTP/1.0\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.0 404 "), "\(response)")
        #expect(!channel.isActive)
    }

    @Test func idleConnectionClosesAfterKeepaliveTimeout() throws {
        let channel = try makeChannel { $0.keepaliveTimeout = .seconds(5); $0.headerTimeout = .seconds(2) }
        _ = try exchange(channel, "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive, "keepalive_timeout (5 s) applies between requests, not header_timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func slowHeadIsCutAtHeaderTimeout() throws {
        let channel = try makeChannel { $0.keepaliveTimeout = .seconds(60); $0.headerTimeout = .seconds(2) }
        _ = try exchange(channel, "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n")
        // The first byte of the next request switches to the (shorter) head clock.
        _ = try exchange(channel, "GET /app/")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test func wholeHeadsLeaveTheKeepaliveClockRunning() throws {
        let channel = try makeChannel { $0.keepaliveTimeout = .seconds(60); $0.headerTimeout = .seconds(2) }
        _ = try exchange(channel, "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n")
        // A second request whose head came whole was answered: idle again, on the 60 s clock.
        _ = try exchange(channel, "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "header_timeout must not run once the head is complete")
        channel.embeddedEventLoop.advanceTime(by: .seconds(58))
        #expect(!channel.isActive)
    }
}
