import NIOCore
import Testing

@testable import ProxyCore

/// The progress rules with explicit times: what each verdict needs, and when the next check is.
struct ExchangeClockTests {
    private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func at(_ seconds: Double) -> NIODeadline {
        t0 + .nanoseconds(Int64(seconds * 1e9))
    }

    private func clock(minBodyRate: Int = 1024, minSendRate: Int = 1024) -> ExchangeClock {
        ExchangeClock(rules: .init(bodyTimeout: .seconds(60), minBodyRate: minBodyRate, sendWindow: .seconds(60), minSendRate: minSendRate))
    }

    @Test func nothingRunsWithoutABodyOrASlowClient() {
        var clock = clock()
        #expect(clock.check(at: at(1000), bodyReceived: 0, taken: 0, waiting: true) == .keepGoing(next: nil))
    }

    @Test func aBodyThatStopsTimesOutAfterBodyTimeout() {
        var clock = clock()
        #expect(clock.bodyStarted(at: at(0), received: 0, bodyTimeout: .seconds(10)) == at(10))
        // Steady bytes until 5 s (the rate window is the 10 s timeout too).
        clock.bodyArrived(at: at(5))
        #expect(clock.check(at: at(10), bodyReceived: 20_000, taken: 0, waiting: false) == .keepGoing(next: at(15)))
        #expect(clock.check(at: at(15), bodyReceived: 20_000, taken: 0, waiting: false) == .bodyTimedOut)
    }

    @Test func aTrickleIsTooSlowAtTheEndOfItsWindow() {
        var clock = clock()
        _ = clock.bodyStarted(at: at(0), received: 0, bodyTimeout: .seconds(60))
        var received = 0
        for second in stride(from: 5.0, through: 55.0, by: 5.0) {
            received += 1
            clock.bodyArrived(at: at(second))
        }
        guard case .bodyTooSlow(let bytes, let seconds) = clock.check(at: at(60), bodyReceived: received, taken: 0, waiting: false)
        else {
            Issue.record("the trickle passed")
            return
        }
        #expect(bytes == 11 && seconds == 60)
        // The same trickle with the rate rule off only has to keep its pauses short.
        var lenient = self.clock(minBodyRate: 0)
        _ = lenient.bodyStarted(at: at(0), received: 0, bodyTimeout: .seconds(60))
        lenient.bodyArrived(at: at(55))
        #expect(lenient.check(at: at(60), bodyReceived: 11, taken: 0, waiting: false) == .keepGoing(next: at(115)))
    }

    @Test func aPausedBodyNeverTimesOutAndStartsAFreshWindow() {
        var clock = clock()
        _ = clock.bodyStarted(at: at(0), received: 0, bodyTimeout: .seconds(60))
        clock.bodyPaused()
        #expect(clock.bodyIsPaused)
        #expect(clock.check(at: at(500), bodyReceived: 10, taken: 0, waiting: false) == .keepGoing(next: at(560)))
        #expect(clock.bodyResumed(at: at(500), received: 10) == at(560))
        #expect(clock.bodyResumed(at: at(501), received: 10) == nil, "not paused any more")
        // Judged on the new window only: 100 000 bytes since the resume.
        clock.bodyArrived(at: at(559))
        #expect(clock.check(at: at(560), bodyReceived: 100_010, taken: 0, waiting: false) == .keepGoing(next: at(619)))
        clock.bodyEnded()
        #expect(clock.check(at: at(10_000), bodyReceived: 100_010, taken: 0, waiting: false) == .keepGoing(next: nil))
    }

    @Test func aClientThatTakesTooLittleIsTooSlow() {
        var clock = clock()
        #expect(clock.clientFellBehind(at: at(0), taken: 1000) == at(60))
        #expect(clock.clientFellBehind(at: at(1), taken: 1000) == nil, "one window at a time")
        // 61 440 bytes a minute is the rate: enough, so a new window starts.
        #expect(clock.check(at: at(60), bodyReceived: 0, taken: 1000 + 61_440, waiting: true) == .keepGoing(next: at(120)))
        #expect(clock.check(at: at(120), bodyReceived: 0, taken: 62_440 + 100, waiting: true) == .clientTooSlow(taken: 100, seconds: 60))
    }

    @Test func aClientThatCaughtUpClosesTheWindow() {
        var clock = clock()
        _ = clock.clientFellBehind(at: at(0), taken: 0)
        #expect(clock.check(at: at(60), bodyReceived: 0, taken: 5, waiting: false) == .keepGoing(next: nil))
        // Falling behind again opens a new one.
        #expect(clock.clientFellBehind(at: at(70), taken: 5) == at(130))
    }

    @Test func theNextCheckIsTheEarlierOfBothClocks() {
        var clock = clock()
        _ = clock.bodyStarted(at: at(0), received: 0, bodyTimeout: .seconds(60))
        _ = clock.clientFellBehind(at: at(10), taken: 0)
        clock.bodyArrived(at: at(30))
        #expect(clock.check(at: at(40), bodyReceived: 100_000, taken: 0, waiting: true) == .keepGoing(next: at(60)))
        #expect(clock.check(at: at(60), bodyReceived: 100_000, taken: 0, waiting: true) == .keepGoing(next: at(70)))
    }
}
