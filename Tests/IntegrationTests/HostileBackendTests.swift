import FastCGI
import Foundation
import Testing

extension Integration {
    /// fcgiproxy in front of ``ScriptedFastCGIBackend``: backends that misbehave in ways PHP-FPM
    /// cannot (reliability cases B and D). Each test starts its own backend and its own fcgiproxy
    /// (one event loop, so that one pool sees every request and connection counts are exact).
    @Suite(.fcgiproxyOnly("runs fcgiproxy against a scripted backend through its own INI"))
    struct Hostile {
        typealias Step = ScriptedFastCGIBackend.Step

        // MARK: Harness

        /// Starts a scripted backend and an fcgiproxy whose only pool points at it, with a
        /// front-controller route (`PATH_INFO` = request path), runs `body`, and stops both.
        static func withProxy(
            _ transport: ScriptedFastCGIBackend.Transport = .unix,
            readTimeoutSeconds: Int = 5,
            multiplex: String = "off",
            extraPoolINI: String = "",
            script: @escaping ScriptedFastCGIBackend.Script,
            _ body: (ScriptedFastCGIBackend, any FrontEnd) async throws -> Void
        ) async throws {
            let backend = try await ScriptedFastCGIBackend.start(transport, script: script)
            let front: any FrontEnd
            do {
                front = try await Fixture.extraFrontEnd(backendSocket: backend.socketPath ?? "/nonexistent") {
                    $0.backendAddress = backend.backendAddress
                    $0.readTimeoutSeconds = readTimeoutSeconds
                    // These tests count the backend's connections: keep `multiplex = auto`'s
                    // FCGI_GET_VALUES probe (a connection of its own) out of the count (off by default).
                    $0.extraPoolINI = "multiplex = \(multiplex)\n" + extraPoolINI
                    $0.extraServerINI = "threads = 1"
                    $0.extraRouteINI = "script = /front.php"
                }
            } catch {
                await backend.stop()
                throw error
            }
            do {
                try await body(backend, front)
            } catch {
                front.stop()
                await backend.stop()
                throw error
            }
            #expect(front.isRunning, "fcgiproxy died; its log:\n\(front.log().suffix(3000))")
            front.stop()
            await backend.stop()
        }

        /// `withProxy` with a PATH_INFO → answer table (unknown paths: 404) plus `/ok` → "ok".
        static func withProxy(
            _ transport: ScriptedFastCGIBackend.Transport = .unix,
            readTimeoutSeconds: Int = 5,
            extraPoolINI: String = "",
            routes: [String: [Step]],
            _ body: (ScriptedFastCGIBackend, any FrontEnd) async throws -> Void
        ) async throws {
            var routes = routes
            routes["/ok"] = routes["/ok"] ?? Step.ok("ok")
            let script: ScriptedFastCGIBackend.Script = { [routes] request in
                routes[request.path] ?? Step.respond("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnone")
            }
            try await withProxy(
                transport, readTimeoutSeconds: readTimeoutSeconds, extraPoolINI: extraPoolINI, script: script, body)
        }

        /// Polls the proxy's log until `predicate` holds (log lines arrive asynchronously).
        static func waitForLog(_ front: any FrontEnd, timeout: Duration = .seconds(3), _ predicate: (String) -> Bool)
            async -> String
        {
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            var log = front.log()
            while !predicate(log), clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
                log = front.log()
            }
            return log
        }

        /// One raw request on a fresh connection to `front`.
        static func raw(_ front: any FrontEnd, _ request: String) throws -> RawReply {
            let conn = try RawHTTP(port: front.port)
            conn.send(request)
            return conn.readResponses(1)
        }

        static func get(_ path: String) -> String {
            "GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n"
        }

        // MARK: RFC 3875 §6 response semantics

        @Test func localRedirectIsReDispatchedAsGet() async throws {
            try await Self.withProxy(routes: [
                "/start": Step.respond("Location: /target?x=1\r\n\r\n"),
                "/target": Step.ok("target body"),
            ]) { backend, front in
                let r = try await Curl.run(["--data-binary", "payload=1", front.url("/start")])
                #expect(r.status == 200)
                #expect(r.text == "target body")
                #expect(r.header("Location") == nil)
                let seen = backend.requests
                try #require(seen.count == 2, "\(seen)")
                #expect(seen[0].method == "POST")
                #expect(seen[0].stdin == Array("payload=1".utf8))
                #expect(seen[1].method == "GET")
                #expect(seen[1].params["REQUEST_URI"] == "/target?x=1")
                #expect(seen[1].params["QUERY_STRING"] == "x=1")
                #expect(seen[1].params["CONTENT_LENGTH"] ?? "" == "")
                #expect(seen[1].params["CONTENT_TYPE"] ?? "" == "")
                #expect(seen[1].stdin.isEmpty)
            }
        }

        @Test func localRedirectLoopEndsIn500() async throws {
            try await Self.withProxy(routes: ["/loop": Step.respond("Location: /loop\r\n\r\n")]) { backend, front in
                let clock = ContinuousClock()
                let start = clock.now
                let r = try await Curl.run([front.url("/loop")], timeout: .seconds(15))
                #expect(r.status == 500)
                #expect(clock.now - start < .seconds(5))
                let count = backend.requests(path: "/loop").count
                #expect((2...20).contains(count), "backend saw \(count) requests")
                // The proxy still serves.
                let ok = try await Curl.run([front.url("/ok")])
                #expect(ok.status == 200)
            }
        }

        @Test func absoluteLocationWithoutStatusIs302() async throws {
            try await Self.withProxy(routes: [
                "/away": Step.respond("Location: http://example.com/x\r\n\r\n"),
                "/scheme-relative": Step.respond("Location: //example.com/y\r\n\r\n"),
            ]) { backend, front in
                let r = try await Curl.run([front.url("/away")])
                #expect(r.status == 302)
                #expect(r.header("Location") == "http://example.com/x")
                // `//host/path` is not a local path: passed on, never re-dispatched.
                let s = try await Curl.run([front.url("/scheme-relative")])
                #expect(s.status == 302)
                #expect(s.header("Location") == "//example.com/y")
                #expect(backend.requests.map(\.path) == ["/away", "/scheme-relative"])
            }
        }

        @Test func invalidStatusIs502() async throws {
            let cases: [(path: String, head: String, expected: Int)] = [
                ("/abc", "Status: abc\r\n", 502),
                ("/99", "Status: 99\r\n", 502),
                ("/2000", "Status: 2000\r\n", 502),
                ("/dup", "Status: 200 OK\r\nStatus: 404 Not Found\r\n", 502),
                ("/100", "Status: 100 Continue\r\n", 502),
                ("/101", "Status: 101 Switching Protocols\r\nUpgrade: foo\r\n", 502),
                ("/empty", "Status:\r\n", 502),
                // Controls: valid Status lines pass.
                ("/404", "Status: 404 Gone Away\r\n", 404),
                ("/201", "Status: 201\r\n", 201),
            ]
            var routes: [String: [Step]] = [:]
            for c in cases {
                routes[c.path] = Step.respond(c.head + "Content-Type: text/plain\r\n\r\nbody of \(c.path)")
            }
            try await Self.withProxy(routes: routes) { _, front in
                for c in cases {
                    let r = try await Curl.run([front.url(c.path)])
                    #expect(r.status == c.expected, "\(c.head.debugDescription)")
                    if c.expected == 502 {
                        #expect(!r.text.contains("body of"), "backend body leaked for \(c.path)")
                    }
                }
            }
        }

        @Test func statusReasonPhraseIsPassedOn() async throws {
            try await Self.withProxy(routes: [
                "/404": Step.respond("Status: 404 Gone Away\r\nContent-Type: text/plain\r\n\r\nx"),
                "/599": Step.respond("Status: 599 Odd Code\r\nContent-Type: text/plain\r\n\r\nx"),
            ]) { _, front in
                let odd = try Self.raw(front, Self.get("/599"))
                #expect(odd.status == 599)
                #expect(odd.finals.first?.reason == "Odd Code")
                let reply = try Self.raw(front, Self.get("/404"))
                #expect(reply.status == 404)
                #expect(reply.finals.first?.reason == "Gone Away")
            }
        }

        @Test func malformedOrMissingHeadIs502() async throws {
            let routes: [String: [Step]] = [
                "/cr": Step.respond("X-A: a\rb\r\nContent-Type: text/plain\r\n\r\nSECRET"),
                "/lf": Step.respond("X-A: a\nb\r\nContent-Type: text/plain\r\n\r\nSECRET"),
                "/nul": Step.respond("X-A: a\u{0}b\r\nContent-Type: text/plain\r\n\r\nSECRET"),
                "/crlf-split": Step.respond("X-A: a\r\n\r\nHTTP/1.1 200 OK\r\n"),
                "/no-blank-line": [.stdout("Content-Type: text/plain\r\nX-B: 1\r\n"), .endStdout, .end()],
                "/no-stdout": [.end()],
                "/empty-stdout-only": [.endStdout, .end()],
                "/close-before-head": [.close],
                "/close-mid-head": [.stdout("Content-Type: tex"), .close],
                "/stderr-then-close": [.stderr("dying\n"), .close],
            ]
            try await Self.withProxy(routes: routes) { _, front in
                for path in routes.keys.sorted() {
                    let r = try await Curl.run([front.url(path)])
                    if path == "/crlf-split" {
                        // A complete head (X-A: a) whose body happens to look like HTTP: that is
                        // body, never a second response head.
                        #expect(r.status == 200)
                        #expect(r.text == "HTTP/1.1 200 OK\r\n")
                    } else {
                        #expect(r.status == 502, "\(path)")
                    }
                    #expect(!r.text.contains("SECRET"), "\(path)")
                    #expect(r.header("X-A") == nil || path == "/crlf-split", "\(path)")
                }
                let ok = try await Curl.run([front.url("/ok")])
                #expect(ok.status == 200)
                #expect(ok.text == "ok")
            }
        }

        @Test func backendFramingHeadersAreNotForwardedAndKeepAliveSurvives() async throws {
            try await Self.withProxy(routes: [
                "/te": Step.respond(
                    "Transfer-Encoding: chunked\r\nConnection: close\r\nKeep-Alive: timeout=1\r\n"
                        + "Upgrade: foo\r\nContent-Type: text/plain\r\n\r\nhello"),
                "/te-cl": Step.respond(
                    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\nworld"),
            ]) { _, front in
                let conn = try RawHTTP(port: front.port)
                for (path, body) in [("/te", "hello"), ("/te-cl", "world"), ("/ok", "ok")] {
                    conn.send(Self.get(path))
                    let reply = conn.readResponses(1)
                    let response = try #require(reply.finals.first, "\(path): \(reply.text)")
                    #expect(response.status == 200, "\(path)")
                    #expect(response.bodyText == body, "\(path)")
                    #expect(!reply.closed, "\(path): the proxy closed the client connection")
                    let connection = response.headers.filter { $0.name.lowercased() == "connection" }.map(\.value)
                    #expect(!connection.contains { $0.lowercased().contains("close") }, "\(path): \(connection)")
                    #expect(response.header("Keep-Alive") == nil, "\(path)")
                    #expect(response.header("Upgrade") == nil, "\(path)")
                    let te = response.headers.filter { $0.name.lowercased() == "transfer-encoding" }
                    let cl = response.headers.filter { $0.name.lowercased() == "content-length" }
                    #expect(te.count + cl.count == 1, "\(path): one framing header expected, got \(response.headers)")
                }
            }
        }

        @Test func repeatedSetCookieStaysSeparate() async throws {
            try await Self.withProxy(routes: [
                "/cookies": Step.respond(
                    "Set-Cookie: a=1; Path=/\r\nContent-Type: text/plain\r\nSet-Cookie: b=2\r\n"
                        + "Set-Cookie: c=3; Expires=Wed, 21 Oct 2037 07:28:00 GMT\r\n\r\ncookies")
            ]) { _, front in
                let r = try await Curl.run([front.url("/cookies")])
                #expect(r.status == 200)
                #expect(r.headers("Set-Cookie") == ["a=1; Path=/", "b=2", "c=3; Expires=Wed, 21 Oct 2037 07:28:00 GMT"])
            }
        }

        // MARK: Body framing

        @Test func bodyLongerThanContentLengthIsCut() async throws {
            try await Self.withProxy(routes: [
                "/long": Step.respond("Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789ABCDEFGHIJ"),
                "/long-split": [
                    .stdout("Content-Length: 10\r\n\r\n01234"), .stdout("56789"), .stdout("EXTRA"), .endStdout, .end(),
                ],
            ]) { _, front in
                let r = try await Curl.run([front.url("/long")])
                #expect(r.status == 200)
                #expect(r.text == "0123456789")
                #expect(r.exitCode == 0)
                // On one client connection: the cut bytes must not show up before the next response.
                let conn = try RawHTTP(port: front.port)
                for path in ["/long", "/long-split", "/ok"] {
                    conn.send(Self.get(path))
                    let reply = conn.readResponses(1)
                    let response = try #require(reply.finals.first, "\(path): \(reply.text)")
                    #expect(response.bodyText == (path == "/ok" ? "ok" : "0123456789"), "\(path)")
                    #expect(response.header("Content-Length") == (path == "/ok" ? nil : "10"), "\(path)")
                }
            }
        }

        @Test func bodyShorterThanContentLengthIsATruncatedResponse() async throws {
            try await Self.withProxy(routes: [
                "/short": Step.respond("Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
            ]) { _, front in
                let r = try await Curl.run([front.url("/short")])
                #expect(r.exitCode == 18, "curl: \(r.stderr)")
                #expect(r.text == "0123456789")
                // Raw: the head announces 100 bytes, 10 come, then the connection closes.
                let conn = try RawHTTP(port: front.port)
                conn.send(Self.get("/short"))
                let reply = conn.readUntilClose(timeout: .seconds(5))
                #expect(reply.closed, "the proxy must close the client connection on a short body")
                #expect(reply.finals.isEmpty, "a short body must never look complete: \(reply.text)")
                #expect(reply.text.hasSuffix("0123456789"))
            }
        }

        @Test func oneByteStdoutRecords() async throws {
            let body = String((0..<300).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
            try await Self.withProxy(routes: [
                "/bytes": Step.respond(
                    "Status: 201 Created\r\nX-Test: one-byte\r\nContent-Type: text/plain\r\n\r\n" + body,
                    recordSize: 1)
            ]) { _, front in
                let r = try await Curl.run([front.url("/bytes")])
                #expect(r.status == 201)
                #expect(r.header("X-Test") == "one-byte")
                #expect(r.header("Content-Type") == "text/plain")
                #expect(r.text == body)
            }
        }

        @Test func emptyStdoutRecordEndsTheBody() async throws {
            // Reliability case B22 (PHP bug #72185): STDOUT after the empty STDOUT record must
            // not be spliced into the response.
            try await Self.withProxy(routes: [
                "/split": [.stdout("Content-Type: text/plain\r\n\r\nA"), .endStdout, .stdout("B"), .end()]
            ]) { _, front in
                let r = try await Curl.run([front.url("/split")])
                #expect(r.status == 200 && r.text == "A", "status \(r.status), body \(r.text.debugDescription)")
            }
        }

        // MARK: STDERR

        @Test func stderrGoesToTheLogEscapedNeverToTheBody() async throws {
            try await Self.withProxy(routes: [
                "/stderr": [
                    .stderr("MARK-1 \u{1b}[31mred\nMARK-2 \\ end\n"),
                    .stdout("Content-Type: text/plain\r\n\r\nbody-ok"),
                    .stderr("MARK-3\r\nforged 127.0.0.1 - - \"GET / HTTP/1.1\" 200\n"),
                    .endStdout,
                    .end(),
                ]
            ]) { _, front in
                let r = try await Curl.run([front.url("/stderr")])
                #expect(r.status == 200)
                #expect(r.text == "body-ok")
                let log = await Self.waitForLog(front) { $0.contains("MARK-1") && $0.contains("MARK-3") }
                let lines = log.split(separator: "\n", omittingEmptySubsequences: false)
                let first = lines.first { $0.contains("MARK-1") }
                let third = lines.first { $0.contains("MARK-3") }
                #expect(first?.contains("MARK-2") == true, "newline from the backend not escaped:\n\(log.suffix(2000))")
                #expect(third?.contains("forged") == true, "CR LF from the backend not escaped:\n\(log.suffix(2000))")
                #expect(!log.contains("\u{1b}"), "raw ESC in the log")
                #expect(!log.contains("\r"), "raw CR in the log")
                #expect(!lines.contains { $0.hasPrefix("forged") }, "a forged log line")
            }
        }

        // MARK: Connection reuse and poisoning

        @Test func keepAliveConnectionIsReused() async throws {
            try await Self.withProxy(routes: [:]) { backend, front in
                for i in 0..<5 {
                    let r = try await Curl.run([front.url("/ok?i=\(i)")])
                    #expect(r.status == 200)
                    #expect(r.text == "ok")
                }
                let seen = backend.requests
                #expect(seen.count == 5)
                #expect(backend.acceptedConnections == 1)
                #expect(seen.allSatisfy { $0.keepConnection }, "BEGIN_REQUEST flags: \(seen.map(\.flags))")
                #expect(seen.map(\.indexOnConnection) == [0, 1, 2, 3, 4])
                #expect(seen.allSatisfy { $0.role == FastCGIRole.responder.rawValue })
            }
        }

        @Test func keepaliveOffClosesEachConnection() async throws {
            try await Self.withProxy(extraPoolINI: "keepalive = off", routes: [:]) { backend, front in
                for _ in 0..<3 {
                    let r = try await Curl.run([front.url("/ok")])
                    #expect(r.status == 200)
                }
                #expect(backend.requests.count == 3)
                #expect(backend.requests.allSatisfy { !$0.keepConnection })
                #expect(backend.acceptedConnections == 3)
            }
        }

        @Test func wrongRequestIDIs502AndTheConnectionIsDropped() async throws {
            let leak = "Content-Type: text/plain\r\nX-Leak: yes\r\n\r\nleaked"
            try await Self.withProxy(routes: [
                "/id-plus-one": [.record(type: 6, id: .offset(1), content: Array(leak.utf8)), .endStdout, .end()],
                "/id-zero": [.record(type: 6, id: .fixed(0), content: Array(leak.utf8)), .endStdout, .end()],
                "/end-wrong-id": [
                    .stdout("Content-Type: text/plain\r\n\r\npartial"),
                    .record(type: 3, id: .offset(1), content: [0, 0, 0, 0, 0, 0, 0, 0]),
                    .end(),
                ],
            ]) { backend, front in
                var accepted = 0
                for path in ["/id-plus-one", "/id-zero", "/end-wrong-id"] {
                    let warm = try await Curl.run([front.url("/ok")])
                    #expect(warm.status == 200)
                    accepted = backend.acceptedConnections
                    let r = try await Curl.run([front.url(path)])
                    if path == "/end-wrong-id" {
                        // The head went out already: the client must see a broken response.
                        #expect(r.exitCode != 0 || r.status == 502, "\(path): \(r.status) \(r.exitCode)")
                    } else {
                        #expect(r.status == 502, "\(path)")
                    }
                    #expect(!r.text.contains("leaked"), "\(path)")
                    #expect(r.header("X-Leak") == nil, "\(path)")
                    let next = try await Curl.run([front.url("/ok")])
                    #expect(next.status == 200, "after \(path)")
                    #expect(next.text == "ok", "after \(path)")
                    #expect(backend.acceptedConnections == accepted + 1, "after \(path): no new connection")
                    let bad = try #require(backend.requests(path: path).last)
                    let after = try #require(backend.requests.last)
                    #expect(after.connectionIndex != bad.connectionIndex, "after \(path): poisoned connection reused")
                }
            }
        }

        @Test func garbageAfterEndRequestPoisonsTheConnection() async throws {
            let injected = "Status: 299 Injected\r\nX-Injected: yes\r\n\r\nINJECTED"
            try await Self.withProxy(routes: [
                "/stale-record": Step.ok("first") + [.record(type: 6, content: Array(injected.utf8))],
                "/stale-end": Step.ok("first") + [.end()],
                "/garbage-bytes": Step.ok("first") + [.raw(Array("\0\0GARBAGE\r\n".utf8))],
                "/garbage-late": Step.ok("first") + [
                    .sleep(.milliseconds(100)), .raw(Array("HTTP/1.1 200 OK\r\n\r\nJUNK".utf8)),
                ],
            ]) { backend, front in
                for path in ["/stale-record", "/stale-end", "/garbage-bytes", "/garbage-late"] {
                    let r = try await Curl.run([front.url(path)])
                    #expect(r.status == 200, "\(path)")
                    #expect(r.text == "first", "\(path)")
                    // Between requests: the garbage arrives while the connection is idle.
                    try await Task.sleep(for: .milliseconds(300))
                    let next = try await Curl.run([front.url("/ok")])
                    #expect(next.status == 200, "after \(path)")
                    #expect(next.text == "ok", "after \(path)")
                    #expect(next.header("X-Injected") == nil)
                    #expect(!next.text.contains("INJECTED") && !next.text.contains("JUNK"))
                    let bad = try #require(backend.requests(path: path).last)
                    let after = try #require(backend.requests.last)
                    #expect(after.path == "/ok")
                    #expect(after.connectionIndex != bad.connectionIndex, "after \(path): poisoned connection reused")
                }
                // One fresh connection after each poisoned one.
                #expect(backend.acceptedConnections == 5)
            }
        }

        @Test func backendClosingIdleConnectionIsHandled() async throws {
            try await Self.withProxy(script: { request in
                switch request.path {
                case "/close-after":
                    // Ignores FCGI_KEEP_CONN: closes right after END_REQUEST.
                    return Step.ok("bye") + [.close]
                case "/flaky" where request.indexOnConnection > 0:
                    // A reused connection the backend closes as the request arrives (the
                    // pm.max_requests race): nothing was processed.
                    return [.close]
                default:
                    return Step.ok("ok:" + request.path)
                }
            }) { backend, front in
                let r = try await Curl.run([front.url("/close-after")])
                #expect(r.status == 200)
                #expect(r.text == "bye")
                try await Task.sleep(for: .milliseconds(200))
                let next = try await Curl.run([front.url("/x")])
                #expect(next.status == 200)
                #expect(next.text == "ok:/x")
                #expect(backend.acceptedConnections == 2)

                // /x left connection 1 idle in the pool; /flaky reuses it, the backend drops it,
                // the proxy retries once on a fresh connection.
                let flaky = try await Curl.run([front.url("/flaky")])
                #expect(flaky.status == 200)
                #expect(flaky.text == "ok:/flaky")
                let attempts = backend.requests(path: "/flaky")
                #expect(attempts.count == 2)
                #expect(attempts.map(\.indexOnConnection) == [1, 0])
                #expect(backend.acceptedConnections == 3)
            }
        }

        @Test func lateAnswerAfterReadTimeoutNeverReachesTheNextRequest() async throws {
            try await Self.withProxy(readTimeoutSeconds: 1, routes: [
                "/slowish": [.sleep(.milliseconds(300))] + Step.ok("slow but fine"),
                "/too-slow": [.sleep(.milliseconds(1800))] + Step.ok("late"),
            ]) { backend, front in
                let fine = try await Curl.run([front.url("/slowish")])
                #expect(fine.status == 200)
                #expect(fine.text == "slow but fine")
                let clock = ContinuousClock()
                let start = clock.now
                let slow = try await Curl.run([front.url("/too-slow")])
                #expect(slow.status == 504)
                #expect(clock.now - start < .milliseconds(1700))
                try await Task.sleep(for: .seconds(1))
                let next = try await Curl.run([front.url("/ok")])
                #expect(next.status == 200)
                #expect(next.text == "ok")
                let timedOut = try #require(backend.requests(path: "/too-slow").last)
                #expect(backend.requests.last?.connectionIndex != timedOut.connectionIndex)
            }
        }

        @Test func badVersionAndUnexpectedRecordTypesAre502() async throws {
            var badVersion: [UInt8] = [2, 6, 0, 1, 0, 4, 0, 0]
            badVersion += Array("X: y".utf8)
            try await Self.withProxy(routes: [
                "/bad-version": [.raw(badVersion), .end()],
                "/unknown-type": [.record(type: 42, content: [1, 2, 3])] + Step.ok("x"),
                "/data-record": [.record(type: 8, content: Array("data".utf8))] + Step.ok("x"),
            ]) { _, front in
                for path in ["/bad-version", "/unknown-type", "/data-record"] {
                    let r = try await Curl.run([front.url(path)])
                    #expect(r.status == 502, "\(path)")
                    let ok = try await Curl.run([front.url("/ok")])
                    #expect(ok.status == 200, "after \(path)")
                }
            }
        }

        @Test func endRequestProtocolStatusOverloadedIs503() async throws {
            try await Self.withProxy(routes: [
                "/overloaded": [.end(protocolStatus: .overloaded)],
                "/unknown-role": [.end(protocolStatus: .unknownRole)],
            ]) { backend, front in
                let overloaded = try await Curl.run([front.url("/overloaded")])
                #expect((500...599).contains(overloaded.status))
                // Reliability case B27: FCGI_OVERLOADED → 503 (the backend did not process it).
                #expect(overloaded.status == 503)
                let unknownRole = try await Curl.run([front.url("/unknown-role")])
                #expect(unknownRole.status == 502)
                let ok = try await Curl.run([front.url("/ok")])
                #expect(ok.status == 200)
                // A rejection ends the request, not the connection: all three share one.
                #expect(backend.acceptedConnections == 1)
            }
        }

        // MARK: Transports and params

        @Test(arguments: [ScriptedFastCGIBackend.Transport.unix, .tcp])
        func transportsBehaveAlike(_ transport: ScriptedFastCGIBackend.Transport) async throws {
            try await Self.withProxy(transport, routes: [
                "/echo": Step.ok("echo"),
                "/bytes": Step.respond("Content-Type: text/plain\r\nX-T: 1\r\n\r\nsplit body", recordSize: 3),
            ]) { backend, front in
                for _ in 0..<3 {
                    let r = try await Curl.run([front.url("/echo")])
                    #expect(r.status == 200)
                    #expect(r.text == "echo")
                }
                let post = try await Curl.run(["--data-binary", "abcdef", front.url("/echo")])
                #expect(post.status == 200)
                let bytes = try await Curl.run([front.url("/bytes")])
                #expect(bytes.text == "split body")
                #expect(bytes.header("X-T") == "1")
                #expect(backend.acceptedConnections == 1)
                #expect(backend.requests.count == 5)
                #expect(backend.requests.allSatisfy { $0.keepConnection })
                let last = try #require(backend.requests(path: "/echo").last)
                #expect(last.params["CONTENT_LENGTH"] == "6")
                #expect(last.stdin == Array("abcdef".utf8))
            }
        }

        @Test func paramsHaveNoHTTPProxyAndATrueContentLength() async throws {
            let body = String((0..<1234).map { i in Character(Unicode.Scalar(UInt8(97 + i % 26))) })
            try await Self.withProxy(routes: ["/params": Step.ok("params")]) { backend, front in
                let r = try await Curl.run([
                    "-H", "Proxy: http://evil.example:8080", "-H", "X-Custom: y", "-H", "Content-Type: text/plain",
                    "--data-binary", body, front.url("/params?q=1"),
                ])
                #expect(r.status == 200)
                let chunked = try await Curl.run([
                    "-H", "Proxy: x", "-H", "Transfer-Encoding: chunked", "--data-binary", body, front.url("/params"),
                ])
                #expect(chunked.status == 200)
                let get = try await Curl.run(["-H", "Proxy: x", front.url("/params")])
                #expect(get.status == 200)

                let seen = backend.requests(path: "/params")
                try #require(seen.count == 3)
                for request in seen {
                    #expect(request.params["HTTP_PROXY"] == nil, "HTTP_PROXY reached the backend")
                }
                #expect(seen[0].params["HTTP_X_CUSTOM"] == "y")
                #expect(seen[0].params["CONTENT_TYPE"] == "text/plain")
                #expect(seen[0].params["QUERY_STRING"] == "q=1")
                for request in seen.prefix(2) {
                    #expect(request.method == "POST")
                    #expect(request.params["CONTENT_LENGTH"] == "1234")
                    #expect(request.stdin == Array(body.utf8))
                }
                #expect(seen[2].params["CONTENT_LENGTH"] ?? "" == "")
                #expect(seen[2].stdin.isEmpty)
            }
        }
    }
}
