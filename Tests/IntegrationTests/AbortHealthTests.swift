import Foundation
import Testing

extension Integration {
    /// Clients that leave are not the backend's fault: aborting their requests (which closes a
    /// connection of their own) must not count against the backend's health.
    @Suite(.fcgiproxyOnly("pool health is fcgiproxy's")) struct AbortHealth {
        @Test func clientsLeavingDoNotTakeTheBackendOut() async throws {
            let front = try await Fixture.extraFrontEnd {
                $0.extraServerINI = "threads = 1"
                $0.extraPoolINI = "max_fails = 1\nfail_timeout = 30s\nqueue_timeout = 3s"
            }
            defer { front.stop() }
            // Three clients give up on slow requests; the proxy closes their backend connections.
            async let a = Curl.run(["--max-time", "0.5", front.url("/sleep.php?s=2")])
            async let b = Curl.run(["--max-time", "0.5", front.url("/sleep.php?s=2")])
            async let c = Curl.run(["--max-time", "0.5", front.url("/sleep.php?s=2")])
            let gaveUp = try await [a, b, c]
            #expect(gaveUp.allSatisfy { $0.exitCode == 28 }, "\(gaveUp.map(\.exitCode))")
            try await Task.sleep(for: .milliseconds(200))
            // With the aborts counted as failures, max_fails = 1 would have taken the only
            // backend out: this request would wait out the queue and get 502/503.
            let clock = ContinuousClock()
            let start = clock.now
            let ok = try await Curl.run([front.url("/status.php?code=200")])
            #expect(ok.status == 200)
            #expect(clock.now - start < .seconds(2), "took \(clock.now - start)")
        }
    }
}
