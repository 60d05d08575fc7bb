import ProxyCore
import Testing

@Suite struct RequestPathTests {
    @Test(arguments: [
        ("/", "/"),
        ("/index.php", "/index.php"),
        ("/a/../b", "/b"),
        ("/a/./b", "/a/b"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/", "/a/b/"),
        ("//a///b", "/a/b"),
        ("/a//../b", "/b"),
        ("/%2e/x", "/x"),
        ("/a/%2e%2E/b", "/b"),
        ("/a%2fb", "/a/b"),
        ("/a/..%2fb", "/b"),
        ("/%252e%252e/x", "/%2e%2e/x"),
        ("/%252e", "/%2e"),
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/café"),
        ("/.hidden/...", "/.hidden/..."),
        ("/a%5cb.php", "/a\\b.php"),
    ])
    func normalizes(target: String, expected: String) throws {
        #expect(try RequestPath(target: target).path == expected)
    }

    @Test(arguments: [
        "/../x", "/%2e%2e/x", "/.%2e/x", "/a/../../x", "/a/..%2f..%2fx.php", "/..",
        "/x.php%00.jpg", "/index.php/%0a", "/index.php/%0A", "/index.php/%0d", "/a%7f",
        "/a\u{0}b", "/a\rb", "/a\nb", "/a b", "/a#frag",
        "/%zz", "/%", "/%4", "/a%g0",
        "/%ff", "/%C3",
        "*", "example.com:443", "ftp://host/x", "http://", "http:///x", "http://user@host/x", "index.php",
    ])
    func rejects(target: String) {
        expectStatus(400) { _ = try RequestPath(target: target) }
    }

    @Test func cve2019_11043Shape() {
        let target = "/index.php/%0Aindex.php?" + String(repeating: "Q", count: 1800)
        expectStatus(400) { _ = try RequestPath(target: target) }
    }

    @Test func queryIsKeptRaw() throws {
        let path = try RequestPath(target: "/s.php?q=a+b%20c&x=%00&y=%252e")
        #expect(path.path == "/s.php")
        #expect(path.rawPath == "/s.php")
        #expect(path.query == "q=a+b%20c&x=%00&y=%252e")
        #expect(path.requestURI == "/s.php?q=a+b%20c&x=%00&y=%252e")
        #expect(path.absoluteFormHost == nil)
    }

    @Test func emptyQuery() throws {
        let withMark = try RequestPath(target: "/a?")
        #expect(withMark.query == "")
        #expect(withMark.requestURI == "/a?")
        let without = try RequestPath(target: "/a")
        #expect(without.query == "")
        #expect(without.requestURI == "/a")
    }

    @Test func rawPathIsAsSent() throws {
        let path = try RequestPath(target: "/a/%2e%2e/b%20c?x")
        #expect(path.rawPath == "/a/%2e%2e/b%20c")
        #expect(path.path == "/b c")
    }

    @Test func absoluteForm() throws {
        let path = try RequestPath(target: "http://Example.com:8080/a/../info.php?x=1")
        #expect(path.absoluteFormHost == "Example.com:8080")
        #expect(path.path == "/info.php")
        #expect(path.rawPath == "/a/../info.php")
        #expect(path.query == "x=1")
        #expect(path.requestURI == "/a/../info.php?x=1")

        let bare = try RequestPath(target: "HTTPS://host")
        #expect(bare.absoluteFormHost == "host")
        #expect(bare.path == "/")
        #expect(bare.requestURI == "/")

        let queryOnly = try RequestPath(target: "http://host?q")
        #expect(queryOnly.path == "/")
        #expect(queryOnly.query == "q")
    }

    @Test(arguments: ["http://a:b@c/", "http://../../x", "http://a%62/x", "http://a,b/x", "http://user@host/"])
    func absoluteFormWithAnInvalidAuthorityIs400(target: String) {
        expectStatus(400) { _ = try RequestPath(target: target) }
    }

    /// RFC 9112's request-target has no byte above 0x7F: a raw one is refused, never rewritten.
    @Test(arguments: ["/h/\u{FF}", "/caf\u{E9}", "/a?q=\u{E9}"])
    func rawNonASCIIInTheTargetIs400(target: String) {
        expectStatus(400) { _ = try RequestPath(target: target) }
    }

    @Test func absoluteFormPathIsNormalizedToo() {
        expectStatus(400) { _ = try RequestPath(target: "http://host/../etc/passwd") }
    }
}
