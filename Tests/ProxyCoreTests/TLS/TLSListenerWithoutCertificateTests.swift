import Logging
import ProxyConfig
import Testing

@testable import ProxyCore

/// A configuration built in code (not parsed) can ask for a `tls` listener without a
/// certificate: start() refuses it instead of binding a port that drops every connection.
@Suite struct TLSListenerWithoutCertificateTests {
    @Test func startRefusesATLSListenerWithoutCertificate() async throws {
        let configuration = ProxyConfiguration(
            server: ServerConfig(
                listen: [ListenConfig(address: .tcp(host: "127.0.0.1", port: 0), tls: true)],
                threads: 1,
                accessLog: .off
            ),
            pools: [],
            routes: [],
            sourceName: "code"
        )
        let server = ProxyServer(context: try ProxyContext(configuration: configuration, logger: Logger(label: "test")))
        await #expect {
            try await server.start()
        } throws: { error in
            "\(error)" == "listen = 127.0.0.1:0 tls: no certificate loaded (tls_certificate/tls_key unset, or a build without TLS)"
        }
        try await server.shutdown()
    }
}
