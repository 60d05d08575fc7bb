import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ProxyCore

@Suite struct MetricsHTTPHandlerTests {
    private func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(
            MetricsHTTPHandler { eventLoop in eventLoop.makeSucceededFuture(Array("# TYPE x counter\nx 1\n".utf8)) })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9145)).wait()
        return channel
    }

    private func exchange(_ channel: EmbeddedChannel, _ request: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: request))
        channel.embeddedEventLoop.run()
        var out = ""
        while let buffer = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let bytes) = buffer { out += String(buffer: bytes) }
        }
        return out
    }

    @Test func getMetricsAnswersTheScrape() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(response)")
        #expect(response.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(response.hasSuffix("\r\n\r\n# TYPE x counter\nx 1\n"), "\(response)")
        // Keep-alive: a second scrape on the same connection.
        let again = try exchange(channel, "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(again.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(again)")
    }

    @Test(arguments: ["GET / HTTP/1.1", "GET /metricsx HTTP/1.1", "POST /metrics HTTP/1.1"])
    func anythingElseIs404(requestLine: String) throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "\(requestLine)\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(response)")
    }

    @Test func headHasNoBody() throws {
        let channel = try makeChannel()
        let response = try exchange(channel, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"), "\(response)")
    }
}
