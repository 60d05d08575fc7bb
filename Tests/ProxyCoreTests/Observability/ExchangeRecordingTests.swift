import Foundation
import Logging
import NIOCore
import NIOEmbedded
import ProxyConfig
import Testing

@testable import ProxyCore

/// Answers the proxy gives itself (no backend) are counted under their route, or under "no
/// route", and reach the access log with `-` for the upstream.
@Suite final class ExchangeRecordingTests {
    private let fixture: ClientPipelineFixture
    private var root: String { fixture.root }

    init() throws {
        fixture = try ClientPipelineFixture(name: "recording")
    }

    private func makeChannel(accessLog: AccessLogTarget = .off) throws -> (EmbeddedChannel, LoopResources) {
        try fixture.makeChannel(
            server: ServerConfig(accessLog: accessLog),
            routes: [
                RouteConfig(name: "other", match: .prefix("/other/"), pool: "php", root: root),
                RouteConfig(name: "app", match: .prefix("/app/"), pool: "php", root: root),
            ])
    }

    @Test func statusesAreCountedByRouteAndClass() throws {
        let (channel, resources) = try makeChannel()
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /app/missing.php HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /app/other.php HTTP/1.1\r\nHost: x\r\n\r\n"
                    // No Host: refused before routing.
                    + "GET /app/x.php HTTP/1.1\r\n\r\n"))
        let metrics = resources.metrics
        let classes = LoopMetrics.statusClasses
        // Route "app" is the second one (slot 2, after the no-route slot and "other"), even though
        // both routes have line 0.
        #expect(metrics.requests[2 * classes + 2] == 2, "\(metrics.requests)")
        #expect(metrics.requests[metrics.noRoute * classes + 2] == 2, "\(metrics.requests)")
        #expect(metrics.requests.reduce(0, +) == 4)
        #expect(metrics.durationCounts.reduce(0, +) == 4)
        #expect(metrics.responseBodyBytes[2] > 0)
    }

    @Test func parserErrorsCountUnderNoRoute() throws {
        let (channel, resources) = try makeChannel()
        _ = try? channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\rBad\r\n\r\n"))
        #expect(resources.metrics.requests[resources.metrics.noRoute * LoopMetrics.statusClasses + 2] == 1)
    }

    @Test func accessLogLineHasNoUpstream() async throws {
        let path = root + "/access.log"
        let (channel, resources) = try makeChannel(accessLog: .file(path))
        try channel.writeInbound(ByteBuffer(string: "GET /app/missing.php HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"))
        resources.current.accessLogBuffer?.handOff()
        let log = try #require(resources.current.accessLogBuffer?.log)
        await log.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text.range(of: #"^127\.0\.0\.1 - - \[[^\]]+\] "GET /app/missing\.php HTTP/1\.1" 404 \d+ "-" "t" "-" - \d+\.\d{3}\n$"#, options: .regularExpression)
                != nil, "\(text)")
        log.close()
    }
}
