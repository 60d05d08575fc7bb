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
        _ = pool.requestArrived(r(1), now: at(0))
        #expect(pool.connectionFailed(c(0), refused, now: at(0)) == [.scheduleBackoffTimer(backend: 0, at: at(100))])
        // No reconnect before the timer: the backend is backing off.
        #expect(pool.requestArrived(r(2), now: at(50)) == [.scheduleQueueTimer(r(2), at: at(5050))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(99)) == [])
        #expect(pool.backoffTimerFired(backend: 0, now: at(100)) == [.createConnection(c(1), backend: 0)])
        #expect(pool.connectionFailed(c(1), refused, now: at(100)) == [.scheduleBackoffTimer(backend: 0, at: at(225))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(225)) == [.createConnection(c(2), backend: 0)])
        // Success resets the growth.
        #expect(pool.connectionEstablished(c(2), now: at(230)) == [.cancelQueueTimer(r(1)), .execute(r(1), on: c(2))])
        _ = pool.connectionClosed(c(2), now: at(240))
        #expect(pool.requestFailed(r(1), error: .closedEarly, replayable: false, now: at(240)).count == 1)
        // r2 got a connection on the close; it fails too, and the next backoff starts from 100 ms again.
        #expect(pool.connectionFailed(c(3), refused, now: at(300)) == [.scheduleBackoffTimer(backend: 0, at: at(400))])
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
        _ = pool.requestArrived(r(1), now: at(0))
        #expect(pool.connectionFailed(c(0), refused, now: at(0)) == [.scheduleBackoffTimer(backend: 0, at: at(100))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(100)) == [.createConnection(c(1), backend: 0)])
        #expect(pool.connectionFailed(c(1), refused, now: at(100)) == [.scheduleBackoffTimer(backend: 0, at: at(225))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(225)) == [.createConnection(c(2), backend: 0)])
        // Third failure within 10 s: down until 10 s later; one timer covers backoff and down period.
        #expect(pool.connectionFailed(c(2), refused, now: at(225)) == [.scheduleBackoffTimer(backend: 0, at: at(10_225))])
        #expect(pool.counters.backends[0].isDown)
        #expect(pool.counters.backends[0].markedDown == 1)
        #expect(pool.requestArrived(r(2), now: at(300)) == [.scheduleQueueTimer(r(2), at: at(5300))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(400)) == [])  // stale backoff timer: still down
        // Back after failTimeout: the waiters get connections.
        #expect(
            pool.backoffTimerFired(backend: 0, now: at(10_225)) == [
                .createConnection(c(3), backend: 0), .createConnection(c(4), backend: 0),
            ]
        )
        #expect(!pool.counters.backends[0].isDown)
        // On probation: one more failure takes it out again at once.
        #expect(pool.connectionFailed(c(3), refused, now: at(10_300)) == [.scheduleBackoffTimer(backend: 0, at: at(20_300))])
        #expect(pool.counters.backends[0].markedDown == 2)
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
        #expect(pool.connectionFailed(c(1), refused, now: at(10_000)) == [.scheduleBackoffTimer(backend: 0, at: at(10_125))])
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

    @Test func allBackendsDownMeansRequestsWaitUntilOneComesBack() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.maxFails = 1 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionFailed(c(0), refused, now: at(0))
        #expect(pool.counters.backends[0].isDown)
        #expect(pool.requestArrived(r(2), now: at(1)) == [.scheduleQueueTimer(r(2), at: at(5001))])
        // Whoever is still waiting when the backend is back gets a connection.
        #expect(pool.queueTimerFired(r(1), now: at(5000)) == [.failRequest(r(1), .backend(.connectFailed("refused")))])
        #expect(pool.backoffTimerFired(backend: 0, now: at(4000)) == [])
        var longWait = makePool([Pool.BackendSettings(maxConnections: 1)]) {
            $0.maxFails = 1
            $0.queueTimeout = .seconds(30)
        }
        _ = longWait.requestArrived(r(1), now: at(0))
        _ = longWait.connectionFailed(c(0), refused, now: at(0))
        #expect(longWait.backoffTimerFired(backend: 0, now: at(10_000)) == [.createConnection(c(1), backend: 0)])
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
