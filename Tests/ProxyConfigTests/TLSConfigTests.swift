import ProxyConfig
import Testing

/// `listen = ADDR tls`, `tls_certificate`, `tls_key`: what the parser checks (the files
/// themselves are loaded and checked by ProxyCore's TLSContextBox).
@Suite struct TLSConfigTests {
    @Test(.enabled(if: ServerConfig.builtWithTLS))
    func tlsListenersTcpAndUnix() throws {
        let config = try #require(
            parseValid(
                """
                [server]
                listen = 127.0.0.1:8080
                listen = 0.0.0.0:8443 tls
                listen = unix:/run/fcgiproxy-tls.sock tls
                tls_certificate = /etc/fcgiproxy/chain.pem
                tls_key = /etc/fcgiproxy/key.pem
                """
            )
        )
        #expect(
            config.server.listen == [
                ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080), tls: false),
                ListenConfig(address: .tcp(host: "0.0.0.0", port: 8443), tls: true),
                ListenConfig(address: .unix(path: "/run/fcgiproxy-tls.sock"), tls: true),
            ]
        )
        #expect(config.server.tlsCertificate == "/etc/fcgiproxy/chain.pem")
        #expect(config.server.tlsKey == "/etc/fcgiproxy/key.pem")
        // Kept so that a file found bad when loaded is reported at its line.
        #expect(config.server.tlsCertificateLine == 5)
        #expect(config.server.tlsKeyLine == 6)
    }

    @Test func tlsKeyLinesAreZeroWhenNotSet() {
        let server = parseServer("listen = 127.0.0.1:8080")
        #expect(server?.tlsCertificateLine == 0)
        #expect(server?.tlsKeyLine == 0)
    }

    @Test(.enabled(if: ServerConfig.builtWithTLS))
    func everyTLSListenerWithoutKeysIsReported() {
        let errors = parseErrors("[server]\nlisten = 0.0.0.0:443 tls\nlisten = unix:/run/s.sock tls\n")
        #expect(errors.map(\.line) == [2, 3])
        #expect(errors.allSatisfy { $0.message.hasPrefix("a \"tls\" listener needs both") })
    }

    @Test(.enabled(if: !ServerConfig.builtWithTLS))
    func tlsListenerInABuildWithoutTLS() {
        expectOneError(
            "[server]\nlisten = 127.0.0.1:8080\nlisten = 0.0.0.0:8443 tls\ntls_certificate = /c.pem\ntls_key = /k.pem\n",
            line: 3,
            startingWith: "\"listen = 0.0.0.0:8443 tls\", but this fcgiproxy was built without TLS (package trait TLS)"
        )
    }

    @Test(.enabled(if: !ServerConfig.builtWithTLS))
    func tlsListenerWithoutKeysInABuildWithoutTLSIsOneError() {
        // Only the missing trait is worth saying: asking for the certificate too would mislead.
        expectOneError(
            "[server]\nlisten = 0.0.0.0:8443 tls\n",
            line: 2,
            startingWith: "\"listen = 0.0.0.0:8443 tls\", but this fcgiproxy was built without TLS"
        )
    }

    @Test func tlsWordIsOnlyAcceptedAfterTheAddress() {
        let errors = parseErrors("[server]\nlisten = tls 0.0.0.0:8443\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.contains("optionally followed by \"tls\"") == true)
    }
}
