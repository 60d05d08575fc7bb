import Testing

@testable import ProxyCore

/// When a slow client's response is spooled, paused or aborted, without a loop or a disk.
@Suite struct ResponseSpoolPolicyTests {
    private func after(
        full: String? = nil, multiplexed: Bool, loopBacklogged: Bool = false, spoolBacklogged: Bool = false,
        diskPaused: Bool = false
    ) -> ResponseSpoolPolicy.Action {
        ResponseSpoolPolicy.afterAppend(
            fullScope: full, multiplexed: multiplexed, loopBacklogged: loopBacklogged,
            spoolBacklogged: spoolBacklogged, diskPaused: diskPaused)
    }

    @Test func onlyAnUnbufferedConnectionOfItsOwnPausesInsteadOfSpooling() {
        #expect(ResponseSpoolPolicy.backpressure(multiplexed: false, responseBuffering: false) == .pauseBackend)
        #expect(ResponseSpoolPolicy.backpressure(multiplexed: false, responseBuffering: true) == .spool)
        // A shared connection cannot pause for one client, whatever the route says.
        #expect(ResponseSpoolPolicy.backpressure(multiplexed: true, responseBuffering: false) == .spool)
        #expect(ResponseSpoolPolicy.backpressure(multiplexed: true, responseBuffering: true) == .spool)
    }

    @Test func aFullSpoolPausesAConnectionOfItsOwnAndAbortsAMultiplexedRequest() {
        #expect(after(full: "request", multiplexed: false) == .pauseBackendUntilDrained)
        guard case .abort(let reason) = after(full: "loop", multiplexed: true) else {
            Issue.record("a multiplexed request at its spool limit must be aborted")
            return
        }
        #expect(reason.contains("loop spool limit"))
    }

    @Test func aDiskBehindPausesAConnectionOfItsOwnOnce() {
        #expect(after(multiplexed: false, spoolBacklogged: true) == .pauseBackendForDisk)
        #expect(after(multiplexed: false, spoolBacklogged: true, diskPaused: true) == .keepGoing)
        #expect(after(multiplexed: false, loopBacklogged: true) == .keepGoing)
    }

    @Test func aMultiplexedRequestIsAbortedOnlyWhenTheLoopsSpoolsAreBehind() {
        // One spool behind its disk is normal next to a fast backend.
        #expect(after(multiplexed: true, spoolBacklogged: true) == .keepGoing)
        guard case .abort = after(multiplexed: true, loopBacklogged: true) else {
            Issue.record("the loop's spools behind their disk must abort a multiplexed request")
            return
        }
    }

    @Test func aSpoolThatHeldTheBytesWithinItsDiskGoesOn() {
        #expect(after(multiplexed: false) == .keepGoing)
        #expect(after(multiplexed: true) == .keepGoing)
    }
}
