#if TLS
import Foundation

/// A self-signed certificate for `localhost` and 127.0.0.1 with its key, made by openssl in a
/// temporary folder (EC P-256: fast to make). No key material is kept in the repository.
struct TestCertificate {
    let certificatePath: String
    let keyPath: String

    static func make(in directory: String, name: String) throws -> TestCertificate {
        let certificate = "\(directory)/\(name)-cert.pem"
        let key = "\(directory)/\(name)-key.pem"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=localhost \(name)", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-days", "2", "-keyout", key, "-out", certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestCertificateError(description: "openssl req failed with status \(process.terminationStatus)")
        }
        return TestCertificate(certificatePath: certificate, keyPath: key)
    }
}

struct TestCertificateError: Error, CustomStringConvertible {
    var description: String
}

/// A fresh folder under the temporary directory; the caller removes it.
func makeTemporaryFolder(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
#endif
