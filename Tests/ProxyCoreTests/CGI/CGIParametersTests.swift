import NIOHTTP1
import ProxyConfig
import ProxyCore
import Testing

@Suite struct CGIParametersTests {
    private let connection = ConnectionInfo(
        remoteAddress: "192.0.2.1", remotePort: 51000, localAddress: "127.0.0.1", localPort: 8080, isTLS: false)

    private func build(
        _ method: HTTPMethod = .GET,
        _ target: String,
        headers: [(String, String)] = [("Host", "example.com:8080")],
        params: [(name: String, value: String)] = [],
        contentLength: Int? = nil,
        connection: ConnectionInfo? = nil
    ) throws -> CGIParameters {
        let route = RouteConfig(name: "php", pool: "php", root: "/srv/www", params: params)
        let requestPath = try RequestPath(target: target)
        let script = try ScriptResolver { _ in true }.resolve(path: requestPath.path, route: route)
        let head = HTTPRequestHead(
            version: .http1_1, method: method, uri: target, headers: HTTPHeaders(headers))
        var parameters = CGIParameters()
        CGIParameters.emit(
            head: head, requestPath: requestPath, script: script, routeParams: route.params, contentLength: contentLength,
            connection: connection ?? self.connection, serverSoftware: "fcgiproxy/0.1", into: &parameters)
        return parameters
    }

    private func lines(_ parameters: CGIParameters) -> [String] {
        parameters.pairs.map { "\($0.name)=\($0.value)" }
    }

    private func names(_ parameters: CGIParameters) -> [String] {
        parameters.pairs.map(\.name)
    }

    @Test func fullSetForGetWithPathInfo() throws {
        let parameters = try build(
            .GET, "/info.php/a/b?x=1",
            headers: [("Host", "example.com:8080"), ("User-Agent", "t/1"), ("Accept", "*/*")])
        #expect(
            lines(parameters) == [
                "SCRIPT_FILENAME=/srv/www/info.php",
                "SCRIPT_NAME=/info.php",
                "PATH_INFO=/a/b",
                "PATH_TRANSLATED=/srv/www/a/b",
                "DOCUMENT_ROOT=/srv/www",
                "REQUEST_URI=/info.php/a/b?x=1",
                "QUERY_STRING=x=1",
                "REQUEST_METHOD=GET",
                "CONTENT_TYPE=",
                "CONTENT_LENGTH=",
                "SERVER_PROTOCOL=HTTP/1.1",
                "SERVER_NAME=example.com",
                "SERVER_PORT=8080",
                "SERVER_ADDR=127.0.0.1",
                "REMOTE_ADDR=192.0.2.1",
                "REMOTE_PORT=51000",
                "GATEWAY_INTERFACE=CGI/1.1",
                "SERVER_SOFTWARE=fcgiproxy/0.1",
                "REQUEST_SCHEME=http",
                "REDIRECT_STATUS=200",
                "HTTP_HOST=example.com:8080",
                "HTTP_USER_AGENT=t/1",
                "HTTP_ACCEPT=*/*",
            ])
    }

    @Test func namesAreUnique() throws {
        let parameters = try build(
            .GET, "/info.php/x",
            headers: [("Host", "h"), ("X-A", "1"), ("x-a", "2"), ("X-A", "3"), ("Host", "other")],
            params: [("SERVER_NAME", "configured"), ("APP_ENV", "prod"), ("APP_ENV", "prod2")])
        #expect(Set(names(parameters)).count == parameters.pairs.count)
        #expect(parameters["HTTP_X_A"] == "1, 2, 3")
        #expect(parameters["HTTP_HOST"] == "h")
        #expect(parameters["APP_ENV"] == "prod2")
    }

    @Test func httpoxy() throws {
        let parameters = try build(.GET, "/index.php", headers: [("Host", "h"), ("Proxy", "http://evil:8080")])
        #expect(parameters["HTTP_PROXY"] == nil)
        #expect(!lines(parameters).contains { $0.contains("evil") })
    }

    @Test func underscoreAndInvalidHeaderNamesDropped() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [
                ("Host", "h"), ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded_For", "1.2.3.4"),
                ("Script_Name", "/evil.php"), ("X.Dot", "1"), ("X Space", "1"), ("X-Ok", "yes"),
            ])
        #expect(parameters["HTTP_X_FORWARDED_FOR"] == "10.0.0.1")
        #expect(parameters["SCRIPT_NAME"] == "/index.php")
        #expect(parameters["HTTP_SCRIPT_NAME"] == nil)
        #expect(parameters["HTTP_X_OK"] == "yes")
        #expect(!lines(parameters).contains { $0.contains("1.2.3.4") || $0.contains("/evil.php") })
        #expect(!names(parameters).contains { $0.contains(".") || $0.contains(" ") })
    }

    /// Hop-by-hop, framing, CONTENT_* and httpoxy headers never become HTTP_* params, in any case;
    /// names of the same lengths that are not on the list still do.
    @Test func droppedHeadersInAnyCase() throws {
        let dropped = [
            "TE", "proxy", "Trailer", "UPGRADE", "Connection", "keep-alive", "Content-Type", "CONTENT-LENGTH",
            "HTTP2-Settings", "Proxy-Connection", "transfer-encoding", "Proxy-Authorization",
        ]
        let kept = ["Tf", "Proxz", "Trailed", "Connectiom", "Content-Typo", "Content-Lengths", "X-Proxy-Connection"]
        let parameters = try build(.GET, "/index.php", headers: [("Host", "h")] + (dropped + kept).map { ($0, "v") })
        for name in dropped {
            let cgi = "HTTP_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
            #expect(parameters[cgi] == nil, "\(name)")
        }
        for name in kept {
            let cgi = "HTTP_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
            #expect(parameters[cgi] == "v", "\(name)")
        }
    }

    @Test func clientCannotSetOwnedParams() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [
                ("Host", "h"), ("PHP-Value", "auto_prepend_file=/tmp/x"), ("PHP-Admin-Value", "x=1"),
                ("Script-Filename", "/tmp/evil.php"), ("Document-Root", "/tmp"), ("HTTPS", "on"),
                ("Redirect-Status", "500"), ("Content-Length", "99"), ("Content-Type", "text/evil"),
                ("Transfer-Encoding", "chunked"), ("Connection", "close"),
            ],
            params: [("PHP_VALUE", "memory_limit=64M"), ("HTTP_X_TRUSTED", "proxy")])
        #expect(parameters["SCRIPT_FILENAME"] == "/srv/www/index.php")
        #expect(parameters["DOCUMENT_ROOT"] == "/srv/www")
        #expect(parameters["PHP_VALUE"] == "memory_limit=64M")
        #expect(parameters["PHP_ADMIN_VALUE"] == nil)
        #expect(parameters["HTTPS"] == nil)
        #expect(parameters["REDIRECT_STATUS"] == "200")
        #expect(parameters["CONTENT_LENGTH"] == "")
        #expect(parameters["CONTENT_TYPE"] == "text/evil")
        #expect(parameters["HTTP_PHP_VALUE"] == "auto_prepend_file=/tmp/x")
        #expect(parameters["HTTP_PHP_ADMIN_VALUE"] == "x=1")
        #expect(parameters["HTTP_SCRIPT_FILENAME"] == "/tmp/evil.php")
        #expect(parameters["HTTP_DOCUMENT_ROOT"] == "/tmp")
        #expect(parameters["HTTP_HTTPS"] == "on")
        for dropped in ["HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_TRANSFER_ENCODING", "HTTP_CONNECTION"] {
            #expect(parameters[dropped] == nil)
        }
        // Every name is either fixed, from the route, or HTTP_-prefixed.
        let fixed: Set<String> = [
            "SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_INFO", "DOCUMENT_ROOT", "REQUEST_URI", "QUERY_STRING",
            "REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT",
            "SERVER_ADDR", "REMOTE_ADDR", "REMOTE_PORT", "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "REQUEST_SCHEME",
            "REDIRECT_STATUS", "PHP_VALUE",
        ]
        #expect(names(parameters).allSatisfy { fixed.contains($0) || $0.hasPrefix("HTTP_") })
    }

    @Test func routeHeaderParamCannotBeOverriddenByClient() throws {
        let parameters = try build(
            .GET, "/index.php", headers: [("Host", "h"), ("X-Trusted", "client")],
            params: [("HTTP_X_TRUSTED", "proxy")])
        #expect(parameters["HTTP_X_TRUSTED"] == "proxy")
        #expect(names(parameters).filter { $0 == "HTTP_X_TRUSTED" }.count == 1)
    }

    /// Naming headers in `Connection` changes nothing the proxy decides: REMOTE_ADDR and a
    /// route's param stay, Connection itself is not sent, and the named headers go on as HTTP_*
    /// params as nginx passes them (the proxy is the last hop; it forwards no HTTP message).
    @Test func headersNamedInConnectionChangeNothingTheProxyOwns() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [
                ("Host", "h"), ("Connection", "close, X-Real-IP, X-Forwarded-For, Remote-Addr"), ("X-Real-IP", "203.0.113.9"),
                ("X-Forwarded-For", "203.0.113.9"), ("Remote-Addr", "203.0.113.9"),
            ],
            params: [("HTTP_X_FORWARDED_FOR", "proxy")])
        #expect(parameters["REMOTE_ADDR"] == "192.0.2.1")
        #expect(parameters["HTTP_X_FORWARDED_FOR"] == "proxy")
        #expect(parameters["HTTP_CONNECTION"] == nil)
        #expect(parameters["HTTP_X_REAL_IP"] == "203.0.113.9")
        #expect(names(parameters).filter { $0 == "REMOTE_ADDR" }.count == 1)
    }

    @Test func routeParamReplacesFixedParamInPlace() throws {
        let parameters = try build(.GET, "/index.php", params: [("HTTPS", "on"), ("SERVER_NAME", "www.example")])
        #expect(parameters["SERVER_NAME"] == "www.example")
        #expect(parameters["HTTPS"] == "on")
        #expect(names(parameters).firstIndex(of: "SERVER_NAME") == names(parameters).firstIndex(of: "SERVER_PORT")! - 1)
    }

    @Test func repeatedHeadersJoined() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [
                ("Host", "h"), ("Cookie", "a=1"), ("X-Forwarded-For", "foo"), ("cookie", "b=2"),
                ("X-Forwarded-For", "bar"), ("Cookie", "c=3"), ("X-Forwarded-For", "bazz"), ("X-Cookie", "x"),
            ])
        #expect(parameters["HTTP_COOKIE"] == "a=1; b=2; c=3")
        #expect(parameters["HTTP_X_FORWARDED_FOR"] == "foo, bar, bazz")
        #expect(parameters["HTTP_X_COOKIE"] == "x")
        #expect(names(parameters).filter { $0 == "HTTP_COOKIE" }.count == 1)
    }

    /// The pairs are sent in one pass (no looking back): a repeat is joined where its name first
    /// appears with a value that is sent, and repeated route params keep the first place and the
    /// last value.
    @Test func onePassKeepsFirstPlacesAndLastValues() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [
                ("Host", "h"), ("X-A", "bad\u{0}value"), ("X-B", "1"), ("x-a", "first"), ("X-b", "2"), ("X-A", "second"),
            ],
            params: [("APP_ENV", "dev"), ("SERVER_NAME", "one"), ("APP_MODE", "m"), ("APP_ENV", "prod"), ("SERVER_NAME", "two")])
        let sent = names(parameters)
        #expect(parameters["HTTP_X_A"] == "first, second", "the unsafe first value is dropped, not joined")
        #expect(parameters["HTTP_X_B"] == "1, 2")
        #expect(sent.firstIndex(of: "HTTP_X_B")! < sent.firstIndex(of: "HTTP_X_A")!)
        #expect(parameters["APP_ENV"] == "prod")
        #expect(parameters["SERVER_NAME"] == "two")
        #expect(sent.filter { $0 == "APP_ENV" || $0 == "SERVER_NAME" }.count == 2)
        #expect(Array(sent.drop { $0 != "REDIRECT_STATUS" }.prefix(3)) == ["REDIRECT_STATUS", "APP_ENV", "APP_MODE"])
        #expect(Set(sent).count == sent.count)
    }

    /// A repeat late in the headers sends all of them again through the joining pass: same
    /// order, nothing twice, HTTP_HOST once.
    @Test func aLateRepeatKeepsOrderAndSendsEachNameOnce() throws {
        let parameters = try build(
            .GET, "/index.php",
            headers: [("Accept", "a"), ("Host", "h"), ("User-Agent", "u"), ("Host", "other"), ("accept", "b")])
        let headerNames = names(parameters).filter { $0.hasPrefix("HTTP_") }
        #expect(headerNames == ["HTTP_ACCEPT", "HTTP_HOST", "HTTP_USER_AGENT"])
        #expect(parameters["HTTP_ACCEPT"] == "a, b")
        #expect(parameters["HTTP_HOST"] == "h")
    }

    @Test func httpsOnlyWithTLS() throws {
        let plain = try build(.GET, "/index.php")
        #expect(plain["HTTPS"] == nil)
        #expect(plain["REQUEST_SCHEME"] == "http")
        var tls = connection
        tls.isTLS = true
        let secure = try build(.GET, "/index.php", connection: tls)
        #expect(secure["HTTPS"] == "on")
        #expect(secure["REQUEST_SCHEME"] == "https")
    }

    @Test func pathTranslatedOnlyWithPathInfo() throws {
        let without = try build(.GET, "/index.php")
        #expect(without["PATH_INFO"] == "")
        #expect(without["PATH_TRANSLATED"] == nil)
        let with = try build(.GET, "/index.php/x%20y")
        #expect(with["PATH_INFO"] == "/x y")
        #expect(with["PATH_TRANSLATED"] == "/srv/www/x y")
        #expect(with["REQUEST_URI"] == "/index.php/x%20y")
    }

    @Test func contentLengthFromOwnFraming() throws {
        let post = try build(
            .POST, "/index.php",
            headers: [("Host", "h"), ("Content-Type", "application/json"), ("Content-Length", "99")],
            contentLength: 5)
        #expect(post["CONTENT_LENGTH"] == "5")
        #expect(post["CONTENT_TYPE"] == "application/json")
        #expect(post["REQUEST_METHOD"] == "POST")
        let empty = try build(.POST, "/index.php", contentLength: 0)
        #expect(empty["CONTENT_LENGTH"] == "0")
        let none = try build(.GET, "/index.php")
        #expect(none["CONTENT_LENGTH"] == "")
    }

    @Test func serverNameFallsBackToLocalAddress() throws {
        let parameters = try build(.GET, "/index.php", headers: [])
        #expect(parameters["SERVER_NAME"] == "127.0.0.1")
        #expect(parameters["HTTP_HOST"] == nil)
    }

    @Test func absoluteFormAuthorityWinsOverHost() throws {
        let parameters = try build(
            .GET, "http://Real.example:81/index.php?a", headers: [("Host", "fake.example"), ("X-A", "1")])
        #expect(parameters["SERVER_NAME"] == "real.example")
        #expect(parameters["HTTP_HOST"] == "Real.example:81")
        #expect(parameters["REQUEST_URI"] == "/index.php?a")
        #expect(!lines(parameters).contains { $0.contains("fake") })
    }

    @Test func unsafeValuesDropped() throws {
        let parameters = try build(.GET, "/index.php", headers: [("Host", "h"), ("X-A", "a\nb"), ("X-B", "a\u{0}b")])
        #expect(parameters["HTTP_X_A"] == nil)
        #expect(parameters["HTTP_X_B"] == nil)
    }

    @Test func unixSocketConnection() throws {
        let parameters = try build(.GET, "/index.php", connection: .unixSocket())
        #expect(parameters["REMOTE_ADDR"] == "127.0.0.1")
        #expect(parameters["REMOTE_PORT"] == "0")
        #expect(parameters["SERVER_PORT"] == "80")
        #expect(ConnectionInfo.unixSocket(isTLS: true).localPort == 443)
    }
}
