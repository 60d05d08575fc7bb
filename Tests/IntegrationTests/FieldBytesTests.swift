import Foundation
import Testing

extension Integration {
    /// Header values travel as bytes, as nginx passes them: obs-text that is not UTF-8 reaches
    /// PHP unchanged, and a backend's Latin-1 header reaches the client unchanged, over HTTP/1
    /// and HTTP/2. A raw byte above 0x7F in the request-target is refused, not rewritten.
    @Suite struct FieldBytes {
        /// `X-Latin: été` in ISO-8859-1, as examples/php/bytes.php sends it.
        private static let latinLine = Array("X-Latin: ".utf8) + [0xE9, 0x74, 0xE9] + Array("\r\n".utf8)

        @Test func requestHeaderBytesReachPHPUnchanged() async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            conn.send(
                Array("GET /bytes.php?k=HTTP_X_OBS HTTP/1.1\r\nHost: localhost\r\nX-Obs: ".utf8) + [0xE9, 0xFF, 0x20, 0xC3, 0xA9]
                    + Array("\r\nConnection: close\r\n\r\n".utf8))
            let reply = conn.readUntilClose(timeout: .seconds(10))
            #expect(reply.status == 200, "\(reply.text.prefix(300))")
            #expect(reply.finals.first?.bodyText == "e9ff20c3a9\n", "\(reply.text.prefix(300))")
        }

        @Test func backendHeaderBytesReachTheClientUnchanged() async throws {
            let f = try await Fixture.shared()
            let reply = try f.raw("GET /bytes.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", untilClose: true)
            #expect(reply.status == 200)
            #expect(Self.contains(reply.bytes, Self.latinLine), "\(reply.text.prefix(400))")
        }

        @Test(.fcgiproxyOnly("HTTP/2 front end"))
        func overHTTP2BothWaysToo() async throws {
            let f = try await Fixture.shared()
            let dir = try TempDir("fcgiproxy-field-bytes")
            defer { try? FileManager.default.removeItem(atPath: dir.path) }
            let headerFile = dir.file("headers")
            try Data(Array("X-Obs: ".utf8) + [0xE9, 0xFF] + Array("\n".utf8)).write(to: URL(fileURLWithPath: headerFile))
            let r = try await ChildProcess.run(
                Paths.curl, ["-s", "--http2-prior-knowledge", "-D", "-", "-H", "@\(headerFile)", f.url("/bytes.php?k=HTTP_X_OBS")])
            let out = [UInt8](r.stdout)
            #expect(Self.contains(out, Array("HTTP/2 200".utf8)), "\(r.stdoutText.prefix(300))")
            #expect(Self.contains(out, Array("x-latin: ".utf8) + [0xE9, 0x74, 0xE9]), "\(r.stdoutText.prefix(400))")
            #expect(r.stdoutText.hasSuffix("e9ff\n"), "\(r.stdoutText.suffix(100))")
        }

        @Test(.fcgiproxyOnly("nginx passes raw bytes in the target on"), arguments: [[UInt8]([0xFF]), [0xC3, 0xA9]])
        func rawNonASCIIInTheTargetIs400(bytes: [UInt8]) async throws {
            let f = try await Fixture.shared()
            let conn = try RawHTTP(port: f.port)
            conn.send(Array("GET /h/".utf8) + bytes + Array(" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
            let reply = conn.readUntilClose(timeout: .seconds(10))
            #expect(reply.status == 400, "\(reply.text.prefix(300))")
        }

        private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
            guard needle.count <= haystack.count else { return false }
            return (0...(haystack.count - needle.count)).contains { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
        }
    }
}
