import FastCGIWorker
import Foundation
import NIOCore
import Testing

/// Answers every request with its REQUEST_URI once `barrier` requests are running at once (or
/// with a 503 after `timeout`): all of them answered proves they ran concurrently.
private struct BarrierResponder: FastCGIResponder {
    let probe: WorkerProbe
    let barrier: Int
    let timeout: Duration
    let connections: @Sendable () -> Int?

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let arrived = probe.arrive(requestID: request.requestID)
        defer { probe.leave() }
        if arrived == barrier {
            probe.noteBarrier(connections: connections())
        }
        let reached = await probe.wait(timeout: timeout) { $0.arrivedCount >= barrier }
        let uri = request.params["REQUEST_URI"] ?? "?"
        guard reached else {
            try await writer.writeHead(status: 503, headers: [("Content-Type", "text/plain")])
            try await writer.write("barrier not reached: \(probe.arrivedCount) arrived\n")
            return
        }
        let body = ByteBuffer(string: uri)
        try await writer.writeHead(
            status: 200,
            headers: [("Content-Type", "text/plain"), ("Content-Length", "\(body.readableBytes)")]
        )
        try await writer.write(body)
    }
}

/// `/stream?KEY`: an event every 100 ms until cancelled (noted in the probe under KEY).
/// `/big?KEY`: 20 MB in 64 KiB writes (bytes written counted under KEY). `/small`: "small".
private struct StreamingResponder: FastCGIResponder {
    let probe: WorkerProbe

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let uri = request.params["REQUEST_URI"] ?? "/"
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let key = request.params["QUERY_STRING"] ?? ""
        switch path {
        case "/stream":
            probe.markStarted(key)
            do {
                try await withTaskCancellationHandler {
                    try await writer.writeHead(status: 200, headers: [("Content-Type", "text/event-stream")])
                    var n = 0
                    while !Task.isCancelled {
                        try await writer.write("data: event \(n)\n\n")
                        n += 1
                        try await Task.sleep(for: .milliseconds(100))
                    }
                } onCancel: {
                    probe.markCancelled(key)
                }
            } catch {
                // Cancelled (the sleep throws) or the request closed (the write throws): done.
            }
        case "/big":
            probe.markStarted(key)
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            let total = 20 * 1024 * 1024
            do {
                try await withTaskCancellationHandler {
                    try await writer.writeHead(
                        status: 200,
                        headers: [("Content-Type", "application/octet-stream"), ("Content-Length", "\(total)")]
                    )
                    var written = 0
                    while written < total {
                        try await writer.write(chunk)
                        written += chunk.readableBytes
                        probe.addBytes(key, chunk.readableBytes)
                    }
                } onCancel: {
                    probe.markCancelled(key)
                }
            } catch {
                // Aborted by the proxy (a client too slow on a shared connection).
            }
        case "/small":
            try await writer.writeHead(status: 200, headers: [("Content-Type", "text/plain"), ("Content-Length", "5")])
            try await writer.write("small")
        default:
            try await writer.writeHead(status: 404, headers: [("Content-Type", "text/plain")])
            try await writer.write("no such path: \(path)\n")
        }
    }
}

extension Integration {
    /// fcgiproxy in front of an in-process FastCGIWorkerServer (issue 3, "Through fcgiproxy"):
    /// multiplexing over one connection, aborts reaching the handler, and no head-of-line
    /// blocking by a slow client.
    @Suite(.fcgiproxyOnly("runs fcgiproxy with its own INI against an in-process worker"))
    struct WorkerThroughProxy {
        /// Starts the worker and an fcgiproxy in front of it, runs `body`, stops both.
        static func withProxy(
            responder: some FastCGIResponder,
            poolINI: String,
            _ body: (WorkerBackend, WorkerProxy) async throws -> Void
        ) async throws {
            let backend = try await WorkerBackend.start(responder: responder)
            let proxy: WorkerProxy
            do {
                proxy = try await WorkerProxy.start(in: backend.dir, backend: backend, poolINI: poolINI)
            } catch {
                await backend.stop()
                throw error
            }
            do {
                try await body(backend, proxy)
            } catch {
                proxy.stop()
                await backend.stop()
                throw error
            }
            #expect(proxy.isRunning, "fcgiproxy died; its log:\n\(proxy.log().suffix(3000))")
            proxy.stop()
            await backend.stop()
        }

        @Test("200 concurrent requests run at once over max_conns = 1 (multiplex = on)")
        func multiplexedBarrier() async throws {
            let count = 200
            let probe = WorkerProbe()
            // The socket path is only known once the backend exists; the responder reads it late.
            let socketPath = SocketPathBox()
            let responder = BarrierResponder(probe: probe, barrier: count, timeout: .seconds(15)) {
                socketPath.backend?.acceptedConnections()
            }
            try await Self.withProxy(
                responder: responder,
                poolINI: "multiplex = on\nmax_conns = 1\nmax_reqs = 256\nqueue_size = 1000"
            ) { backend, proxy in
                socketPath.backend = backend
                let out = try TempDir("fcgiproxy-mpx")
                let result = try await ChildProcess.run(
                    Paths.curl,
                    [
                        "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "\(count)",
                        "--max-time", "30",
                        "-w", "%{http_code} %{url_effective}\\n",
                        "-o", out.file("body_#1"),
                        proxy.url("/item/[1-\(count)]"),
                    ],
                    timeout: .seconds(40)
                )
                #expect(!result.timedOut)
                let lines = result.stdoutText.split(separator: "\n")
                #expect(lines.count == count, "curl printed \(lines.count) lines; stderr: \(result.stderrText.prefix(2000))")
                var good = 0
                var problems: [String] = []
                for n in 1...count {
                    let url = proxy.url("/item/\(n)")
                    let body = out.read("body_\(n)")
                    if lines.contains(Substring("200 \(url)")) && body == "/item/\(n)" {
                        good += 1
                    } else if problems.count < 5 {
                        problems.append("/item/\(n): body \(body.prefix(200).debugDescription)")
                    }
                }
                #expect(good == count, "\(good) of \(count) right; first problems: \(problems)")
                #expect(probe.maxConcurrent >= count, "at most \(probe.maxConcurrent) requests ran at once")
                // Request ids are unique per connection: 200 distinct ids fit one connection.
                #expect(Set(probe.seenRequestIDs).count == count)
                let connections = probe.connectionsWhenBarrierOpened
                if let connections, connections >= 0 {
                    #expect(connections == 1, "the worker had \(connections) connections with \(count) requests in flight")
                }
                #expect(!proxy.log().contains("error"), "proxy log:\n\(proxy.log().suffix(2000))")
            }
        }

        @Test("a client that goes away mid-stream cancels the handler", arguments: ["on", "off"])
        func abortReachesHandler(multiplex: String) async throws {
            let probe = WorkerProbe()
            try await Self.withProxy(
                responder: StreamingResponder(probe: probe),
                poolINI: "multiplex = \(multiplex)\nmax_conns = 1\nmax_reqs = 16"
            ) { backend, proxy in
                let key = "abort-\(multiplex)"
                do {
                    let client = try RawHTTP(port: proxy.port)
                    client.send("GET /stream?\(key) HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    let reply = client.readResponses(1, timeout: .milliseconds(600))
                    #expect(reply.text.hasPrefix("HTTP/1.1 200"), "got: \(reply.text.prefix(300))")
                    #expect(reply.text.contains("data: event 1"), "got: \(reply.text.prefix(300))")
                    #expect(probe.cancelledAt(key) == nil, "cancelled before the client left")
                    // `client` goes out of scope here: its socket closes.
                }
                let closedAt = ContinuousClock.now
                let cancelled = await probe.wait(timeout: .seconds(2)) { $0.cancelledAt(key) != nil }
                #expect(cancelled, "the handler was not cancelled within 2 s; proxy log:\n\(proxy.log().suffix(2000))")
                if let at = probe.cancelledAt(key) {
                    #expect(at - closedAt < .seconds(2))
                }
                if multiplex == "on", let connections = backend.acceptedConnections() {
                    // ABORT_REQUEST, not a close: the shared connection stays.
                    #expect(connections == 1, "the worker has \(connections) connections after the abort")
                }
                if multiplex == "off", backend.acceptedConnections() != nil {
                    // Alone on its connection, the request is aborted by closing it.
                    let closed = await WorkerProcs.wait(timeout: .seconds(2)) { backend.acceptedConnections() == 0 }
                    #expect(closed, "the worker still has \(backend.acceptedConnections() ?? -1) connections")
                }
                // The pool is usable afterwards.
                let after = try await Curl.run(["--max-time", "5", proxy.url("/small")])
                #expect(after.status == 200 && after.text == "small")
            }
        }

        @Test("a client that does not read one multiplexed response does not stall the others")
        func slowClientDoesNotStallOthers() async throws {
            let probe = WorkerProbe()
            try await Self.withProxy(
                responder: StreamingResponder(probe: probe),
                poolINI: "multiplex = on\nmax_conns = 1\nmax_reqs = 16\nmultiplex_buffer = 512k\nmultiplex_spill = 2m"
            ) { backend, proxy in
                let slow = try RawHTTP(port: proxy.port)
                slow.send("GET /big?slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
                // Never read `slow`: wait until its response is well under way.
                let underway = await probe.wait(timeout: .seconds(5)) { $0.bytesWritten("slow") >= 1024 * 1024 }
                #expect(underway, "the big response did not start (\(probe.bytesWritten("slow")) bytes)")
                for _ in 0..<3 {
                    let start = ContinuousClock.now
                    let small = try await Curl.run(["--max-time", "5", proxy.url("/small")])
                    let elapsed = ContinuousClock.now - start
                    #expect(small.status == 200 && small.text == "small", "got \(small.status): \(small.text.prefix(200))")
                    #expect(elapsed < .seconds(1), "the small request took \(elapsed)")
                }
                if let connections = backend.acceptedConnections() {
                    #expect(connections == 1, "the small requests did not share the connection (\(connections))")
                }
                // fcgiproxy holds at most multiplex_buffer + multiplex_spill (2.5 MiB here) for a
                // slow client on a shared connection, then aborts that request: the worker's
                // handler is cancelled.
                let aborted = await probe.wait(timeout: .seconds(5)) { $0.cancelledAt("slow") != nil }
                #expect(aborted, "the slow request was not aborted (\(probe.bytesWritten("slow")) bytes written)")
                withExtendedLifetime(slow) {}
            }
        }
    }
}

extension Integration.WorkerThroughProxy {
    /// A client slower than its backend on a shared connection: the response waits in the
    /// request's spool (memory, then a temporary file) and arrives whole; nothing is aborted.
    @Test("a slow client's response is spooled and arrives whole")
    func slowClientResponseIsSpooledWhole() async throws {
        let probe = WorkerProbe()
        try await Self.withProxy(
            responder: StreamingResponder(probe: probe),
            poolINI: "multiplex = on\nmax_conns = 1\nmultiplex_buffer = 256k\nmultiplex_spill = 64m"
        ) { _, proxy in
            let r = try await Curl.run(["--limit-rate", "8M", proxy.url("/big?spooled")])
            #expect(r.exitCode == 0, "curl exit \(r.exitCode)")
            #expect(r.status == 200)
            #expect(r.body.count == 20 * 1024 * 1024)
            #expect(r.body.allSatisfy { $0 == UInt8(ascii: "x") })
            #expect(probe.cancelledAt("spooled") == nil, "the spooled request was aborted")
        }
    }
}

/// Lets a responder created before its backend find that backend later.
private final class SocketPathBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: WorkerBackend?

    var backend: WorkerBackend? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
