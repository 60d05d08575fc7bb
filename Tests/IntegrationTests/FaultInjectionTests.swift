import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// Faults injected into a running proxy and its backend: reloads under load (good and broken
    /// files), a stop with requests in flight, a backend that never reads, one that dies
    /// mid-response, recycled workers, PHP-FPM killed and restarted, stopped, its socket removed.
    /// Each test prints one line (requests sent, answered 2xx, failed by status, slowest) and
    /// bounds every request, so that a hang fails its test instead of stalling the suite.
    @Suite(.fcgiproxyOnly("fcgiproxy's reload, stop and pool behaviour under faults"))
    struct FaultInjection {
        /// Small scripts of our own (the example app has no script that dies mid-response).
        static func docroot(_ dir: TempDir) throws -> String {
            try ScriptDocroot.make(
                in: dir,
                [
                    "hi.php": #"<?php header('Content-Type: text/plain'); echo "hi\n";"#,
                    "sleep.php": #"<?php usleep((int)(1e6 * (float)($_GET['s'] ?? 1))); echo "slept\n";"#,
                    "gen.php": #"<?php echo $_SERVER['APP_GEN'] ?? '-';"#,
                    // Part of the answer reaches the proxy, then the worker dies as in a crash.
                    "die.php": #"<?php header('Content-Type: text/plain'); echo str_repeat("x", 4000), "\n"; flush(); posix_kill(getmypid(), 9); echo "never\n";"#,
                ])
        }

        /// fcgiproxy on `backend`, two event loops (so that pools have two shards, as on the
        /// machines where the stalls were seen), no access log.
        static func options(backend: String, root: String, pool: String = "", server: String = "") -> FrontEndOptions {
            var options = FrontEndOptions(backendSocket: "/nonexistent")
            options.backendAddress = backend
            options.root = root
            options.extraServerINI = "threads = 2\naccess_log = off\nshutdown_timeout = 20s\n" + server
            options.extraPoolINI = pool
            options.extraRouteINI = "param = APP_GEN one"
            return options
        }

        /// Writes the proxy's file anew and sends SIGHUP; waits (≤ 5 s) for the outcome line.
        static func reload(_ proxy: ProxyProcess, _ ini: String) async throws {
            let outcomes = { (log: String) in
                log.components(separatedBy: "reload failed:").count + log.components(separatedBy: ": no change").count
                    + log.components(separatedBy: ": pools ~").count + log.components(separatedBy: ": routes changed").count
            }
            let before = outcomes(proxy.log())
            _ = try ini.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            proxy.process.signal(SIGHUP)
            for _ in 0..<500 {
                if outcomes(proxy.log()) > before { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw HarnessError("no reload outcome within 5 s; log:\n\(proxy.log().suffix(3000))")
        }

        /// A private PHP-FPM with its workers up, and fcgiproxy in front of it with ``options(backend:root:pool:server:)``
        /// and its own copy of the scripts (in a temp dir named after the FPM). The caller stops both.
        static func startFPMAndProxy(_ fpmOptions: PoolPHPFPM.Options) async throws -> (PoolPHPFPM, ProxyProcess, FrontEndOptions) {
            let fpm = try await PoolPHPFPM(fpmOptions)
            do {
                try await fpm.waitForWorkers()
                let dir = try TempDir("fcgiproxy-fault-\(fpmOptions.name)")
                let options = Self.options(backend: "unix:" + fpm.socketPath, root: try Self.docroot(dir))
                let proxy = try await ProxyProcess(options: options, dir: dir, port: try Net.freePort())
                return (fpm, proxy, options)
            } catch {
                fpm.stop()
                throw error
            }
        }

        static func failures(_ samples: [SteadyLoad.Sample]) -> [SteadyLoad.Sample] {
            samples.filter { !(200..<300).contains($0.status) }
        }

        static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
            let start = ContinuousClock.now
            let value = try await body()
            return (value, SteadyLoad.seconds(ContinuousClock.now - start))
        }

        // MARK: 1. Reloads under load

        /// Ten SIGHUPs in ten seconds while 8 clients keep 4 PHP-FPM workers busy; every other one
        /// changes the pool (drained and replaced), the others change nothing (carried over).
        @Test func tenReloadsUnderLoadLoseNothing() async throws {
            let (fpm, proxy, options) = try await Self.startFPMAndProxy(.init(children: 4, name: "reload"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let load = SteadyLoad(port: proxy.port, path: "/hi.php", connections: 8)
            try await Task.sleep(for: .seconds(1))
            // The default is 16: rounds 1, 3, 5, 7, 9 change nothing, the others the pool.
            for maxConns in [16, 12, 12, 16, 16, 12, 12, 16, 16, 12] {
                var next = options
                next.extraPoolINI = "max_conns = \(maxConns)"
                try await Self.reload(proxy, ProxyProcess.ini(next, port: proxy.port))
                try await Task.sleep(for: .milliseconds(900))
            }
            let samples = await load.stop()
            let failed = Self.failures(samples)
            let slowest = samples.map(\.seconds).max() ?? 0
            print("FaultInjection reloads: 10 reloads, \(SteadyLoad.summary(samples))")
            #expect(proxy.log().components(separatedBy: "reload failed").count == 1, "log:\n\(proxy.log().suffix(3000))")
            #expect(samples.count > 200, "too little load to mean anything")
            #expect(failed.isEmpty, "\(failed.count) failed, first at \(failed.first.map { "\($0.start)" } ?? "-")")
            #expect(slowest < 1.0, "slowest request \(slowest) s")
            #expect(proxy.isRunning)
        }

        // MARK: 2. A broken file under load

        @Test func brokenReloadUnderLoadChangesNothing() async throws {
            let (fpm, proxy, options) = try await Self.startFPMAndProxy(.init(children: 4, name: "broken"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let load = SteadyLoad(port: proxy.port, path: "/hi.php", connections: 8)
            try await Task.sleep(for: .seconds(1))
            var broken = options
            broken.extraServerINI += "bogus = 1\n"
            broken.extraRouteINI = "param = APP_GEN two"
            try await Self.reload(proxy, ProxyProcess.ini(broken, port: proxy.port))
            try await Task.sleep(for: .seconds(2))
            let samples = await load.stop()
            let (plain, took) = try await Self.timed { try await Curl.run(["--max-time", "5", proxy.url("/gen.php")]) }
            print("FaultInjection broken reload: \(SteadyLoad.summary(samples)); then a plain request: \(plain.status) in \(String(format: "%.3f", took)) s")
            #expect(proxy.log().contains("the running configuration stays in force"), "log:\n\(proxy.log().suffix(2000))")
            #expect(Self.failures(samples).isEmpty)
            #expect((samples.map(\.seconds).max() ?? 0) < 1.0)
            #expect(plain.status == 200 && plain.text == "one", "\(plain.status) \(plain.text)")
            #expect(took < 1.0, "plain request after the load took \(took) s")
        }

        // MARK: 3. SIGTERM with requests in flight

        /// After a burst of load (idle backend connections on both loops), four 1 s requests are in
        /// flight when SIGTERM comes: all finish with 200 and the process exits right after.
        @Test func stopLetsRequestsInFlightFinish() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 4, name: "stop"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let warm = SteadyLoad(port: proxy.port, path: "/hi.php", connections: 8)
            try await Task.sleep(for: .seconds(2))
            let warmSamples = await warm.stop()

            let clock = ContinuousClock()
            let sleepers = Task {
                try await PoolLoad.run(Array(repeating: proxy.url("/sleep.php?s=1"), count: 4), parallel: 4, maxTime: 8)
            }
            try await Task.sleep(for: .milliseconds(300))
            let signalled = clock.now
            proxy.process.signal(SIGTERM)
            let results = try await sleepers.value
            let answered = clock.now
            while proxy.isRunning, clock.now < signalled + .seconds(25) {
                try await Task.sleep(for: .milliseconds(10))
            }
            let exitedAfter = SteadyLoad.seconds(clock.now - answered)
            print("FaultInjection stop: warm-up \(SteadyLoad.summary(warmSamples)); in flight: \(Pool.statusCounts(results)), slowest \(results.map(\.seconds).max() ?? 0) s; exit \(String(format: "%.3f", exitedAfter)) s after the last answer (\(String(format: "%.3f", SteadyLoad.seconds(clock.now - signalled))) s after SIGTERM)")
            #expect(results.map(\.status) == [200, 200, 200, 200], "\(results); log:\n\(proxy.log().suffix(2000))")
            #expect(results.allSatisfy { $0.seconds < 2.5 }, "\(results)")
            #expect(!proxy.isRunning && exitedAfter < 2.0, "exit \(exitedAfter) s after the last answer; log:\n\(proxy.log().suffix(2000))")
        }

        // MARK: 4. A backend that accepts and never reads

        @Test func backendThatNeverReadsGets504AtReadTimeout() async throws {
            let dir = try TempDir("fcgiproxy-fault-mute")
            let mute = try MuteListener(path: dir.file("mute.sock"))
            defer { mute.stop() }
            var options = Self.options(backend: "unix:" + mute.path, root: try Self.docroot(dir), pool: "multiplex = off")
            options.readTimeoutSeconds = 1
            let proxy = try await ProxyProcess(options: options, dir: dir, port: try Net.freePort())
            defer { proxy.stop() }
            let results = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 6), parallel: 3, maxTime: 6)
            let slowest = results.map(\.seconds).max() ?? 0
            print("FaultInjection mute backend: \(results.count) sent, \(Pool.statusCounts(results)), slowest \(slowest) s, \(mute.accepted) connections accepted")
            #expect(results.allSatisfy { $0.status == 504 }, "\(results)")
            #expect(results.allSatisfy { $0.seconds >= 0.9 && $0.seconds < 3.0 }, "\(results)")
            #expect(proxy.isRunning)
        }

        // MARK: 5. A backend that dies mid-response

        @Test func workerDyingMidResponseIsNoHang() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 2, name: "die"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            var lines: [String] = []
            for _ in 0..<3 {
                let (dead, took) = try await Self.timed {
                    try await Curl.run(["--max-time", "5", proxy.url("/die.php")], discardBody: true)
                }
                lines.append("\(dead.status) exit \(dead.exitCode) \(dead.sizeDownload) B in \(String(format: "%.3f", took)) s")
                // A truncated 200 must look truncated (curl reports an error), never complete.
                #expect(dead.status == 502 || (dead.status == 200 && dead.exitCode != 0), "\(dead.status) exit \(dead.exitCode)")
                #expect(took < 2.0, "took \(took) s")
                let after = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 20), parallel: 4, maxTime: 5)
                #expect(after.allSatisfy { $0.status == 200 && $0.seconds < 1.0 }, "\(after.filter { $0.status != 200 || $0.seconds >= 1 })")
                lines.append("next 20: \(Pool.statusCounts(after)) max \(after.map(\.seconds).max() ?? 0) s")
            }
            print("FaultInjection worker dies mid-response: \(lines.joined(separator: "; "))")
            #expect(proxy.isRunning)
        }

        // MARK: 6. Worker recycling

        @Test func recyclingEveryFiveRequestsLosesNothing() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 4, maxRequests: 5, name: "recycle5"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let results = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 200), parallel: 8, maxTime: 5)
            let slowest = results.map(\.seconds).max() ?? 0
            print("FaultInjection pm.max_requests = 5: 200 sent, \(Pool.statusCounts(results)), slowest \(slowest) s")
            #expect(results.allSatisfy { $0.status == 200 }, "\(results.filter { $0.status != 200 })")
            #expect(slowest < 2.0)
        }

        // MARK: 7. PHP-FPM killed and restarted under load

        @Test func fpmKilledAndRestartedRecoversFast() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 4, name: "killed"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let load = SteadyLoad(port: proxy.port, path: "/hi.php", connections: 8)
            try await Task.sleep(for: .milliseconds(1500))
            let killed = load.now
            fpm.killHard()
            try await Task.sleep(for: .milliseconds(200))
            try await fpm.start()
            let restarted = load.now
            try await Task.sleep(for: .seconds(3))
            let samples = await load.stop()
            let failed = Self.failures(samples)
            let slowest = samples.map(\.seconds).max() ?? 0
            let firstOK = samples.filter { $0.start >= restarted && $0.status == 200 }
                .map { SteadyLoad.seconds($0.start - restarted) + $0.seconds }.min()
            let lateFailures = failed.filter { $0.start > restarted + .seconds(1) }
            print("FaultInjection FPM SIGKILL + restart: \(SteadyLoad.summary(samples)); killed at \(killed), restarted at \(restarted); first 200 \(firstOK.map { String(format: "%.3f", $0) } ?? "never") s after the restart; failures started > 1 s after it: \(lateFailures.count)")
            #expect(slowest < 1.0, "slowest request \(slowest) s")
            #expect((firstOK ?? 99) < 1.0, "200s resumed \(firstOK ?? -1) s after the restart")
            #expect(lateFailures.isEmpty, "\(lateFailures.count) requests started > 1 s after the restart failed")
        }

        // MARK: 8. PHP-FPM stopped (its socket file goes)

        @Test func fpmStoppedAnswers502Fast() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 2, name: "stopped"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let warm = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 20), parallel: 4, maxTime: 5)
            #expect(warm.allSatisfy { $0.status == 200 })
            fpm.stop()
            #expect(!FileManager.default.fileExists(atPath: fpm.socketPath), "PHP-FPM left its socket file")
            let results = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 3), parallel: nil, maxTime: 8)
            let slowest = results.map(\.seconds).max() ?? 0
            print("FaultInjection FPM stopped: 3 sent one after the other, \(Pool.statusCounts(results)), slowest \(slowest) s")
            #expect(results.allSatisfy { $0.status == 502 }, "\(results)")
            #expect(slowest < 1.0, "\(results)")
        }

        // MARK: 9. The socket file removed while PHP-FPM runs

        /// Open connections go on serving; a new connection cannot be made: each request is
        /// served or refused at once, none waits.
        @Test func socketFileRemovedIsNoHang() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 2, name: "unlinked"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            _ = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 10), parallel: 2, maxTime: 5)
            unlink(fpm.socketPath)
            let results = try await PoolLoad.run(Array(repeating: proxy.url("/hi.php"), count: 20), parallel: 4, maxTime: 8)
            let slowest = results.map(\.seconds).max() ?? 0
            print("FaultInjection socket file removed: 20 sent, \(Pool.statusCounts(results)), slowest \(slowest) s")
            #expect(results.allSatisfy { $0.status == 200 || $0.status == 502 }, "\(results)")
            #expect(slowest < 1.0, "\(results)")
        }

        // MARK: 10. PHP-FPM reloaded (what `systemctl reload php-fpm` sends)

        /// SIGUSR2 re-executes the master and replaces every worker: idle keep-alive connections
        /// are closed under us and requests may be cut. Nothing may hang, and the pool must be
        /// serving again at once.
        @Test func fpmGracefulReloadUnderLoadIsNoHang() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 4, name: "usr2"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            let load = SteadyLoad(port: proxy.port, path: "/hi.php", connections: 8)
            var reloads: [Duration] = []
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(800))
                reloads.append(load.now)
                fpm.reload()
            }
            try await Task.sleep(for: .seconds(2))
            let samples = await load.stop()
            let slowest = samples.map(\.seconds).max() ?? 0
            let last = reloads.last ?? .zero
            let lateFailures = Self.failures(samples).filter { $0.start > last + .seconds(1) }
            print("FaultInjection FPM SIGUSR2 ×3: \(SteadyLoad.summary(samples)); failures > 1 s after the last reload: \(lateFailures.count)")
            #expect(slowest < 1.0, "slowest request \(slowest) s")
            #expect(lateFailures.isEmpty, "\(lateFailures.count) requests failed > 1 s after the last reload")
        }

        // MARK: 11. Workers pinned by another event loop's connections

        /// Two event loops, each with its own shard and its own share of `max_conns`, against 2
        /// FPM workers. Client connections are handed to the loops in turn, so the 1st and 3rd
        /// land on one loop and the 2nd and 4th on the other: two slow requests on the 1st and
        /// 3rd make one loop open two backend connections, which keep both workers once idle.
        /// A request on the 2nd (the other loop) must get a worker freed at once, not wait in
        /// FPM's listen queue until that loop's connections reach `idle_timeout`.
        @Test func workersPinnedByAnotherLoopAreFreed() async throws {
            let (fpm, proxy, _) = try await Self.startFPMAndProxy(.init(children: 2, name: "pinned"))
            defer {
                proxy.stop()
                fpm.stop()
            }
            var clients: [RawHTTP] = []
            for _ in 0..<4 {
                clients.append(try RawHTTP(port: proxy.port))
                // Accepted in this order: the loops take them in turn.
                try await Task.sleep(for: .milliseconds(50))
            }
            let slow = "GET /sleep.php?s=0.3 HTTP/1.1\r\nHost: test\r\n\r\n"
            let hi = "GET /hi.php HTTP/1.1\r\nHost: test\r\n\r\n"
            #expect(clients[0].send(slow) && clients[2].send(slow))
            let warm = [clients[0].readResponses(1, timeout: .seconds(3)), clients[2].readResponses(1, timeout: .seconds(3))]
            #expect(warm.allSatisfy { $0.finals.first?.status == 200 })
            var lines: [String] = []
            for index in [1, 3] {
                let started = ContinuousClock.now
                #expect(clients[index].send(hi))
                let reply = clients[index].readResponses(1, timeout: .seconds(3))
                let took = SteadyLoad.seconds(ContinuousClock.now - started)
                lines.append("client \(index + 1): \(reply.finals.first?.status ?? 0) in \(String(format: "%.3f", took)) s")
                #expect(reply.finals.first?.status == 200, "client \(index + 1)")
                #expect(took < 1.0, "client \(index + 1) waited \(took) s")
            }
            print("FaultInjection pinned workers (threads = 2, 2 FPM workers, both held by one loop): " + lines.joined(separator: "; "))
        }
    }
}

/// A Unix socket listener that accepts connections and never reads from them: a backend hung
/// before it looked at its input.
final class MuteListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var held: [Int32] = []
    private var stopped = false

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw HarnessError("bind/listen \(path): errno \(errno)")
        }
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var accepted: Int { lock.withLock { held.count } }

    private func acceptLoop() {
        while !lock.withLock({ stopped }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let client = accept(fd, nil, nil)
            if client >= 0 { lock.withLock { held.append(client) } }
        }
    }

    func stop() {
        let fds = lock.withLock {
            stopped = true
            defer { held = [] }
            return held
        }
        for client in fds { close(client) }
        // The accept loop polls with a short timeout, so it sees `stopped` before the close.
        usleep(100_000)
        close(fd)
        unlink(path)
    }
}
