#if TLS
import NIOConcurrencyHelpers
import NIOSSL
import ProxyConfig

/// The TLS server context of every `tls` listener, swappable while connections run.
///
/// Each accepted connection reads it once (one uncontended lock per connection, none per
/// request), so ``reload()`` changes what new connections get and leaves established ones on
/// the context they started with: a certificate renewal drops no connection.
public final class TLSContextBox: Sendable {
    /// ALPN protocols offered, in our order of preference: `h2` first when `[server] http2` is
    /// on (the pipeline then recognises the HTTP/2 preface the client sends after the handshake).
    public static func applicationProtocols(http2: Bool) -> [String] {
        http2 ? ["h2", "http/1.1"] : ["http/1.1"]
    }

    /// Whether ALPN offers `h2` (`[server] http2` in a build with the HTTP2 trait).
    public let http2: Bool

    /// `tls_certificate`: the leaf certificate, then its chain, in PEM.
    public let certificatePath: String
    /// `tls_key`: the leaf's private key in PEM.
    public let keyPath: String
    private let current: NIOLockedValueBox<NIOSSLContext>

    /// Loads and checks both files (readable, PEM, key matching the certificate).
    public init(certificatePath: String, keyPath: String, http2: Bool = false) throws(TLSCertificateError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.http2 = http2
        current = NIOLockedValueBox(try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, http2: http2))
    }

    /// The context for a connection being accepted now.
    public var context: NIOSSLContext {
        current.withLockedValue { $0 }
    }

    /// Re-reads both files and serves them to connections accepted from now on. On any error
    /// the old context stays in use and the error names the file. Reads files: call it off the
    /// event loops (it is meant for a signal handler's thread).
    public func reload() throws(TLSCertificateError) {
        let fresh = try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, http2: http2)
        current.withLockedValue { $0 = fresh }
    }

    static func makeContext(certificatePath: String, keyPath: String, http2: Bool) throws(TLSCertificateError) -> NIOSSLContext {
        let chain = try loadChain(path: certificatePath)
        let key = try loadKey(path: keyPath)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = applicationProtocols(http2: http2)
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // The key parsed on its own above: BoringSSL refuses it only when its public half
            // differs from the leaf certificate's.
            throw TLSCertificateError(
                .key, path: keyPath,
                "the private key does not match the first certificate in \(certificatePath)")
        } catch {
            throw TLSCertificateError(.certificate, path: certificatePath, "cannot be used with \(keyPath): \(error)")
        }
    }

    private static func loadChain(path: String) throws(TLSCertificateError) -> [NIOSSLCertificate] {
        let bytes = try read(.certificate, path: path)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw TLSCertificateError(.certificate, path: path, "no PEM certificate in it (\"-----BEGIN CERTIFICATE-----\")")
        }
        guard !chain.isEmpty else {
            throw TLSCertificateError(.certificate, path: path, "no PEM certificate in it")
        }
        return chain
    }

    private static func loadKey(path: String) throws(TLSCertificateError) -> NIOSSLPrivateKey {
        let bytes = try read(.key, path: path)
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            // An encrypted key lands here too: a daemon has nobody to ask for a passphrase.
            throw TLSCertificateError(.key, path: path, "no unencrypted PEM private key in it")
        }
    }

    private static func read(_ file: TLSCertificateError.File, path: String) throws(TLSCertificateError) -> [UInt8] {
        do {
            return try FileReader.readBytes(path: path)
        } catch {
            throw TLSCertificateError(file, path: path, error.message)
        }
    }
}
#endif

/// A TLS certificate or key file that cannot be used (also in builds without TLS, so callers
/// need no `#if`).
public struct TLSCertificateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which of the two `[server]` keys named the file.
    public enum File: String, Sendable {
        case certificate = "tls_certificate"
        case key = "tls_key"
    }

    public var file: File
    public var path: String
    public var reason: String

    public init(_ file: File, path: String, _ reason: String) {
        self.file = file
        self.path = path
        self.reason = reason
    }

    /// `tls_key /etc/fcgiproxy/key.pem: cannot open: Permission denied`
    public var description: String {
        "\(file.rawValue) \(path): \(reason)"
    }
}
