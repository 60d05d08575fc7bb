import Foundation
import Testing

extension Integration {
    /// Out of file descriptors: the proxy pauses accepting, keeps running, logs it (rate-limited)
    /// and serves again once connections go away.
    @Suite(.fcgiproxyOnly("fcgiproxy's accept backoff")) struct DescriptorLimit {
        /// fcgiproxy on one event loop with 64 descriptors, on the shared PHP-FPM.
        private static func launchWith64Descriptors() async throws -> (proxy: SpawnedProcess, port: Int, log: String) {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-emfile")
            let port = try Net.freePort()
            var options = FrontEndOptions(backendSocket: fixture.php.socketPath)
            options.extraServerINI = "threads = 1\naccess_log = off"
            let ini = try dir.write("emfile.ini", ProxyProcess.ini(options, port: port))
            let log = dir.file("emfile.log")
            // Soft and hard limit 64, so the proxy's own raise to the hard limit changes nothing.
            let proxy = try ChildProcess.launch(
                "/bin/sh", ["-c", "ulimit -n 64 && exec \"$0\" --config \"$1\"", Paths.fcgiproxyBinary, ini], logPath: log)
            let started = await Net.waitUntilAccepting(port: port, timeout: .seconds(15), alive: { proxy.isRunning })
            guard started else {
                proxy.stop()
                throw HarnessError("fcgiproxy did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            return (proxy, port, log)
        }

        @Test func survivesRunningOutOfDescriptorsAndRecovers() async throws {
            let (proxy, port, log) = try await Self.launchWith64Descriptors()
            defer { proxy.stop() }

            // 200 connections that stay open: far more than 64 descriptors.
            var clients: [RawHTTP] = []
            for _ in 0..<200 {
                if let client = try? RawHTTP(port: port) { clients.append(client) }
            }
            try await Task.sleep(for: .milliseconds(300))
            let cpuBefore = Self.cpuTicks(proxy.pid)
            try await Task.sleep(for: .seconds(1))
            let cpuAfter = Self.cpuTicks(proxy.pid)
            // Accepting pauses, it is not retried in a tight loop: the proxy stays nearly idle.
            if let before = cpuBefore, let after = cpuAfter {
                #expect(after - before < 30, "\(after - before) ticks of CPU in one second: spinning on accept")
            }
            #expect(proxy.isRunning, "the proxy died when it ran out of descriptors")
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(text.contains("cannot accept connections"), "no accept error was logged: \(text.suffix(1500))")
            // Rate-limited: one report a second at most, not one per failed accept.
            let reports = text.components(separatedBy: "cannot accept connections").count - 1
            #expect(reports <= 3, "\(reports) reports in about a second")

            clients.removeAll()
            try await Task.sleep(for: .milliseconds(800))
            let again = try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/status.php?code=200"])
            #expect(again.status == 200, "not serving again after the clients left")
            #expect(proxy.isRunning)
        }

        /// A request on a connection accepted before the descriptors ran out, whose backend
        /// connection cannot be opened (EMFILE), is answered 502 at once, not after a wait.
        @Test func backendConnectWithoutDescriptorsIs502AtOnce() async throws {
            let (proxy, port, log) = try await Self.launchWith64Descriptors()
            defer { proxy.stop() }

            let first = try RawHTTP(port: port)
            var clients: [RawHTTP] = []
            for _ in 0..<120 {
                if let client = try? RawHTTP(port: port) { clients.append(client) }
            }
            try await Task.sleep(for: .milliseconds(500))
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try #require(text.contains("cannot accept connections"), "the descriptors did not run out: \(text.suffix(1500))")

            let clock = ContinuousClock()
            let start = clock.now
            first.send("GET /status.php?code=200 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let reply = first.readResponses(1, timeout: .seconds(10))
            let took = clock.now - start
            #expect(reply.status == 502, "\(reply.text.prefix(300))")
            #expect(took < .seconds(2), "answered after \(took)")
            #expect(proxy.isRunning)
            clients.removeAll()
        }

        /// utime + stime of a process in clock ticks (100 a second here).
        static func cpuTicks(_ pid: Int32) -> Int? {
            guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
                let text = String(data: stat, encoding: .utf8),
                let close = text.lastIndex(of: ")")
            else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After the command name: state is field 3, utime 14 and stime 15 (1-based).
            guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
            return user + system
        }
    }
}
