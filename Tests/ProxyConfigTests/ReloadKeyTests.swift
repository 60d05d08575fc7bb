import ProxyConfig
import Testing

/// `listen … name=` (socket activation by name), `user =`, `group =`.
@Suite struct ReloadKeyTests {
    /// `tls` listeners parse only in a build with TLS (without, they are a config error).
    @Test(.enabled(if: ServerConfig.builtWithTLS)) func listenNameAndTLSInAnyOrder() throws {
        let server = try #require(
            parseServer(
                """
                listen = 127.0.0.1:8080 name=http
                listen = [::]:8443 name=https tls
                listen = unix:/run/a.sock tls name=local
                tls_certificate = /c.pem
                tls_key = /k.pem
                """
            )
        )
        #expect(
            server.listen == [
                ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080), name: "http"),
                ListenConfig(address: .tcp(host: "::", port: 8443), tls: true, name: "https"),
                ListenConfig(address: .unix(path: "/run/a.sock"), tls: true, name: "local"),
            ]
        )
    }

    @Test func badListenNamesAreErrorsWithTheirLine() {
        expectOneError("[server]\nlisten = 127.0.0.1:80 name=a:b", line: 2, startingWith: "invalid value")
        expectOneError("[server]\nthreads = 1\nlisten = 127.0.0.1:80 name=", line: 3, startingWith: "invalid value")
        expectOneError("[server]\nlisten = 127.0.0.1:80 name=a name=b", line: 2, startingWith: "invalid value")
        expectOneError("[server]\nlisten = 127.0.0.1:80 label=a", line: 2, startingWith: "invalid value")
    }

    @Test func userAndGroupByNameOrId() throws {
        let server = try #require(parseServer("user = nobody\ngroup = 0"))
        #expect(server.user == "nobody")
        #expect(server.group == "0")
        let defaults = try #require(parseServer(""))
        #expect(defaults.user == nil && defaults.group == nil)
    }

    @Test func unknownUserOrGroupIsAnErrorWithItsLine() {
        expectOneError(
            "[server]\nthreads = 1\nuser = no-such-user-fcgiproxy",
            line: 3,
            startingWith: "invalid value \"no-such-user-fcgiproxy\" for \"user\" in [server]: expected an existing user"
        )
        expectOneError("[server]\ngroup = no-such-group-fcgiproxy", line: 2, startingWith: "invalid value \"no-such-group-fcgiproxy\" for \"group\"")
    }
}
