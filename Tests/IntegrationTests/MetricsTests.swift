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
    }
}
