import ProxyConfig
import Testing

@Suite struct ServerKeyTests {
    @Test func everyServerKey() throws {
        // A build without the TLS trait rejects `tls` listeners (see TLSConfigTests).
        let tlsWord = ServerConfig.builtWithTLS ? " tls" : ""
        let server = try #require(
            parseServer(
                """
                listen = 0.0.0.0:8080
                listen = [::]:8443\(tlsWord)
                listen = unix:/run/fcgiproxy.sock
                threads = 4
                access_log = /var/log/fcgiproxy/access.log
                log_level = Debug
                header_timeout = 5s
                keepalive_timeout = 2m
                send_timeout = 30s
                max_header_size = 16k
                max_uri_size = 4096
                max_body_size = 1g
                body_buffer_size = 512k
                temp_dir = /var/tmp
                metrics = 127.0.0.1:9145
                tls_certificate = /etc/ssl/cert.pem
                tls_key = /etc/ssl/key.pem
                http2 = off
                server_software = "my proxy"
                """
            )
        )
        #expect(
            server.listen == [
                ListenConfig(address: .tcp(host: "0.0.0.0", port: 8080)),
                ListenConfig(address: .tcp(host: "::", port: 8443), tls: ServerConfig.builtWithTLS),
                ListenConfig(address: .unix(path: "/run/fcgiproxy.sock")),
            ]
        )
        #expect(server.threads == 4)
        #expect(server.accessLog == .file("/var/log/fcgiproxy/access.log"))
        #expect(server.logLevel == "debug")
        #expect(server.headerTimeout == .seconds(5))
        #expect(server.sendTimeout == .seconds(30))
        #expect(server.keepaliveTimeout == .seconds(120))
        #expect(server.maxHeaderSize == 16 * 1024)
        #expect(server.maxURISize == 4096)
        #expect(server.maxBodySize == 1024 * 1024 * 1024)
        #expect(server.bodyBufferSize == 512 * 1024)
        #expect(server.tempDir == "/var/tmp")
        #expect(server.metrics == .tcp(host: "127.0.0.1", port: 9145))
        #expect(server.tlsCertificate == "/etc/ssl/cert.pem")
        #expect(server.tlsKey == "/etc/ssl/key.pem")
        #expect(!server.http2)
        #expect(server.serverSoftware == "my proxy")
    }

    #if HTTP2
    @Test func http2OnInABuildWithHTTP2() {
        #expect(parseServer("http2 = on")?.http2 == true)
    }

    @Test func h2cUpgradeIsOffUnlessAsked() {
        #expect(parseServer("threads = 1")?.h2cUpgrade == false)
        #expect(parseServer("h2c_upgrade = on")?.h2cUpgrade == true)
        let errors = parseErrors("[server]\nhttp2 = off\nh2c_upgrade = on\n")
        #expect(errors.map(\.line) == [3], "\(errors)")
        #expect(errors.first?.message.contains("needs HTTP/2") == true, "\(errors)")
    }
    #else
    @Test func http2OnInABuildWithoutHTTP2IsAnError() {
        let errors = parseErrors("[server]\nhttp2 = yes\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.contains("built without HTTP/2") == true, "\(errors)")
    }
    #endif

    @Test func threadsAuto() {
        #expect(parseServer("threads = 3\n")?.threads == 3)
        #expect(parseServer("threads = auto\n")?.threads == nil)
    }

    @Test(arguments: [("off", AccessLogTarget.off), ("stderr", .stderr), ("/a/b.log", .file("/a/b.log"))])
    func accessLogTargets(text: String, expected: AccessLogTarget) {
        #expect(parseServer("access_log = \(text)")?.accessLog == expected)
    }

    @Test(arguments: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    func logLevels(level: String) {
        #expect(parseServer("log_level = \(level)")?.logLevel == level)
    }

    @Test(arguments: [
        ("threads = 0", "expected \"auto\" or a positive integer"),
        ("threads = many", "expected \"auto\" or a positive integer"),
        ("access_log = relative.log", "expected off, stderr or an absolute file path"),
        ("log_level = verbose", "expected trace, debug, info, notice, warning, error or critical"),
        ("temp_dir = tmp", "expected an absolute path"),
        ("max_header_size = 0", "expected a size in bytes above 0"),
        ("max_uri_size = 0", "expected a size in bytes above 0"),
        ("server_software = \"\"", "expected a non-empty value"),
        ("metrics = 9145", "expected host:port, [v6]:port or unix:/path"),
        ("http2 = maybe", "expected on/off, yes/no, true/false or 1/0"),
        ("h2c_upgrade = maybe", "expected on/off, yes/no, true/false or 1/0"),
        ("listen = 127.0.0.1:80 ssl", "expected host:port, [v6]:port or unix:/path, optionally followed by \"tls\""),
    ])
    func badServerValues(line: String, expected: String) {
        let key = String(line.prefix { $0 != " " })
        let errors = parseErrors("[server]\n\(line)\n")
        #expect(errors.count == 1)
        #expect(errors.first?.line == 2)
        let message = errors.first?.message ?? ""
        #expect(message.hasPrefix("invalid value "), "\(message)")
        #expect(message.contains("for \"\(key)\" in [server]: \(expected)"), "\(message)")
    }

    @Test func relativeCertificatePath() {
        let errors = parseErrors("[server]\ntls_certificate = cert.pem\ntls_key = /k.pem\n")
        #expect(errors.map(\.line) == [2])
        #expect(
            errors.first?.message.contains(
                "for \"tls_certificate\" in [server]: expected an absolute path"
            ) == true
        )
    }

    @Test func zeroIsAllowedForBodyLimits() {
        let server = parseServer("max_body_size = 0\nbody_buffer_size = 0")
        #expect(server?.maxBodySize == 0)
        #expect(server?.bodyBufferSize == 0)
    }

    @Test(.enabled(if: ServerConfig.builtWithTLS))
    func tlsListenerWithoutCertificateIsAnError() {
        expectOneError(
            "[server]\nlisten = 127.0.0.1:80\nlisten = 0.0.0.0:443 tls\n",
            line: 3,
            startingWith: "a \"tls\" listener needs both \"tls_certificate\" and \"tls_key\""
        )
    }

    @Test func tlsListenerWithOnlyTheCertificateIsAnError() {
        let errors = parseErrors("[server]\nlisten = 0.0.0.0:443 tls\ntls_certificate = /c.pem\n")
        #expect(errors.map(\.line) == [2, 3])
        #expect(errors.last?.message == "\"tls_certificate\" is set but \"tls_key\" is missing in [server]")
    }

    @Test func tlsKeyWithoutCertificateIsAnError() {
        expectOneError(
            "[server]\ntls_key = /k.pem\n",
            line: 2,
            startingWith: "\"tls_key\" is set but \"tls_certificate\" is missing"
        )
    }

    @Test(.enabled(if: ServerConfig.builtWithTLS))
    func tlsListenerWithCertificateAndKey() {
        let server = parseServer("listen = 0.0.0.0:443 TLS\ntls_certificate = /c.pem\ntls_key = /k.pem\n")
        #expect(server?.listen == [ListenConfig(address: .tcp(host: "0.0.0.0", port: 443), tls: true)])
    }
}
