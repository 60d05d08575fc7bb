import NIOCore
import Testing

@testable import FastCGIClient

@Suite struct FastCGIPoolStateMachineWorkerLimitTests {
    @Test func aStallLimitsTheShardToOneConnectionFewerThanItHolds() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 8)])
        for number in 1...3 {
            _ = pool.requestArrived(r(number), now: at(0))
            _ = pool.connectionEstablished(c(number - 1), now: at(1))
        }
        // c2 sat in the backend's listen queue: the backend serves two of our three.
        #expect(pool.backendStalled(backend: 0, now: at(200)) == at(200) + Pool.workerLimitLifetime)
        #expect(pool.learnedWorkerLimit(backend: 0) == 2)
        // A request beyond them waits for a slot instead of opening a connection that would wait
        // in the backend's queue.
        #expect(pool.requestArrived(r(4), now: at(210)) == [.scheduleQueueTimer(r(4), at: at(5210))])
        #expect(pool.requestFinished(r(1), now: at(220)) == [.cancelQueueTimer(r(4)), .execute(r(4), on: c(0))])
    }

    @Test func theLearnedLimitIsForgottenALifetimeAfterTheLastStall() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 8)]) { $0.queueTimeout = .seconds(120) }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.requestArrived(r(2), now: at(2))
        _ = pool.connectionEstablished(c(1), now: at(3))
        _ = pool.backendStalled(backend: 0, now: at(200))
        #expect(pool.learnedWorkerLimit(backend: 0) == 1)
        _ = pool.requestArrived(r(3), now: at(300))
        // A later stall renews it: the timer of the first one fires stale.
        let renewed = pool.backendStalled(backend: 0, now: at(30_000))
        #expect(pool.workerLimitTimerFired(backend: 0, now: at(60_200)) == [])
        #expect(pool.learnedWorkerLimit(backend: 0) == 1)
        #expect(pool.workerLimitTimerFired(backend: 0, now: renewed) == [.createConnection(c(2), backend: 0)])
        #expect(pool.learnedWorkerLimit(backend: 0) == nil)
    }

    @Test func aLearnedLimitNeverGoesBelowOne() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 4)])
        _ = pool.backendStalled(backend: 0, now: at(0))
        #expect(pool.learnedWorkerLimit(backend: 0) == 1)
        #expect(pool.requestArrived(r(1), now: at(1)) == [.scheduleQueueTimer(r(1), at: at(5001)), .createConnection(c(0), backend: 0)])
    }
}
