import Foundation
import Testing

extension Integration {
    /// `access_log = /path | off` (combined format).
    @Suite(.fcgiproxyOnly("access_log is an fcgiproxy INI key")) struct AccessLogFile {
        /// One parsed combined-format line.
        private struct Line {
            var remote: String
            var time: String
            var request: String
            var status: Int
            var bytes: Int
            var referer: String
            var userAgent: String
            var upstream: String
            /// nil for `-` (no backend asked).
            var upstreamTime: Double?
            var requestTime: Double
        }

        /// `remote - - [time] "request" status bytes "referer" "user-agent" "upstream" upstream_time request_time`
        private static func parse(_ line: Substring) -> Line? {
            let pattern =
                #/^(\S+) - - \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" "([^"]*)" (-|\d+\.\d{3}) (\d+\.\d{3})$/#
            guard let m = try? pattern.wholeMatch(in: line) else { return nil }
            guard let status = Int(m.output.4), let bytes = Int(m.output.5), let requestTime = Double(m.output.10) else { return nil }
            return Line(
                remote: String(m.output.1), time: String(m.output.2), request: String(m.output.3),
                status: status, bytes: bytes, referer: String(m.output.6), userAgent: String(m.output.7),
                upstream: String(m.output.8), upstreamTime: Double(m.output.9), requestTime: requestTime)
        }

        /// The file's lines once it has `count` (waits up to 3 s: the line is written after the
        /// response, maybe just after the client saw it).
        private func lines(of path: String, count: Int) async throws -> [Substring] {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(3)
            var lines: [Substring] = []
            repeat {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                lines = text.split(separator: "\n")
                if lines.count >= count { break }
                try await Task.sleep(for: .milliseconds(50))
            } while clock.now < deadline
            return lines
        }

        @Test func twoRequestsWriteTwoCombinedLines() async throws {
            let dir = try TempDir("fcgiproxy-access")
            let path = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(path)" }
            defer { front.stop() }
            let first = try await Curl.run(
                ["-A", "itest-agent/1.0", "-e", "http://ref.example/page", front.url("/status.php?code=201")])
            #expect(first.status == 201)
            let second = try await Curl.run(
                ["-A", "itest-agent/2.0", "--data-binary", "abc", front.url("/big.php?mb=1")], discardBody: true)
            #expect(second.status == 200)
            #expect(second.sizeDownload == 1024 * 1024)

            let lines = try await lines(of: path, count: 2)
            #expect(lines.count == 2, "\(lines)")
            let parsed = lines.compactMap { Self.parse($0) }
            try #require(parsed.count == 2, "not combined format: \(lines)")
            let (a, b) = (parsed[0], parsed[1])
            #expect(a.remote == "127.0.0.1")
            #expect(a.request == "GET /status.php?code=201 HTTP/1.1")
            #expect(a.status == 201)
            #expect(a.bytes == first.body.count)
            #expect(a.bytes == "status 201\n".utf8.count)
            #expect(a.referer == "http://ref.example/page")
            #expect(a.userAgent == "itest-agent/1.0")
            #expect(a.time.wholeMatch(of: #/\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}/#) != nil, "\(a.time)")
            #expect(b.request == "POST /big.php?mb=1 HTTP/1.1")
            #expect(b.status == 200)
            #expect(b.bytes == 1024 * 1024)
            #expect(b.referer == "-")
            #expect(b.userAgent == "itest-agent/2.0")
            // Both went to PHP-FPM: its socket, and an upstream time within the request time.
            let socket = try await Fixture.shared().php.socketPath
            for line in [a, b] {
                #expect(line.upstream == "unix:\(socket)")
                let upstreamTime = try #require(line.upstreamTime)
                #expect(upstreamTime <= line.requestTime)
            }
            // A file target, so nothing of it on stderr.
            #expect(!front.log().contains("\"GET /status.php?code=201 HTTP/1.1\""))
        }

        /// The byte count is the body sent, also for answers the proxy makes itself (as
        /// nginx's $body_bytes_sent).
        @Test
        func proxyErrorPageBytesAreCounted() async throws {
            let dir = try TempDir("fcgiproxy-access")
            let path = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(path)" }
            defer { front.stop() }
            let r = try await Curl.run([front.url("/no-such-script.php")])
            #expect(r.status == 404)
            #expect(!r.body.isEmpty)
            let lines = try await lines(of: path, count: 1)
            let line = try #require(lines.first.flatMap { Self.parse($0) }, "\(lines)")
            #expect(line.status == 404)
            #expect(line.bytes == r.body.count, "logged \(line.bytes), sent \(r.body.count)")
            // The proxy answered alone: no upstream.
            #expect(line.upstream == "-")
            #expect(line.upstreamTime == nil)
        }

        /// `sleep.php` takes a second: upstream and request time show it (milliseconds).
        @Test func timesMeasureTheBackend() async throws {
            let dir = try TempDir("fcgiproxy-access")
            let path = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(path)" }
            defer { front.stop() }
            #expect(try await Curl.run([front.url("/sleep.php?s=1")]).status == 200)
            let lines = try await lines(of: path, count: 1)
            let line = try #require(lines.first.flatMap { Self.parse($0) }, "\(lines)")
            let upstreamTime = try #require(line.upstreamTime)
            #expect(upstreamTime >= 1.0 && upstreamTime < 5, "\(line)")
            #expect(line.requestTime >= upstreamTime, "\(line)")
        }

        /// Lines wait in per-loop buffers (up to 100 ms): a graceful stop writes them all.
        @Test func gracefulStopLosesNoLine() async throws {
            let dir = try TempDir("fcgiproxy-access")
            let path = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(path)" }
            let count = 30
            for index in 0..<count {
                #expect(try await Curl.run([front.url("/status.php?code=200&n=\(index)")]).status == 200)
            }
            front.stop()
            #expect(!front.isRunning)
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let logged = Set(text.split(separator: "\n").compactMap { Self.parse($0)?.request })
            let expected = Set((0..<count).map { "GET /status.php?code=200&n=\($0) HTTP/1.1" })
            #expect(expected.subtracting(logged).isEmpty, "lost: \(expected.subtracting(logged).sorted())")
            #expect(logged.count == count)
        }

        /// Client text cannot break the line format (quotes and control bytes are escaped).
        @Test func quotesInClientTextAreEscaped() async throws {
            let dir = try TempDir("fcgiproxy-access")
            let path = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(path)" }
            defer { front.stop() }
            let r = try await Curl.run(["-A", #"evil" 200 9 "x"#, front.url("/status.php?code=200")])
            #expect(r.status == 200)
            let lines = try await lines(of: path, count: 1)
            #expect(lines.count == 1, "\(lines)")
            let line = try #require(lines.first.flatMap { Self.parse($0) }, "not combined format: \(lines)")
            #expect(line.status == 200)
            #expect(line.bytes == 11)
            #expect(line.userAgent == #"evil\x22 200 9 \x22x"#)
        }

        @Test func offWritesNothing() async throws {
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = off" }
            defer { front.stop() }
            for code in [200, 202] {
                let r = try await Curl.run([front.url("/status.php?code=\(code)")])
                #expect(r.status == code)
            }
            try await Task.sleep(for: .milliseconds(200))
            let log = front.log()
            #expect(!log.contains("/status.php?code="), "\(log.suffix(1000))")
        }

        /// Control for `offWritesNothing`: the default (stderr) does log those requests.
        @Test func defaultGoesToStderr() async throws {
            let front = try await Fixture.extraFrontEnd()
            defer { front.stop() }
            let r = try await Curl.run([front.url("/status.php?code=203")])
            #expect(r.status == 203)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(3)
            while !front.log().contains("\"GET /status.php?code=203 HTTP/1.1\" 203 11"), clock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(front.log().contains("\"GET /status.php?code=203 HTTP/1.1\" 203 11"), "\(front.log().suffix(1000))")
        }
    }
}
