import Foundation
import Testing

extension Integration {
    /// Backend failures: nobody listening, a backend too slow.
    @Suite struct Backend {
        @Test func backendDownIs502() async throws {
            let f = try await Fixture.shared()
            let front = try await Fixture.extraFrontEnd(backendSocket: f.dir.file("nobody-listens.sock"))
            defer { front.stop() }
            let r = try await Curl.run([front.url("/index.php")])
            #expect(r.status == 502)
            let again = try await Curl.run([front.url("/info.php?x=1")])
            #expect(again.status == 502)
        }

        @Test func slowBackendIs504AfterReadTimeout() async throws {
            let front = try await Fixture.extraFrontEnd { $0.readTimeoutSeconds = 1 }
            defer { front.stop() }
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await Curl.run([front.url("/sleep.php?s=5")])
            let elapsed = clock.now - start
            #expect(r.status == 504)
            #expect(elapsed < .seconds(3), "504 took \(elapsed)")
            // The front end is still healthy afterwards.
            let ok = try await Curl.run([front.url("/status.php?code=200")])
            #expect(ok.status == 200)
        }
    }

    /// `fcgiproxy --check-config` (fixed CLI contract).
    @Suite(.fcgiproxyOnly("fcgiproxy's own CLI")) struct CheckConfig {
        @Test func validConfigExits0() async throws {
            let dir = try TempDir("fcgiproxy-check")
            let ini = try dir.write(
                "ok.ini", ProxyProcess.ini(FrontEndOptions(backendSocket: dir.file("php.sock")), port: 18080))
            let r = try await ChildProcess.run(Paths.fcgiproxyBinary, ["--check-config", "--config", ini])
            #expect(r.exitCode == 0, "\(r.stderrText)")
        }

        @Test func invalidConfigReportsFileAndLine() async throws {
            let dir = try TempDir("fcgiproxy-check")
            let ini = try dir.write(
                "bad.ini",
                """
                [server]
                listen = 127.0.0.1:18080
                no_such_key = 1

                [pool:php]
                backend = unix:/tmp/php.sock

                [route:php]
                match = /
                pool = no-such-pool
                root = /tmp

                """)
            let r = try await ChildProcess.run(Paths.fcgiproxyBinary, ["--check-config", "--config", ini])
            #expect(r.exitCode != 0)
            #expect(r.stderrText.contains("\(ini):3:"), "\(r.stderrText)")
            #expect(r.stderrText.contains("\(ini):10:"), "\(r.stderrText)")
        }
    }
}
