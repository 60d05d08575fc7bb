import Foundation
import Testing

extension Integration {
    /// Request bodies (uploads, chunked, 100-continue, limits) and large streamed responses.
    @Suite struct Bodies {
        @Test func multipartUploadOf5MB() async throws {
            let f = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-upload")
            let file = try Util.randomFile(in: dir, name: "upload.bin", size: 5 * 1024 * 1024)
            let r = try await f.curl("/upload.php", ["-F", "file=@\(file)", "-F", "note=hi there"])
            #expect(r.status == 200, "\(r.text)")
            let json = try r.json()
            let files = try #require(json["files"] as? [String: Any])
            let uploaded = try #require(files["file"] as? [String: Any])
            #expect(uploaded["error"] as? Int == 0)
            #expect(uploaded["name"] as? String == "upload.bin")
            #expect(uploaded["size"] as? Int == 5 * 1024 * 1024)
            #expect(uploaded["md5"] as? String == (try await Util.md5(ofFile: file)))
            #expect(uploaded["sha1"] as? String == (try await Util.sha1(ofFile: file)))
            let post = try #require(json["post"] as? [String: Any])
            #expect(post["note"] as? String == "hi there")
        }

        @Test func rawBodyWithContentLength() async throws {
            let f = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-body")
            let file = try Util.randomFile(in: dir, name: "body.bin", size: 3 * 1024 * 1024 + 17)
            let r = try await f.curl(
                "/post.php", ["-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)"])
            #expect(r.status == 200)
            let json = try r.json()
            #expect(json["size"] as? Int == 3 * 1024 * 1024 + 17)
            #expect(json["content_length"] as? String == String(3 * 1024 * 1024 + 17))
            #expect(json["sha1"] as? String == (try await Util.sha1(ofFile: file)))
        }

        @Test func chunkedRequestBody() async throws {
            let f = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-chunked")
            let file = try Util.randomFile(in: dir, name: "chunked.bin", size: 2 * 1024 * 1024 + 5)
            let r = try await f.curl(
                "/post.php",
                [
                    "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream",
                    "--data-binary", "@\(file)",
                ])
            #expect(r.status == 200, "\(r.text)")
            let json = try r.json()
            #expect(json["size"] as? Int == 2 * 1024 * 1024 + 5)
            #expect(json["md5"] as? String == (try await Util.md5(ofFile: file)))
            // PHP-FPM needs CONTENT_LENGTH: the front end computes it from its own framing.
            #expect(json["content_length"] as? String == String(2 * 1024 * 1024 + 5))
        }

        @Test func chunkedRequestBodyRaw() async throws {
            let f = try await Fixture.shared()
            let reply = try f.raw(
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
            #expect(reply.status == 200)
            let json = try Util.json(Data(try #require(reply.finals.first).body))
            #expect(json["size"] as? Int == 11)
            #expect(json["md5"] as? String == "5eb63bbbe01eeed093cb22bb8f5acdc3")  // md5("hello world")
        }

        /// CONTENT_LENGTH is "0" for an empty body however it was framed (nginx passes the
        /// field's "0" on), and empty only for a request without a body.
        @Test func emptyBodyIsContentLengthZero() async throws {
            let f = try await Fixture.shared()
            let declared = try f.raw("POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            #expect(declared.status == 200)
            let declaredJSON = try Util.json(Data(try #require(declared.finals.first).body))
            #expect(declaredJSON["content_length"] as? String == "0", "\(declaredJSON)")
            let chunked = try f.raw("POST /post.php HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            let chunkedJSON = try Util.json(Data(try #require(chunked.finals.first).body))
            #expect(chunkedJSON["content_length"] as? String == "0", "\(chunkedJSON)")
            let none = try f.raw("GET /post.php HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let noneJSON = try Util.json(Data(try #require(none.finals.first).body))
            #expect((noneJSON["content_length"] as? String ?? "") == "", "\(noneJSON)")
        }

        @Test func expect100Continue() async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            conn.send(
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                    + "Content-Length: 11\r\nExpect: 100-continue\r\n\r\n")
            let interim = conn.readResponses(1, countInterim: true, timeout: .seconds(3))
            #expect(interim.responses.first?.status == 100, "got: \(interim.text)")
            conn.send("hello world")
            let reply = conn.readResponses(1)
            #expect(reply.status == 200)
            let json = try Util.json(Data(try #require(reply.finals.first).body))
            #expect(json["size"] as? Int == 11)
        }

        @Test func answerBeforeBodyIsRead() async throws {
            let f = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-early")
            let file = try Util.randomFile(in: dir, name: "early.bin", size: 512 * 1024)
            let r = try await f.curl(
                "/echo-early.php", ["-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)"])
            #expect(r.status == 200)
            #expect(r.text == "early answer\n")
            let after = try await f.curl("/status.php?code=200")
            #expect(after.status == 200)
        }

        @Test func bodyOverLimitIs413() async throws {
            let f = try await Fixture.shared()
            let reply = try f.raw(
                "POST /post.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                    + "Content-Length: \(17 * 1024 * 1024)\r\n\r\n")
            #expect(reply.status == 413, "got: \(reply.text.prefix(300))")
        }

        @Test func streamed50MBToSlowClientKeepsMemoryBounded() async throws {
            let f = try await Fixture.shared()
            let front = f.front
            let baseline = try #require(front.rssKiB())
            let done = Flag()
            let download = Task {
                defer { done.set() }
                return try await Curl.run(
                    ["--limit-rate", "20M", front.url("/big.php?mb=50")], discardBody: true,
                    timeout: .seconds(60))
            }
            var peak = baseline
            while !done.isSet {
                if let rss = front.rssKiB() { peak = max(peak, rss) }
                try await Task.sleep(for: .milliseconds(100))
            }
            let r = try await download.value
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            #expect(r.sizeDownload == 50 * 1024 * 1024)
            #expect(peak - baseline < 64 * 1024, "RSS grew from \(baseline) KiB to \(peak) KiB")
        }
    }
}
