import Foundation
import Testing

extension Integration {
    /// Plain GET/HEAD/POST through the front end to PHP-FPM: CGI variables, status codes,
    /// headers, keep-alive and pipelining.
    @Suite struct Basic {
        @Test func helloWorld() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/")
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            #expect(r.text.contains("Hello, world!"))
            #expect(r.header("Content-Type")?.hasPrefix("text/html") == true)
        }

        @Test func queryStringAndCGIVariables() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/info.php?x=1&y=two%20words", ["-H", "Accept: text/x-test"])
            #expect(r.status == 200)
            let info = try r.json()
            let get = try #require(info["GET"] as? [String: Any])
            #expect(get["x"] as? String == "1")
            #expect(get["y"] as? String == "two words")
            #expect(info["QUERY_STRING"] as? String == "x=1&y=two%20words")
            #expect(info["REQUEST_URI"] as? String == "/info.php?x=1&y=two%20words")
            #expect(info["REQUEST_METHOD"] as? String == "GET")
            #expect(info["SCRIPT_NAME"] as? String == "/info.php")
            #expect(info["SCRIPT_FILENAME"] as? String == Paths.phpRoot + "/info.php")
            #expect(info["DOCUMENT_ROOT"] as? String == Paths.phpRoot)
            #expect(info["SERVER_PROTOCOL"] as? String == "HTTP/1.1")
            #expect(info["SERVER_PORT"] as? String == String(f.port))
            #expect(info["REMOTE_ADDR"] as? String == "127.0.0.1")
            #expect(((info["PATH_INFO"] as? String) ?? "").isEmpty)
            #expect(((info["HTTPS"] as? String) ?? "").isEmpty)
            let http = try #require(info["HTTP"] as? [String: Any])
            #expect(http["HTTP_ACCEPT"] as? String == "text/x-test")
            #expect((http["HTTP_HOST"] as? String)?.hasPrefix("127.0.0.1") == true)
        }

        @Test func pathInfoAndScriptName() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/info.php/a/b?x=1")
            #expect(r.status == 200)
            let info = try r.json()
            #expect(info["SCRIPT_NAME"] as? String == "/info.php")
            #expect(info["SCRIPT_FILENAME"] as? String == Paths.phpRoot + "/info.php")
            #expect(info["PATH_INFO"] as? String == "/a/b")
            #expect(info["REQUEST_URI"] as? String == "/info.php/a/b?x=1")
            #expect(info["QUERY_STRING"] as? String == "x=1")
            if let translated = info["PATH_TRANSLATED"] as? String, !translated.isEmpty {
                #expect(translated.hasSuffix("/a/b"))
            }
        }

        @Test func indexScriptForFolder() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/dir/")
            #expect(r.status == 200)
            #expect(r.text.contains("dir index"))
            #expect(r.text.contains("SCRIPT_NAME=/dir/index.php"))
        }

        @Test func headHasHeadersButNoBody() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/", ["-I"])
            #expect(r.status == 200)
            // With -I curl writes the head to the output too; no page may follow it.
            #expect(!r.text.contains("Hello"))
            #expect(r.header("Content-Type")?.hasPrefix("text/html") == true)

            // On one connection: the HEAD response carries no body bytes that would corrupt the
            // framing of the next response.
            let reply = try f.raw(
                "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    + "GET /status.php?code=200 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                responses: 2, headRequests: [0])
            #expect(reply.finals.map(\.status) == [200, 200])
            #expect(reply.finals.last?.bodyText == "status 200\n")
        }

        @Test(arguments: [404, 500, 201, 503])
        func statusSetByPHP(code: Int) async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/status.php?code=\(code)")
            #expect(r.status == code)
            #expect(r.text == "status \(code)\n")
        }

        @Test func redirect() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/redirect.php?to=/elsewhere%3Fa%3D1")
            #expect(r.status == 301)
            #expect(r.header("Location") == "/elsewhere?a=1")
            let r302 = try await f.curl("/redirect.php?to=http://example.com/&code=302")
            #expect(r302.status == 302)
            #expect(r302.header("Location") == "http://example.com/")
        }

        @Test func threeSetCookieLinesStaySeparate() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/cookies.php")
            #expect(r.status == 200)
            let cookies = r.headers("Set-Cookie")
            #expect(cookies.count == 3, "\(cookies)")
            #expect(cookies.first?.hasPrefix("first=one") == true)
            #expect(cookies.contains { $0.hasPrefix("second=two") && $0.contains("HttpOnly") })
            #expect(cookies.contains { $0.hasPrefix("third=three%2C%20with%20comma") })
        }

        @Test func urlencodedPost() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/post.php", ["--data", "a=1&b=hello+world&c=%26"])
            #expect(r.status == 200)
            let json = try r.json()
            let post = try #require(json["post"] as? [String: Any])
            #expect(post["a"] as? String == "1")
            #expect(post["b"] as? String == "hello world")
            #expect(post["c"] as? String == "&")
            #expect(json["size"] as? Int == 23)
            #expect(json["content_length"] as? String == "23")
            #expect(json["content_type"] as? String == "application/x-www-form-urlencoded")
        }

        @Test func http10Client() async throws {
            let f = try await Fixture.shared()
            let r = try await f.curl("/", ["-0"])
            #expect(r.status == 200)
            #expect(r.text.contains("Hello, world!"))

            // Without keep-alive the server ends the response by length or close, then closes.
            let reply = try f.raw("GET /status.php?code=200 HTTP/1.0\r\n\r\n", untilClose: true)
            #expect(reply.closed)
            #expect(reply.status == 200)
            #expect(reply.finals.first?.bodyText == "status 200\n")
            #expect(reply.finals.first?.header("Transfer-Encoding") == nil)
        }

        @Test func keepAliveWithCurl() async throws {
            let f = try await Fixture.shared()
            let r = try await Curl.run(["-v", f.url("/status.php?code=200"), f.url("/index.php")])
            #expect(r.exitCode == 0)
            #expect(r.status == 200)
            #expect(r.stderr.contains("Re-using existing connection"), "\(r.stderr)")
        }

        @Test func keepAliveWithRawClient() async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            conn.send("GET /status.php?code=201 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let first = conn.readResponses(1)
            #expect(first.status == 201)
            #expect(!first.closed)
            conn.send("GET /status.php?code=202 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let second = conn.readResponses(1)
            #expect(second.status == 202)
            #expect(second.finals.first?.bodyText == "status 202\n")
        }

        /// More pipelined requests in one write than the front end queues (64 events): the rest
        /// waits as unparsed bytes and is served in order as responses make room.
        @Test func floodOfPipelinedRequestsIsServedInOrder() async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            let count = 300
            var requests = ""
            for index in 0..<count {
                requests += "GET /status.php?code=\(200 + index % 3) HTTP/1.1\r\nHost: localhost\r\n\r\n"
            }
            #expect(conn.send(requests))
            let reply = conn.readResponses(count, timeout: .seconds(30))
            try #require(reply.finals.count == count)
            #expect(reply.finals.map(\.status) == (0..<count).map { 200 + $0 % 3 })
            #expect(reply.finals.map(\.bodyText) == (0..<count).map { "status \(200 + $0 % 3)\n" })
        }

        @Test func pipelinedRequestsAnswerInOrder() async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            conn.send(
                "GET /sleep.php?s=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    + "GET /status.php?code=202 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    + "GET /info.php?n=3 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let reply = conn.readUntilClose(timeout: .seconds(10))
            #expect(reply.closed)
            #expect(reply.finals.map(\.status) == [200, 202, 200])
            #expect(reply.finals.first?.bodyText == "slept 1\n")
            #expect(reply.finals.last?.bodyText.contains("\"n\": \"3\"") == true)
        }
    }
}
