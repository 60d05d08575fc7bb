import NIOCore
import Testing

@testable import FastCGIClient

/// The idle stack that replaced the scan for a free connection: same choices as the scan
/// (most recently used first, lowest id on a tie, a multiplexed busy connection when none is
/// idle), stale entries skipped, and bounded however long the pool runs.
@Suite struct FastCGIPoolStateMachineIdleStackTests {
    /// Two connections, both idle: c0 parked at `first`, c1 at `second`.
    private func twoIdleConnections(parkedAt first: Int64 = 5, _ second: Int64 = 9) -> Pool {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(first))
        _ = pool.requestFinished(r(2), now: at(second))
        return pool
    }

    @Test func aConnectionClosedWhileIdleIsSkipped() {
        var pool = twoIdleConnections()
        _ = pool.connectionClosed(c(1), now: at(10))
        #expect(pool.requestArrived(r(3), now: at(11)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
    }

    @Test func aConnectionClosedByItsIdleTimerIsSkipped() {
        var pool = twoIdleConnections()
        #expect(pool.idleTimerFired(c(1), now: at(60_009)) == [.closeConnection(c(1))])
        #expect(pool.requestArrived(r(3), now: at(60_010)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
    }

    @Test func aConnectionLeasedAndParkedAgainIsTakenByItsNewPlace() {
        var pool = twoIdleConnections()
        // c1 (top) is leased and c0 parked after it: c0 is now the most recently used.
        #expect(pool.requestArrived(r(3), now: at(10)) == [.cancelIdleTimer(c(1)), .execute(r(3), on: c(1))])
        #expect(pool.requestArrived(r(4), now: at(11)) == [.cancelIdleTimer(c(0)), .execute(r(4), on: c(0))])
        _ = pool.requestFinished(r(3), now: at(12))
        _ = pool.requestFinished(r(4), now: at(13))
        #expect(pool.requestArrived(r(5), now: at(14)) == [.cancelIdleTimer(c(0)), .execute(r(5), on: c(0))])
        #expect(pool.requestArrived(r(6), now: at(15)) == [.cancelIdleTimer(c(1)), .execute(r(6), on: c(1))])
    }

    @Test func connectionsParkedAtTheSameInstantGoLowestIdFirst() {
        var pool = twoIdleConnections(parkedAt: 5, 5)
        #expect(pool.requestArrived(r(3), now: at(6)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
        #expect(pool.requestArrived(r(4), now: at(7)) == [.cancelIdleTimer(c(1)), .execute(r(4), on: c(1))])
    }

    @Test func theStackStaysBoundedOverManyRequests() {
        var pool = twoIdleConnections()
        for number in 0..<1000 {
            // Two overlapping requests per round, finished in alternating order, so entries of
            // both connections go stale below the top.
            let first = r(10 + 2 * number)
            let second = r(11 + 2 * number)
            let now = Int64(10 + 4 * number)
            _ = pool.requestArrived(first, now: at(now))
            _ = pool.requestArrived(second, now: at(now + 1))
            if number.isMultiple(of: 2) {
                _ = pool.requestFinished(first, now: at(now + 2))
                _ = pool.requestFinished(second, now: at(now + 3))
            } else {
                _ = pool.requestFinished(second, now: at(now + 2))
                _ = pool.requestFinished(first, now: at(now + 3))
            }
        }
        #expect(pool.connections.count == 2, "never more than the two connections")
        #expect(pool.backends[0].idle.count <= 2 * pool.connections.count + 8)
    }

    @Test func aBusyMultiplexedConnectionWithRoomTakesTheRequestWhenNoneIsIdle() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 4, multiplexCapacity: 3)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionCapacityKnown(c(0), capacity: 3, now: at(2))
        #expect(pool.requestArrived(r(2), now: at(3)) == [.execute(r(2), on: c(0))])
        #expect(pool.requestArrived(r(3), now: at(4)) == [.execute(r(3), on: c(0))])
        #expect(pool.requestArrived(r(4), now: at(5)) == [.scheduleQueueTimer(r(4), at: at(5005)), .createConnection(c(1), backend: 0)])
    }

    @Test func anIdleConnectionOfAnotherBackendIsNotTaken() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1), Pool.BackendSettings(maxConnections: 1)])
        // Round robin: r1 to backend 0 (c0), r2 to backend 1 (c1).
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(2))
        _ = pool.requestFinished(r(2), now: at(3))
        // c1 is the most recently parked, but round robin picks the backend first: each request
        // runs on its backend's own connection, never on the other's.
        for (number, now) in [(3, Int64(4)), (4, 5), (5, 6), (6, 7)] {
            let actions = pool.requestArrived(r(number), now: at(now))
            guard case .execute(_, let connection)? = actions.last else {
                Issue.record("r\(number) was not executed: \(actions)")
                continue
            }
            let backend = pool.connections.first { $0.id == connection }?.backend
            #expect(pool.backends.indices.contains(backend ?? -1))
            #expect(connection == c(backend ?? -1), "c0 belongs to backend 0, c1 to backend 1")
            _ = pool.requestFinished(r(number), now: at(now))
        }
        #expect(pool.counters.backends[0].requests == 3 && pool.counters.backends[1].requests == 3)
    }
}
