import Foundation
import ProxyConfig
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// The HTTP/2 front end against PHP-FPM: h2c with prior knowledge, h2 by ALPN over TLS,
    /// the same answers as over HTTP/1.1, client resets, GOAWAY on a graceful stop, h2load.
    @Suite(.enabled(if: ServerConfig.builtWithHTTP2), .fcgiproxyOnly("fcgiproxy's HTTP/2 front end"))
    struct HTTP2 {
        private static let h2c = ["--http2-prior-knowledge"]

        /// Status, body and the header fields that are not about framing or time.
        private static func comparable(_ r: CurlResponse) -> (Int, String, [String]) {
            let skip: Set<String> = ["date", "connection", "transfer-encoding", "keep-alive"]
            let fields = r.headers.filter { !skip.contains($0.name.lowercased()) }
                .map { "\($0.name.lowercased()): \($0.value)" }.sorted()
            return (r.status, r.text, fields)
        }

        @Test func priorKnowledgeAnswersAsHTTP1Does() async throws {
            let fixture = try await Fixture.shared()
            let paths = [
                "/", "/status.php?code=201", "/status.php?code=404", "/cookies.php", "/redirect.php?to=/x&code=302",
                "/missing.php", "/big.php?mb=1&length=1", "/big.php?mb=2", "/dir/",
            ]
            for path in paths {
                let one = try await fixture.curl(path)
                let two = try await fixture.curl(path, Self.h2c)
                #expect(two.exitCode == 0, "\(path): \(two.stderr)")
                #expect(two.headBlocks.last?.hasPrefix("HTTP/2 ") == true, "\(path): \(two.headBlocks)")
                let (s1, b1, f1) = Self.comparable(one)
                let (s2, b2, f2) = Self.comparable(two)
                #expect(s1 == s2, "\(path)")
                #expect(b1 == b2, "\(path)")
                #expect(f1 == f2, "\(path)")
            }
        }

        @Test func phpSeesHTTP2AuthorityAndJoinedCookies() async throws {
            let fixture = try await Fixture.shared()
            let r = try await Curl.run(
                Self.h2c + ["-H", "Host: example.test", "-H", "Cookie: a=1", "-H", "Cookie: b=2", fixture.url("/info.php")])
            #expect(r.status == 200, "\(r.stderr)")
            let info = try r.json()
            #expect(info["SERVER_PROTOCOL"] as? String == "HTTP/2.0")
            #expect((info["HTTP"] as? [String: Any])?["HTTP_HOST"] as? String == "example.test", "\(info)")
            #expect(info["REQUEST_METHOD"] as? String == "GET")
            let headers = try await Curl.run(Self.h2c + ["-H", "Cookie: a=1", "-H", "Cookie: b=2", fixture.url("/headers.php")])
            let fields = try headers.json()
            #expect(fields["HTTP_COOKIE"] as? String == "a=1; b=2", "\(fields)")
        }

        @Test func postBodiesWithAndWithoutContentLength() async throws {
            let fixture = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-h2-post")
            defer { try? FileManager.default.removeItem(atPath: dir.path) }
            var bytes = [UInt8](repeating: 0, count: 300_000)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 7919 &+ i >> 8) }
            let file = dir.file("body")
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let octets = ["-H", "Content-Type: application/octet-stream"]
            let one = try await Curl.run(octets + ["--data-binary", "@\(file)", fixture.url("/post.php")])
            let withLength = try await Curl.run(Self.h2c + octets + ["-v", "--data-binary", "@\(file)", fixture.url("/post.php")])
            #expect(withLength.stderr.lowercased().contains("content-length: \(bytes.count)"), "\(withLength.stderr)")
            // `Content-Length:` with no value: curl sends none, the body is DATA until END_STREAM.
            let withoutLength = try await Curl.run(
                Self.h2c + octets + ["-v", "-H", "Content-Length:", "--data-binary", "@\(file)", fixture.url("/post.php")])
            #expect(!withoutLength.stderr.lowercased().contains("content-length:"), "\(withoutLength.stderr)")
            let expected = try #require(try? one.json(), "\(one.status) \(one.text) \(one.stderr)")
            #expect(expected["size"] as? Int == bytes.count)
            for r in [withLength, withoutLength] {
                #expect(r.status == 200, "\(r.stderr)")
                let json = try r.json()
                #expect(json["size"] as? Int == bytes.count)
                #expect(json["md5"] as? String == expected["md5"] as? String)
                #expect(json["content_length"] as? String == String(bytes.count))
            }
            let empty = try await Curl.run(Self.h2c + ["-X", "POST", "--data-binary", "", fixture.url("/post.php")])
            #expect(empty.status == 200, "\(empty.stderr)")
            #expect(try empty.json()["size"] as? Int == 0)
        }

        @Test func emptyBodyWithoutContentLengthReachesPHPAsContentLengthZero() async throws {
            let fixture = try await Fixture.shared()
            let conn = try RawHTTP(port: fixture.port)
            // HEADERS without END_STREAM nor content-length, then an empty DATA that ends the stream.
            conn.send(
                RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, streamID: 0, [])
                    + RawHTTP2.request(streamID: 1, method: "POST", path: "/post.php", authority: "localhost", endStream: false)
                    + RawHTTP2.frame(type: RawHTTP2.data, flags: RawHTTP2.endStream, streamID: 1, []))
            let frames = RawHTTP2.frames(in: conn.readUntilClose(timeout: .seconds(2)).bytes).filter { $0.streamID == 1 }
            let body = String(decoding: frames.filter { $0.type == RawHTTP2.data }.flatMap(\.payload), as: UTF8.self)
            #expect(frames.last.map { $0.type == RawHTTP2.data && $0.flags & RawHTTP2.endStream != 0 } == true)
            let json = try Util.json(Data(body.utf8))
            #expect(json["size"] as? Int == 0, "\(body)")
            #expect(json["content_length"] as? String == "0", "\(body)")
        }

        @Test func tlsNegotiatesH2ByALPN() async throws {
            let files = try Integration.TLS.certificate.get()
            let front = try await Fixture.extraFrontEnd { options in
                options.tls = true
                options.extraServerINI = "tls_certificate = \(files.certificate)\ntls_key = \(files.key)"
            }
            defer { front.stop() }
            let url = "https://127.0.0.1:\(front.port)/info.php"
            let r = try await Curl.run(["--cacert", files.certificate, "--http2", "-v", url])
            #expect(r.status == 200, "\(r.stderr)")
            #expect(r.stderr.contains("ALPN: server accepted h2"), "\(r.stderr)")
            let info = try r.json()
            #expect(info["SERVER_PROTOCOL"] as? String == "HTTP/2.0")
            #expect(info["HTTPS"] as? String == "on")
            let one = try await Curl.run(["--cacert", files.certificate, "--http1.1", "-v", url])
            #expect(one.status == 200)
            #expect(one.stderr.contains("ALPN: server accepted http/1.1"), "\(one.stderr)")
        }

        /// By default `Upgrade: h2c` is ignored: `curl --http2` on http:// gets HTTP/1.1 answers,
        /// and the upgrade fields do not reach the backend.
        @Test func upgradeH2cIsIgnoredByDefault() async throws {
            let fixture = try await Fixture.shared()
            let url = fixture.url("/info.php")
            let r = try await ChildProcess.run(
                Paths.curl, ["-s", "--http2", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_version} %{http_code}\n", url, url])
            #expect(r.stdoutText == "1.1 200\n1.1 200\n", "\(r.stdoutText) \(r.stderrText)")
            let asked = try await Curl.run(["--http2", "-v", url])
            #expect(!asked.stderr.contains("101 Switching Protocols"), "\(asked.stderr)")
            let info = try asked.json()
            #expect(info["SERVER_PROTOCOL"] as? String == "HTTP/1.1")
            #expect(info["HTTP_UPGRADE"] == nil && info["HTTP_HTTP2_SETTINGS"] == nil, "\(info)")
        }

        /// With `h2c_upgrade = on`, `curl --http2` on http:// asks for `Upgrade: h2c`: the request
        /// is answered as stream 1 after a 101, and the next requests on the connection are HTTP/2
        /// streams. A request with a body stays HTTP/1.1 (RFC 9113 allows ignoring the upgrade);
        /// so does everything with `http2 = off`.
        @Test func upgradeH2cSwitchesTheConnection() async throws {
            let fixture = try await Fixture.extraFrontEnd { $0.extraServerINI = "h2c_upgrade = on" }
            defer { fixture.stop() }
            let url = fixture.url("/info.php")
            let r = try await ChildProcess.run(
                Paths.curl, ["-s", "--http2", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{num_connects}\n", url, url])
            #expect(r.stdoutText == "2 200 1\n2 200 0\n", "\(r.stdoutText) \(r.stderrText)")

            let upgraded = try await Curl.run(["--http2", "-v", url])
            #expect(upgraded.stderr.contains("101 Switching Protocols"), "\(upgraded.stderr)")
            let info = try upgraded.json()
            #expect(info["SERVER_PROTOCOL"] as? String == "HTTP/1.1", "the request itself was HTTP/1.1: \(info)")
            #expect(info["HTTP_UPGRADE"] == nil && info["HTTP_HTTP2_SETTINGS"] == nil, "\(info)")
            let plain = try await Curl.run([url])
            let plainInfo = try plain.json()
            #expect(upgraded.status == plain.status)
            #expect(plainInfo["SCRIPT_NAME"] as? String == info["SCRIPT_NAME"] as? String)

            let post = try await ChildProcess.run(
                Paths.curl, ["-s", "--http2", "-d", "a=1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", fixture.url("/post.php")])
            #expect(post.stdoutText == "1.1 200", "\(post.stdoutText)")

            let off = try await Fixture.extraFrontEnd { $0.extraServerINI = "http2 = off" }
            defer { off.stop() }
            let one = try await ChildProcess.run(
                Paths.curl, ["-s", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", off.url("/info.php")])
            #expect(one.stdoutText == "1.1 200", "\(one.stdoutText)")
        }

        @Test func http2OffServesHTTP1Only() async throws {
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "http2 = off" }
            defer { front.stop() }
            let r = try await Curl.run(Self.h2c + ["--max-time", "5", front.url("/")])
            #expect(r.status != 200)
            let one = try await Curl.run([front.url("/")])
            #expect(one.status == 200)
        }

        @Test func clientResetAbortsTheBackendRequestAndTheConnectionGoesOn() async throws {
            let dir = try TempDir("fcgiproxy-h2-rst")
            defer { try? FileManager.default.removeItem(atPath: dir.path) }
            let log = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(log)" }
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            let authority = "127.0.0.1:\(front.port)"
            // Default windows (64 KiB): the 64 MiB response stalls after its first DATA.
            conn.send(RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, streamID: 0, []))
            conn.send(RawHTTP2.get(streamID: 1, path: "/big.php?mb=64", authority: authority))
            let first = RawHTTP2.frames(in: conn.readUntilClose(timeout: .seconds(2)).bytes)
            #expect(first.contains { $0.type == RawHTTP2.headers && $0.streamID == 1 })
            #expect(first.contains { $0.type == RawHTTP2.data && $0.streamID == 1 })
            conn.send(RawHTTP2.reset(streamID: 1))
            // Stream 1's DATA used up the connection window: open it for stream 3.
            conn.send(RawHTTP2.frame(type: RawHTTP2.windowUpdate, flags: 0, streamID: 0, [0x00, 0x10, 0x00, 0x00]))
            conn.send(RawHTTP2.get(streamID: 3, path: "/status.php?code=200", authority: authority))
            let second = RawHTTP2.frames(in: conn.readUntilClose(timeout: .seconds(2)).bytes)
            #expect(second.contains { $0.type == RawHTTP2.headers && $0.streamID == 3 }, "\(second.map { ($0.type, $0.streamID) })")
            #expect(second.contains { $0.type == RawHTTP2.data && $0.streamID == 3 && $0.flags & RawHTTP2.endStream != 0 })
            #expect(!second.contains { $0.type == RawHTTP2.goAway })
            let lines = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            // The response had started (status 200); far less than its 64 MiB was queued.
            let big = lines.split(separator: "\n").first { $0.contains("\"GET /big.php?mb=64 HTTP/2.0\" 200 ") }
            let queued = big.flatMap { $0.split(separator: " ").dropFirst(9).first }.flatMap { Int($0) }
            #expect(queued.map { $0 < 1_048_576 } == true, "\(lines)")
            #expect(lines.contains("\"GET /status.php?code=200 HTTP/2.0\" 200"), "\(lines)")
        }

        @Test func sendTimeoutClosesAClientThatStopsReading() async throws {
            let dir = try TempDir("fcgiproxy-h2-send")
            defer { try? FileManager.default.removeItem(atPath: dir.path) }
            let log = dir.file("access.log")
            let front = try await Fixture.extraFrontEnd { $0.extraServerINI = "access_log = \(log)\nsend_timeout = 1s" }
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            // Windows wide open, then the client reads nothing: the socket fills up.
            conn.send(
                RawHTTP2.preface
                    + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, streamID: 0, [0x00, 0x04, 0x7F, 0xFF, 0xFF, 0xFF])
                    + RawHTTP2.frame(type: RawHTTP2.windowUpdate, flags: 0, streamID: 0, [0x7F, 0xFF, 0x00, 0x00])
                    + RawHTTP2.get(streamID: 1, path: "/big.php?mb=256", authority: "127.0.0.1:\(front.port)"))
            var lines = ""
            for _ in 0..<400 where !lines.contains("/big.php") {
                try await Task.sleep(for: .milliseconds(25))
                lines = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            }
            // Logged when the proxy closed the connection, long before 256 MiB were sent.
            let big = lines.split(separator: "\n").first { $0.contains("\"GET /big.php?mb=256 HTTP/2.0\" 200 ") }
            let queued = big.flatMap { $0.split(separator: " ").dropFirst(9).first }.flatMap { Int($0) }
            #expect(queued.map { $0 < 128 * 1_048_576 } == true, "\(lines)")
        }

        @Test func gracefulStopSendsGoAwayAndFinishesTheStreamInFlight() async throws {
            let front = try await Fixture.extraFrontEnd()
            defer { front.stop() }
            let url = front.url("/sleep.php?s=2")
            async let slow = Curl.run(Self.h2c + ["--max-time", "20", url])
            try await Task.sleep(for: .milliseconds(700))
            kill(front.pid, SIGTERM)
            let r = try await slow
            #expect(r.status == 200, "\(r.stderr)")
            #expect(r.text == "slept 2\n")
            for _ in 0..<200 where front.isRunning {
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(!front.isRunning, "still running after its last stream ended")
        }

        @Test func nghttpVerboseWorks() async throws {
            let tool = "/usr/bin/nghttp"
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                print("skipped: \(tool) is missing (apt-get install nghttp2-client)")
                return
            }
            let fixture = try await Fixture.shared()
            let r = try await ChildProcess.run(tool, ["-v", fixture.url("/status.php?code=202")], timeout: .seconds(30))
            let out = r.stdoutText
            #expect(r.exitCode == 0, "\(out)\n\(r.stderrText)")
            #expect(out.contains(":status: 202"), "\(out)")
            #expect(out.contains("status 202"), "\(out)")
            #expect(out.contains("send GOAWAY frame"), "\(out)")
        }

        @Test func swiftWorkerOverH2c() async throws {
            let dir = try TempDir("fcgiproxy-h2-demo")
            let worker = try await DemoWorker(unixSocketIn: dir)
            defer { worker.stop() }
            let front = try await Fixture.extraFrontEnd(backendSocket: worker.socketPath)
            defer { front.stop() }
            let two = try await Curl.run(Self.h2c + [front.url("/")])
            #expect(two.status == 200, "\(two.stderr)")
            #expect(two.text.contains("<tr><th>SERVER_PROTOCOL</th><td>HTTP/2.0</td></tr>"), "\(two.text)")
            let one = try await Curl.run([front.url("/")])
            #expect(one.status == 200)
            #expect(one.text.contains("<tr><th>SERVER_PROTOCOL</th><td>HTTP/1.1</td></tr>"), "\(one.text)")
        }

        @Test func h2loadCompletesWithoutErrors() async throws {
            let tool = "/usr/bin/h2load"
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                print("skipped: \(tool) is missing (apt-get install nghttp2-client)")
                return
            }
            // A PHP-FPM of its own, with no more connections than workers: the shared one's
            // workers are held by the keep-alive connections of every other suite running now,
            // and a request queued behind them would wait for read_timeout.
            let fpm = try await PoolPHPFPM(.init(children: 4, name: "h2load"))
            defer { fpm.stop() }
            let front = try await Fixture.extraFrontEnd(backendSocket: fpm.socketPath) { options in
                options.extraPoolINI = "max_conns = 4"
            }
            defer { front.stop() }
            let r = try await ChildProcess.run(
                tool, ["-n", "20000", "-c", "8", "-m", "10", front.url("/status.php?code=200")], timeout: .seconds(300))
            let out = r.stdoutText
            print(out.split(separator: "\n").filter { $0.contains("finished in") || $0.contains("requests:") }.joined(separator: "\n"))
            #expect(out.contains("20000 succeeded, 0 failed, 0 errored"), "\(out)\n\(r.stderrText)")
            #expect(out.contains("status codes: 20000 2xx"), "\(out)")
        }
    }
}
