import FastCGIClient
import Logging
import ProxyConfig
import Testing

@testable import ProxyCore

@Suite struct MetricsExporterTests {
    /// `series → value` of the exposition text (series as rendered, labels in registration order).
    private static func samples(_ exporter: MetricsExporter) -> [String: Double] {
        let text = String(decoding: exporter.render(), as: UTF8.self)
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            result[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return result
    }

    private static func snapshot(
        _ loops: LoopMetrics, pool: FastCGIPoolStateMachine.Counters.Pool = .init(), open: Int = 0
    ) -> MetricsSnapshot {
        MetricsSnapshot(loops: loops, pools: [pool], openConnections: open)
    }

    @Test func everySeriesExistsBeforeTheFirstRequest() {
        let exporter = MetricsExporter(routeNames: ["app"], poolNames: ["php"])
        exporter.update(with: Self.snapshot(LoopMetrics(routes: 1, pools: 1)))
        let samples = Self.samples(exporter)
        #expect(samples[#"fcgiproxy_requests_total{route="app",code="2xx"}"#] == 0)
        #expect(samples[#"fcgiproxy_requests_total{route="-",code="5xx"}"#] == 0)
        #expect(samples[#"fcgiproxy_request_duration_seconds_count{route="app"}"#] == 0)
        #expect(samples[#"fcgiproxy_fastcgi_end_requests_total{pool="php",status="overloaded"}"#] == 0)
        #expect(samples[#"fcgiproxy_backend_connections{pool="php",state="idle"}"#] == 0)
        #expect(samples[#"fcgiproxy_reloads_total{result="failure"}"#] == 0)
        #expect(samples["fcgiproxy_client_connections"] == 0)
    }

    /// Counters follow the totals across scrapes; a snapshot older than one already applied
    /// (two scrapes racing) never makes them go back.
    @Test func countersMoveByTheDelta() {
        let exporter = MetricsExporter(routeNames: ["app"], poolNames: ["php"])
        var loops = LoopMetrics(routes: 1, pools: 1)
        loops.recordRequest(route: 1, status: 200, nanoseconds: 1_000, bodyBytesIn: 10, bodyBytesOut: 100)
        loops.recordEndRequest(pool: 0, protocolStatus: 0)
        var pool = FastCGIPoolStateMachine.Counters.Pool()
        pool.requests = 1
        pool.errors.readTimeout = 2
        exporter.update(with: Self.snapshot(loops, pool: pool))
        let early = loops
        loops.recordRequest(route: 1, status: 201, nanoseconds: 1_000, bodyBytesIn: 0, bodyBytesOut: 5)
        loops.recordRequest(route: 1, status: 500, nanoseconds: 1_000, bodyBytesIn: 0, bodyBytesOut: 1)
        loops.recordStderrLine(pool: 0)
        loops.connectionsAccepted = 3
        pool.requests = 3
        pool.retries = 1
        pool.idleConnections = 4
        pool.queueDepth = 2
        exporter.update(with: Self.snapshot(loops, pool: pool, open: 7))
        exporter.update(with: Self.snapshot(early))
        exporter.recordReload(success: true)

        let samples = Self.samples(exporter)
        #expect(samples[#"fcgiproxy_requests_total{route="app",code="2xx"}"#] == 2)
        #expect(samples[#"fcgiproxy_requests_total{route="app",code="5xx"}"#] == 1)
        #expect(samples[#"fcgiproxy_request_body_bytes_total{route="app"}"#] == 10)
        #expect(samples[#"fcgiproxy_response_body_bytes_total{route="app"}"#] == 106)
        #expect(samples[#"fcgiproxy_fastcgi_end_requests_total{pool="php",status="request_complete"}"#] == 1)
        #expect(samples[#"fcgiproxy_backend_stderr_lines_total{pool="php"}"#] == 1)
        #expect(samples["fcgiproxy_client_connections_accepted_total"] == 3)
        #expect(samples[#"fcgiproxy_backend_requests_total{pool="php"}"#] == 3)
        #expect(samples[#"fcgiproxy_backend_retries_total{pool="php"}"#] == 1)
        #expect(samples[#"fcgiproxy_backend_errors_total{pool="php",kind="read_timeout"}"#] == 2)
        #expect(samples[#"fcgiproxy_reloads_total{result="success"}"#] == 1)
        // Gauges are whatever the last snapshot said.
        #expect(samples[#"fcgiproxy_backend_connections{pool="php",state="idle"}"#] == 0)
        #expect(samples[#"fcgiproxy_backend_queue_depth{pool="php"}"#] == 0)
        #expect(samples["fcgiproxy_client_connections"] == 0)
        #expect(samples[#"fcgiproxy_request_duration_seconds_count{route="app"}"#] == 3)
    }

    @Test func gaugesAreSet() {
        let exporter = MetricsExporter(routeNames: ["app"], poolNames: ["php"])
        var pool = FastCGIPoolStateMachine.Counters.Pool()
        pool.activeConnections = 2
        pool.idleConnections = 4
        pool.queueDepth = 5
        pool.waiting = 6
        exporter.update(with: Self.snapshot(LoopMetrics(routes: 1, pools: 1), pool: pool, open: 7))
        let samples = Self.samples(exporter)
        #expect(samples[#"fcgiproxy_backend_connections{pool="php",state="active"}"#] == 2)
        #expect(samples[#"fcgiproxy_backend_connections{pool="php",state="idle"}"#] == 4)
        #expect(samples[#"fcgiproxy_backend_queue_depth{pool="php"}"#] == 5)
        #expect(samples[#"fcgiproxy_backend_waiting_requests{pool="php"}"#] == 6)
        #expect(samples["fcgiproxy_client_connections"] == 7)
    }

    /// A reload renames a route and adds a pool: known names keep their series, the new ones get
    /// theirs, and the series of the removed name keeps its last value.
    @Test func registeringAReloadedConfigurationKeepsSlotsByName() throws {
        let exporter = MetricsExporter()
        let first = try Self.context(routes: ["app", "static"], pools: ["php"])
        let tables1 = exporter.register(first)
        #expect(tables1.routeSlots == [1, 2])
        #expect(tables1.poolSlots == [0])
        var loops = LoopMetrics(routeSlots: tables1.routeSlotCount, poolSlots: tables1.poolSlotCount)
        loops.recordRequest(route: tables1.routeSlots[1], status: 200, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 0)
        exporter.update(with: MetricsSnapshot(loops: loops, pools: [.init()], openConnections: 0))

        // "static" renamed "assets" and moved first; a pool "api" added before "php".
        let second = try Self.context(routes: ["assets", "app"], pools: ["api", "php"])
        let tables2 = exporter.register(second)
        #expect(tables2.routeSlots == [3, 1])
        #expect(tables2.poolSlots == [1, 0])
        loops.grow(routeSlots: tables2.routeSlotCount, poolSlots: tables2.poolSlotCount)
        loops.recordRequest(route: tables2.routeSlots[0], status: 200, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 0)
        loops.recordRequest(route: tables2.routeSlots[1], status: 200, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 0)
        loops.recordStderrLine(pool: tables2.poolSlots[0])
        exporter.update(with: MetricsSnapshot(loops: loops, pools: [.init(), .init()], openConnections: 0))

        let samples = Self.samples(exporter)
        #expect(samples[#"fcgiproxy_requests_total{route="app",code="2xx"}"#] == 1)
        #expect(samples[#"fcgiproxy_requests_total{route="static",code="2xx"}"#] == 1)
        #expect(samples[#"fcgiproxy_requests_total{route="assets",code="2xx"}"#] == 1)
        #expect(samples[#"fcgiproxy_backend_stderr_lines_total{pool="api"}"#] == 1)
        #expect(samples[#"fcgiproxy_backend_stderr_lines_total{pool="php"}"#] == 0)
    }

    private static func context(routes: [String], pools: [String]) throws -> ProxyContext {
        let configuration = ProxyConfiguration(
            server: ServerConfig(accessLog: .off),
            pools: pools.map { PoolConfig(name: $0, backends: [.unix(path: "/nonexistent/\($0).sock")]) },
            routes: routes.map { RouteConfig(name: $0, match: .prefix("/\($0)/"), pool: pools[pools.count - 1], root: "/tmp") },
            sourceName: "test"
        )
        return try ProxyContext(configuration: configuration, logger: Logger(label: "test"))
    }

    /// Pre-aggregated buckets replayed at their means: cumulative bucket counts, count and sum
    /// come out as if every request had been observed one by one.
    @Test func histogramBucketsAndSumAreExact() throws {
        let exporter = MetricsExporter(routeNames: ["app"], poolNames: ["php"])
        var loops = LoopMetrics(routes: 1, pools: 1)
        let durations: [Int64] = [400_000, 1_000_000, 1_000_001, 2_400_000, 7_000_000, 90_000_000_000]
        for nanoseconds in durations.prefix(3) {
            loops.recordRequest(route: 1, status: 200, nanoseconds: nanoseconds, bodyBytesIn: 0, bodyBytesOut: 0)
        }
        exporter.update(with: Self.snapshot(loops))
        for nanoseconds in durations.dropFirst(3) {
            loops.recordRequest(route: 1, status: 200, nanoseconds: nanoseconds, bodyBytesIn: 0, bodyBytesOut: 0)
        }
        exporter.update(with: Self.snapshot(loops))

        let samples = Self.samples(exporter)
        func bucket(_ le: String) -> Double? { samples[#"fcgiproxy_request_duration_seconds_bucket{route="app",le="\#(le)"}"#] }
        #expect(bucket("0.001") == 2)
        #expect(bucket("0.0025") == 4)
        #expect(bucket("0.005") == 4)
        #expect(bucket("0.01") == 5)
        #expect(bucket("60.0") == 5)
        #expect(bucket("+Inf") == 6)
        #expect(samples[#"fcgiproxy_request_duration_seconds_count{route="app"}"#] == 6)
        let sum = try #require(samples[#"fcgiproxy_request_duration_seconds_sum{route="app"}"#])
        let expected = Double(durations.reduce(0, +)) / 1e9
        #expect(abs(sum - expected) < 1e-9, "sum \(sum), expected \(expected)")
    }
}
