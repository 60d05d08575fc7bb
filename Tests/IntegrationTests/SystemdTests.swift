import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// Running under systemd (issue 6): sd_notify, socket activation, graceful SIGTERM drain,
    /// and the shipped unit files.
    @Suite(.fcgiproxyOnly("fcgiproxy's own systemd integration"))
    struct Systemd {
        /// A minimal INI on `port` in front of the shared PHP-FPM (or a dead socket).
        static func ini(port: Int, backend: String, extraServer: String = "") -> String {
            """
            [server]
            listen = 127.0.0.1:\(port)
            threads = 2
            access_log = off
            \(extraServer)

            [pool:php]
            backend = unix:\(backend)

            [route:php]
            match = /
            pool = php
            root = \(Paths.phpRoot)

            """
        }

        /// Starts `executable args` (fcgiproxy, possibly behind `env` or systemd-socket-activate,
        /// both of which exec it in place: same pid).
        static func launch(_ dir: TempDir, _ executable: String, _ arguments: [String]) throws -> (SpawnedProcess, logPath: String) {
            let logPath = dir.file("fcgiproxy.log")
            return (try ChildProcess.launch(executable, arguments, logPath: logPath), logPath)
        }

        static func binary() throws -> String {
            let binary = Paths.fcgiproxyBinary
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw HarnessError("fcgiproxy binary not found at \(binary) (run `swift build` or set FCGIPROXY_BIN)")
            }
            return binary
        }

        @Test("sd_notify: READY=1 once the port accepts, STATUS lines, STOPPING=1 on SIGTERM, exit 0")
        func notifySequence() async throws {
            let dir = try TempDir("fcgiproxy-notify")
            let notify = try NotifyListener(path: dir.file("notify.sock"))
            defer { notify.stop() }
            let port = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: dir.file("nobody.sock")))
            let (proxy, logPath) = try Self.launch(dir, "/usr/bin/env", ["NOTIFY_SOCKET=\(notify.path)", try Self.binary(), "--config", config])
            defer { proxy.stop() }

            // READY=1 comes once every listener is bound: at that moment the port must accept.
            let ready = await notify.waitFor(timeout: .seconds(15)) { $0.contains { $0.contains("READY=1") } }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            try #require(ready, "no READY=1; datagrams: \(notify.messages); log:\n\(log())")
            let fd = Net.connect(port: port)
            #expect(fd != nil, "READY=1 was sent before 127.0.0.1:\(port) accepted")
            if let fd { close(fd) }

            let readyMessage = try #require(notify.messages.first { $0.contains("READY=1") })
            #expect(readyMessage.contains("STATUS=serving, "), "READY datagram: \(readyMessage)")
            #expect(!(notify.messages.first ?? "").contains("STOPPING"), "\(notify.messages)")

            // A connection held open shows up in the status line (refreshed every 2 s).
            let client = try RawHTTP(port: port)
            let counted = await notify.waitFor(timeout: .seconds(5)) { $0.contains { $0.contains("STATUS=serving, 1 connection") } }
            #expect(counted, "no status line with 1 connection: \(notify.messages)")
            _ = client

            proxy.signal(SIGTERM)
            let status = await Self.waitForExit(proxy, timeout: .seconds(10))
            #expect(status == 0, "exit status \(String(describing: status)); log:\n\(log())")

            let messages = notify.messages
            let stateNames: Set<String> = ["READY=1", "STOPPING=1", "RELOADING=1"]
            let lines: [String] = messages.flatMap { (message: String) -> [String] in
                message.split(separator: "\n").map { String($0) }
            }
            let states = lines.filter { stateNames.contains($0) }
            #expect(states == ["READY=1", "STOPPING=1"], "datagrams: \(messages)")
            #expect(log().contains("open file limit"), "no open file limit line in:\n\(log())")
        }

        @Test("Under journald (JOURNAL_STREAM set): error log lines carry <N> priorities and no time of their own")
        func journalFormat() async throws {
            let dir = try TempDir("fcgiproxy-journal")
            let port = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: dir.file("nobody.sock")))
            let (proxy, logPath) = try Self.launch(dir, "/usr/bin/env", ["JOURNAL_STREAM=8:12345", try Self.binary(), "--config", config])
            defer { proxy.stop() }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            for _ in 0..<500 where !log().contains(" ready") {
                try await Task.sleep(for: .milliseconds(10))
            }
            // A request to the missing backend logs an error (priority 3).
            _ = try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/"])
            for _ in 0..<200 where !log().contains("<3>") {
                try await Task.sleep(for: .milliseconds(10))
            }
            let lines = log().split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("<6>info fcgiproxy: ") && $0.contains(" ready") }, "log:\n\(log())")
            #expect(lines.contains { $0.hasPrefix("<3>error fcgiproxy: ") }, "log:\n\(log())")
            // Every line is "<N>level label: …": a priority, and no time of our own (journald adds it).
            let shape = try Regex("^<[0-7]>(trace|debug|info|notice|warning|error|critical) ")
            #expect(lines.allSatisfy { $0.firstMatch(of: shape) != nil }, "a line of another shape (or split in two):\n\(log())")
        }

        @Test("sd_notify to an abstract socket (@name), and WATCHDOG=1 pings at half of WATCHDOG_USEC")
        func abstractSocketAndWatchdog() async throws {
            let dir = try TempDir("fcgiproxy-watchdog")
            let name = "@fcgiproxy-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let notify = try NotifyListener(path: name)
            defer { notify.stop() }
            let port = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: dir.file("nobody.sock")))
            let (proxy, logPath) = try Self.launch(
                dir, "/usr/bin/env",
                ["NOTIFY_SOCKET=\(name)", "WATCHDOG_USEC=400000", try Self.binary(), "--config", config]
            )
            defer { proxy.stop() }
            let pinged = await notify.waitFor(timeout: .seconds(15)) { messages in
                messages.filter { $0 == "WATCHDOG=1" }.count >= 3
            }
            #expect(pinged, "datagrams: \(notify.messages); log:\n\((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
            #expect(notify.messages.first?.contains("READY=1") == true, "\(notify.messages)")
            proxy.signal(SIGTERM)
            #expect(await Self.waitForExit(proxy, timeout: .seconds(10)) == 0)
        }

        @Test("systemd-socket-activate: the inherited socket serves; a socket no listen line names is an error")
        func socketActivation() async throws {
            let tool = "/usr/bin/systemd-socket-activate"
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                print("skipped: \(tool) is missing (apt-get install systemd)")
                return
            }
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-activate")
            let port = try Net.freePort()
            let stray = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: fixture.php.socketPath))
            let (proxy, logPath) = try Self.launch(
                dir, tool,
                ["-l", "127.0.0.1:\(port)", "-l", "127.0.0.1:\(stray)", "--fdname=http:stray", try Self.binary(), "--config", config]
            )
            defer { proxy.stop() }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            // The tool binds before it says so; connecting earlier is refused (seen under load).
            for _ in 0..<250 where !log().contains("Listening on 127.0.0.1:\(port)") {
                try await Task.sleep(for: .milliseconds(20))
            }
            // systemd-socket-activate starts fcgiproxy on the first connection; curl's waits in
            // the backlog meanwhile.
            let response = try await Curl.run(["--max-time", "15", "http://127.0.0.1:\(port)/index.php"])
            #expect(response.status == 200, "\(response.status) \(response.stderr); log:\n\(log())")
            #expect(log().contains("(inherited fd 3 \"http\""), "log:\n\(log())")
            #expect(
                log().contains("inherited socket fd 4 \"stray\" (127.0.0.1:\(stray)) matches no listen line"),
                "log:\n\(log())"
            )
            let again = try await Curl.run(["--max-time", "5", "http://127.0.0.1:\(port)/index.php"])
            #expect(again.status == 200)
            proxy.signal(SIGTERM)
            #expect(await Self.waitForExit(proxy, timeout: .seconds(10)) == 0, "log:\n\(log())")
        }

        @Test("SIGTERM: a slow request in flight finishes with 200 and Connection: close, new connections are refused, exit 0")
        func drainRequestInFlight() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-drain")
            let port = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: fixture.php.socketPath, extraServer: "shutdown_timeout = 20s"))
            let (proxy, logPath) = try Self.launch(dir, try Self.binary(), ["--config", config])
            defer { proxy.stop() }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.isRunning }, "log:\n\(log())")

            let slow = try RawHTTP(port: port)
            slow.send("GET /sleep.php?s=2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try await Task.sleep(for: .milliseconds(600))
            let clock = ContinuousClock()
            let signalled = clock.now
            proxy.signal(SIGTERM)

            // Listeners close at once.
            var refused = false
            for _ in 0..<40 {
                if let fd = Net.connect(port: port) {
                    close(fd)
                    try await Task.sleep(for: .milliseconds(25))
                } else {
                    refused = true
                    break
                }
            }
            #expect(refused, "127.0.0.1:\(port) still accepts 1 s after SIGTERM")

            let reply = slow.readUntilClose(timeout: .seconds(10))
            let response = try #require(reply.finals.first, "no response; got \(reply.text.prefix(500)); log:\n\(log())")
            #expect(response.status == 200)
            #expect(response.bodyText == "slept 2\n")
            #expect(response.header("Connection")?.lowercased() == "close", "\(response.headers)")
            #expect(reply.closed)
            let status = await Self.waitForExit(proxy, timeout: .seconds(10))
            #expect(status == 0, "exit status \(String(describing: status)); log:\n\(log())")
            #expect(clock.now - signalled < .seconds(8), "took \(clock.now - signalled)")
        }

        @Test("SIGTERM closes an idle keep-alive connection at once and exits long before shutdown_timeout")
        func idleKeepAliveClosedAtOnce() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-idle")
            let port = try Net.freePort()
            let config = try dir.write("proxy.ini", Self.ini(port: port, backend: fixture.php.socketPath, extraServer: "shutdown_timeout = 30s"))
            let (proxy, logPath) = try Self.launch(dir, try Self.binary(), ["--config", config])
            defer { proxy.stop() }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.isRunning }, "log:\n\(log())")

            let idle = try RawHTTP(port: port)
            idle.send("GET /index.php HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let first = idle.readResponses(1, timeout: .seconds(10))
            #expect(first.status == 200, "\(first.text.prefix(300))")
            #expect(!first.closed)

            let clock = ContinuousClock()
            let signalled = clock.now
            proxy.signal(SIGTERM)
            let rest = idle.readUntilClose(timeout: .seconds(5))
            #expect(rest.closed, "idle connection still open 5 s after SIGTERM")
            #expect(rest.bytes.isEmpty, "unexpected bytes: \(rest.text.prefix(200))")
            #expect(clock.now - signalled < .seconds(2), "closed after \(clock.now - signalled)")
            let status = await Self.waitForExit(proxy, timeout: .seconds(5))
            #expect(status == 0, "exit status \(String(describing: status)); log:\n\(log())")
        }

        @Test("shutdown_timeout cuts a request that takes longer; a second SIGTERM stops at once")
        func shutdownTimeoutAndSecondSignal() async throws {
            let fixture = try await Fixture.shared()
            for secondSignal in [false, true] {
                let dir = try TempDir("fcgiproxy-cut")
                let port = try Net.freePort()
                let timeout = secondSignal ? "30s" : "1s"
                let config = try dir.write("proxy.ini", Self.ini(port: port, backend: fixture.php.socketPath, extraServer: "shutdown_timeout = \(timeout)"))
                let (proxy, logPath) = try Self.launch(dir, try Self.binary(), ["--config", config])
                defer { proxy.stop() }
                let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
                try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.isRunning }, "log:\n\(log())")

                let slow = try RawHTTP(port: port)
                slow.send("GET /sleep.php?s=6 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try await Task.sleep(for: .milliseconds(500))
                let clock = ContinuousClock()
                let signalled = clock.now
                proxy.signal(SIGTERM)
                if secondSignal {
                    try await Task.sleep(for: .milliseconds(300))
                    proxy.signal(SIGTERM)
                }
                let reply = slow.readUntilClose(timeout: .seconds(10))
                #expect(reply.closed)
                #expect(reply.finals.isEmpty, "a response came: \(reply.text.prefix(300))")
                let status = await Self.waitForExit(proxy, timeout: .seconds(10))
                let took = clock.now - signalled
                #expect(status == 0, "second signal \(secondSignal): exit status \(String(describing: status)); log:\n\(log())")
                #expect(took < .seconds(3), "second signal \(secondSignal): exit after \(took)")
            }
        }

        @Test("systemd-analyze verify accepts systemd/fcgiproxy.service and fcgiproxy.socket")
        func unitFilesVerify() async throws {
            let tool = "/usr/bin/systemd-analyze"
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                print("skipped: \(tool) is missing (apt-get install systemd)")
                return
            }
            let dir = try TempDir("fcgiproxy-units")
            let units = Paths.packageRoot + "/systemd"
            // verify insists that ExecStart= binaries exist: point them at the built one.
            let service = try String(contentsOfFile: units + "/fcgiproxy.service", encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/fcgiproxy", with: try Self.binary())
            let socket = try String(contentsOfFile: units + "/fcgiproxy.socket", encoding: .utf8)
            #expect(service.contains("Type=notify"))
            #expect(socket.contains("FileDescriptorName=http"))
            let servicePath = try dir.write("fcgiproxy.service", service)
            let socketPath = try dir.write("fcgiproxy.socket", socket)
            let result = try await ChildProcess.run(tool, ["verify", socketPath, servicePath])
            #expect(result.exitCode == 0, "\(result.stderrText)")
            // Unknown keys are only warned about (exit 0): require a silent verify.
            #expect(result.stderrText.isEmpty, "\(result.stderrText)")
        }

        /// Reaps the child and returns its exit status (nil: still running, or killed by a signal,
        /// which shows as 128 + the signal).
        static func waitForExit(_ process: SpawnedProcess, timeout: Duration) async -> Int32? {
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            while clock.now < deadline {
                var status: Int32 = 0
                let result = waitpid(process.pid, &status, WNOHANG)
                if result == process.pid {
                    ExitCleanup.shared.untrack(process.pid)
                    let signal = status & 0x7f
                    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
                }
                if result < 0 { return nil }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
    }
}

/// The test's own NOTIFY_SOCKET: an AF_UNIX datagram socket (a path, or `@name` for an abstract
/// one) whose datagrams a background thread records in order.
final class NotifyListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var closed = false

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
            if path.hasPrefix("@") { raw[0] = 0 }
        }
        let length = 2 + bytes.count + (path.hasPrefix("@") ? 0 : 1)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            close(fd)
            throw HarnessError("bind \(path): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in receiveLoop() }
        thread.start()
    }

    deinit {
        close(fd)
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !lock.withLock({ closed }) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let text = String(decoding: buffer.prefix(count), as: UTF8.self)
                lock.withLock { received.append(text) }
            }
        }
    }

    /// Datagrams so far, in arrival order.
    var messages: [String] { lock.withLock { received } }

    /// Polls until `condition` holds on the datagrams so far.
    func waitFor(timeout: Duration, _ condition: ([String]) -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if condition(messages) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(messages)
    }

    /// Ends the receiving thread (the socket closes with the object).
    func stop() { lock.withLock { closed = true } }
}
