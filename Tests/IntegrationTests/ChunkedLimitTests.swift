import Foundation
import Testing

extension Integration {
    /// `max_body_size` for chunked bodies, and chunked bodies larger than `body_buffer_size`
    /// (buffered in an unlinked temporary file under `temp_dir`).
    @Suite(.fcgiproxyOnly("body_buffer_size and temp_dir are fcgiproxy INI keys")) struct ChunkedLimits {
        @Test func chunkedBodyOverMaxBodySizeIs413AndCloses() async throws {
            let front = try await Fixture.extraFrontEnd { $0.maxBodySize = 1024 }
            defer { front.stop() }
            let conn = try RawHTTP(port: front.port)
            let chunk = String(repeating: "a", count: 1024)
            var request = "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n"
            for _ in 0..<4 { request += "400\r\n\(chunk)\r\n" }
            request += "0\r\n\r\n"
            conn.send(request)
            let reply = conn.readUntilClose(timeout: .seconds(5))
            #expect(reply.status == 413, "got: \(reply.text.prefix(300))")
            #expect(reply.closed, "connection left open after 413")
            #expect(reply.finals.count == 1)
            #expect(!reply.text.contains("\"size\""), "the body reached PHP: \(reply.text)")
        }

        /// Exactly max_body_size is still accepted.
        @Test func chunkedBodyOfExactlyMaxBodySizeIsAccepted() async throws {
            let front = try await Fixture.extraFrontEnd { $0.maxBodySize = 1024 }
            defer { front.stop() }
            let chunk = String(repeating: "b", count: 512)
            let reply = try RawHTTP.exchange(
                port: front.port,
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n200\r\n\(chunk)\r\n200\r\n\(chunk)\r\n0\r\n\r\n")
            #expect(reply.status == 200, "got: \(reply.text.prefix(300))")
            let json = try Util.json(Data(try #require(reply.finals.first).body))
            #expect(json["size"] as? Int == 1024)
            #expect(json["content_length"] as? String == "1024")
        }

        @Test func chunkedBodyLargerThanBodyBufferArrivesIntact() async throws {
            let temp = try TempDir("fcgiproxy-bodytmp")
            let front = try await Fixture.extraFrontEnd {
                $0.extraServerINI = "body_buffer_size = 16k\ntemp_dir = \(temp.path)"
            }
            defer { front.stop() }
            let dir = try TempDir("fcgiproxy-chunked-big")
            let size = 1024 * 1024 + 3
            let file = try Util.randomFile(in: dir, name: "body.bin", size: size)
            let r = try await Curl.run([
                "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream",
                "--data-binary", "@\(file)", front.url("/post.php"),
            ])
            #expect(r.status == 200, "\(r.text.prefix(500))")
            let json = try r.json()
            #expect(json["size"] as? Int == size)
            #expect(json["content_length"] as? String == String(size))
            #expect(json["md5"] as? String == (try await Util.md5(ofFile: file)))
            // The temporary file is unlinked: nothing is left behind in temp_dir.
            let left = try FileManager.default.contentsOfDirectory(atPath: temp.path)
            #expect(left.isEmpty, "left in temp_dir: \(left)")
            // And the connection pool is healthy afterwards.
            let again = try await Curl.run([front.url("/status.php?code=200")])
            #expect(again.status == 200)
        }
    }

    /// While a chunked body over body_buffer_size arrives, the proxy holds it in an unlinked
    /// file in temp_dir; the descriptor is closed once the request is done, even though the
    /// client connection stays open.
    @Suite(.fcgiproxyOnly("inspects fcgiproxy's open files")) struct ChunkedTempFile {
        /// fcgiproxy's open descriptors that point into `dir`.
        private func openFiles(of front: any FrontEnd, in dir: String) -> [String] {
            let fdDir = "/proc/\(front.pid)/fd"
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? []
            return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + $0) }
                .filter { $0.hasPrefix(dir + "/") }
        }

        @Test func bodyGoesThroughUnlinkedTempFileThatIsClosedAfterwards() async throws {
            let temp = try TempDir("fcgiproxy-bodytmp")
            let front = try await Fixture.extraFrontEnd {
                $0.extraServerINI = "body_buffer_size = 16k\ntemp_dir = \(temp.path)"
            }
            defer { front.stop() }
            #expect(openFiles(of: front, in: temp.path).isEmpty)
            let conn = try RawHTTP(port: front.port)
            let piece = String(repeating: "z", count: 32 * 1024)
            conn.send(
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n8000\r\n\(piece)\r\n")
            var during: [String] = []
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(3)
            while during.isEmpty, clock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                during = openFiles(of: front, in: temp.path)
            }
            #expect(during.count == 1, "open files in temp_dir: \(during)")
            #expect(during.allSatisfy { $0.hasSuffix("(deleted)") }, "not unlinked: \(during)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path).isEmpty)

            conn.send("8000\r\n\(piece)\r\n0\r\n\r\n")
            let reply = conn.readResponses(1, timeout: .seconds(5))
            #expect(reply.status == 200, "got: \(reply.text.prefix(300))")
            let json = try Util.json(Data(try #require(reply.finals.first).body))
            #expect(json["size"] as? Int == 64 * 1024)
            #expect(json["content_length"] as? String == String(64 * 1024))
            #expect(!reply.closed)

            // The connection is still open (keep-alive); the body file must be closed anyway.
            var after = openFiles(of: front, in: temp.path)
            let closeDeadline = clock.now + .seconds(2)
            while !after.isEmpty, clock.now < closeDeadline {
                try await Task.sleep(for: .milliseconds(50))
                after = openFiles(of: front, in: temp.path)
            }
            #expect(after.isEmpty, "body file still open after the response: \(after)")
        }
    }

    /// `--check-config` on the shipped example configuration.
    @Suite(.fcgiproxyOnly("fcgiproxy's own CLI")) struct ShippedConfig {
        @Test func exampleConfigPassesCheck() async throws {
            let ini = Paths.packageRoot + "/config/fcgiproxy.ini"
            #expect(FileManager.default.fileExists(atPath: ini))
            let r = try await ChildProcess.run(
                Paths.fcgiproxyBinary, ["--check-config", "--config", ini], timeout: .seconds(20))
            #expect(r.exitCode == 0, "stdout: \(r.stdoutText)\nstderr: \(r.stderrText)")
            #expect(r.stdoutText.contains("configuration OK"), "\(r.stdoutText)")
        }
    }
}

extension RawHTTP {
    /// One request on a fresh connection, one final response back.
    fileprivate static func exchange(port: Int, _ request: String) throws -> RawReply {
        let conn = try RawHTTP(port: port)
        conn.send(request)
        return conn.readResponses(1, timeout: .seconds(5))
    }
}
