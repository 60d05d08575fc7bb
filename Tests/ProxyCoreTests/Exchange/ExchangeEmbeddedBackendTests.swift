import FastCGIClient
import Foundation
import NIOCore
import NIOEmbedded
import ProxyConfig
import Testing

@testable import ProxyCore

/// Exchange and pool together with no socket: the client and the backend are both
/// `EmbeddedChannel`s on one loop, the backend's through ``EmbeddedBackendConnector``.
@Suite final class ExchangeEmbeddedBackendTests {
    private let fixture: ClientPipelineFixture

    init() throws {
        fixture = try ClientPipelineFixture(name: "embedded-backend")
        try Data().write(to: URL(fileURLWithPath: fixture.root + "/app/x.php"))
    }

    private func start(
        _ request: String, readTimeout: Duration = .seconds(60)
    ) throws -> (client: EmbeddedChannel, backend: EmbeddedChannel, pool: FastCGIConnectionPool, requestID: UInt16) {
        let (client, resources) = try fixture.makeChannel(server: ServerConfig(), readTimeout: readTimeout)
        let pool = resources.current.pools[0]
        let connector = EmbeddedBackendConnector(loop: client.embeddedEventLoop)
        pool.connector = connector
        try client.writeInbound(ByteBuffer(string: request))
        client.embeddedEventLoop.run()
        let backend = try #require(connector.channels.first)
        let records = try EmbeddedBackendConnector.records(from: backend)
        let begin = try #require(records.first)
        #expect(begin.type == 1, "BEGIN_REQUEST first")
        // The request is complete: PARAMS and STDIN both ended with an empty record.
        #expect(records.contains { $0.type == 4 && $0.content.readableBytes == 0 })
        #expect(records.last.map { $0.type == 5 && $0.content.readableBytes == 0 } == true)
        return (client, backend, pool, begin.requestID)
    }

    private func clientBytes(_ client: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while let part = try client.readOutbound(as: ByteBuffer.self) {
            all += part.readableBytesView
        }
        return all
    }

    @Test func requestAndResponseCrossThePool() throws {
        let (client, backend, pool, requestID) = try start("GET /app/x.php HTTP/1.1\r\nHost: x\r\n\r\n")
        try EmbeddedBackendConnector.answer(
            ByteBuffer(string: "Content-Type: text/plain\r\n\r\nhello"), requestID: requestID, on: backend)
        let response = String(decoding: try clientBytes(client), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(response)")
        #expect(response.hasSuffix("hello") || response.hasSuffix("5\r\nhello\r\n0\r\n\r\n"), "\(response)")
        #expect(pool.counters.pool.requests == 1)
        #expect(pool.counters.backends[0].leasedSlots == 0)
    }

    /// A client that takes nothing: the whole response goes to the spool, the backend's slot is
    /// free at END_REQUEST, and the client gets every byte once it reads again.
    @Test func slowClientIsSpooledAndTheBackendFreed() throws {
        let (client, backend, pool, requestID) = try start("GET /app/x.php HTTP/1.1\r\nHost: x\r\n\r\n")
        client.isWritable = false
        client.pipeline.fireChannelWritabilityChanged()
        let size = 3 << 20
        let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) }
        var output = ByteBuffer(string: "Content-Type: application/octet-stream\r\nContent-Length: \(size)\r\n\r\n")
        output.writeBytes(body)
        try EmbeddedBackendConnector.answer(output, requestID: requestID, on: backend)
        #expect(pool.counters.backends[0].leasedSlots == 0, "backend released before the client read")
        #expect(backend.isActive, "keep-alive connection kept for the next request")
        let early = try clientBytes(client)
        #expect(early.count < size, "most of the body waits in the spool")

        client.isWritable = true
        client.pipeline.fireChannelWritabilityChanged()
        let rest = try clientBytes(client)
        let all = early + rest
        let bodyStart = try #require(all.firstRange(of: Array("\r\n\r\n".utf8))).upperBound
        #expect(Array(all[bodyStart...]) == body)
    }

    /// The backend's read timeout answers the client (504) and ends the exchange while the
    /// backend connection still holds the FastCGI upstream as its receiver; the connection's
    /// close that follows reaches that upstream after the front end has let go of the exchange.
    /// (With an unowned reference from the upstream to its exchange, this crashed.)
    @Test func aBackendThatTimesOutAndClosesAfterTheAnswerIsHarmless() throws {
        let (client, backend, _, _) = try start(
            "GET /app/x.php HTTP/1.1\r\nHost: x\r\n\r\n", readTimeout: .milliseconds(50))
        // The connection reads its clock (NIODeadline.now()), not the embedded loop's: the loop
        // runs what is due until real time has passed the timeout.
        client.embeddedEventLoop.advanceTime(to: .now() + .milliseconds(100))
        let response = String(decoding: try clientBytes(client), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 504 "), "\(response)")
        backend.pipeline.fireChannelInactive()
        client.embeddedEventLoop.run()
        // Reaching this line is the test: the upstream outlived the front end's hold on the
        // exchange. (The client connection's own clocks fired too: the embedded loop's time
        // jumped to the real clock's, so whether it is open says nothing here.)
    }
}
