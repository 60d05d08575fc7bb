import FastCGI
import FastCGIClient
import Foundation
import NIOCore
import Testing

extension Integration {
    /// A multiplexing backend that answers a request and, in the same write, sends records for
    /// another request id: those bytes must never reach another client. A client gets its own
    /// answer or an error, never someone else's bytes.
    @Suite(.fcgiproxyOnly("runs fcgiproxy against a scripted backend through its own INI"))
    struct MultiplexCrossTalk {
        typealias Step = ScriptedFastCGIBackend.Step

        /// The records of a complete answer whose body and `X-Path` are `text`.
        static func answer(_ text: String, id: UInt16) -> ByteBuffer {
            var buffer = ByteBuffer()
            let head = "Content-Type: text/plain\r\nX-Path: \(text)\r\n\r\n\(text)"
            buffer.writeFastCGIStream(type: .stdout, requestID: id, content: ByteBuffer(string: head))
            buffer.writeFastCGIStreamEnd(type: .stdout, requestID: id)
            buffer.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
            return buffer
        }

        /// The request's own answer, then in the same write a whole answer for `id + offset`.
        static func injecting(offset: Int) -> ScriptedFastCGIBackend.Script {
            { request in
                let uri = request.params["REQUEST_URI"] ?? "?"
                var bytes = answer(uri, id: request.requestID)
                var injected = answer("INJECTED", id: UInt16(truncatingIfNeeded: Int(request.requestID) + offset))
                bytes.writeBuffer(&injected)
                return [.raw(Array(bytes.readableBytesView))]
            }
        }

        static func withProxy(
            script: @escaping ScriptedFastCGIBackend.Script,
            _ body: (ScriptedFastCGIBackend, any FrontEnd) async throws -> Void
        ) async throws {
            try await Hostile.withProxy(multiplex: "on", extraPoolINI: "max_reqs = 8\nmax_conns = 2", script: script, body)
        }

        /// Counts answers that carry another request's bytes; prints the figures.
        static func check(_ results: [PoolLoad.Result], _ label: String) -> (ok: Int, foreign: Int) {
            var ok = 0
            var foreign = 0
            for result in results {
                let own = URL(string: result.url).map { $0.path + "?" + ($0.query ?? "") } ?? "?"
                if result.status == 200, result.path == own {
                    ok += 1
                } else if !result.path.isEmpty, result.path != own {
                    foreign += 1
                }
            }
            let statuses = PoolLoad.histogram(results.map(\.status)).sorted { $0.key < $1.key }
            let slowest = results.map(\.seconds).max() ?? 0
            print(
                "cross-talk \(label): sent \(results.count), own answer \(ok), someone else's \(foreign), statuses \(statuses), max \(slowest)s"
            )
            return (ok, foreign)
        }

        /// One client after the other: the next request starts right after the answer that
        /// carried the stray records, on the same connection if it were still trusted.
        @Test(arguments: [1, FastCGIConnectionStateMachine.idStride])
        func strayRecordsNeverReachTheNextClient(offset: Int) async throws {
            try await Self.withProxy(script: Self.injecting(offset: offset)) { backend, front in
                let urls = (0..<20).map { front.url("/seq?n=\($0)") }
                let results = try await PoolLoad.run(urls, timeout: .seconds(60))
                let (ok, foreign) = Self.check(results, "sequential, offset \(offset)")
                #expect(foreign == 0)
                // The connection that carried stray records is closed before anyone else uses it:
                // every request still gets its own answer.
                #expect(ok == 20)
                #expect(results.allSatisfy { $0.seconds < 2 })
            }
        }

        @Test func concurrentClientsNeverGetAnotherClientsAnswer() async throws {
            try await Self.withProxy(script: Self.injecting(offset: 1)) { backend, front in
                let urls = (0..<240).map { front.url("/par?n=\($0)") }
                let results: [PoolLoad.Result]
                do {
                    results = try await PoolLoad.run(urls, parallel: 8, timeout: .seconds(30))
                } catch {
                    print(front.log().suffix(6000))
                    throw error
                }
                let (ok, foreign) = Self.check(results, "8 concurrent clients")
                #expect(foreign == 0)
                #expect(ok > 0)
                #expect(results.allSatisfy { $0.seconds < 5 }, "a request hung")
            }
        }

        /// After FCGI_CANT_MPX_CONN the backend gets one request per connection, and a connection
        /// opened later must know it: a request whose client left takes its connection out of use
        /// (it closes when the backend ends the request, or after abort_grace) instead of
        /// leaving it open for the next request as a shared connection would.
        @Test func afterCantMultiplexNewConnectionsAreOfTheirOwn() async throws {
            let script: ScriptedFastCGIBackend.Script = { request in
                switch request.path {
                case "/reject": return [.end(protocolStatus: .cantMultiplexConnection)]
                case "/slow": return [.sleep(.seconds(3))] + Step.ok("slow")
                default: return Step.ok("ok")
                }
            }
            try await Self.withProxy(script: script) { backend, front in
                let rejected = try await Curl.run([front.url("/reject")])
                #expect(rejected.status >= 500)
                // Two at once: the second needs a connection of its own, opened after the rejection.
                let clients = [try RawHTTP(port: front.port), try RawHTTP(port: front.port)]
                for client in clients {
                    client.send("GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
                }
                try await Task.sleep(for: .milliseconds(500))
                #expect(backend.requests(path: "/slow").count == 2)
                for client in clients { client.shutdownWrite() }
                // The clients are gone; give the proxy a moment to abandon their requests.
                try await Task.sleep(for: .milliseconds(500))
                print("cross-talk CANT_MPX_CONN: \(backend.acceptedConnections) connections, \(backend.abortRequests) ABORT_REQUEST records")
                let before = backend.acceptedConnections
                let next = try await Curl.run([front.url("/ok")])
                #expect(next.status == 200)
                #expect(backend.acceptedConnections == before + 1, "an aborted request's connection was used again")
            }
        }

        @Test func garbageBehindAnAnswerDoesNotFailTheNextRequest() async throws {
            let script: ScriptedFastCGIBackend.Script = { request in
                let uri = request.params["REQUEST_URI"] ?? "?"
                var bytes = Self.answer(uri, id: request.requestID)
                bytes.writeString("\u{1}\u{6}GARBAGE")
                return [.raw(Array(bytes.readableBytesView))]
            }
            try await Self.withProxy(script: script) { backend, front in
                let urls = (0..<20).map { front.url("/garbage?n=\($0)") }
                let results = try await PoolLoad.run(urls, timeout: .seconds(60))
                let (ok, foreign) = Self.check(results, "garbage behind END_REQUEST")
                #expect(foreign == 0)
                #expect(ok == 20)
            }
        }
    }
}
