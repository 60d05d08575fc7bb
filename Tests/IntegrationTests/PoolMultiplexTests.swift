import Foundation
import Testing

extension Integration {
    /// A pool in front of a backend that multiplexes (Go's `net/http/fcgi`, built from
    /// `Support/gofcgi`) with `multiplex = auto` and fewer connections than event loops.
    @Suite(.fcgiproxyOnly("fcgiproxy's pool keys (max_conns, multiplex) and event-loop shards"))
    struct PoolMultiplex {
        /// Starts the Go backend and an fcgiproxy with `threads` event loops in front of it.
        static func withGoBackend(
            threads: Int,
            poolINI: String,
            _ body: (any FrontEnd, GoFastCGIBackend) async throws -> Void
        ) async throws {
            let backend = try await GoFastCGIBackend()
            defer { backend.stop() }
            let dir = try TempDir("fcgiproxy-poolmpx")
            var options = FrontEndOptions(backendSocket: "/nonexistent")
            options.backendAddress = backend.address
            options.extraServerINI = "threads = \(threads)\naccess_log = off"
            options.extraPoolINI = poolINI
            // Every path goes to the backend: no PHP script has to exist for it.
            options.extraRouteINI = "script = /front.php"
            let front = try await startFrontEnd(options, in: dir)
            defer { front.stop() }
            try await body(front, backend)
            #expect(front.isRunning, "fcgiproxy died; its log:\n\(front.log().suffix(3000))")
        }

        /// `max_conns = 1` with two event loops and 100 concurrent 300 ms requests: the backend
        /// announces multiplexing, so one connection carries them all at once. Every client gets
        /// 200 with its own answer, in about one request's time, far below `queue_timeout`.
        /// Before multiplexing was applied to connections already open when the GET_VALUES
        /// answer came, each loop ran one request at a time: 34 answers, 66 × 503 after 5 s.
        @Test(.enabled(if: GoFastCGIBackend.isAvailable, "needs \(GoFastCGIBackend.go): apt-get install golang-go"))
        func oneConnectionForTwoLoopsMultiplexesEveryRequest() async throws {
            try await Self.withGoBackend(threads: 2, poolINI: "max_conns = 1\nmultiplex = auto") { front, backend in
                let count = 100
                let urls = (0..<count).map { front.url("/slow?ms=300&id=\($0)") }
                let clock = ContinuousClock()
                let start = clock.now
                let results = try await PoolLoad.run(urls, parallel: count, timeout: .seconds(60), keepBodies: true)
                let elapsed = clock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let statuses = PoolLoad.histogram(results.map(\.status)).sorted { $0.key < $1.key }
                    .map { "\($0.key)×\($0.value)" }.joined(separator: " ")
                let slowest = results.map(\.seconds).max() ?? 0
                // The probe's connection counts too: one for GET_VALUES, the rest carry requests.
                let connections = backend.acceptedConnections
                print(
                    "PoolMultiplex: \(count) × 300 ms, threads 2, max_conns 1: \(statuses) in "
                        + String(format: "%.2f s (slowest %.2f s); backend accepted %d connections", seconds, slowest, connections)
                )
                let wrong = results.filter { result in
                    guard let id = result.url.split(separator: "id=").last else { return true }
                    return result.status != 200 || !result.body.hasPrefix("id=\(id) ")
                }
                #expect(wrong.isEmpty, "\(wrong.count) wrong answers, e.g. \(wrong.prefix(5).map { "\($0) body \($0.body)" })")
                // One round of 300 ms plus the connect and the probe; one request per connection
                // at a time would take 100 × 0.3 s / 2 = 15 s.
                #expect(seconds < 2.5, "took \(seconds) s")
                // Each loop's share (one connection) plus each loop's probe: multiplexing, not
                // more connections, carried the load.
                #expect(connections <= 4, "backend accepted \(connections) connections")
            }
        }
    }
}
