import Foundation
import Testing

extension Integration {
    /// `header_timeout` and `keepalive_timeout` (ConnectionTimeouts), with 1 s clocks.
    ///
    /// Each front end sets only one of the two clocks short, so a close can be told apart:
    /// the other one is 30 s.
    @Suite(.fcgiproxyOnly("timeouts are configured through fcgiproxy's INI")) struct Timeouts {
        /// `header_timeout = 1s`, `keepalive_timeout = 30s`.
        private func headerTimeoutFront() async throws -> any FrontEnd {
            try await Fixture.extraFrontEnd {
                $0.extraServerINI = "header_timeout = 1s\nkeepalive_timeout = 30s"
            }
        }

        /// `header_timeout = 30s`, `keepalive_timeout = 1s`.
        private func keepaliveTimeoutFront() async throws -> any FrontEnd {
            try await Fixture.extraFrontEnd {
                $0.extraServerINI = "header_timeout = 30s\nkeepalive_timeout = 1s"
            }
        }

        private static let request = "GET /status.php?code=200 HTTP/1.1\r\nHost: localhost\r\n\r\n"

        // MARK: header_timeout

        @Test func halfSentHeadIsClosedAfterHeaderTimeout() async throws {
            let front = try await headerTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let conn = try RawHTTP(port: front.port)
            let start = clock.now
            #expect(conn.send("GET /status.php?code=200 HTTP/1.1\r\nHost: loc"))
            let reply = conn.readUntilClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(reply.closed, "still open after \(elapsed)")
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
            #expect(reply.finals.allSatisfy { $0.status != 200 }, "a half head got an answer: \(reply.text)")
        }

        @Test func silentClientIsClosedAfterHeaderTimeout() async throws {
            let front = try await headerTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let start = clock.now
            let conn = try RawHTTP(port: front.port)
            let reply = conn.readUntilClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(reply.closed, "still open after \(elapsed)")
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
        }

        /// A slow-loris head that keeps sending a byte every 150 ms cannot stretch the clock.
        @Test func tricklingHeadIsClosedAfterHeaderTimeout() async throws {
            let front = try await headerTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let conn = try RawHTTP(port: front.port)
            let start = clock.now
            let head = Array("GET /status.php?code=200 HTTP/1.1\r\nHost: localhost\r\nX-Slow: abcdefghijklmnop\r\n\r\n".utf8)
            var closed = false
            var reply = RawReply(bytes: [], responses: [], closed: false)
            for byte in head {
                if !conn.send([byte]) {
                    closed = true
                    break
                }
                reply = conn.readUntilClose(timeout: .milliseconds(150))
                if reply.closed {
                    closed = true
                    break
                }
            }
            let elapsed = clock.now - start
            #expect(closed, "a trickled head was never cut off (\(elapsed))")
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
            #expect(reply.finals.allSatisfy { $0.status != 200 })
        }

        @Test func completeHeadWithinTimeoutIsAnswered() async throws {
            let front = try await headerTimeoutFront()
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            // Sent in two parts, 300 ms apart: the whole head still arrives within 1 s.
            conn.send("GET /status.php?code=200 HTTP/1.1\r\n")
            try await Task.sleep(for: .milliseconds(300))
            conn.send("Host: localhost\r\n\r\n")
            let reply = conn.readResponses(1, timeout: .seconds(5))
            #expect(reply.status == 200, "got: \(reply.text.prefix(300))")
            #expect(reply.finals.first?.bodyText == "status 200\n")
        }

        /// The head clock stops once the head is in: a script slower than header_timeout (and
        /// than keepalive_timeout) is still answered.
        @Test func slowResponseIsNotCutByEitherClock() async throws {
            let front = try await Fixture.extraFrontEnd {
                $0.extraServerINI = "header_timeout = 1s\nkeepalive_timeout = 1s"
            }
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            conn.send("GET /sleep.php?s=2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let reply = conn.readResponses(1, timeout: .seconds(6))
            #expect(reply.status == 200, "got: \(reply.text.prefix(300)) closed=\(reply.closed)")
            #expect(reply.finals.first?.bodyText == "slept 2\n")
        }

        /// After a response, the first byte of the next request switches to the head clock.
        @Test func secondHalfHeadOnKeepAliveConnectionIsClosedAfterHeaderTimeout() async throws {
            let front = try await headerTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let conn = try RawHTTP(port: front.port)
            conn.send(Self.request)
            let first = conn.readResponses(1, timeout: .seconds(5))
            #expect(first.status == 200)
            #expect(!first.closed)
            let start = clock.now
            conn.send("GET /status.php?code=200 HTTP/1.1\r\n")
            let reply = conn.readUntilClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(reply.closed, "still open after \(elapsed)")
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
        }

        // MARK: keepalive_timeout

        @Test func idleKeepAliveConnectionIsClosedAfterKeepaliveTimeout() async throws {
            let front = try await keepaliveTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let conn = try RawHTTP(port: front.port)
            conn.send(Self.request)
            let first = conn.readResponses(1, timeout: .seconds(5))
            #expect(first.status == 200)
            #expect(first.finals.first?.header("Connection")?.lowercased() != "close")
            let start = clock.now
            let reply = conn.readUntilClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(reply.closed, "still open after \(elapsed)")
            #expect(reply.bytes.isEmpty, "unexpected bytes on an idle connection: \(reply.text)")
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
        }

        @Test func secondRequestAt300msOnKeepAliveConnectionWorks() async throws {
            let front = try await keepaliveTimeoutFront()
            defer { front.stop() }
            let clock = ContinuousClock()
            let conn = try RawHTTP(port: front.port)
            conn.send(Self.request)
            #expect(conn.readResponses(1, timeout: .seconds(5)).status == 200)
            try await Task.sleep(for: .milliseconds(300))
            #expect(conn.send("GET /status.php?code=201 HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            let second = conn.readResponses(1, timeout: .seconds(5))
            #expect(second.status == 201, "got: \(second.text.prefix(300)) closed=\(second.closed)")
            // The idle clock starts again after the second response.
            let start = clock.now
            let reply = conn.readUntilClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(reply.closed)
            #expect(elapsed > .milliseconds(800) && elapsed < .seconds(3), "closed after \(elapsed)")
        }

        /// Once a new request has begun, the idle clock no longer applies (the head clock,
        /// here 30 s, does): a head started at 0.3 s and finished at 1.5 s is answered.
        @Test func startedHeadIsNotCutByKeepaliveTimeout() async throws {
            let front = try await keepaliveTimeoutFront()
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            conn.send(Self.request)
            #expect(conn.readResponses(1, timeout: .seconds(5)).status == 200)
            try await Task.sleep(for: .milliseconds(300))
            conn.send("GET /status.php?code=202 HTTP/1.1\r\n")
            let meanwhile = conn.readUntilClose(timeout: .milliseconds(1200))
            #expect(!meanwhile.closed, "closed by the idle clock while a head was arriving")
            conn.send("Host: localhost\r\n\r\n")
            let reply = conn.readResponses(1, timeout: .seconds(5))
            #expect(reply.status == 202, "got: \(reply.text.prefix(300)) closed=\(reply.closed)")
        }
    }
}
