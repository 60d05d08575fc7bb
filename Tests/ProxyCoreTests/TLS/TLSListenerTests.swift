#if TLS
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ProxyConfig
import Testing

@testable import ProxyCore

/// A real ProxyServer with a `tls` listener on loopback, in process, and a SwiftNIO TLS client
/// that trusts exactly one certificate: which certificate a connection was served is told by
/// whether its handshake succeeds. Every answer is the proxy's own 404 (no backend needed).
@Suite final class TLSListenerTests {
    private let folder: String
    private let first: TestCertificate
    private let second: TestCertificate
    private let certificatePath: String
    private let keyPath: String

    init() throws {
        folder = try makeTemporaryFolder("fcgiproxy-tls-listener")
        first = try TestCertificate.make(in: folder, name: "first")
        second = try TestCertificate.make(in: folder, name: "second")
        certificatePath = folder + "/live-cert.pem"
        keyPath = folder + "/live-key.pem"
        try install(first)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Puts a certificate and key where the configuration points (as a renewal script would).
    private func install(_ certificate: TestCertificate) throws {
        for (from, to) in [(certificate.certificatePath, certificatePath), (certificate.keyPath, keyPath)] {
            let text = try String(contentsOfFile: from, encoding: .utf8)
            try text.write(toFile: to, atomically: true, encoding: .utf8)
        }
    }

    private func startServer() async throws -> (ProxyServer, Int) {
        let configuration = ProxyConfiguration(
            server: ServerConfig(
                listen: [ListenConfig(address: .tcp(host: "127.0.0.1", port: 0), tls: true)],
                threads: 1,
                accessLog: .off,
                tlsCertificate: certificatePath,
                tlsKey: keyPath
            ),
            pools: [PoolConfig(name: "php", backends: [.unix(path: folder + "/nobody.sock")])],
            routes: [RouteConfig(name: "app", pool: "php", root: folder)],
            sourceName: "test.ini"
        )
        let server = ProxyServer(context: try ProxyContext(configuration: configuration, logger: Logger(label: "test")))
        let bound = try await server.start()
        let port = try #require(bound.first?.port)
        return (server, port)
    }

    @Test func reloadServesTheNewCertificateToNewConnectionsAndKeepsOpenOnes() async throws {
        let (server, port) = try await startServer()
        do {
            try await TestHTTPSConnection.with(port: port, trusting: first.certificatePath) { old in
                #expect(try await old.get("/missing.php").hasPrefix("HTTP/1.1 404 "))

                try install(second)
                try server.reloadCertificates()

                // Opened before the reload: still served (keep-alive, same TLS session).
                #expect(try await old.get("/missing.php").hasPrefix("HTTP/1.1 404 "))
                // New connections get the new certificate: a client trusting only the old one
                // fails its handshake, one trusting the new one is served.
                await #expect(throws: (any Error).self) {
                    try await TestHTTPSConnection.with(port: port, trusting: self.first.certificatePath) { try await $0.get("/") }
                }
                try await TestHTTPSConnection.with(port: port, trusting: second.certificatePath) { fresh in
                    let response = try await fresh.get("/missing.php")
                    #expect(response.hasPrefix("HTTP/1.1 404 "))
                }
                #expect(try await old.get("/again.php").hasPrefix("HTTP/1.1 404 "))
            }
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test func aFailedReloadKeepsServingTheCurrentCertificate() async throws {
        let (server, port) = try await startServer()
        do {
            try "garbage\n".write(toFile: keyPath, atomically: true, encoding: .utf8)
            #expect {
                try server.reloadCertificates()
            } throws: { error in
                "\(error)" == "tls_key \(keyPath): no unencrypted PEM private key in it"
            }
            try await TestHTTPSConnection.with(port: port, trusting: first.certificatePath) { connection in
                let response = try await connection.get("/missing.php")
                #expect(response.hasPrefix("HTTP/1.1 404 "))
            }
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }
}

/// One client connection over TLS, HTTP/1.1 keep-alive, reading responses framed by
/// Content-Length (all the proxy's own error responses are).
struct TestHTTPSConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// Connects to 127.0.0.1:`port` as `localhost`, trusting only the certificate at
    /// `trusting`, runs `body`, then closes.
    static func with<Result>(
        port: Int,
        trusting certificate: String,
        _ body: (inout TestHTTPSConnection) async throws -> Result
    ) async throws -> Result {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var connection = TestHTTPSConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&connection)
        }
    }

    /// Sends a GET and returns the whole response (head and body) as text.
    mutating func get(_ path: String) async throws -> String {
        try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n"))
        var received: [UInt8] = []
        while true {
            if let length = Self.completeLength(received) {
                return String(decoding: received[..<length], as: UTF8.self)
            }
            guard let chunk = try await inbound.next() else {
                throw TestCertificateError(description: "closed after: \(String(decoding: received, as: UTF8.self))")
            }
            received += chunk.readableBytesView
        }
    }

    /// The length in bytes of the first response if it is all there.
    private static func completeLength(_ bytes: [UInt8]) -> Int? {
        let separator = Array("\r\n\r\n".utf8)
        guard let headEnd = (0...max(0, bytes.count - 4)).first(where: { bytes[$0...].starts(with: separator) }) else {
            return nil
        }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased()
        let bodyLength = head.components(separatedBy: "\r\n")
            .first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        let total = headEnd + 4 + bodyLength
        return bytes.count >= total ? total : nil
    }
}
#endif
