import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// fcgiproxy starting its own workers (`spawn =`, `processes =`, `--run-dir`) with the
    /// `fcgi-demo` binary built next to it (issue 3, "spawn").
    @Suite(.fcgiproxyOnly("fcgiproxy's own worker supervisor"))
    struct Spawn {
        static var demoBinary: String {
            URL(fileURLWithPath: Paths.fcgiproxyBinary).deletingLastPathComponent().appendingPathComponent("fcgi-demo").path
        }

        /// A response of the demo worker: the front-controller route sends every path to it, so
        /// fcgiproxy itself answers 404 for none; its own error pages start with `<html><head>`.
        static func expectFromWorker(_ response: CurlResponse, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(
                [200, 404].contains(response.status) && !response.text.hasPrefix("<html><head><title>"),
                "\(comment) got \(response.status): \(response.text.prefix(300)) \(response.stderr)",
                sourceLocation: sourceLocation
            )
            #expect(
                response.header("Server")?.hasPrefix("fcgiproxy") == true,
                "\(comment) Server: \(response.header("Server") ?? "none")",
                sourceLocation: sourceLocation
            )
        }

        /// Starts fcgiproxy with a spawned pool of `processes` fcgi-demo workers in `dir`.
        static func startSpawning(in dir: TempDir, processes: Int = 2) async throws -> (WorkerProxy, runDir: String) {
            let runDir = dir.file("run")
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            let binary = demoBinary
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw HarnessError("fcgi-demo not found at \(binary)")
            }
            let proxy = try await WorkerProxy.start(in: dir, arguments: ["--run-dir", runDir]) { port in
                """
                [server]
                listen = 127.0.0.1:\(port)
                threads = 1

                [pool:demo]
                spawn = \(binary)
                processes = \(processes)
                multiplex = auto
                read_timeout = 10s

                [route:demo]
                match = /
                pool = demo
                root = \(dir.path)
                script = \(dir.path)/app

                """
            }
            return (proxy, runDir)
        }

        @Test("spawned workers answer, are restarted after kill -9, and stop with the proxy")
        func spawnRestartAndStop() async throws {
            let dir = try TempDir("fcgiproxy-spawn")
            let (proxy, runDir) = try await Self.startSpawning(in: dir)
            defer { proxy.stop() }

            #expect(FileManager.default.fileExists(atPath: runDir + "/demo.sock"), "no socket in --run-dir")
            let started = await WorkerProcs.wait(timeout: .seconds(2)) { proxy.children().count == 2 }
            let first = proxy.children()
            #expect(started, "children: \(first); log:\n\(proxy.log().suffix(2000))")
            var seen = Set(first)

            for n in 0..<4 {
                Self.expectFromWorker(try await Curl.run(["--max-time", "5", proxy.url("/")]), "request \(n):")
            }

            // kill -9 one worker: the supervisor starts another.
            let victim = try #require(first.first)
            kill(victim, SIGKILL)
            let replaced = await WorkerProcs.wait(timeout: .seconds(2)) {
                let now = proxy.children()
                return now.count == 2 && !now.contains(victim)
            }
            let second = proxy.children()
            #expect(replaced, "children after kill -9 of \(victim): \(second); log:\n\(proxy.log().suffix(2000))")
            seen.formUnion(second)
            #expect(!WorkerProcs.isAlive(victim))
            for n in 0..<6 {
                Self.expectFromWorker(try await Curl.run(["--max-time", "5", proxy.url("/after-restart")]), "request \(n) after restart:")
            }

            // SIGTERM: the proxy stops its workers and exits.
            proxy.signal(SIGTERM)
            let allGone = await WorkerProcs.wait(timeout: .seconds(6)) { seen.allSatisfy { !WorkerProcs.isAlive($0) } }
            #expect(allGone, "alive 6 s after SIGTERM: \(seen.filter(WorkerProcs.isAlive)); log:\n\(proxy.log().suffix(2000))")
            let exited = await WorkerProcs.wait(timeout: .seconds(6)) { !proxy.isRunning }
            #expect(exited, "fcgiproxy still runs 6 s after SIGTERM")
            #expect(!FileManager.default.fileExists(atPath: runDir + "/demo.sock"), "socket left in --run-dir")
        }

        @Test("spawned workers die with a SIGKILLed proxy (PR_SET_PDEATHSIG)")
        func workersDieWithKilledProxy() async throws {
            let dir = try TempDir("fcgiproxy-spawn-kill")
            let (proxy, _) = try await Self.startSpawning(in: dir)
            defer { proxy.stop() }
            let started = await WorkerProcs.wait(timeout: .seconds(2)) { proxy.children().count == 2 }
            let children = proxy.children()
            #expect(started, "children: \(children)")
            Self.expectFromWorker(try await Curl.run(["--max-time", "5", proxy.url("/")]))

            proxy.signal(SIGKILL)
            let gone = await WorkerProcs.wait(timeout: .seconds(2)) { children.allSatisfy { !WorkerProcs.isAlive($0) } }
            #expect(gone, "alive 2 s after the proxy's SIGKILL: \(children.filter(WorkerProcs.isAlive))")
            #expect(await WorkerProcs.wait(timeout: .seconds(2)) { !proxy.isRunning })
        }

        @Test("config/demo.ini.in made concrete runs and answers GET /")
        func demoConfig() async throws {
            let template = try String(contentsOfFile: Paths.packageRoot + "/config/demo.ini.in", encoding: .utf8)
            let bin = URL(fileURLWithPath: Paths.fcgiproxyBinary).deletingLastPathComponent().path
            let dir = try TempDir("fcgiproxy-demo-ini")
            let runDir = dir.file("run")
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            let proxy = try await WorkerProxy.start(in: dir, arguments: ["--run-dir", runDir]) { port in
                template
                    .replacingOccurrences(of: "@ROOT@", with: Paths.packageRoot)
                    .replacingOccurrences(of: "@BIN@", with: bin)
                    .split(separator: "\n", omittingEmptySubsequences: false)
                    .map { line in
                        line.trimmingCharacters(in: .whitespaces).hasPrefix("listen") ? "listen = 127.0.0.1:\(port)" : String(line)
                    }
                    .joined(separator: "\n")
            }
            defer { proxy.stop() }
            let started = await WorkerProcs.wait(timeout: .seconds(2)) { proxy.children().count == 2 }
            let children = proxy.children()
            #expect(started, "children: \(children); log:\n\(proxy.log().suffix(2000))")
            let response = try await Curl.run(["--max-time", "5", proxy.url("/")])
            Self.expectFromWorker(response)
            proxy.signal(SIGTERM)
            #expect(await WorkerProcs.wait(timeout: .seconds(6)) { children.allSatisfy { !WorkerProcs.isAlive($0) } })
            #expect(await WorkerProcs.wait(timeout: .seconds(6)) { !proxy.isRunning })
        }
    }
}
