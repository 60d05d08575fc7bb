import Foundation
import Testing

extension Integration {
    /// `metrics = ADDRESS`: Prometheus text at /metrics, parsed by the reference Python client.
    @Suite(.fcgiproxyOnly("metrics is an fcgiproxy INI key")) struct Metrics {
        /// One sample: name, labels, value.
        struct Sample {
            var name: String
            var labels: [String: String]
            var value: Double
        }

        /// A Python with `prometheus_client` (Debian's python3-prometheus-client is installed for
        /// /usr/bin/python3 by `make deps-test`; a pip install into the python3 on PATH also works).
        private static func python() async throws -> [String] {
            for candidate in [["/usr/bin/python3"], ["/usr/bin/env", "python3"]] {
                guard FileManager.default.isExecutableFile(atPath: candidate[0]) else { continue }
                let result = try await ChildProcess.run(candidate[0], Array(candidate.dropFirst()) + ["-c", "import prometheus_client"])
                if result.exitCode == 0 { return candidate }
            }
            throw HarnessError("no python3 with prometheus_client: run `make deps-test` (apt-get install python3-prometheus-client)")
        }

        private static let parser = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            samples = []
            with open(sys.argv[1]) as f:
                for family in text_string_to_metric_families(f.read()):
                    for s in family.samples:
                        samples.append([s.name, s.labels, s.value])
            print(json.dumps(samples))
            """

        /// GET /metrics with curl, parsed by `prometheus_client` (which throws on malformed text).
        private static func scrape(port: Int, dir: TempDir) async throws -> [Sample] {
            let response = try await Curl.run(["http://127.0.0.1:\(port)/metrics"])
            try #require(response.status == 200, "\(response.text)")
            let contentType = response.headers.first { $0.name.lowercased() == "content-type" }?.value ?? ""
            #expect(contentType.hasPrefix("text/plain; version=0.0.4"), "\(contentType)")
            let textPath = dir.file("metrics-\(UUID().uuidString).txt")
            try response.body.write(to: URL(fileURLWithPath: textPath))
            let python = try await python()
            let result = try await ChildProcess.run(python[0], Array(python.dropFirst()) + ["-c", parser, textPath])
            try #require(result.exitCode == 0, "prometheus_client could not parse /metrics: \(result.stderrText)\n\(response.text)")
            let rows = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[Any]])
            return rows.compactMap { row in
                guard row.count == 3, let name = row[0] as? String, let labels = row[1] as? [String: String],
                    let value = (row[2] as? NSNumber)?.doubleValue
                else { return nil }
                return Sample(name: name, labels: labels, value: value)
            }
        }

        private static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }

        @Test func countersMoveByTheRequestsMade() async throws {
            let dir = try TempDir("fcgiproxy-metrics")
            // A second route with a script that writes to STDERR (error_log without a log file).
            let www = dir.file("www")
            try FileManager.default.createDirectory(atPath: www + "/errs", withIntermediateDirectories: true)
            _ = try dir.write("www/errs/warn.php", #"<?php error_log("metrics-test"); echo "ok\n";"#)
            let metricsPort = try Net.freePort()
            let front = try await Fixture.extraFrontEnd {
                $0.extraServerINI = "metrics = 127.0.0.1:\(metricsPort)\naccess_log = off"
                $0.routesBeforeDefault = "[route:errs]\nmatch = /errs/\npool = php\nroot = \(www)\n"
            }
            defer { front.stop() }

            let before = try await Self.scrape(port: metricsPort, dir: dir)
            var phpBodyBytes = 0
            for _ in 0..<3 {
                let r = try await Curl.run([front.url("/status.php?code=200")])
                #expect(r.status == 200)
                phpBodyBytes += r.body.count
            }
            let missing = try await Curl.run([front.url("/no-such-script.php")])
            #expect(missing.status == 404)
            phpBodyBytes += missing.body.count
            let failing = try await Curl.run([front.url("/status.php?code=500")])
            #expect(failing.status == 500)
            phpBodyBytes += failing.body.count
            let posted = try await Curl.run(["--data-binary", "0123456789", front.url("/errs/warn.php")])
            #expect(posted.status == 200)
            #expect(posted.text == "ok\n")
            let after = try await Self.scrape(port: metricsPort, dir: dir)

            func delta(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                guard let a = Self.value(after, name, labels) else { return nil }
                return a - (Self.value(before, name, labels) ?? 0)
            }
            let php = ["route": "php"]
            #expect(delta("fcgiproxy_requests_total", ["route": "php", "code": "2xx"]) == 3)
            #expect(delta("fcgiproxy_requests_total", ["route": "php", "code": "4xx"]) == 1)
            #expect(delta("fcgiproxy_requests_total", ["route": "php", "code": "5xx"]) == 1)
            #expect(delta("fcgiproxy_requests_total", ["route": "php", "code": "3xx"]) == 0)
            #expect(delta("fcgiproxy_requests_total", ["route": "errs", "code": "2xx"]) == 1)
            #expect(delta("fcgiproxy_request_duration_seconds_count", php) == 5)
            #expect(delta("fcgiproxy_request_duration_seconds_bucket", ["route": "php", "le": "+Inf"]) == 5)
            #expect(delta("fcgiproxy_request_duration_seconds_count", ["route": "errs"]) == 1)
            #expect((delta("fcgiproxy_request_duration_seconds_sum", php) ?? 0) > 0)
            #expect(delta("fcgiproxy_response_body_bytes_total", php) == Double(phpBodyBytes))
            #expect(delta("fcgiproxy_request_body_bytes_total", ["route": "errs"]) == 10)
            // Three 200s, the 500 and warn.php; the 404 never reached PHP (no such script).
            #expect(delta("fcgiproxy_fastcgi_end_requests_total", ["pool": "php", "status": "request_complete"]) == 5)
            #expect(delta("fcgiproxy_backend_requests_total", ["pool": "php"]) == 5)
            #expect((delta("fcgiproxy_backend_stderr_lines_total", ["pool": "php"]) ?? 0) >= 1)
            #expect(delta("fcgiproxy_client_connections_accepted_total") == 6)
            #expect(delta("fcgiproxy_backend_retries_total", ["pool": "php"]) == 0)
            #expect(delta("fcgiproxy_reloads_total", ["result": "success"]) == 0)
            // Gauges exist (their values depend on timing: keep-alive connections to PHP-FPM).
            #expect(Self.value(after, "fcgiproxy_backend_connections", ["pool": "php", "state": "idle"]) != nil)
            #expect(Self.value(after, "fcgiproxy_backend_queue_depth", ["pool": "php"]) == 0)
            #expect(Self.value(after, "fcgiproxy_client_connections") != nil)
        }

        @Test func otherPathsAre404() async throws {
            let metricsPort = try Net.freePort()
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "metrics = 127.0.0.1:\(metricsPort)" }
            defer { front.stop() }
            #expect(try await Curl.run(["http://127.0.0.1:\(metricsPort)/"]).status == 404)
            #expect(try await Curl.run(["http://127.0.0.1:\(metricsPort)/status.php"]).status == 404)
            // The proxy's own listener does not serve /metrics: it is routed to PHP like any path.
            #expect(try await Curl.run([front.url("/metrics")]).status == 404)
        }

        /// The INI of ``countersSurviveReloads()``: one pool, routes in order, an access log.
        private static func reloadINI(
            port: Int, metricsPort: Int, backend: String, accessLog: String, pool: String, routes: [String], extra: String = ""
        ) -> String {
            var ini = """
                [server]
                listen = 127.0.0.1:\(port)
                threads = 2
                metrics = 127.0.0.1:\(metricsPort)
                access_log = \(accessLog)
                \(extra)

                [pool:\(pool)]
                backend = unix:\(backend)

                """
            for route in routes {
                // The last route takes every path; the others only their own prefix.
                let match = route == routes.last ? "/" : "/\(route)/"
                ini += "[route:\(route)]\nmatch = \(match)\npool = \(pool)\nroot = \(Paths.phpRoot)\n\n"
            }
            return ini
        }

        private static func lines(_ path: String) -> [Substring] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
        }

        @Test("SIGHUP renames a route, adds one and replaces the pool: counters keep counting by name, removed names keep their values, reloads_total moves; access_log moves to a new file")
        func countersSurviveReloads() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-metrics-reload")
            let (port, metricsPort) = (try Net.freePort(), try Net.freePort())
            let (logA, logB) = (dir.file("a.log"), dir.file("b.log"))
            func ini(accessLog: String, pool: String, routes: [String], extra: String = "") -> String {
                Self.reloadINI(
                    port: port, metricsPort: metricsPort, backend: fixture.php.socketPath, accessLog: accessLog, pool: pool,
                    routes: routes, extra: extra)
            }
            let proxy = try Reload.Harness(dir, ini: ini(accessLog: logA, pool: "php", routes: ["old"]))
            defer { proxy.process.stop() }
            try #require(await Net.waitUntilAccepting(port: port, timeout: .seconds(15)) { proxy.process.isRunning }, "log:\n\(proxy.log())")
            for _ in 0..<3 {
                #expect(try await Curl.run(["http://127.0.0.1:\(port)/status.php?code=200"]).status == 200)
            }
            let first = try await Self.scrape(port: metricsPort, dir: dir)
            #expect(Self.value(first, "fcgiproxy_requests_total", ["route": "old", "code": "2xx"]) == 3)
            #expect(Self.value(first, "fcgiproxy_backend_requests_total", ["pool": "php"]) == 3)
            #expect(Self.value(first, "fcgiproxy_reloads_total", ["result": "success"]) == 0)

            // "old" becomes "new" (still the catch-all), "extra" comes first, pool "php" becomes
            // "php2" (the old one drains and is dropped), and the access log moves to b.log.
            try await proxy.reload(ini(accessLog: logB, pool: "php2", routes: ["extra", "new"]))
            for _ in 0..<2 {
                #expect(try await Curl.run(["http://127.0.0.1:\(port)/status.php?code=200"]).status == 200)
            }
            #expect(try await Curl.run(["http://127.0.0.1:\(port)/extra/none.php"]).status == 404)
            // A broken file: counted as a failure, nothing else changes.
            try await proxy.reload(ini(accessLog: logB, pool: "php2", routes: ["extra", "new"], extra: "bogus = 1"))
            #expect(try await Curl.run(["http://127.0.0.1:\(port)/status.php?code=200"]).status == 200)

            let second = try await Self.scrape(port: metricsPort, dir: dir)
            #expect(Self.value(second, "fcgiproxy_requests_total", ["route": "old", "code": "2xx"]) == 3, "a removed route keeps its count")
            #expect(Self.value(second, "fcgiproxy_requests_total", ["route": "new", "code": "2xx"]) == 3)
            #expect(Self.value(second, "fcgiproxy_requests_total", ["route": "extra", "code": "4xx"]) == 1)
            #expect(Self.value(second, "fcgiproxy_request_duration_seconds_count", ["route": "old"]) == 3)
            #expect(Self.value(second, "fcgiproxy_request_duration_seconds_count", ["route": "new"]) == 3)
            #expect(Self.value(second, "fcgiproxy_backend_requests_total", ["pool": "php"]) == 3, "a retired pool keeps its count")
            #expect(Self.value(second, "fcgiproxy_backend_requests_total", ["pool": "php2"]) == 3)
            #expect(Self.value(second, "fcgiproxy_fastcgi_end_requests_total", ["pool": "php2", "status": "request_complete"]) == 3)
            let accepted = { (samples: [Sample]) in Self.value(samples, "fcgiproxy_client_connections_accepted_total") ?? -1 }
            #expect(accepted(second) - accepted(first) == 4, "one connection per curl after the first scrape")
            #expect(Self.value(second, "fcgiproxy_reloads_total", ["result": "success"]) == 1)
            #expect(Self.value(second, "fcgiproxy_reloads_total", ["result": "failure"]) == 1)

            // The old log got the first three lines (handed over at the reload), the new one the rest.
            #expect(await proxy.stop() == 0, "log:\n\(proxy.log())")
            let a = Self.lines(logA)
            let b = Self.lines(logB)
            #expect(a.count == 3 && a.allSatisfy { $0.contains("GET /status.php?code=200 ") }, "\(a)")
            #expect(b.count == 4, "\(b)")
            #expect(b.filter { $0.contains(" 404 ") }.count == 1, "\(b)")
        }
    }
}
