import NIOCore
import Testing

@testable import FastCGIClient

@Suite struct FastCGIPoolStateMachineQueueTests {
    @Test func requestsBeyondTheQueueAreRejectedAsQueueFull() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.queueSize = 2 }
        _ = pool.requestArrived(r(1), now: at(0))  // covered by the connect for c0: not counted
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.requestArrived(r(3), now: at(0))
        #expect(pool.counters.pool.queueDepth == 2)
        #expect(pool.requestArrived(r(4), now: at(0)) == [.failRequest(r(4), .queueFull)])
        #expect(Pool.FailureReason.queueFull.httpStatus == 503)
        #expect(pool.counters.pool.errors.queueFull == 1)
        #expect(pool.counters.pool.waiting == 3)
    }

    @Test func aZeroQueueStillLetsARequestWaitForItsOwnConnect() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.queueSize = 0 }
        #expect(pool.requestArrived(r(1), now: at(0)) == [.scheduleQueueTimer(r(1), at: at(5000)), .createConnection(c(0), backend: 0)])
        #expect(pool.requestArrived(r(2), now: at(0)) == [.failRequest(r(2), .queueFull)])
    }

    @Test func aWaiterTimesOutWithQueueTimeoutWhenNoConnectFailed() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.requestArrived(r(2), now: at(1000))
        // Early or repeated firings are ignored.
        #expect(pool.queueTimerFired(r(2), now: at(5999)) == [])
        #expect(pool.queueTimerFired(r(2), now: at(6000)) == [.failRequest(r(2), .queueTimeout)])
        #expect(pool.queueTimerFired(r(2), now: at(6001)) == [])
        #expect(Pool.FailureReason.queueTimeout.httpStatus == 503)
        #expect(pool.counters.pool.errors.queueTimeout == 1)
        #expect(pool.counters.pool.waiting == 0)
    }

    @Test func aWaiterTimesOutWithTheLastConnectError() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        // r1's slot will come back, so r2 waits for it rather than failing with the refused connect.
        #expect(
            pool.connectionFailed(c(1), .failed(.connectFailed("refused")), now: at(10)) == [
                .scheduleBackoffTimer(backend: 0, at: at(110))
            ]
        )
        let reason = Pool.FailureReason.backend(.connectFailed("refused"))
        #expect(pool.queueTimerFired(r(2), now: at(5000)) == [.failRequest(r(2), reason)])
        #expect(reason.httpStatus == 502)
    }

    @Test func aSuccessfulConnectClearsTheLastConnectError() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionFailed(c(0), .failed(.connectFailed("refused")), now: at(10))
        #expect(pool.requestArrived(r(2), now: at(20)) == [.scheduleQueueTimer(r(2), at: at(5020)), .createConnection(c(1), backend: 0)])
        _ = pool.connectionEstablished(c(1), now: at(120))
        _ = pool.requestArrived(r(3), now: at(130))
        #expect(pool.queueTimerFired(r(3), now: at(5130)) == [.failRequest(r(3), .queueTimeout)])
    }

    @Test func aCancelledWaiterLeavesTheQueue() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.requestArrived(r(2), now: at(2))
        _ = pool.requestArrived(r(3), now: at(3))
        #expect(pool.cancelQueuedRequest(r(2), now: at(4)) == [.cancelQueueTimer(r(2))])
        #expect(pool.cancelQueuedRequest(r(1), now: at(4)) == [])  // running: the caller aborts it instead
        #expect(pool.requestFinished(r(1), now: at(5)) == [.cancelQueueTimer(r(3)), .execute(r(3), on: c(0))])
        #expect(pool.counters.pool.aborts == 1)
    }

    @Test func aFreeSlotServesOlderWaitersBeforeANewcomer() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2), Pool.BackendSettings(maxConnections: 2)])
        #expect(pool.roundTrip(r(1), now: at(0)) == 0)
        #expect(pool.roundTrip(r(2), now: at(0)) == 1)
        #expect(pool.requestArrived(r(3), now: at(1)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
        #expect(pool.requestArrived(r(4), now: at(1)) == [.cancelIdleTimer(c(1)), .execute(r(4), on: c(1))])
        _ = pool.requestFinished(r(4), now: at(2))
        // Round robin sends r5 to backend 0, which must connect, although c1 on backend 1 is idle.
        #expect(pool.requestArrived(r(5), now: at(3)) == [.scheduleQueueTimer(r(5), at: at(5003)), .createConnection(c(2), backend: 0)])
        // r6 is sent to backend 1 and finds c1 idle, but r5 came first: it gets c1 and r6 takes its
        // place waiting for c2.
        #expect(
            pool.requestArrived(r(6), now: at(4)) == [
                .cancelQueueTimer(r(5)), .cancelIdleTimer(c(1)), .execute(r(5), on: c(1)),
                .scheduleQueueTimer(r(6), at: at(5004)),
            ]
        )
        #expect(pool.connectionEstablished(c(2), now: at(5)) == [.cancelQueueTimer(r(6)), .execute(r(6), on: c(2))])
    }
}
