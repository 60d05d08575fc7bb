import Foundation
import Testing

/// One PHP-FPM and one front end, shared by the whole serialized integration suite and kept
/// until the test process exits. A front end that died (a crash in one test) is restarted for
/// the next test, so that one crash does not fail every later test.
final class Fixture: @unchecked Sendable {
    let dir: TempDir
    let php: PHPFPM
    private(set) var front: any FrontEnd

    private init(dir: TempDir, php: PHPFPM, front: any FrontEnd) {
        self.dir = dir
        self.php = php
        self.front = front
    }

    private static let holder = Holder()

    /// The shared fixture with a running front end.
    static func shared() async throws -> Fixture { try await holder.get() }

    /// A separate front end with other options (its own port and config) on the shared PHP-FPM,
    /// or on `backendSocket` when given (e.g. a socket nobody listens on).
    static func extraFrontEnd(
        backendSocket: String? = nil,
        configure: (inout FrontEndOptions) -> Void = { _ in }
    ) async throws -> any FrontEnd {
        let fixture = try await shared()
        var options = FrontEndOptions(backendSocket: backendSocket ?? fixture.php.socketPath)
        configure(&options)
        return try await startFrontEnd(options, in: fixture.dir)
    }

    private actor Holder {
        private var fixture: Fixture?
        private var failure: (any Error)?

        func get() async throws -> Fixture {
            if let failure { throw failure }
            if let fixture {
                if !fixture.front.isRunning {
                    Issue.record("front end (pid \(fixture.front.pid)) died; its log:\n\(fixture.front.log().suffix(4000))")
                    fixture.front = try await startFrontEnd(
                        FrontEndOptions(backendSocket: fixture.php.socketPath), in: fixture.dir)
                }
                return fixture
            }
            do {
                let dir = try TempDir()
                let php = try await PHPFPM(dir: dir)
                let front = try await startFrontEnd(FrontEndOptions(backendSocket: php.socketPath), in: dir)
                let made = Fixture(dir: dir, php: php, front: front)
                fixture = made
                return made
            } catch {
                failure = error
                throw error
            }
        }
    }
}

/// Shortcuts for tests.
extension Fixture {
    func url(_ path: String) -> String { front.url(path) }
    var port: Int { front.port }

    func curl(_ path: String, _ extra: [String] = [], discardBody: Bool = false) async throws -> CurlResponse {
        try await Curl.run(extra + [url(path)], discardBody: discardBody)
    }

    /// Sends `request` on a fresh connection and reads `responses` final responses (or until
    /// close with `untilClose`).
    func raw(
        _ request: String,
        responses: Int = 1,
        untilClose: Bool = false,
        headRequests: Set<Int> = [],
        timeout: Duration = .seconds(5)
    ) throws -> RawReply {
        let conn = try RawHTTP(port: port)
        conn.send(request)
        return untilClose
            ? conn.readUntilClose(timeout: timeout, headRequests: headRequests)
            : conn.readResponses(responses, headRequests: headRequests, timeout: timeout)
    }
}

extension Trait where Self == ConditionTrait {
    /// For behaviour that fcgiproxy defines and nginx (FRONT=nginx) does differently.
    /// `ALL_TESTS=1` runs them against nginx anyway (to see that they do fail there).
    static func fcgiproxyOnly(_ why: Comment) -> Self {
        .enabled(if: FrontKind.current == .fcgiproxy || ProcessInfo.processInfo.environment["ALL_TESTS"] == "1", why)
    }
}

/// Root of every integration test: serialized, so that the shared PHP-FPM and front end see
/// one test at a time (and timing/RSS tests are not disturbed).
@Suite(.serialized) struct Integration {}
