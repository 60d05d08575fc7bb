#if HTTP2
import CNGHTTP2
import NIOCore
import NIOEmbedded
import ProxyHTTP2
import Testing

@Suite struct HTTP2FixedResponseHandlerTests {
    private func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handler: HTTP2FixedResponseHandler(
                headers: [("content-type", "text/plain")], body: ByteBuffer(string: "fixed\n")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Client bytes in, server bytes back to the client, until both are quiet.
    private func pump(_ client: NGHTTP2TestClient, _ channel: EmbeddedChannel) throws {
        for _ in 0..<100 {
            let toServer = client.produce()
            if toServer.readableBytes > 0 { try channel.writeInbound(toServer) }
            var wrote = false
            while let bytes = try channel.readOutbound(as: ByteBuffer.self) {
                client.receive(bytes)
                wrote = true
            }
            if toServer.readableBytes == 0 && !wrote { return }
        }
        Issue.record("the channel kept talking")
    }

    @Test func answersEachStreamWithTheFixedResponse() throws {
        let channel = try makeChannel()
        let client = NGHTTP2TestClient()
        let get = client.request()
        let post = client.request(method: "POST", body: Array(repeating: 9, count: 150_000))
        try pump(client, channel)
        for id in [get, post] {
            let response = try #require(client.responses[id])
            #expect(response.status == "200")
            #expect(response.headers.contains { $0.name == "content-length" && $0.value == "6" })
            #expect(String(decoding: response.body, as: UTF8.self) == "fixed\n")
            #expect(response.closedWith == 0)
        }
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test func sendsItsSettingsBeforeTheClientSpeaks() throws {
        let channel = try makeChannel()
        let settings = try #require(try channel.readOutbound(as: ByteBuffer.self))
        // A frame header: 3 bytes length, then type 4 (SETTINGS) on stream 0.
        #expect(settings.getInteger(at: settings.readerIndex + 3, as: UInt8.self) == UInt8(NGHTTP2_SETTINGS.rawValue))
        _ = try channel.finish()
    }

    @Test func garbagePrefaceClosesTheConnection() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(!channel.isActive)
    }
}
#endif
