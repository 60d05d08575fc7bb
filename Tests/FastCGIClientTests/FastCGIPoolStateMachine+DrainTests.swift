import NIOCore
import Testing

@testable import FastCGIClient

/// `drain`: a pool retired by a configuration reload finishes what it holds, queue included.
@Suite struct FastCGIPoolStateMachineDrainTests {
    @Test func drainClosesIdleConnectionsAndKeepsBusyOnes() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(2))
        #expect(pool.drain(now: at(3)) == [.cancelIdleTimer(c(0)), .closeConnection(c(0))])
        #expect(!pool.isShutDown)
        #expect(pool.requestFinished(r(2), now: at(4)) == [.closeConnection(c(1)), .shutdownComplete])
        #expect(pool.isShutDown)
    }

    @Test func aQueuedRequestIsStillServedWhileDraining() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        #expect(pool.requestArrived(r(2), now: at(2)) == [.scheduleQueueTimer(r(2), at: at(5002))])
        #expect(pool.drain(now: at(3)) == [])
        // Not a 503: the waiter takes the slot r1 leaves.
        #expect(pool.requestFinished(r(1), now: at(4)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
        #expect(pool.requestFinished(r(2), now: at(5)) == [.closeConnection(c(0)), .shutdownComplete])
    }

    @Test func aFailedRequestIsRetriedWhileDraining() {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.drain(now: at(1))
        let actions = pool.requestFailed(r(1), error: .closedEarly, replayable: true, now: at(2))
        #expect(actions.contains(.createConnection(c(1), backend: 0)), "\(actions)")
        #expect(!actions.contains { if case .failRequest = $0 { return true } else { return false } }, "\(actions)")
        let established = pool.connectionEstablished(c(1), now: at(3))
        #expect(established.contains(.execute(r(1), on: c(1))), "\(established)")
        #expect(pool.requestFinished(r(1), now: at(4)) == [.closeConnection(c(1)), .shutdownComplete])
    }

    @Test func drainOfAnEmptyPoolCompletesAtOnceAndOnlyOnce() {
        var pool = makePool()
        #expect(pool.drain(now: at(0)) == [.shutdownComplete])
        #expect(pool.drain(now: at(1)) == [])
        #expect(pool.shutdown(now: at(2)) == [])
    }

    @Test func shutdownDuringDrainFailsWaiters() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.requestArrived(r(2), now: at(2))
        _ = pool.drain(now: at(3))
        #expect(pool.shutdown(now: at(4)) == [.cancelQueueTimer(r(2)), .failRequest(r(2), .shuttingDown)])
        #expect(pool.requestFinished(r(1), now: at(5)) == [.closeConnection(c(0)), .shutdownComplete])
    }
}
