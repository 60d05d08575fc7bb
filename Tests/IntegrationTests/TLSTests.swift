import Foundation
import ProxyConfig
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// `listen = ADDR tls`: curl over TLS to PHP-FPM and to the Swift demo worker, with a
    /// certificate the test makes with openssl. A renewed certificate is picked up on SIGHUP here;
    /// `reloadCertificates()` alone is tested in process (ProxyCoreTests.TLSListenerTests).
    @Suite(.enabled(if: ServerConfig.builtWithTLS), .fcgiproxyOnly("TLS listeners are fcgiproxy's"))
    struct TLS {
        /// One RSA certificate for localhost / 127.0.0.1 for the whole suite.
        static let certificate: Result<TLSFiles, any Error> = Result { try TLSFiles.make() }

        private static func frontEnd(
            backendSocket: String? = nil,
            extraServerINI: String = ""
        ) async throws -> (any FrontEnd, TLSFiles) {
            let files = try certificate.get()
            let front = try await Fixture.extraFrontEnd(backendSocket: backendSocket) { options in
                options.tls = true
                options.extraServerINI = """
                    tls_certificate = \(files.certificate)
                    tls_key = \(files.key)
                    \(extraServerINI)
                    """
            }
            return (front, files)
        }

        private static func https(_ front: any FrontEnd, _ path: String) -> String {
            "https://127.0.0.1:\(front.port)\(path)"
        }

        @Test func phpSeesHTTPSAndTheListenerPort() async throws {
            let (front, files) = try await Self.frontEnd()
            // curl offers h2 and http/1.1 by ALPN; h2 is taken when the build has HTTP/2.
            let r = try await Curl.run(["--cacert", files.certificate, "--http2", "-v", Self.https(front, "/info.php")])
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            let alpn = ServerConfig.builtWithHTTP2 ? "h2" : "http/1.1"
            #expect(r.stderr.contains("ALPN: server accepted \(alpn)"), "\(r.stderr)")
            #expect(r.stderr.contains("SSL connection using TLSv1.3"), "\(r.stderr)")
            let info = try r.json()
            #expect(info["HTTPS"] as? String == "on")
            #expect(info["REQUEST_SCHEME"] as? String == "https")
            #expect(info["SERVER_PORT"] as? String == String(front.port))
        }

        @Test func tls12IsAccepted() async throws {
            let (front, files) = try await Self.frontEnd()
            let r = try await Curl.run(["--cacert", files.certificate, "--tls-max", "1.2", "-v", Self.https(front, "/")])
            #expect(r.status == 200, "\(r.stderr)")
            #expect(r.stderr.contains("SSL connection using TLSv1.2"), "\(r.stderr)")
        }

        @Test func swiftWorkerSeesHTTPS() async throws {
            let dir = try TempDir("fcgiproxy-tls-demo")
            let worker = try await DemoWorker(unixSocketIn: dir)
            defer { worker.stop() }
            let (front, files) = try await Self.frontEnd(backendSocket: worker.socketPath)
            // `/` runs index.php as far as the route goes; the demo worker answers `/` with
            // the params it received.
            let r = try await Curl.run(["--cacert", files.certificate, "--http2", Self.https(front, "/")])
            #expect(r.status == 200, "\(r.stderr)")
            #expect(r.text.contains("<tr><th>HTTPS</th><td>on</td></tr>"), "\(r.text)")
            #expect(r.text.contains("<tr><th>REQUEST_SCHEME</th><td>https</td></tr>"))
            #expect(r.text.contains("<tr><th>SERVER_PORT</th><td>\(front.port)</td></tr>"))
            if ServerConfig.builtWithHTTP2 {
                // h2 by ALPN, so the worker saw an HTTP/2 request.
                #expect(r.text.contains("<tr><th>SERVER_PROTOCOL</th><td>HTTP/2.0</td></tr>"), "\(r.text)")
            }
        }

        @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
            let (front, files) = try await Self.frontEnd()
            let urls = (1...4).map { Self.https(front, "/info.php?n=\($0)") }
            let r = try await Curl.run(["--cacert", files.certificate, "-v"] + urls)
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            let reused = r.stderr.components(separatedBy: "Re-using existing connection").count - 1
            #expect(reused == 3, "\(r.stderr)")
            #expect(r.stderr.components(separatedBy: "SSL connection using").count - 1 == 1)
        }

        @Test func tls11ClientIsRefusedAndQuietly() async throws {
            let (front, files) = try await Self.frontEnd()
            // SECLEVEL=0 lets this curl offer TLS 1.1 at all: the refusal must be the server's.
            let old = try await Curl.run([
                "--cacert", files.certificate, "--tlsv1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                Self.https(front, "/"),
            ])
            #expect(old.exitCode == 35, "\(old.stderr)")
            #expect(old.stderr.contains("alert protocol version"), "\(old.stderr)")
            let r = try await Curl.run(["--cacert", files.certificate, Self.https(front, "/")])
            #expect(r.status == 200)
            // Handshake failures are logged at debug level only (the default level is info).
            #expect(!front.log().contains("handshake"), "\(front.log())")
        }

        @Test func plainHTTPToTheTLSPortIsClosedAndServingGoesOn() async throws {
            let (front, files) = try await Self.frontEnd()
            let connection = try RawHTTP(port: front.port)
            connection.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let reply = connection.readUntilClose(timeout: .seconds(5))
            #expect(reply.closed)
            #expect(reply.responses.isEmpty, "\(reply.text)")
            let plain = try await Curl.run(["-m", "5", "http://127.0.0.1:\(front.port)/"])
            #expect(plain.status == 0)
            let r = try await Curl.run(["--cacert", files.certificate, Self.https(front, "/")])
            #expect(r.status == 200)
            #expect(r.text.contains("Hello, world!"))
            #expect(!front.log().contains("HTTP_REQUEST"), "\(front.log())")
        }

        @Test func silentClientIsClosedAfterTheHeaderTimeout() async throws {
            let (front, files) = try await Self.frontEnd(extraServerINI: "header_timeout = 1s")
            let clock = ContinuousClock()
            let start = clock.now
            let connection = try RawHTTP(port: front.port)
            // No ClientHello at all: only header_timeout can end this connection.
            let reply = connection.readUntilClose(timeout: .seconds(10))
            let elapsed = clock.now - start
            #expect(reply.closed)
            #expect(reply.bytes.isEmpty)
            #expect(elapsed >= .milliseconds(900), "closed after \(elapsed)")
            #expect(elapsed < .seconds(10), "not closed within 10 s")
            let r = try await Curl.run(["--cacert", files.certificate, Self.https(front, "/")])
            #expect(r.status == 200)
        }

        @Test func wrongTrustIsAClientSideFailureOnly() async throws {
            // The certificate is checked by the client: curl without --cacert refuses it, and
            // the server keeps serving those who trust it.
            let (front, files) = try await Self.frontEnd()
            let untrusted = try await Curl.run([Self.https(front, "/")])
            #expect(untrusted.exitCode == 60, "\(untrusted.stderr)")
            let r = try await Curl.run(["--cacert", files.certificate, Self.https(front, "/")])
            #expect(r.status == 200)
        }

        /// A renewed certificate, written over the files the configuration names, is served to
        /// new connections after SIGHUP (a reload builds the TLS context anew); a connection that
        /// was open before keeps working.
        @Test func sighupServesARenewedCertificate() async throws {
            let first = try TLSFiles.make(name: "first")
            let renewed = try TLSFiles.make(name: "renewed")
            let dir = try TempDir("fcgiproxy-tls-renew")
            let certificate = dir.file("cert.pem")
            let key = dir.file("key.pem")
            try FileManager.default.copyItem(atPath: first.certificate, toPath: certificate)
            try FileManager.default.copyItem(atPath: first.key, toPath: key)
            let front = try await Fixture.extraFrontEnd { options in
                options.tls = true
                options.extraServerINI = "tls_certificate = \(certificate)\ntls_key = \(key)\n"
            }
            let before = try await Curl.run(["--cacert", first.certificate, Self.https(front, "/")])
            #expect(before.status == 200, "\(before.stderr)")

            for (from, to) in [(renewed.certificate, certificate), (renewed.key, key)] {
                try FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
            kill(front.pid, SIGHUP)
            for _ in 0..<250 where !front.log().contains("reload 2:") {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(front.log().contains("reload 2:"), "no reload logged:\n\(front.log().suffix(2000))")
            let renewedTrust = try await Curl.run(["--cacert", renewed.certificate, Self.https(front, "/")])
            #expect(renewedTrust.status == 200, "\(renewedTrust.stderr)\n\(front.log().suffix(2000))")
            // curl: (60) the server's certificate is not signed by the CA it was told to trust.
            let oldTrust = try await Curl.run(["--cacert", first.certificate, Self.https(front, "/")])
            #expect(oldTrust.exitCode == 60, "the old certificate is still served: \(oldTrust.stderr)")
        }

        @Test func checkConfigRejectsAKeyThatDoesNotMatch() async throws {
            let files = try Self.certificate.get()
            let other = try TLSFiles.make(name: "other")
            let dir = try TempDir("fcgiproxy-tls-check")
            let config = try dir.write(
                "bad.ini",
                """
                [server]
                listen = 127.0.0.1:8443 tls
                tls_certificate = \(files.certificate)
                tls_key = \(other.key)
                """
            )
            let result = try await ChildProcess.run(Paths.fcgiproxyBinary, ["--check-config", "--config", config])
            #expect(result.exitCode == 2)
            #expect(
                result.stderrText.contains(
                    "\(config):4: tls_key \(other.key): the private key does not match the first certificate in \(files.certificate)"
                ),
                "\(result.stderrText)"
            )
        }
    }
}

/// A self-signed RSA certificate for `localhost` and 127.0.0.1 and its key, made by openssl
/// in a temporary folder.
struct TLSFiles: Sendable {
    let certificate: String
    let key: String

    static func make(name: String = "localhost") throws -> TLSFiles {
        let dir = try TempDir("fcgiproxy-tls-\(name)")
        let files = TLSFiles(certificate: dir.file("cert.pem"), key: dir.file("key.pem"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2",
            "-keyout", files.key, "-out", files.certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("openssl req exited with \(process.terminationStatus)")
        }
        return files
    }
}
