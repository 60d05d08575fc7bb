import ProxyConfig
import ProxyCore
import Testing

@Suite struct RouterTests {
    private func route(_ name: String, _ match: RouteMatch, hosts: [String] = []) -> RouteConfig {
        RouteConfig(name: name, match: match, hosts: hosts, pool: "php", root: "/srv")
    }

    @Test func matchCarriesThePoolIndex() throws {
        var other = route("other", .prefix("/other"))
        other.pool = "missing"
        let router = try Router(routes: [other, route("all", .prefix("/"))], pools: ["static", "php"])
        #expect(router.match(path: "/x", host: nil)?.poolIndex == 1)
        #expect(router.match(path: "/x", host: nil)?.config.name == "all")
        let unknown = try #require(router.match(path: "/other", host: nil))
        #expect(unknown.poolIndex == nil)
        // One shared object per route, not a copy per request.
        #expect(router.match(path: "/y", host: nil) === router.match(path: "/z", host: nil))
    }

    @Test func firstMatchInFileOrderWins() throws {
        let router = try Router(routes: [
            route("api", .prefix("/api/")),
            route("apiv2", .prefix("/api/v2/")),
            route("all", .prefix("/")),
        ])
        #expect(router.route(path: "/api/v2/x", host: nil)?.name == "api")
        #expect(router.route(path: "/apix", host: nil)?.name == "all")
        #expect(router.route(path: "/", host: nil)?.name == "all")
    }

    @Test func exactMatch() throws {
        let router = try Router(routes: [route("status", .exact("/status")), route("all", .prefix("/app"))])
        #expect(router.route(path: "/status", host: nil)?.name == "status")
        #expect(router.route(path: "/status/", host: nil) == nil)
        #expect(router.route(path: "/statusx", host: nil) == nil)
        #expect(router.route(path: "/app/x", host: nil)?.name == "all")
    }

    @Test func regexMatchSearchesUnlessAnchored() throws {
        let router = try Router(routes: [
            route("anchored", .regex("^/img/.*\\.png$")),
            route("php", .regex("\\.php(/|$)")),
        ])
        #expect(router.route(path: "/img/a.png", host: nil)?.name == "anchored")
        #expect(router.route(path: "/x/img/a.png", host: nil) == nil)
        #expect(router.route(path: "/a/b.php", host: nil)?.name == "php")
        #expect(router.route(path: "/a/b.php/info", host: nil)?.name == "php")
        #expect(router.route(path: "/a/b.phpx", host: nil) == nil)
    }

    @Test func invalidRegexIsReported() {
        let error = #expect(throws: Router.InvalidPattern.self) {
            _ = try Router(routes: [route("bad", .regex("(unclosed"))])
        }
        #expect(error?.routeName == "bad")
        #expect(error?.pattern == "(unclosed")
    }

    @Test func refusedRegexNamesTheConstruct() {
        let error = #expect(throws: Router.InvalidPattern.self) {
            _ = try Router(routes: [route("all", .prefix("/")), route("bad", .regex("(a)\\1"))])
        }
        #expect(error?.routeName == "bad")
        #expect(error?.message == "backreference \\1 is not supported: route regexes run in linear time")
        #expect(error?.description.hasPrefix("route bad (line 0): invalid regex (a)\\1: backreference") == true)
    }

    /// The path that held an event loop for seconds under Swift Regex (cubic backtracking): now
    /// one pass, which a test run of ordinary length shows.
    @Test func regexRouteOnAHostilePath() throws {
        let router = try Router(routes: [
            route("php", .regex("^(.+\\.php)(/.*)?$")),
            route("all", .prefix("/")),
        ])
        let hostile = String(repeating: "/a", count: 32 * 1024) + "/x.txt"
        #expect(router.route(path: hostile, host: nil)?.name == "all")
        #expect(router.route(path: "/index.php/x/y", host: nil)?.name == "php")
        #expect(router.route(path: "/index.php", host: nil)?.name == "php")
    }

    @Test func hostListWithPortAndCase() throws {
        let router = try Router(routes: [
            route("a", .prefix("/"), hosts: ["a.example", "www.a.example"]),
            route("v6", .prefix("/"), hosts: ["::1"]),
            route("fallback", .prefix("/")),
        ])
        #expect(router.route(path: "/", host: "a.example")?.name == "a")
        #expect(router.route(path: "/", host: "A.Example:8080")?.name == "a")
        #expect(router.route(path: "/", host: "www.a.example.")?.name == "a")
        #expect(router.route(path: "/", host: "[::1]:8080")?.name == "v6")
        #expect(router.route(path: "/", host: "b.example")?.name == "fallback")
        #expect(router.route(path: "/", host: nil)?.name == "fallback")
    }

    @Test func hostOnlyRoutesCanMissEntirely() throws {
        let router = try Router(routes: [route("a", .prefix("/"), hosts: ["a.example"])])
        #expect(router.route(path: "/", host: "b.example") == nil)
        #expect(router.route(path: "/", host: nil) == nil)
    }

    @Test func pathMustFitAsWellAsHost() throws {
        let router = try Router(routes: [
            route("a-api", .prefix("/api"), hosts: ["a.example"]),
            route("all", .prefix("/")),
        ])
        #expect(router.route(path: "/api", host: "a.example")?.name == "a-api")
        #expect(router.route(path: "/web", host: "a.example")?.name == "all")
        #expect(router.route(path: "/api", host: "b.example")?.name == "all")
    }

    @Test(arguments: [
        ("Example.COM", "example.com"),
        ("example.com:80", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:443", "[::1]"),
        ("[::1]", "[::1]"),
        ("10.0.0.1:8080", "10.0.0.1"),
        ("example.com", "example.com"),
        ("example.com.:8080", "example.com"),
        ("a:b:c", "a:b"),
        (":80", ""),
        ("Ünïcode.Example:1", "ünïcode.example"),
    ])
    func normalizedHost(host: String, expected: String) {
        #expect(Router.normalizedHost(host) == expected)
    }
}
