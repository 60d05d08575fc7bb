import FastCGI
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// The backend pool under load and failure (issue 4): worker recycling, the wait queue,
    /// PHP-FPM reloads, passive health with two backends, weighted round robin, hostile
    /// connections and the idle timeout. Every proxy here runs with `threads = 1`, so that one
    /// pool shard sees every request and `max_conns` is exact.
    @Suite(.fcgiproxyOnly("fcgiproxy's pool keys (max_conns, queue_*, max_fails, weight, idle_timeout)"))
    struct Pool {
        typealias Step = ScriptedFastCGIBackend.Step

        // MARK: Harness

        /// Starts an fcgiproxy (one event loop) whose pool `php` has the `backends` lines given
        /// (the first is also the address of `backendSocket`), runs `body` and stops it.
        static func withProxy(
            backends: [String],
            poolINI: String = "",
            routeINI: String = "",
            _ body: (any FrontEnd) async throws -> Void
        ) async throws {
            let dir = try TempDir("fcgiproxy-pool")
            var options = FrontEndOptions(backendSocket: "/nonexistent")
            options.backendAddress = backends[0]
            options.extraServerINI = "threads = 1\naccess_log = off"
            options.extraPoolINI = backends.dropFirst().map { "backend = \($0)\n" }.joined() + poolINI
            options.extraRouteINI = routeINI
            let front = try await startFrontEnd(options, in: dir)
            defer { front.stop() }
            try await body(front)
            #expect(front.isRunning, "fcgiproxy died; its log:\n\(front.log().suffix(3000))")
        }

        static func unix(_ fpm: PoolPHPFPM) -> String { "unix:" + fpm.socketPath }

        static func urls(_ front: any FrontEnd, _ path: String, count: Int) -> [String] {
            Array(repeating: front.url(path), count: count)
        }

        static func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }

        static func statusCounts(_ results: [PoolLoad.Result]) -> String {
            PoolLoad.histogram(results.map(\.status)).sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
                .joined(separator: " ")
        }

        // MARK: 1. Worker recycling (pm.max_requests)

        /// PHP-FPM closes a worker's connection after its 3rd request and forks a new worker: the
        /// proxy must notice the close (or retry the request it sent into it) without a single 502.
        @Test func workerRecyclingUnderLoadLosesNoRequest() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 2, maxRequests: 3, name: "recycle"))
            defer { fpm.stop() }
            try await Self.withProxy(backends: [Self.unix(fpm)], poolINI: "max_conns = 2") { front in
                let clock = ContinuousClock()
                let start = clock.now
                let results = try await PoolLoad.run(Self.urls(front, "/whoami.php", count: 1000), parallel: 20)
                let elapsed = clock.now - start
                let failed = results.filter { $0.status != 200 }
                let respawns = fpm.log().components(separatedBy: "started").count - 1
                print("PoolTests recycling: 1000 requests in \(elapsed): \(Self.statusCounts(results)); php-fpm workers started: \(respawns)")
                #expect(failed.isEmpty, "\(failed.count) failed, e.g. \(failed.prefix(5)); proxy log:\n\(front.log().suffix(2000))")
                #expect(results.allSatisfy { $0.backend == "recycle" })
                // 1000 requests / 3 per worker: the workers really were recycled all along.
                #expect(respawns >= 300, "php-fpm log:\n\(fpm.log().suffix(1000))")
            }
        }

        // MARK: 2. The wait queue

        /// Both workers (and both connections, max_conns = 2) are busy: a third request waits in
        /// the queue and gets 503 with Retry-After when `queue_timeout` runs out.
        @Test func queueTimeoutIs503WithRetryAfter() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 2, name: "queue"))
            defer { fpm.stop() }
            try await Self.withProxy(
                backends: [Self.unix(fpm)], poolINI: "max_conns = 2\nqueue_timeout = 1s\nmultiplex = off"
            ) { front in
                let sleepers = Task { try await PoolLoad.run(Self.urls(front, "/sleep.php?s=2", count: 2), parallel: 2) }
                try await Task.sleep(for: .milliseconds(400))
                let clock = ContinuousClock()
                let start = clock.now
                let third = try await Curl.run([front.url("/whoami.php")])
                let waited = Self.seconds(clock.now - start)
                #expect(third.status == 503)
                #expect(third.header("Retry-After") == "1")
                #expect(waited >= 0.9 && waited < 1.6, "answered after \(waited) s instead of ~1 s")
                let slept = try await sleepers.value
                #expect(slept.map(\.status) == [200, 200], "\(slept)")
                // The queue is not stuck: with the workers free again, requests pass.
                let after = try await Curl.run([front.url("/whoami.php")])
                #expect(after.status == 200)
            }
        }

        /// More connections than PHP-FPM workers (max_conns 6, pm.max_children 2): four new
        /// connections wait in FPM's listen queue while idle keep-alive connections pin both
        /// workers. The pool's stall check closes idle connections to free the workers, so every
        /// request is served in a few seconds instead of waiting for idle_timeout/read_timeout.
        @Test func connectionsBeyondTheWorkersDoNotStall() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 2, name: "stall"))
            defer { fpm.stop() }
            try await Self.withProxy(
                backends: [Self.unix(fpm)], poolINI: "max_conns = 6\nmultiplex = off\nidle_timeout = 60s"
            ) { front in
                let clock = ContinuousClock()
                let start = clock.now
                let results = try await PoolLoad.run(Self.urls(front, "/sleep.php?s=1", count: 6), parallel: 6)
                let took = Self.seconds(clock.now - start)
                #expect(results.map(\.status) == Array(repeating: 200, count: 6), "\(Self.statusCounts(results))")
                // Three rounds of two workers: ~3 s, plus stall checks. Without them, four
                // requests would wait for the idle connections to time out (60 s) or for the
                // read timeout (60 s, then 504).
                #expect(took < 6, "took \(took) s")
            }
        }

        /// With a longer `queue_timeout` the third request waits until a worker frees up.
        @Test func queuedRequestIsServedWhenAConnectionFrees() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 2, name: "queue"))
            defer { fpm.stop() }
            try await Self.withProxy(
                backends: [Self.unix(fpm)], poolINI: "max_conns = 2\nqueue_timeout = 5s\nmultiplex = off"
            ) { front in
                let sleepers = Task { try await PoolLoad.run(Self.urls(front, "/sleep.php?s=3", count: 2), parallel: 2) }
                try await Task.sleep(for: .milliseconds(400))
                let clock = ContinuousClock()
                let start = clock.now
                let third = try await Curl.run([front.url("/whoami.php")])
                let waited = Self.seconds(clock.now - start)
                #expect(third.status == 200)
                #expect(third.header("X-Backend") == "queue")
                // Sent 0.4 s into two 3 s requests: served when the first one ends (~2.6 s later).
                #expect(waited >= 2.0 && waited < 4.0, "answered after \(waited) s")
                let slept = try await sleepers.value
                #expect(slept.map(\.status) == [200, 200], "\(slept)")
            }
        }

        /// `queue_size = 1` with two connections: of four simultaneous requests two run, one waits
        /// and one is refused at once (503, Retry-After).
        @Test func fullQueueIsRefusedAtOnce() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 2, name: "queue"))
            defer { fpm.stop() }
            try await Self.withProxy(
                backends: [Self.unix(fpm)],
                poolINI: "max_conns = 2\nqueue_size = 1\nqueue_timeout = 5s\nmultiplex = off"
            ) { front in
                let results = try await PoolLoad.run(Self.urls(front, "/sleep.php?s=1", count: 4), parallel: 4)
                let refused = results.filter { $0.status == 503 }
                #expect(refused.count == 1, "\(results)")
                #expect(results.filter { $0.status == 200 }.count == 3, "\(results)")
                if let refused = refused.first {
                    #expect(refused.seconds < 0.5, "refused after \(refused.seconds) s, not at once")
                    #expect(refused.retryAfter == "1")
                }
                // The one that waited was served after the first pair: ~2 s.
                let slowest = results.filter { $0.status == 200 }.map(\.seconds).max() ?? 0
                #expect(slowest >= 1.8, "\(results)")
            }
        }

        // MARK: 3. PHP-FPM graceful reload

        /// `kill -USR2` on the master under load: its workers quit (killed mid-request: the default
        /// process_control_timeout is 0) and new ones start on the same socket. At most the requests
        /// in flight may fail. (Those that do fail with ECONNRESET, which the proxy does not retry:
        /// see `reusedConnectionResetByTheBackendIsRetried`.)
        @Test func phpFPMReloadUnderLoad() async throws {
            let fpm = try await PoolPHPFPM(.init(children: 4, name: "reload"))
            defer { fpm.stop() }
            try await fpm.waitForWorkers()
            let workersBefore = Set(fpm.workerPIDs())
            try await Self.withProxy(backends: [Self.unix(fpm)], poolINI: "max_conns = 4") { front in
                let load = Task { try await PoolLoad.run(Self.urls(front, "/whoami.php?ms=10", count: 300), parallel: 10) }
                try await Task.sleep(for: .milliseconds(300))
                fpm.reload()
                let results = try await load.value
                let ok = results.filter { $0.status == 200 }.count
                let failed = results.filter { $0.status != 200 }
                print("PoolTests reload: 300 requests at concurrency 10, USR2 after 0.3 s: \(Self.statusCounts(results))")
                #expect(ok >= 285, "only \(ok)/300 succeeded: \(failed.prefix(10))\nproxy log:\n\(front.log().suffix(2000))")
                #expect(failed.allSatisfy { $0.status == 502 }, "\(failed)")
                #expect(failed.count <= 4, "more failures than requests in flight (max_conns = 4): \(failed)")
                #expect(fpm.isRunning, "php-fpm master gone after reload:\n\(fpm.log().suffix(1000))")
                try await fpm.waitForWorkers()
                let workersAfter = Set(fpm.workerPIDs())
                #expect(workersBefore.isDisjoint(with: workersAfter), "no reload happened:\n\(fpm.log().suffix(1000))")
                let after = try await PoolLoad.run(Self.urls(front, "/whoami.php", count: 20), parallel: 4)
                #expect(after.allSatisfy { $0.status == 200 }, "\(after)")
            }
        }

        // MARK: 4. Passive health with two backends

        /// Backend a is killed (master and workers, SIGKILL) under load: after at most a few failures
        /// everything goes to b; a is left alone for `fail_timeout`, then gets traffic again once
        /// it is back.
        @Test func deadBackendIsTakenOutAndComesBack() async throws {
            let a = try await PoolPHPFPM(.init(children: 2, name: "a"))
            defer { a.stop() }
            let b = try await PoolPHPFPM(.init(children: 2, name: "b"))
            defer { b.stop() }
            try await Self.withProxy(
                backends: [Self.unix(a), Self.unix(b)],
                poolINI: "max_conns = 2\nmax_fails = 1\nfail_timeout = 2s"
            ) { front in
                let warm = try await PoolLoad.run(Self.urls(front, "/whoami.php", count: 20))
                #expect(PoolLoad.histogram(warm.map(\.backend)) == ["a": 10, "b": 10], "\(warm)")

                let clock = ContinuousClock()
                let load = Task { try await PoolLoad.run(Self.urls(front, "/whoami.php?ms=10", count: 300), parallel: 4) }
                try await Task.sleep(for: .milliseconds(300))
                a.killHard()
                let killedAt = clock.now
                let results = try await load.value
                let loadEnded = clock.now
                let failed = results.filter { $0.status != 200 }
                let servedByA = results.filter { $0.backend == "a" }.count
                print(
                    "PoolTests health: 300 requests at concurrency 4, a killed after 0.3 s: \(Self.statusCounts(results)); "
                        + "served by a \(servedByA), by b \(results.count - servedByA - failed.count); "
                        + "load ended \(loadEnded - killedAt) after the kill"
                )
                #expect(failed.count <= 2, "failures: \(failed)\nproxy log:\n\(front.log().suffix(2000))")
                #expect(servedByA > 0, "a served nothing before it was killed")
                let last = results.suffix(100)
                #expect(last.allSatisfy { $0.status == 200 && $0.backend == "b" }, "\(last.filter { $0.backend != "b" })")

                // Back on the same socket, but still within fail_timeout: b takes everything.
                try await a.start()
                let early = try await PoolLoad.run(Self.urls(front, "/whoami.php", count: 10))
                let earlyEnded = clock.now - killedAt
                #expect(early.allSatisfy { $0.status == 200 }, "\(early)")
                if earlyEnded < .milliseconds(1900) {
                    #expect(early.allSatisfy { $0.backend == "b" }, "a used within fail_timeout: \(early)")
                }

                // After fail_timeout a is tried again and, working, shares the load.
                try await Task.sleep(until: killedAt + .milliseconds(2500))
                let later = try await PoolLoad.run(Self.urls(front, "/whoami.php", count: 20))
                let split = PoolLoad.histogram(later.map(\.backend))
                print("PoolTests health: after restart and fail_timeout: \(split); early phase ended \(earlyEnded) after the kill")
                #expect(later.allSatisfy { $0.status == 200 }, "\(later)")
                #expect((split["a"] ?? 0) >= 8, "a gets no traffic after fail_timeout: \(split)")
            }
        }

        // MARK: 5. Weighted round robin

        /// `weight=3` and `weight=1`: smooth weighted round robin gives exactly 30/10 of 40
        /// sequential requests, interleaved as A A B A.
        @Test func weightedRoundRobinSplitsThreeToOne() async throws {
            let script: (String) -> ScriptedFastCGIBackend.Script = { name in
                { _ in Step.respond("Content-Type: text/plain\r\nX-Backend: \(name)\r\n\r\n\(name)") }
            }
            let a = try await ScriptedFastCGIBackend.start(script: script("A"))
            let b = try await ScriptedFastCGIBackend.start(script: script("B"))
            do {
                try await Self.withProxy(
                    backends: [a.backendAddress + " weight=3", b.backendAddress + " weight=1"],
                    poolINI: "multiplex = off",
                    routeINI: "script = /front.php"
                ) { front in
                    let results = try await PoolLoad.run(Self.urls(front, "/x", count: 40))
                    let order = results.map(\.backend)
                    print("PoolTests weights 3:1: \(PoolLoad.histogram(order)), order \(order.prefix(8).joined())…")
                    #expect(results.allSatisfy { $0.status == 200 })
                    #expect(PoolLoad.histogram(order) == ["A": 30, "B": 10])
                    #expect(order == Array(repeating: ["A", "A", "B", "A"], count: 10).flatMap { $0 })
                    #expect(a.requests.count == 30 && b.requests.count == 10)
                }
            } catch {
                await a.stop()
                await b.stop()
                throw error
            }
            await a.stop()
            await b.stop()
        }

        // MARK: 6. Hostile connections

        /// A second END_REQUEST that arrives while the connection idles in the pool: the
        /// connection is dropped, the next request gets a fresh one.
        @Test func lateDuplicateEndRequestWhileIdleDropsTheConnection() async throws {
            try await Hostile.withProxy(routes: [
                "/dup-end": Step.ok("first") + [.sleep(.milliseconds(150)), .end()]
            ]) { backend, front in
                let first = try await Curl.run([front.url("/dup-end")])
                #expect(first.status == 200)
                #expect(first.text == "first")
                try await Task.sleep(for: .milliseconds(400))
                let next = try await Curl.run([front.url("/ok")])
                #expect(next.status == 200)
                #expect(next.text == "ok")
                let bad = try #require(backend.requests(path: "/dup-end").last)
                let after = try #require(backend.requests(path: "/ok").last)
                #expect(after.connectionIndex != bad.connectionIndex, "the connection with the stray END_REQUEST was reused")
                #expect(backend.acceptedConnections == 2)
            }
        }

        /// The second END_REQUEST of one request arrives while the next request runs on the same
        /// connection (max_conns = 1). Request ids count up per connection, so it cannot be taken
        /// for the end of the next one: that request fails (502) rather than ending empty, nothing
        /// of the first answer reaches it, and the connection is replaced.
        @Test func duplicateEndRequestDuringTheNextRequestReachesNoOtherClient() async throws {
            try await Hostile.withProxy(
                extraPoolINI: "max_conns = 1",
                routes: [
                    "/dup-end": Step.ok("first") + [.sleep(.milliseconds(300)), .end()],
                    "/slow": [.sleep(.milliseconds(700))] + Step.ok("second"),
                ]
            ) { backend, front in
                let first = try await Curl.run([front.url("/dup-end")])
                #expect(first.status == 200)
                #expect(first.text == "first")
                let second = try await Curl.run([front.url("/slow")])
                let slow = try #require(backend.requests(path: "/slow").first)
                #expect(slow.connectionIndex == 0, "the scenario needs /slow on the first connection")
                #expect(second.status == 502 || (second.status == 200 && second.text == "second"), "\(second.status) \(second.text)")
                #expect(!second.text.contains("first"))
                let third = try await Curl.run([front.url("/ok")])
                #expect(third.status == 200)
                #expect(third.text == "ok")
                #expect(try #require(backend.requests(path: "/ok").last).connectionIndex > 0)
            }
        }

        /// Answers `/echo/N` with its path in the body and in X-Path; `misbehave` adds steps after
        /// the answer of every request with an odd N.
        static func echoScript(misbehave: [Step]) -> ScriptedFastCGIBackend.Script {
            { request in
                let number = Int(request.path.split(separator: "/").last ?? "") ?? 0
                let answer = Step.respond("Content-Type: text/plain\r\nX-Path: \(request.path)\r\n\r\n\(request.path)")
                return number % 2 == 1 ? answer + misbehave : answer
            }
        }

        /// 60 requests, 10 at a time, through three connections (max_conns = 3).
        static func echoLoad(_ front: any FrontEnd) async throws -> (wrong: [PoolLoad.Result], failed: [PoolLoad.Result]) {
            let urls = (0..<60).map { front.url("/echo/\($0)") }
            let results = try await PoolLoad.run(urls, parallel: 10)
            let wrong = results.filter { $0.status == 200 && !$0.url.hasSuffix($0.path) }
            let failed = results.filter { $0.status != 200 }
            return (wrong, failed)
        }

        /// Many clients at once while the backend closes every other connection right after its
        /// END_REQUEST (ignoring FCGI_KEEP_CONN): a request handed to such a connection before
        /// the close was seen is retried, so every client gets its own answer.
        @Test func connectionsClosedAfterAnswersUnderConcurrency() async throws {
            try await Hostile.withProxy(extraPoolINI: "max_conns = 3", script: Self.echoScript(misbehave: [.close])) {
                backend, front in
                let (wrong, failed) = try await Self.echoLoad(front)
                #expect(wrong.isEmpty, "answers reached the wrong client: \(wrong)")
                #expect(failed.isEmpty, "\(failed.count) requests failed: \(failed.prefix(10))")
                #expect(backend.acceptedConnections >= 30, "the backend closed 30 connections")
            }
        }

        /// Many clients at once while the backend sends END_REQUEST twice on every other request:
        /// no client ever gets another's answer (request ids count up per connection, so the stray
        /// END_REQUEST cannot end the next request).
        @Test func duplicateEndRequestsUnderConcurrencyReachNoOtherClient() async throws {
            try await Hostile.withProxy(extraPoolINI: "max_conns = 3", script: Self.echoScript(misbehave: [.end()])) {
                _, front in
                let (wrong, failed) = try await Self.echoLoad(front)
                // Each failure is a request handed the connection before its stray record was read
                // (see the disabled test below).
                print("PoolTests duplicate END_REQUEST under concurrency: \(failed.count) of 60 failed (502)")
                #expect(wrong.isEmpty, "answers reached the wrong client: \(wrong)")
            }
        }

        /// The same load: a request that the proxy hands to a connection while the stray second
        /// END_REQUEST of the previous request is still unread in the same read burst must not
        /// fail for it (nginx does not reuse a connection with bytes after END_REQUEST).
        @Test
        func duplicateEndRequestsUnderConcurrencyFailNoInnocentRequest() async throws {
            try await Hostile.withProxy(extraPoolINI: "max_conns = 3", script: Self.echoScript(misbehave: [.end()])) {
                _, front in
                let (wrong, failed) = try await Self.echoLoad(front)
                #expect(wrong.isEmpty, "answers reached the wrong client: \(wrong)")
                #expect(failed.isEmpty, "\(failed.count) innocent requests failed: \(failed.prefix(10))")
            }
        }

        /// A reused keep-alive connection that the backend aborts (RST) as the request arrives:
        /// nothing reached a script, so the request is retried on a fresh connection, exactly as
        /// when the backend closes it with FIN (HostileBackendTests' `/flaky`). This is what a
        /// PHP-FPM reload or worker exit looks like when our request was already in the dying
        /// worker's socket buffer.
        @Test
        func reusedConnectionResetByTheBackendIsRetried() async throws {
            let backend = try await PoolWatchedBackend.start(tcp: true, resetReusedConnections: true)
            do {
                try await Self.withProxy(
                    backends: [backend.backendAddress], poolINI: "multiplex = off", routeINI: "script = /front.php"
                ) { front in
                    let first = try await Curl.run([front.url("/a")])
                    #expect(first.status == 200)
                    let second = try await Curl.run([front.url("/b")])
                    #expect(backend.resets == 1, "the scenario needs the idle connection reused and reset")
                    #expect(second.status == 200, "proxy log:\n\(front.log().suffix(1500))")
                    #expect(second.header("X-Backend") == "watched")
                    #expect(backend.connections.count == 2)
                }
            } catch {
                await backend.stop()
                throw error
            }
            await backend.stop()
        }

        // MARK: 7. idle_timeout

        /// The proxy closes a keep-alive connection that stayed unused for `idle_timeout`; using it
        /// in between starts the idle clock again.
        @Test func idleConnectionIsClosedAfterIdleTimeout() async throws {
            let backend = try await PoolWatchedBackend.start()
            do {
                try await Self.withProxy(
                    backends: [backend.backendAddress],
                    poolINI: "idle_timeout = 1s\nmultiplex = off",
                    routeINI: "script = /front.php"
                ) { front in
                    let first = try await Curl.run([front.url("/a")])
                    #expect(first.status == 200)
                    try await Task.sleep(for: .milliseconds(600))
                    let second = try await Curl.run([front.url("/b")])
                    #expect(second.status == 200)
                    #expect(backend.connections.count == 1, "the idle connection was not reused")

                    let clock = ContinuousClock()
                    let deadline = clock.now + .seconds(4)
                    while backend.connections.first?.closed == nil, clock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    let connection = try #require(backend.connections.first)
                    let closed = try #require(connection.closed, "the idle connection was never closed")
                    let answered = try #require(connection.lastAnswered)
                    let idle = Self.seconds(closed - answered)
                    print("PoolTests idle_timeout = 1s: closed \(idle) s after its last answer")
                    #expect(connection.requests == 2)
                    // Measured from the second answer: the first one's clock was reset.
                    #expect(idle >= 0.9 && idle < 1.8, "closed after \(idle) s of idleness")

                    let third = try await Curl.run([front.url("/c")])
                    #expect(third.status == 200)
                    #expect(backend.connections.count == 2)
                }
            } catch {
                await backend.stop()
                throw error
            }
            await backend.stop()
        }
    }
}
