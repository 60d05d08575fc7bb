import NIOCore
import NIOEmbedded
import Testing

@testable import ProxyCore

@Suite struct ConnectionTimeoutsTests {
    /// A connection that closes while the HTTP/2 preface detector still holds it (no front end
    /// yet) must not leave its head timer, and through it the clock and the channel, alive
    /// until the timer would have fired.
    #if HTTP2
    @Test func closingBeforeAProtocolIsChosenReleasesTheTimer() throws {
        weak var released: ConnectionTimeouts?
        let loop = EmbeddedEventLoop()
        do {
            let channel = EmbeddedChannel(loop: loop)
            let timeouts = ConnectionTimeouts(headerTimeout: .seconds(60), keepaliveTimeout: .seconds(60))
            released = timeouts
            try channel.pipeline.syncOperations.addHandler(HTTP2PrefaceDetector(timeouts: timeouts) { _, _ in })
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
            timeouts.start(on: channel)
            try channel.writeInbound(ByteBuffer(string: "PRI * HT"))
            try channel.close().wait()
            loop.run()
        }
        #expect(released == nil)
    }
    #endif

    /// The head clock closes a connection that sends nothing.
    @Test func silentConnectionClosesAtHeaderTimeout() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let timeouts = ConnectionTimeouts(headerTimeout: .seconds(2), keepaliveTimeout: .seconds(60))
        timeouts.start(on: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }
}
