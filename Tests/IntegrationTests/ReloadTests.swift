import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// SIGHUP reload (issue 6 item 4), `listen … name=` with socket activation (item 3) and
    /// `user =` / `group =` (item 6).
    @Suite(.fcgiproxyOnly("fcgiproxy's own reload, socket activation and privilege drop"))
    struct Reload {
        /// One fcgiproxy on the shared PHP-FPM, with its INI rewritten by each step.
        final class Harness: @unchecked Sendable {
            let dir: TempDir
            let configPath: String
            let process: SpawnedProcess
            let logPath: String

            init(_ dir: TempDir, ini: String, environment: [String] = []) throws {
                self.dir = dir
                configPath = try dir.write("proxy.ini", ini)
                let binary = try Systemd.binary()
                (process, logPath) = try Systemd.launch(dir, "/usr/bin/env", environment + [binary, "--config", configPath])
            }

            init(attachingTo process: SpawnedProcess, dir: TempDir, configPath: String, logPath: String) throws {
                self.dir = dir
                self.configPath = configPath
                self.process = process
                self.logPath = logPath
            }

            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

            func count(_ text: String) -> Int { log().components(separatedBy: text).count - 1 }

            /// Writes `ini`, sends SIGHUP and waits for the reload's outcome line.
            func reload(_ ini: String) async throws {
                let done = count("reload failed:") + countReloadLines()
                _ = try dir.write("proxy.ini", ini)
                process.signal(SIGHUP)
                for _ in 0..<500 {
                    if count("reload failed:") + countReloadLines() > done { return }
                    try await Task.sleep(for: .milliseconds(10))
                }
                throw HarnessError("no reload outcome within 5 s; log:\n\(log())")
            }

            /// Lines `reload N: summary` of successful reloads.
            func countReloadLines() -> Int {
                log().split(separator: "\n").filter { $0.range(of: #"reload \d+: "#, options: .regularExpression) != nil && !$0.contains("drained") && !$0.contains("take effect") }.count
            }

            func stop() async -> Int32? {
                process.signal(SIGTERM)
                return await Systemd.waitForExit(process, timeout: .seconds(15))
            }
        }

        static func ini(ports: [Int], backend: String, generation: String, maxConns: Int = 4, extraServer: String = "") -> String {
            """
            [server]
            \(ports.map { "listen = 127.0.0.1:\($0)" }.joined(separator: "\n"))
            threads = 2
            access_log = off
            shutdown_timeout = 20s
            \(extraServer)

            [pool:php]
            backend = unix:\(backend)
            max_conns = \(maxConns)

            [route:php]
            match = /
            pool = php
            root = \(Paths.phpRoot)
            param = APP_GEN \(generation)

            """
        }

        static func generation(port: Int) async throws -> String? {
            let response = try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/env.php?k=APP_GEN"])
            guard response.status == 200 else { return "status \(response.status) \(response.stderr)" }
            return try response.json()["value"] as? String
        }

        @Test("SIGHUP: notify sequence READY, RELOADING+MONOTONIC_USEC, READY, …, STOPPING; new routes after reload; a broken file keeps the old config and logs file:line")
        func notifyRouteChangeAndBrokenFile() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-reload")
            let notify = try NotifyListener(path: dir.file("notify.sock"))
            defer { notify.stop() }
            let port = try Net.freePort()
            let proxy = try Harness(
                dir, ini: Self.ini(ports: [port], backend: fixture.php.socketPath, generation: "one"),
                environment: ["NOTIFY_SOCKET=\(notify.path)"]
            )
            defer { proxy.process.stop() }
            try #require(await notify.waitFor(timeout: .seconds(15)) { $0.contains { $0.contains("READY=1") } }, "log:\n\(proxy.log())")
            #expect(try await Self.generation(port: port) == "one")

            try await proxy.reload(Self.ini(ports: [port], backend: fixture.php.socketPath, generation: "two"))
            #expect(try await Self.generation(port: port) == "two", "log:\n\(proxy.log())")
            #expect(proxy.log().contains("reload 2: routes changed"), "log:\n\(proxy.log())")

            // Line 9 is `bogus = 1` in [server]: the old configuration keeps serving.
            let broken = Self.ini(ports: [port], backend: fixture.php.socketPath, generation: "three", extraServer: "bogus = 1")
            try await proxy.reload(broken)
            let brokenLine = broken.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0 == "bogus = 1" }! + 1
            #expect(proxy.log().contains("\(proxy.configPath):\(brokenLine): "), "log:\n\(proxy.log())")
            #expect(proxy.log().contains("the running configuration stays in force"))
            #expect(try await Self.generation(port: port) == "two")

            // All READY=1 after RELOADING=1 must have arrived before the stop.
            _ = await notify.waitFor(timeout: .seconds(5)) { $0.filter { $0.contains("READY=1") }.count >= 3 }
            #expect(await proxy.stop() == 0, "log:\n\(proxy.log())")
            let states = notify.messages.flatMap { $0.split(separator: "\n").map(String.init) }
                .filter { ["READY=1", "RELOADING=1", "STOPPING=1"].contains($0) }
            #expect(states == ["READY=1", "RELOADING=1", "READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], "\(notify.messages)")
            let reloading = notify.messages.filter { $0.contains("RELOADING=1") }
            #expect(reloading.count == 2 && reloading.allSatisfy { $0.range(of: #"MONOTONIC_USEC=\d+"#, options: .regularExpression) != nil }, "\(reloading)")
        }

        @Test("SIGHUP adds a listener (bound before READY) and removes one; the unchanged one never closes")
        func listenersAddedAndRemoved() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-reload-listen")
            let (a, b) = (try Net.freePort(), try Net.freePort())
            let proxy = try Harness(dir, ini: Self.ini(ports: [a], backend: fixture.php.socketPath, generation: "one"))
            defer { proxy.process.stop() }
            try #require(await Net.waitUntilAccepting(port: a, timeout: .seconds(15)) { proxy.process.isRunning }, "log:\n\(proxy.log())")
            #expect(Net.connect(port: b).map { close($0) } == nil, "port \(b) accepts before the reload")

            // A keep-alive connection opened before the reload picks up the new routes for its next request.
            let client = try RawHTTP(port: a)
            client.send("GET /env.php?k=APP_GEN HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponses(1, timeout: .seconds(5)).finals.first?.bodyText.contains("\"one\"") == true)

            try await proxy.reload(Self.ini(ports: [a, b], backend: fixture.php.socketPath, generation: "two"))
            #expect(try await Self.generation(port: b) == "two", "log:\n\(proxy.log())")
            #expect(try await Self.generation(port: a) == "two")
            client.send("GET /env.php?k=APP_GEN HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponses(1, timeout: .seconds(5)).finals.first?.bodyText.contains("\"two\"") == true)

            try await proxy.reload(Self.ini(ports: [b], backend: fixture.php.socketPath, generation: "three"))
            #expect(try await Self.generation(port: b) == "three")
            #expect(Net.connect(port: a).map { close($0) } == nil, "port \(a) still accepts after its line was removed")
            // The connection accepted on the removed listener goes on.
            client.send("GET /env.php?k=APP_GEN HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponses(1, timeout: .seconds(5)).finals.first?.bodyText.contains("\"three\"") == true)
            #expect(proxy.log().contains("no longer listening on 127.0.0.1:\(a)"), "log:\n\(proxy.log())")
            #expect(await proxy.stop() == 0)
        }

        @Test("Under wrk load across 3 reloads (pool changed, routes only, pool changed): zero failed requests; a slow request finishes on the old pool")
        func reloadUnderLoad() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
                print("skipped: /usr/bin/wrk is missing (apt-get install wrk)")
                return
            }
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-reload-load")
            let port = try Net.freePort()
            let socket = fixture.php.socketPath
            let proxy = try Harness(dir, ini: Self.ini(ports: [port], backend: socket, generation: "one", maxConns: 4))
            defer { proxy.process.stop() }
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.process.isRunning }, "log:\n\(proxy.log())")

            let wrk = Task {
                try await ChildProcess.run(
                    "/usr/bin/wrk", ["-t2", "-c8", "-d5s", "--timeout", "10s", "http://127.0.0.1:\(port)/whoami.php"],
                    timeout: .seconds(30)
                )
            }
            let slow = try RawHTTP(port: port)
            try await Task.sleep(for: .milliseconds(800))
            slow.send("GET /sleep.php?s=2 HTTP/1.1\r\nHost: x\r\n\r\n")
            try await Task.sleep(for: .milliseconds(300))
            try await proxy.reload(Self.ini(ports: [port], backend: socket, generation: "two", maxConns: 3))
            try await Task.sleep(for: .milliseconds(1000))
            try await proxy.reload(Self.ini(ports: [port], backend: socket, generation: "three", maxConns: 3))
            try await Task.sleep(for: .milliseconds(1000))
            try await proxy.reload(Self.ini(ports: [port], backend: socket, generation: "four", maxConns: 4))

            let slowReply = slow.readResponses(1, timeout: .seconds(10)).finals.first
            #expect(slowReply?.status == 200 && slowReply?.bodyText == "slept 2\n", "slow request: \(String(describing: slowReply))")
            let result = try await wrk.value
            let output = result.stdoutText
            let requests = output.range(of: #"(\d+) requests in"#, options: .regularExpression).map { Int(output[$0].split(separator: " ")[0]) ?? 0 } ?? 0
            #expect(requests > 100, "wrk output:\n\(output)\(result.stderrText)")
            #expect(!output.contains("Non-2xx"), "wrk output:\n\(output)\nlog:\n\(proxy.log().suffix(3000))")
            #expect(!output.contains("Socket errors"), "wrk output:\n\(output)\nlog:\n\(proxy.log().suffix(3000))")
            let log = proxy.log()
            #expect(log.contains("reload 2: pools ~php; routes changed"), "log:\n\(log)")
            #expect(log.contains("reload 3: routes changed"), "log:\n\(log)")
            #expect(log.contains("reload 4: pools ~php; routes changed"), "log:\n\(log)")
            // The slow request kept generation 1's pool busy through reload 3: a reload while an
            // older generation still drains.
            let drained2 = log.range(of: "reload 2: pools of the previous configuration drained")
            let reload3 = log.range(of: "reload 3: routes changed")
            #expect(drained2 != nil && reload3 != nil && reload3!.lowerBound < drained2!.lowerBound, "log:\n\(log)")
            print("reload under load: \(requests) requests, wrk:\n\(output)")
            #expect(await proxy.stop() == 0)
        }

        @Test("Spawned workers across reloads: kept when their pool is unchanged, replaced (new socket, old workers stopped after the drain) when it changes")
        func spawnedWorkersAcrossReloads() async throws {
            let dir = try TempDir("fcgiproxy-reload-spawn")
            let port = try Net.freePort()
            let runDir = dir.file("run")
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            let ini = { (processes: Int, generation: String) in
                """
                [server]
                listen = 127.0.0.1:\(port)
                threads = 1
                access_log = off

                [pool:demo]
                spawn = \(Spawn.demoBinary)
                processes = \(processes)

                [route:demo]
                match = /
                pool = demo
                root = \(dir.path)
                script = \(dir.path)/app
                param = APP_GEN \(generation)

                """
            }
            let configPath = try dir.write("proxy.ini", ini(1, "one"))
            let (process, logPath) = try Systemd.launch(dir, try Systemd.binary(), ["--config", configPath, "--run-dir", runDir])
            defer { process.stop() }
            let proxy = try Harness(attachingTo: process, dir: dir, configPath: configPath, logPath: logPath)
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { process.isRunning }, "log:\n\(proxy.log())")
            Spawn.expectFromWorker(try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/"]))
            let firstPIDs = Self.workerPIDs(in: proxy.log())
            try #require(firstPIDs.count == 1, "log:\n\(proxy.log())")

            try await proxy.reload(ini(1, "two"))
            Spawn.expectFromWorker(try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/"]))
            #expect(proxy.count("started 1 workers") == 1, "routes only: the workers stay; log:\n\(proxy.log())")
            #expect(kill(firstPIDs[0], 0) == 0)

            try await proxy.reload(ini(2, "three"))
            #expect(proxy.log().contains("started 2 workers on unix:\(runDir)/demo.3.sock"), "log:\n\(proxy.log())")
            for _ in 0..<20 {
                Spawn.expectFromWorker(try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/"]))
            }
            // The old worker stops once generation 2's pool drained.
            var gone = false
            for _ in 0..<300 {
                if kill(firstPIDs[0], 0) != 0 { gone = true; break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(gone, "old worker \(firstPIDs[0]) still runs; log:\n\(proxy.log())")
            #expect(!FileManager.default.fileExists(atPath: "\(runDir)/demo.sock"), "the old socket file is left")
            #expect(await proxy.stop() == 0, "log:\n\(proxy.log())")
        }

        /// Pids of the first `started N workers` line.
        static func workerPIDs(in log: String) -> [pid_t] {
            guard let line = log.split(separator: "\n").first(where: { $0.contains("started") && $0.contains("workers on") }),
                let open = line.range(of: "pids=["), let close = line[open.upperBound...].firstIndex(of: "]")
            else { return [] }
            return line[open.upperBound..<close].split(separator: ",").compactMap { pid_t($0.trimmingCharacters(in: .whitespaces)) }
        }

        @Test("systemd-socket-activate --fdname: a listen line's name= takes the socket of that name, whatever its address")
        func fdNameMatching() async throws {
            let tool = "/usr/bin/systemd-socket-activate"
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                print("skipped: \(tool) is missing (apt-get install systemd)")
                return
            }
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-fdname")
            let (inherited, written) = (try Net.freePort(), try Net.freePort())
            let ini = Self.ini(ports: [written], backend: fixture.php.socketPath, generation: "one")
                .replacingOccurrences(of: "listen = 127.0.0.1:\(written)", with: "listen = 127.0.0.1:\(written) name=web")
            let config = try dir.write("proxy.ini", ini)
            let (proxy, logPath) = try Systemd.launch(
                dir, tool, ["-l", "127.0.0.1:\(inherited)", "--fdname=web", try Systemd.binary(), "--config", config]
            )
            defer { proxy.stop() }
            let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            for _ in 0..<250 where !log().contains("Listening on 127.0.0.1:\(inherited)") {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await Self.generation(port: inherited) == "one", "log:\n\(log())")
            #expect(log().contains("listening on 127.0.0.1:\(written) name=web (inherited fd 3 \"web\" (127.0.0.1:\(inherited)))"), "log:\n\(log())")
            #expect(Net.connect(port: written).map { close($0) } == nil, "the line's own address was bound too")
            proxy.signal(SIGTERM)
            #expect(await Systemd.waitForExit(proxy, timeout: .seconds(10)) == 0)
        }

        @Test("user = nobody: after binding, the proxy and the workers it spawns run as nobody, and serving works")
        func userDrop() async throws {
            guard getuid() == 0 else {
                print("skipped: needs root")
                return
            }
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-user")
            let port = try Net.freePort()
            // nobody must be able to execute the worker: the checkout may sit in a folder only root
            // can enter (a `mktemp -d` clone is 0700), so the binary is copied to one it can.
            chmod(dir.path, 0o755)
            let demo = dir.path + "/fcgi-demo"
            try FileManager.default.copyItem(atPath: Spawn.demoBinary, toPath: demo)
            chmod(demo, 0o755)
            // Likewise the PHP scripts: as nobody the proxy checks that the script exists, and
            // PHP-FPM (root here) reads it from the same path.
            let phpRoot = dir.path + "/php"
            try FileManager.default.copyItem(atPath: Paths.phpRoot, toPath: phpRoot)
            _ = try await ChildProcess.run("/bin/chmod", ["-R", "a+rX", phpRoot])
            let ini = Self.ini(ports: [port], backend: fixture.php.socketPath, generation: "one", extraServer: "user = nobody\ngroup = nogroup")
                .replacingOccurrences(of: "root = \(Paths.phpRoot)", with: "root = \(phpRoot)")
                + """

                [pool:demo]
                spawn = \(demo)
                processes = 1

                """
            // Routes match in file order: the demo route goes before the catch-all.
            let ordered = ini.replacingOccurrences(of: "[route:php]", with: "[route:demo]\nmatch = /demo/\npool = demo\nroot = \(dir.path)\nscript = \(dir.path)/app\n\n[route:php]")
            let proxy = try Harness(dir, ini: ordered)
            defer { proxy.process.stop() }
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.process.isRunning }, "log:\n\(proxy.log())")
            // Listeners accept before the drop; "ready" comes after it and the workers' start.
            for _ in 0..<500 where !proxy.log().contains(" ready") {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(try await Self.generation(port: port) == "one", "log:\n\(proxy.log())")
            let fromWorker = try await Curl.run(["--max-time", "10", "http://127.0.0.1:\(port)/demo/"])
            Spawn.expectFromWorker(fromWorker, "log:\n\(proxy.log())")

            let nobody = "65534"
            let ids = { (status: String, key: String) in
                status.split(separator: "\n").first { $0.hasPrefix(key) }?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().map(String.init) ?? []
            }
            // Credentials are per thread in Linux: every thread, the main one included.
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(proxy.process.pid)/task")) ?? []
            #expect(tasks.count > 1)
            for task in tasks {
                let status = (try? String(contentsOfFile: "/proc/\(proxy.process.pid)/task/\(task)/status", encoding: .utf8)) ?? ""
                #expect(ids(status, "Uid:") == [nobody, nobody, nobody, nobody], "thread \(task): \(status)")
                #expect(ids(status, "Gid:") == [nobody, nobody, nobody, nobody], "thread \(task): \(status)")
                #expect(ids(status, "Groups:") == [nobody], "thread \(task): \(status)")
            }
            // The spawned worker: a child of the proxy (forked by one of its threads).
            let workerPIDs = tasks.flatMap { task in
                ((try? String(contentsOfFile: "/proc/\(proxy.process.pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                    .split(separator: " ").compactMap { Int32($0) }
            }
            #expect(!workerPIDs.isEmpty, "no children")
            for pid in workerPIDs {
                let workerStatus = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                #expect(ids(workerStatus, "Uid:") == [nobody, nobody, nobody, nobody], "\(workerStatus)")
            }
            #expect(proxy.log().contains("running as uid 65534"), "log:\n\(proxy.log())")
            // Reload as nobody still works (listeners kept, routes switched).
            try await proxy.reload(ordered.replacingOccurrences(of: "APP_GEN one", with: "APP_GEN two"))
            #expect(try await Self.generation(port: port) == "two", "log:\n\(proxy.log())")
            #expect(await proxy.stop() == 0, "log:\n\(proxy.log())")
        }
    }
}
