import Foundation
import ProxyConfig
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// HTTP/2 abuse cases driven by a Python `h2` client (`Scripts/h2abuse.py`): rapid reset,
    /// CONTINUATION flood, HPACK bomb, content-length ≠ DATA, SETTINGS flood, zero windows,
    /// bodies beyond the connection's allowance. During each, a
    /// normal h2c client keeps requesting; the proxy must stay up, bounded in memory, and serve it.
    @Suite(
        .enabled(if: ServerConfig.builtWithHTTP2), .enabled(if: H2Python.path != nil, "no python3 with h2 (apt-get install python3-h2)"),
        .fcgiproxyOnly("fcgiproxy's HTTP/2 front end"))
    struct HTTP2Abuse {

        private static let script = Paths.packageRoot + "/Tests/IntegrationTests/Scripts/h2abuse.py"
        /// RSS growth allowed over the proxy's RSS before the attack.
        private static let rssBoundKiB = 64 * 1024

        struct Outcome {
            var result: [String: Any]
            /// Statuses the normal client got during the attack (0: no answer within its timeout).
            var normal: [Int]
            var startRSS: Int
            var peakRSS: Int
            /// The proxy's access log after the attack.
            var accessLog: String
        }

        /// Runs one case against a proxy of its own (over a PHP-FPM of its own), a normal client
        /// in parallel, and checks the proxy survived and still serves.
        /// With `repeat`, the case runs on fresh connections for `seconds`.
        /// `slowBackend`: /sleep.php goes to a PHP-FPM of its own, so that the normal client's
        /// backend is not the one the attack keeps busy.
        private func attack(
            _ name: String, seconds: Int = 4, repeat: Bool = true, slowBackend: Bool = false, serverINI: String = ""
        ) async throws -> Outcome {
            let python = try #require(H2Python.path)
            let dir = try TempDir("fcgiproxy-h2abuse")
            defer { try? FileManager.default.removeItem(atPath: dir.path) }
            let log = dir.file("access.log")
            let fpm = try await PoolPHPFPM(.init(children: 4, name: "h2abuse"))
            defer { fpm.stop() }
            let slow = slowBackend ? try await PoolPHPFPM(.init(children: 4, name: "h2abuse-slow")) : nil
            defer { slow?.stop() }
            let front = try await Fixture.extraFrontEnd(backendSocket: fpm.socketPath) { options in
                options.extraServerINI = "access_log = \(log)\n" + serverINI
                if let slow {
                    options.routesBeforeDefault = "[route:slow]\nmatch = /sleep.php\npool = slow\nroot = \(Paths.phpRoot)\nsplit_path = .php\n"
                    options.extraSectionsINI = "[pool:slow]\nbackend = unix:\(slow.socketPath)\n"
                }
            }
            defer { front.stop() }
            let warm = try await Curl.run(["--http2-prior-knowledge", front.url("/status.php?code=200")])
            try #require(warm.status == 200, "\(warm.stderr)")
            let startRSS = try #require(front.rssKiB())
            let done = Flag()
            let peak = Peak(startRSS)
            let url = front.url("/status.php?code=200")
            async let normal: [Int] = {
                var statuses: [Int] = []
                while !done.isSet || statuses.count < 5 {
                    let r = try? await Curl.run(["--http2-prior-knowledge", "--max-time", "10", url], timeout: .seconds(20))
                    statuses.append(r?.status ?? 0)
                    if let rss = front.rssKiB() { peak.see(rss) }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return statuses
            }()
            let run = try await ChildProcess.run(
                python, [Self.script, "127.0.0.1", String(front.port), name, String(seconds)] + (`repeat` ? ["repeat"] : []), timeout: .seconds(seconds + 30))
            if let rss = front.rssKiB() { peak.see(rss) }
            done.set()
            let statuses = await normal
            let result = try #require(try? Util.json(run.stdout), "h2abuse.py \(name): \(run.stdoutText) \(run.stderrText)")
            print("h2abuse \(name): \(run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) normal=\(statuses) rss \(startRSS) KiB -> peak \(peak.value) KiB")
            #expect(front.isRunning, "the proxy died; its log:\n\(front.log().suffix(4000))")
            #expect(peak.value - startRSS < Self.rssBoundKiB, "RSS \(startRSS) KiB -> \(peak.value) KiB")
            let after = try await Curl.run(["--http2-prior-knowledge", "--max-time", "10", url])
            #expect(after.status == 200, "after \(name): \(after.stderr)")
            let accessLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return Outcome(result: result, normal: statuses, startRSS: startRSS, peakRSS: peak.value, accessLog: accessLog)
        }

        private static func goAway(_ r: [String: Any]) -> Int? { r["goaway"] as? Int }
        private static func rst(_ r: [String: Any], _ code: Int) -> Int { (r["rst"] as? [String: Any])?[String(code)] as? Int ?? 0 }
        private static func statuses(_ r: [String: Any]) -> [String: Int] { r["statuses"] as? [String: Int] ?? [:] }
        private static func closed(_ r: [String: Any]) -> Bool { r["closed"] as? Bool == true || r["send_error"] is String }
        /// How each connection ended, e.g. `goaway=None closed=True statuses=[] rst=[]` (count per kind).
        private static func outcomes(_ r: [String: Any]) -> [String] { Array((r["outcomes"] as? [String: Any] ?? [:]).keys) }

        @Test func rapidReset() async throws {
            let o = try await attack("rapid-reset", seconds: 5, repeat: false, slowBackend: true)
            // Refused beyond the stream limit (REFUSED_STREAM); once the client reset more
            // running streams than the limit, GOAWAY(ENHANCE_YOUR_CALM) (or nghttp2's reset rate
            // limit's GOAWAY(INTERNAL_ERROR)).
            #expect(Self.rst(o.result, 7) > 0, "\(o.result)")
            #expect(Self.goAway(o.result) == 11 || Self.goAway(o.result) == 2, "\(o.result)")
            #expect(Self.statuses(o.result)["200"] == nil, "\(o.result)")
            // Each exchange started reached PHP-FPM, which runs the script to its end after the
            // abort: no more of them than the stream limit (100), not one per reset (~480 before).
            let started = o.accessLog.split(separator: "\n").filter { $0.contains("/sleep.php") }.count
            #expect(started > 0 && started <= 101, "\(started) sleep.php exchanges started")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        @Test func continuationFlood() async throws {
            let o = try await attack("continuation-flood")
            // nghttp2's max_continuations: the connection ends (without GOAWAY in 1.52).
            #expect(Self.closed(o.result) || Self.goAway(o.result) != nil, "\(o.result)")
            #expect(Self.statuses(o.result).isEmpty, "\(o.result)")
            #expect(Self.outcomes(o.result).allSatisfy { $0.contains("closed=True") || !$0.contains("goaway=None") }, "\(o.result)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        @Test func hpackBomb() async throws {
            let o = try await attack("hpack-bomb")
            // max_header_size (32k) caps the decoded list: 431, or the stream/connection ends.
            let rejected =
                Self.statuses(o.result)["431"] != nil || !(o.result["rst"] as? [String: Any] ?? [:]).isEmpty
                || Self.goAway(o.result) != nil
            #expect(rejected, "\(o.result)")
            #expect(Self.statuses(o.result)["200"] == nil, "\(o.result)")
            #expect(Self.outcomes(o.result).allSatisfy { !$0.contains("'200'") && $0 != "goaway=None closed=False statuses=[] rst=[]" }, "\(o.result)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        @Test func contentLengthMismatch() async throws {
            let o = try await attack("cl-mismatch")
            // RST_STREAM PROTOCOL_ERROR (nghttp2's HTTP messaging checks) or a 400; never the
            // 20 bytes forwarded as a 10-byte body.
            #expect(Self.rst(o.result, 1) > 0 || Self.statuses(o.result)["400"] != nil, "\(o.result)")
            #expect(Self.statuses(o.result)["200"] == nil, "\(o.result)")
            #expect((o.result["response_body_bytes"] as? Int) == 0, "\(o.result)")
            #expect(Self.outcomes(o.result).allSatisfy { $0.contains("rst=['1']") || $0.contains("'400'") }, "\(o.result)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        /// 20 downloads of 8 MiB on a connection whose stream windows never open: each stream's
        /// response is spooled within the connection's limits, and with no byte taken for a whole
        /// `send_timeout` window the streams are reset (before: held for ever, memory and disk
        /// growing per stream).
        @Test func zeroWindowStreamsAreReset() async throws {
            let o = try await attack(
                "zero-window", seconds: 10, repeat: false,
                serverINI: "send_timeout = 1s\nconnection_buffer = 1m\nconnection_spill = 8m")
            let resets = (o.result["rst"] as? [String: Int] ?? [:]).values.reduce(0, +)
            #expect(resets == 20, "\(o.result)")
            #expect((o.result["reset_after"] as? Double ?? 99) < 9, "\(o.result)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        /// Two streams' bodies use the connection's whole allowance (`connection_spill = 64k`,
        /// `body_buffer_size = 0`: nothing in memory) and a third stream's body finds no room:
        /// it is refused with RST_STREAM(REFUSED_STREAM), which tells the client a retry is safe,
        /// and the connection goes on: the first two bodies reach the script whole and a GET on
        /// the same connection is answered (before: 503 and RST_STREAM(NO_ERROR)).
        @Test func streamBeyondTheConnectionAllowanceIsRefused() async throws {
            let o = try await attack(
                "refused-body", seconds: 8, repeat: false, serverINI: "body_buffer_size = 0\nconnection_spill = 64k")
            #expect(o.result["refused_rst"] as? Int == 7, "\(o.result)")
            #expect(o.result["refused_status"] as? String == nil, "\(o.result)")
            // JSON nulls come back as NSNull: read each element on its own.
            #expect((o.result["filling_statuses"] as? [Any])?.map { $0 as? String } == ["200", "200"], "\(o.result)")
            #expect((o.result["filling_rst"] as? [Any])?.map { $0 as? Int } == [nil, nil], "\(o.result)")
            #expect(o.result["get_status"] as? String == "200", "\(o.result)")
            #expect(Self.goAway(o.result) == nil && !Self.closed(o.result), "\(o.result)")
            #expect(o.accessLog.contains("\"POST /post.php HTTP/2.0\" 503 0"), "\(o.accessLog)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }

        @Test func settingsFlood() async throws {
            let o = try await attack("settings-flood")
            // nghttp2's max_outbound_ack (1000): the connection ends.
            #expect(Self.closed(o.result) || Self.goAway(o.result) == 11, "\(o.result)")
            let acks = o.result["settings_acks"] as? Int ?? 0
            let sent = o.result["settings_sent"] as? Int ?? 0
            #expect(acks < sent, "\(o.result)")
            #expect(Self.outcomes(o.result).allSatisfy { $0.contains("closed=True") || $0.contains("goaway=11") }, "\(o.result)")
            #expect(o.normal.allSatisfy { $0 == 200 }, "\(o.normal)")
        }
    }
}

/// Largest value seen, from any task.
private final class Peak: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Int
    init(_ start: Int) { current = start }
    func see(_ v: Int) { lock.withLock { current = max(current, v) } }
    var value: Int { lock.withLock { current } }
}

/// A python3 that imports h2 (Debian's python3-h2 installs it for /usr/bin/python3).
enum H2Python {
    static let path: String? = {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: candidate)
            process.arguments = ["-c", "import h2, hpack"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            process.waitUntilExit()
            if process.terminationStatus == 0 { return candidate }
        }
        return nil
    }()
}
