import NIOCore
import Testing

@testable import FastCGIClient

@Suite struct FastCGIPoolStateMachineHealthTests {
    private let refused = Pool.ConnectFailure.failed(.connectFailed("refused"))

    @Test func backoffGrowsByAQuarterPerFailureAndIsCapped() {
        let pool = makePool()
        #expect(pool.backoffDelay(failedAttempts: 1) == .milliseconds(100))
        #expect(pool.backoffDelay(failedAttempts: 2) == .microseconds(125_000))
        #expect(pool.backoffDelay(failedAttempts: 3) == .nanoseconds(156_250_000))
        #expect(pool.backoffDelay(failedAttempts: 11) > .milliseconds(900))
        #expect(pool.backoffDelay(failedAttempts: 11) < .milliseconds(1000))
        #expect(pool.backoffDelay(failedAttempts: 30) == .seconds(10))
        #expect(pool.backoffDelay(failedAttempts: 10_000) == .seconds(10))
    }

    @Test func jitterIsInjectable() {
        let pool = makePool { $0.backoffJitter = { $0 + .milliseconds(7) } }
        #expect(pool.backoffDelay(failedAttempts: 1) == .milliseconds(107))
        let random = Pool.PoolSettings.randomJitter(percent: 3)
        for _ in 0..<20 {
            let delay = random(.milliseconds(100))
            #expect(delay >= .milliseconds(97) && delay <= .milliseconds(103))
        }
    }

    @Test func consecutiveConnectFailuresBackOffLongerEachTime() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.maxFails = 0 }
        let failed = Pool.FailureReason.backend(.connectFailed("refused"))
        _ = pool.requestArrived(r(1), now: at(0))
        // Refused, and nothing else can serve r1: it fails now, not at its queue timeout.
        #expect(
            pool.connectionFailed(c(0), refused, now: at(0)) == [
                .scheduleBackoffTimer(backend: 0, at: at(100)), .cancelQueueTimer(r(1)), .failRequest(r(1), failed),
            ]
        )
        // The only backend is backing off: the next request probes it anyway.
        #expect(pool.requestArrived(r(2), now: at(50)) == [.scheduleQueueTimer(r(2), at: at(5050)), .createConnection(c(1), backend: 0)])
        #expect(
            pool.connectionFailed(c(1), refused, now: at(60)) == [
                .scheduleBackoffTimer(backend: 0, at: at(185)), .cancelQueueTimer(r(2)), .failRequest(r(2), failed),
            ]
        )
        #expect(pool.backoffTimerFired(backend: 0, now: at(184)) == [])
        // Success resets the growth.
        #expect(pool.requestArrived(r(3), now: at(70)) == [.scheduleQueueTimer(r(3), at: at(5070)), .createConnection(c(2), backend: 0)])
        #expect(pool.connectionEstablished(c(2), now: at(80)) == [.cancelQueueTimer(r(3)), .execute(r(3), on: c(2))])
        _ = pool.requestFinished(r(3), now: at(90))
        _ = pool.connectionClosed(c(2), now: at(95))
        #expect(pool.requestArrived(r(4), now: at(100)) == [.scheduleQueueTimer(r(4), at: at(5100)), .createConnection(c(3), backend: 0)])
        #expect(
            pool.connectionFailed(c(3), refused, now: at(100)) == [
                .scheduleBackoffTimer(backend: 0, at: at(200)), .cancelQueueTimer(r(4)), .failRequest(r(4), failed),
            ]
        )
    }

    @Test func waitersGoToAnotherBackendWhenAConnectFails() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1), Pool.BackendSettings(maxConnections: 1)])
        #expect(pool.requestArrived(r(1), now: at(0)) == [.scheduleQueueTimer(r(1), at: at(5000)), .createConnection(c(0), backend: 0)])
        #expect(
            pool.connectionFailed(c(0), refused, now: at(1)) == [
                .scheduleBackoffTimer(backend: 0, at: at(101)), .createConnection(c(1), backend: 1),
            ]
        )
        #expect(pool.connectionEstablished(c(1), now: at(2)) == [.cancelQueueTimer(r(1)), .execute(r(1), on: c(1))])
    }

    @Test func maxFailsWithinFailTimeoutTakeABackendDownUntilFailTimeoutPasses() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 4)])
        let failed = Pool.FailureReason.backend(.connectFailed("refused"))
        _ = pool.requestArrived(r(1), now: at(0))
        #expect(
            pool.connectionFailed(c(0), refused, now: at(0)) == [
                .scheduleBackoffTimer(backend: 0, at: at(100)), .cancelQueueTimer(r(1)), .failRequest(r(1), failed),
            ]
        )
        #expect(pool.backoffTimerFired(backend: 0, now: at(100)) == [])
        _ = pool.requestArrived(r(2), now: at(100))
        _ = pool.connectionFailed(c(1), refused, now: at(100))
        _ = pool.backoffTimerFired(backend: 0, now: at(225))
        _ = pool.requestArrived(r(3), now: at(225))
        // Third failure within 10 s: down until 10 s later; one timer covers backoff and down period.
        #expect(
            pool.connectionFailed(c(2), refused, now: at(225)) == [
                .scheduleBackoffTimer(backend: 0, at: at(10_225)), .cancelQueueTimer(r(3)), .failRequest(r(3), failed),
            ]
        )
        #expect(pool.counters.backends[0].isDown)
        #expect(pool.counters.backends[0].markedDown == 1)
        // Down, and the pool's only backend: each request probes it, one connect at a time.
        #expect(pool.requestArrived(r(4), now: at(300)) == [.scheduleQueueTimer(r(4), at: at(5300)), .createConnection(c(3), backend: 0)])
        #expect(pool.requestArrived(r(5), now: at(300)) == [.scheduleQueueTimer(r(5), at: at(5300))])
        // The probe is refused: both fail at once, the youngest first.
        #expect(
            pool.connectionFailed(c(3), refused, now: at(310)) == [
                .scheduleBackoffTimer(backend: 0, at: at(10_225)),
                .cancelQueueTimer(r(5)), .failRequest(r(5), failed), .cancelQueueTimer(r(4)), .failRequest(r(4), failed),
            ]
        )
        #expect(pool.backoffTimerFired(backend: 0, now: at(400)) == [])  // stale backoff timer: still down
        #expect(pool.counters.backends[0].markedDown == 1)
        // Back after failTimeout, on probation: one more failure takes it out again at once.
        #expect(pool.backoffTimerFired(backend: 0, now: at(10_225)) == [])
        #expect(!pool.counters.backends[0].isDown)
        #expect(pool.requestArrived(r(6), now: at(10_300)) == [.scheduleQueueTimer(r(6), at: at(15_300)), .createConnection(c(4), backend: 0)])
        _ = pool.connectionFailed(c(4), refused, now: at(10_300))
        #expect(pool.counters.backends[0].isDown)
        #expect(pool.counters.backends[0].markedDown == 2)
    }

    @Test func aProbeThatConnectsBringsTheBackendBackForEveryWaiter() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 4)]) { $0.maxFails = 1 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionFailed(c(0), refused, now: at(0))
        #expect(pool.counters.backends[0].isDown)
        #expect(pool.requestArrived(r(2), now: at(100)) == [.scheduleQueueTimer(r(2), at: at(5100)), .createConnection(c(1), backend: 0)])
        #expect(pool.requestArrived(r(3), now: at(100)) == [.scheduleQueueTimer(r(3), at: at(5100))])
        // PHP-FPM is back: the probe serves the oldest waiter, and the rest get connections at once.
        #expect(
            pool.connectionEstablished(c(1), now: at(110)) == [
                .cancelQueueTimer(r(2)), .execute(r(2), on: c(1)), .createConnection(c(2), backend: 0),
            ]
        )
        #expect(!pool.counters.backends[0].isDown)
    }

    @Test func aWaiterWithARunningRequestAheadOfItOutlivesAFailedConnect() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)]) { $0.maxFails = 0 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        #expect(pool.requestArrived(r(2), now: at(1)) == [.scheduleQueueTimer(r(2), at: at(5001)), .createConnection(c(1), backend: 0)])
        // r1's slot comes back: r2 keeps waiting for it.
        #expect(pool.connectionFailed(c(1), refused, now: at(2)) == [.scheduleBackoffTimer(backend: 0, at: at(102))])
        #expect(pool.requestFinished(r(1), now: at(3)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
    }

    @Test func aDownBackendIsSkippedByTheBalancerUntilItComesBack() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 4), Pool.BackendSettings(maxConnections: 4)]) {
            $0.maxFails = 1
        }
        #expect(pool.requestArrived(r(1), now: at(0)) == [.scheduleQueueTimer(r(1), at: at(5000)), .createConnection(c(0), backend: 0)])
        #expect(
            pool.connectionFailed(c(0), refused, now: at(0)) == [
                .scheduleBackoffTimer(backend: 0, at: at(10_000)), .createConnection(c(1), backend: 1),
            ]
        )
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(2))
        for number in 2...7 {
            #expect(pool.roundTrip(r(number), now: at(3)) == 1)
        }
        _ = pool.backoffTimerFired(backend: 0, now: at(10_000))
        let next = [pool.roundTrip(r(8), now: at(10_001)), pool.roundTrip(r(9), now: at(10_001))]
        #expect(next.contains(0))
    }

    @Test func failuresSpreadWiderThanFailTimeoutDoNotTakeTheBackendDown() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.maxFails = 2 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionFailed(c(0), refused, now: at(0))
        _ = pool.backoffTimerFired(backend: 0, now: at(100))
        _ = pool.requestArrived(r(2), now: at(9_000))
        #expect(
            pool.connectionFailed(c(1), refused, now: at(10_000)) == [
                .scheduleBackoffTimer(backend: 0, at: at(10_125)), .cancelQueueTimer(r(2)),
                .failRequest(r(2), .backend(.connectFailed("refused"))),
            ]
        )
        #expect(!pool.counters.backends[0].isDown)
    }

    @Test func aSuccessBringsADownBackendBackAtOnce() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)]) { $0.maxFails = 1 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.requestArrived(r(2), now: at(1))  // c1
        _ = pool.connectionFailed(c(1), refused, now: at(2))
        #expect(pool.counters.backends[0].isDown)
        // r1 was already running on c0 and completes: the backend works after all.
        #expect(pool.requestFinished(r(1), now: at(3)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
        #expect(!pool.counters.backends[0].isDown)
    }

    @Test func aDownBackendsIdleConnectionsAreClosed() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)]) { $0.maxFails = 1 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(1))  // c0 idle
        #expect(
            pool.requestFailed(r(2), error: .readTimeout, replayable: false, now: at(2)) == [
                .closeConnection(c(1)), .cancelIdleTimer(c(0)), .closeConnection(c(0)),
                .scheduleBackoffTimer(backend: 0, at: at(10_002)), .failRequest(r(2), .backend(.readTimeout)),
            ]
        )
        #expect(pool.counters.pool.idleConnections == 0)
    }

    @Test func allBackendsDownMeansEachRequestProbesTheOneThatComesBackFirst() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1), Pool.BackendSettings(maxConnections: 1)]) {
            $0.maxFails = 1
        }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionFailed(c(0), refused, now: at(0))  // backend 0 down until 10 000; r1 to backend 1
        _ = pool.connectionFailed(c(1), refused, now: at(5))  // backend 1 down until 10 005; r1 fails
        #expect(pool.counters.backends[0].isDown && pool.counters.backends[1].isDown)
        #expect(pool.requestArrived(r(2), now: at(6)) == [.scheduleQueueTimer(r(2), at: at(5006)), .createConnection(c(2), backend: 0)])
    }

    @Test func anOverloadedBackendIsNotAFailure() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1), Pool.BackendSettings(maxConnections: 1)]) {
            $0.maxFails = 1
        }
        _ = pool.requestArrived(r(1), now: at(0))
        // EAGAIN: back off (no connect storm into a full backlog) and try the other backend now.
        #expect(
            pool.connectionFailed(c(0), .overloaded, now: at(0)) == [
                .scheduleBackoffTimer(backend: 0, at: at(100)), .createConnection(c(1), backend: 1),
            ]
        )
        #expect(!pool.counters.backends[0].isDown)
        #expect(pool.counters.backends[0].errors.connectOverloaded == 1)
        // When nothing else works, the waiter times out as overloaded: 503, not 502.
        #expect(pool.connectionFailed(c(1), .overloaded, now: at(10)) == [.scheduleBackoffTimer(backend: 1, at: at(110))])
        #expect(pool.queueTimerFired(r(1), now: at(5000)) == [.failRequest(r(1), .overloaded)])
        #expect(Pool.FailureReason.overloaded.httpStatus == 503)
    }

    @Test func backendOverloadedEndRequestIsRetriedElsewhereWithoutAFailCount() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1), Pool.BackendSettings(maxConnections: 1)]) {
            $0.maxFails = 1
        }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        // END_REQUEST with OVERLOADED: the connection is fine and parks; r1 goes to backend 1.
        #expect(
            pool.requestFailed(r(1), error: .rejected(protocolStatus: 2), replayable: true, now: at(1)) == [
                .scheduleIdleTimer(c(0), at: at(60_001)), .scheduleQueueTimer(r(1), at: at(5001)),
                .createConnection(c(1), backend: 1),
            ]
        )
        #expect(!pool.counters.backends[0].isDown)
    }
}
