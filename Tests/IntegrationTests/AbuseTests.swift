import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// Slow and vanishing clients against one PHP-FPM worker: a slow upload, a reader that stops,
    /// a reader that trickles, a body that never ends, a flood of aborted requests. With one
    /// worker and `max_conns = 1`, any of them that held the worker would make a plain request
    /// behind it wait or fail; each test bounds every request it makes.
    @Suite(.fcgiproxyOnly("buffering, body_timeout, min_send_rate and abort_grace are fcgiproxy's"))
    struct Abuse {
        static func docroot(_ dir: TempDir) throws -> String {
            try ScriptDocroot.make(
                in: dir,
                [
                    "hi.php": #"<?php header('Content-Type: text/plain'); echo "hi\n";"#,
                    "sleep.php": #"<?php usleep((int)(1e6 * (float)($_GET['s'] ?? 1))); echo "slept\n";"#,
                    "post.php": #"<?php echo strlen(file_get_contents('php://input')), "\n";"#,
                    "big.php": #"<?php $c = str_repeat('x', 65536); for ($i = 0; $i < 16 * (int)($_GET['mb'] ?? 1); $i++) { echo $c; flush(); }"#,
                ])
        }

        /// One PHP-FPM worker, fcgiproxy with one event loop and `max_conns = 1` in front, spill
        /// files in a temp dir of their own.
        final class Setup: @unchecked Sendable {
            let fpm: PoolPHPFPM
            let proxy: ProxyProcess
            let temp: TempDir

            /// `routes`: sections matched before the default route, given the docroot.
            init(
                children: Int = 1, queueTimeout: String = "3s", server: String = "", pool: String = "", route: String = "",
                routes: (_ root: String) -> String = { _ in "" }
            ) async throws {
                fpm = try await PoolPHPFPM(.init(children: children, name: "abuse"))
                do {
                    try await fpm.waitForWorkers()
                    let dir = try TempDir("fcgiproxy-abuse")
                    temp = try TempDir("fcgiproxy-abuse-spill")
                    var options = FrontEndOptions(backendSocket: fpm.socketPath)
                    options.root = try Abuse.docroot(dir)
                    options.extraServerINI = "threads = 1\naccess_log = off\ntemp_dir = \(temp.path)\n" + server
                    options.extraPoolINI = "max_conns = \(children)\nqueue_timeout = \(queueTimeout)\n" + pool
                    options.extraRouteINI = route
                    options.routesBeforeDefault = routes(options.root)
                    proxy = try await ProxyProcess(options: options, dir: dir, port: try Net.freePort())
                } catch {
                    fpm.stop()
                    throw error
                }
            }

            func stop() {
                proxy.stop()
                fpm.stop()
            }

            /// A plain request must be answered, and soon.
            func probe(_ path: String = "/hi.php") async throws -> (status: Int, seconds: Double) {
                let start = ContinuousClock.now
                let r = try await Curl.run(["--max-time", "8", proxy.url(path)], timeout: .seconds(15))
                return (r.status, SteadyLoad.seconds(ContinuousClock.now - start))
            }

            /// True once no spill file is open any more (files are closed off the event loops,
            /// a moment after their request ended), within 3 s.
            func spillFilesClosed() async throws -> Bool {
                for _ in 0..<60 {
                    if spilledBytes() == 0 { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }

            /// Bytes of fcgiproxy's open files in the spill folder (unlinked files included).
            func spilledBytes() -> Int {
                let fdDir = "/proc/\(proxy.pid)/fd"
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? []
                var total = 0
                for fd in fds {
                    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd),
                        target.hasPrefix(temp.path + "/")
                    else { continue }
                    var info = stat()
                    if stat(fdDir + "/" + fd, &info) == 0 { total += Int(info.st_size) }
                }
                return total
            }
        }

        // MARK: request_buffering

        /// Three uploads that send 10 bytes of 100 000 and stall: the body is buffered before the
        /// backend is asked, so the one worker stays free (before: every probe got 503).
        @Test func slowUploadsDoNotHoldTheWorker() async throws {
            let setup = try await Setup()
            defer { setup.stop() }
            var uploads: [RawHTTP] = []
            for _ in 0..<3 {
                let conn = try RawHTTP(port: setup.proxy.port)
                conn.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n0123456789")
                uploads.append(conn)
            }
            try await Task.sleep(for: .milliseconds(300))
            for _ in 0..<3 {
                let probe = try await setup.probe()
                #expect(probe.status == 200 && probe.seconds < 1, "probe: \(probe)")
            }
            // The rest of one body arrives: the whole of it reaches the script.
            uploads[0].send(String(repeating: "a", count: 100_000 - 10))
            let reply = uploads[0].readResponses(1, timeout: .seconds(5))
            #expect(reply.status == 200 && reply.finals.first?.bodyText == "100000\n", "\(reply.text.prefix(300))")
        }

        /// A body beyond the connection's file allowance (`connection_spill`, here 1 MiB; 64 KiB
        /// in memory) gets 503 with Retry-After and the connection closes; nothing is left in
        /// temp_dir, and a smaller body on a new connection goes through.
        @Test func bodyBeyondTheConnectionAllowanceGets503() async throws {
            let setup = try await Setup(server: "body_buffer_size = 64k\nconnection_buffer = 64k\nconnection_spill = 1m")
            defer { setup.stop() }
            let conn = try RawHTTP(port: setup.proxy.port)
            conn.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n")
            // Just past the allowance, then silence: the proxy has read everything when it
            // answers, so its close is a clean FIN that cannot discard the 503.
            conn.send(String(repeating: "b", count: 1_200_000))
            let reply = conn.readUntilClose(timeout: .seconds(5))
            #expect(reply.status == 503 && reply.finals.first?.header("retry-after") == "1", "\(reply.text.prefix(300))")
            #expect(reply.closed)
            #expect(try await setup.spillFilesClosed())
            let small = try RawHTTP(port: setup.proxy.port)
            small.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500000\r\n\r\n" + String(repeating: "s", count: 500_000))
            let ok = small.readResponses(1, timeout: .seconds(5))
            #expect(ok.status == 200 && ok.finals.first?.bodyText == "500000\n", "\(ok.text.prefix(300))")
        }

        /// `request_buffering = off`: the body streams, so the stalled upload holds the worker
        /// (what the default prevents), and the probe waits out the queue.
        @Test func unbufferedUploadHoldsTheWorker() async throws {
            let setup = try await Setup(queueTimeout: "1s", route: "request_buffering = off")
            defer { setup.stop() }
            let conn = try RawHTTP(port: setup.proxy.port)
            conn.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n0123456789")
            try await Task.sleep(for: .milliseconds(300))
            let probe = try await setup.probe()
            #expect(probe.status != 200, "probe: \(probe)")
            _ = conn
        }

        // MARK: body_timeout

        @Test func stalledBodiesGet408AfterBodyTimeout() async throws {
            // The pause rule alone: the slow body below is far under min_body_rate's default.
            let setup = try await Setup(server: "body_timeout = 1s\nmin_body_rate = 0")
            defer { setup.stop() }
            for request in [
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nabc",
                // A chunked body whose last chunk never comes.
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4000\r\n"
                    + String(repeating: "z", count: 0x4000) + "\r\n",
            ] {
                let start = ContinuousClock.now
                let conn = try RawHTTP(port: setup.proxy.port)
                conn.send(request)
                let reply = conn.readUntilClose(timeout: .seconds(5))
                let elapsed = SteadyLoad.seconds(ContinuousClock.now - start)
                #expect(reply.status == 408, "\(reply.text.prefix(200))")
                #expect(reply.closed && elapsed > 0.8 && elapsed < 3, "closed \(reply.closed) after \(elapsed) s")
            }
            // A body that keeps coming, a piece every 400 ms, is not cut off.
            let conn = try RawHTTP(port: setup.proxy.port)
            conn.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8\r\n\r\n")
            for _ in 0..<8 {
                try await Task.sleep(for: .milliseconds(400))
                conn.send("x")
            }
            let reply = conn.readResponses(1, timeout: .seconds(5))
            #expect(reply.status == 200 && reply.finals.first?.bodyText == "8\n", "\(reply.text.prefix(200))")
        }

        /// A route's `body_timeout = 1s` under the server's 30 s: a stalled body on that route gets
        /// 408 after about a second, while the same stall on a route with the server's clock is
        /// still waiting well after that, and its body goes through once the rest comes.
        @Test func routeBodyTimeoutOverridesTheServers() async throws {
            let setup = try await Setup(server: "body_timeout = 30s\nmin_body_rate = 0") { root in
                "[route:short]\nmatch = /short/\npool = php\nroot = \(root)\nscript = \(root)/post.php\nbody_timeout = 1s\n"
            }
            defer { setup.stop() }
            let start = ContinuousClock.now
            let short = try RawHTTP(port: setup.proxy.port)
            short.send("POST /short/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nabc")
            let long = try RawHTTP(port: setup.proxy.port)
            long.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nabc")
            let reply = short.readUntilClose(timeout: .seconds(5))
            let elapsed = SteadyLoad.seconds(ContinuousClock.now - start)
            #expect(reply.status == 408, "\(reply.text.prefix(200))")
            #expect(reply.closed && elapsed > 0.8 && elapsed < 3, "closed \(reply.closed) after \(elapsed) s")
            try await Task.sleep(until: start + .milliseconds(2500))
            let waiting = long.readResponses(1, timeout: .milliseconds(200))
            #expect(waiting.status == nil && !waiting.closed, "\(waiting.text.prefix(200))")
            long.send(String(repeating: "d", count: 997))
            let done = long.readResponses(1, timeout: .seconds(5))
            #expect(done.status == 200 && done.finals.first?.bodyText == "1000\n", "\(done.text.prefix(200))")
        }

        // MARK: min_body_rate

        /// With `body_timeout = 1s` and `min_body_rate = 16`: a chunked body of one byte every
        /// 300 ms never pauses for a whole second, yet gets 408 at the end of its first window
        /// (before: it was read for as long as the client liked); a body of 12 bytes every 200 ms
        /// (60 bytes/s) runs for four windows and reaches the script whole.
        @Test func tricklingBodyIsCutOff() async throws {
            let setup = try await Setup(server: "body_timeout = 1s\nmin_body_rate = 16")
            defer { setup.stop() }
            let start = ContinuousClock.now
            let trickle = try RawHTTP(port: setup.proxy.port)
            trickle.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            var reply: RawReply?
            while ContinuousClock.now - start < .seconds(6) {
                trickle.send("1\r\nt\r\n")
                let r = trickle.readResponses(1, timeout: .milliseconds(300))
                if r.status != nil || r.closed {
                    reply = r
                    break
                }
            }
            let elapsed = SteadyLoad.seconds(ContinuousClock.now - start)
            #expect(reply?.status == 408, "\(reply?.text.prefix(200) ?? "no answer")")
            #expect(reply?.finals.first?.header("connection") == "close", "\(reply?.text.prefix(200) ?? "no answer")")
            #expect(elapsed > 0.8 && elapsed < 3, "answered after \(elapsed) s")

            let steady = try RawHTTP(port: setup.proxy.port)
            steady.send("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 240\r\n\r\n")
            for _ in 0..<20 {
                try await Task.sleep(for: .milliseconds(200))
                steady.send(String(repeating: "s", count: 12))
            }
            let done = steady.readResponses(1, timeout: .seconds(5))
            #expect(done.status == 200 && done.finals.first?.bodyText == "240\n", "\(done.text.prefix(200))")
        }

        // MARK: response_buffering

        /// A client that asks for 16 MiB and reads nothing: the response is spooled (memory, then
        /// an unlinked file) and the worker is free at once; later the client gets every byte.
        @Test func stoppedReaderDoesNotHoldTheWorker() async throws {
            let setup = try await Setup()
            defer { setup.stop() }
            let conn = try RawHTTP(port: setup.proxy.port, receiveBuffer: 4096)
            conn.send("GET /big.php?mb=16 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try await Task.sleep(for: .milliseconds(1500))
            let spilled = setup.spilledBytes()
            #expect(spilled > 8 * 1024 * 1024 && spilled <= 16 * 1024 * 1024, "spilled \(spilled) bytes")
            let probe = try await setup.probe()
            #expect(probe.status == 200 && probe.seconds < 1, "probe: \(probe)")
            var total = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                guard let n = conn.readSome(max: 1 << 20, timeout: .milliseconds(500)) else { break }
                total += n
                if total >= 16 * 1024 * 1024 { break }
            }
            #expect(total > 16 * 1024 * 1024, "read \(total) bytes")
            #expect(try await setup.spillFilesClosed())
        }

        /// At `response_spill` the spool stops growing and the backend waits for the client; with
        /// `response_buffering = off` nothing is spooled at all. Either way the worker is held.
        @Test func spillLimitAndBufferingOffHoldTheWorker() async throws {
            for (pool, route, limit) in [("response_buffer = 64k\nresponse_spill = 1m", "", 1 << 20), ("", "response_buffering = off", 0)] {
                let setup = try await Setup(queueTimeout: "1s", pool: pool, route: route)
                defer { setup.stop() }
                let conn = try RawHTTP(port: setup.proxy.port, receiveBuffer: 4096)
                conn.send("GET /big.php?mb=16 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try await Task.sleep(for: .milliseconds(1000))
                let spilled = setup.spilledBytes()
                #expect(spilled <= limit + 256 * 1024, "spilled \(spilled) bytes with \(pool)\(route)")
                let probe = try await setup.probe()
                #expect(probe.status == 503, "probe: \(probe) with \(pool)\(route)")
                _ = conn
            }
        }

        // MARK: min_send_rate

        /// A reader that takes 4 KiB every 200 ms (20 KiB/s): with `send_timeout = 1s` and
        /// `min_send_rate = 256k` it is cut off (with a reset: the kernel still holds megabytes
        /// for it, which it would otherwise read for minutes) and the worker is free.
        @Test func tricklingReaderIsCutOff() async throws {
            let setup = try await Setup(server: "send_timeout = 1s\nmin_send_rate = 256k", pool: "response_buffer = 64k\nresponse_spill = 0")
            defer { setup.stop() }
            let conn = try RawHTTP(port: setup.proxy.port, receiveBuffer: 4096)
            conn.send("GET /big.php?mb=16 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let start = ContinuousClock.now
            var closed = false
            while ContinuousClock.now - start < .seconds(8) {
                if conn.readSome(max: 4096, timeout: .milliseconds(200)) == nil {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            let elapsed = SteadyLoad.seconds(ContinuousClock.now - start)
            #expect(closed && elapsed < 6, "closed \(closed) after \(elapsed) s")
            let probe = try await setup.probe()
            #expect(probe.status == 200 && probe.seconds < 1, "probe: \(probe)")
        }

        /// A client that asks for a large static file and reads nothing. The file's last (only)
        /// region is handed to the socket at once, so the response has ended as far as the
        /// exchange knows; the connection's `send_timeout` must still reset it, and the
        /// descriptor must not stay open for it.
        @Test func aClientThatNeverReadsAStaticFileIsReset() async throws {
            let files = try TempDir("fcgiproxy-abuse-files")
            try FileManager.default.createDirectory(atPath: files.file("files"), withIntermediateDirectories: true)
            // More than the loopback socket buffers of both ends take.
            try Data(count: 64 << 20).write(to: URL(fileURLWithPath: files.file("files/big.bin")))
            let setup = try await Setup(
                server: "send_timeout = 1s",
                routes: { _ in "[route:files]\nmatch = /files/\nroot = \(files.path)\n" })
            defer { setup.stop() }
            let conn = try RawHTTP(port: setup.proxy.port, receiveBuffer: 4096)
            conn.send("GET /files/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try await Task.sleep(for: .seconds(4))
            // Reading now: what the kernel held may come first, then the reset or the close.
            let start = ContinuousClock.now
            var closed = false
            while ContinuousClock.now - start < .seconds(4) {
                if conn.readSome(max: 1 << 20, timeout: .milliseconds(500)) == nil {
                    closed = true
                    break
                }
            }
            #expect(closed, "the connection of a client that read nothing for send_timeout is closed")
            let probe = try await setup.probe()
            #expect(probe.status == 200 && probe.seconds < 1, "probe: \(probe)")
        }

        // MARK: abort_grace

        /// 16 clients ask for a 1 s script and leave at once. An aborted request keeps its
        /// connection until PHP-FPM ends it, so FPM runs one at a time (max_conns) and a plain
        /// request waits for one second at most; before, each abort freed the slot at once and
        /// all 16 queued up in FPM (the probe waited ~16 s).
        @Test func abortedRequestsKeepTheirPlaceUntilTheBackendEnds() async throws {
            let setup = try await Setup(queueTimeout: "20s", pool: "queue_size = 64")
            defer { setup.stop() }
            for _ in 0..<16 {
                let conn = try RawHTTP(port: setup.proxy.port)
                conn.send("GET /sleep.php?s=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(100))
            let probe = try await setup.probe()
            #expect(probe.status == 200 && probe.seconds < 2, "probe: \(probe)")
        }
    }
}
