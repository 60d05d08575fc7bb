#if TLS
import Foundation
import Logging
import NIOSSL
import ProxyConfig
import Testing

@testable import ProxyCore

/// Loading `tls_certificate` / `tls_key`: every way the files can be wrong is reported with
/// the file (and, through ProxyContext, the line); a failed reload keeps the old context.
@Suite final class TLSContextBoxTests {
    private let folder: String
    private let first: TestCertificate
    private let second: TestCertificate

    init() throws {
        folder = try makeTemporaryFolder("fcgiproxy-tls-box")
        first = try TestCertificate.make(in: folder, name: "first")
        second = try TestCertificate.make(in: folder, name: "second")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = "\(folder)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func loadError(certificate: String, key: String) -> TLSCertificateError? {
        do {
            _ = try TLSContextBox(certificatePath: certificate, keyPath: key)
            Issue.record("loaded \(certificate) with \(key)")
            return nil
        } catch {
            return error
        }
    }

    @Test func loadsAMatchingPairWithTLS12AndHTTP1ALPN() throws {
        let box = try TLSContextBox(certificatePath: first.certificatePath, keyPath: first.keyPath)
        let configuration = box.context.configuration
        #expect(configuration.minimumTLSVersion == .tlsv12)
        #expect(configuration.applicationProtocols == ["http/1.1"])
        #expect(configuration.certificateChain.count == 1)
    }

    @Test func aChainFileKeepsEveryCertificate() throws {
        // Leaf first, then the "intermediate" (any second certificate does for loading).
        let leaf = try String(contentsOfFile: first.certificatePath, encoding: .utf8)
        let other = try String(contentsOfFile: second.certificatePath, encoding: .utf8)
        let chain = try write("chain.pem", leaf + other)
        let box = try TLSContextBox(certificatePath: chain, keyPath: first.keyPath)
        #expect(box.context.configuration.certificateChain.count == 2)
    }

    @Test func missingCertificateFile() {
        let error = loadError(certificate: folder + "/missing.pem", key: first.keyPath)
        #expect(error?.file == .certificate)
        #expect(error?.path == folder + "/missing.pem")
        #expect(error?.description == "tls_certificate \(folder)/missing.pem: cannot open: No such file or directory")
    }

    @Test func unreadableKeyFile() throws {
        // A folder opens but cannot be read: the same path as a permission error, even as root.
        let error = loadError(certificate: first.certificatePath, key: folder)
        #expect(error?.file == .key)
        #expect(error?.description.hasPrefix("tls_key \(folder): cannot read") == true, "\(String(describing: error))")
    }

    @Test func certificateFileWithoutPEM() throws {
        let path = try write("garbage.pem", "not a certificate\n")
        let error = loadError(certificate: path, key: first.keyPath)
        #expect(error?.file == .certificate)
        #expect(error?.reason.hasPrefix("no PEM certificate in it") == true, "\(String(describing: error))")
    }

    @Test func keyGivenAsCertificate() {
        // Swapped keys: the key file holds no certificate.
        let error = loadError(certificate: first.keyPath, key: first.certificatePath)
        #expect(error?.file == .certificate)
        #expect(error?.path == first.keyPath)
    }

    @Test func keyFileWithoutKey() {
        let error = loadError(certificate: first.certificatePath, key: second.certificatePath)
        #expect(error?.file == .key)
        #expect(error?.reason == "no unencrypted PEM private key in it")
    }

    @Test func keyNotMatchingTheCertificate() {
        let error = loadError(certificate: first.certificatePath, key: second.keyPath)
        #expect(error?.file == .key)
        #expect(error?.path == second.keyPath)
        #expect(error?.reason == "the private key does not match the first certificate in \(first.certificatePath)")
    }

    @Test func reloadSwapsTheContextAndAFailedOneKeepsIt() throws {
        let certificate = try write("live-cert.pem", try String(contentsOfFile: first.certificatePath, encoding: .utf8))
        let key = try write("live-key.pem", try String(contentsOfFile: first.keyPath, encoding: .utf8))
        let box = try TLSContextBox(certificatePath: certificate, keyPath: key)
        let before = box.context

        // Renewed certificate, old key: refused, the context in use stays.
        _ = try write("live-cert.pem", try String(contentsOfFile: second.certificatePath, encoding: .utf8))
        #expect(throws: TLSCertificateError.self) { try box.reload() }
        #expect(box.context === before)

        _ = try write("live-key.pem", try String(contentsOfFile: second.keyPath, encoding: .utf8))
        try box.reload()
        #expect(box.context !== before)
        let served = try #require(box.context.configuration.certificateChain.first)
        let expected = try NIOSSLCertificate.fromPEMFile(second.certificatePath)
        #expect(served == .certificate(expected[0]))
    }

    @Test func proxyContextReportsABadFileAtItsLine() throws {
        let server = ServerConfig(
            listen: [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8443), tls: true)],
            accessLog: .off,
            tlsCertificate: first.certificatePath,
            tlsKey: second.keyPath,
            tlsCertificateLine: 4,
            tlsKeyLine: 5
        )
        let configuration = ProxyConfiguration(server: server, pools: [], routes: [], sourceName: "site.ini")
        do {
            _ = try ProxyContext(configuration: configuration, logger: Logger(label: "test"))
            Issue.record("a key that does not match was accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.count == 1)
            #expect(errors.description.hasPrefix("site.ini:5: tls_key \(second.keyPath): the private key does not match"))
        }
    }

    @Test func proxyContextWithoutTLSKeysHasNoContext() throws {
        let configuration = ProxyConfiguration(server: ServerConfig(accessLog: .off), pools: [], routes: [], sourceName: "site.ini")
        let context = try ProxyContext(configuration: configuration, logger: Logger(label: "test"))
        #expect(context.tls == nil)
    }
}
#endif
