import NIOCore
import Testing

@testable import FastCGIClient

@Suite struct FastCGIPoolStateMachineBalancerTests {
    @Test func weightedRoundRobinIsSmooth() {
        var pool = makePool([
            Pool.BackendSettings(weight: 3, maxConnections: 4), Pool.BackendSettings(weight: 1, maxConnections: 4),
        ])
        let picks = (1...8).map { pool.roundTrip(r($0), now: at(Int64($0))) }
        // 6:2, and interleaved rather than bursty.
        #expect(picks == [0, 0, 1, 0, 0, 0, 1, 0])
        #expect(pool.counters.backends.map(\.requests) == [6, 2])
    }

    @Test func weightedRoundRobinFiveOneOneMatchesNginx() {
        var pool = makePool([
            Pool.BackendSettings(weight: 5, maxConnections: 4), Pool.BackendSettings(maxConnections: 4),
            Pool.BackendSettings(maxConnections: 4),
        ])
        let picks = (1...7).map { pool.roundTrip(r($0), now: at(Int64($0))) }
        #expect(picks == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func leastConnectionsPicksTheBackendWithFewestLeasedSlots() {
        var pool = makePool(Array(repeating: Pool.BackendSettings(maxConnections: 4), count: 3)) {
            $0.balance = .leastConnections
        }
        // Ties (all empty) go round robin: 0, 1, 2.
        #expect(pool.requestArrived(r(1), now: at(0)).contains(.createConnection(c(0), backend: 0)))
        #expect(pool.requestArrived(r(2), now: at(0)).contains(.createConnection(c(1), backend: 1)))
        #expect(pool.requestArrived(r(3), now: at(0)).contains(.createConnection(c(2), backend: 2)))
        for connection in 0..<3 { _ = pool.connectionEstablished(c(connection), now: at(1)) }
        _ = pool.requestFinished(r(2), now: at(2))  // backend 1 now has no leased slot
        #expect(pool.requestArrived(r(4), now: at(3)) == [.cancelIdleTimer(c(1)), .execute(r(4), on: c(1))])
        _ = pool.requestFinished(r(1), now: at(4))
        _ = pool.requestFinished(r(3), now: at(4))
        // backends 0 and 2 are empty, 1 has r4: only 0 and 2 compete.
        let next = pool.requestArrived(r(5), now: at(5))
        #expect(next == [.cancelIdleTimer(c(0)), .execute(r(5), on: c(0))] || next == [.cancelIdleTimer(c(2)), .execute(r(5), on: c(2))])
    }

    @Test func leastConnectionsRespectsWeights() {
        var pool = makePool([
            Pool.BackendSettings(weight: 1, maxConnections: 1, multiplexCapacity: 8),
            Pool.BackendSettings(weight: 3, maxConnections: 1, multiplexCapacity: 8),
        ]) { $0.balance = .leastConnections }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.connectionEstablished(c(1), now: at(0))
        _ = pool.connectionCapacityKnown(c(0), capacity: 8, now: at(0))
        _ = pool.connectionCapacityKnown(c(1), capacity: 8, now: at(0))
        var executed = 0
        for number in 3...10 {
            for case .execute in pool.requestArrived(r(number), now: at(1)) { executed += 1 }
        }
        #expect(executed == 8)
        // Leased slots per unit of weight stay level: 10 requests spread 3:7 over weights 1:3.
        #expect(pool.counters.backends.map(\.leasedSlots) == [3, 7])
    }

    @Test func aFailedRequestIsRetriedOnceOnAnotherBackendThenFails() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2), Pool.BackendSettings(maxConnections: 2)])
        #expect(pool.roundTrip(r(1), now: at(0)) == 0)
        #expect(pool.roundTrip(r(2), now: at(0)) == 1)
        // r3 goes to backend 0 (round robin) and fails there; the retry avoids backend 0.
        #expect(pool.requestArrived(r(3), now: at(1)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
        #expect(
            pool.requestFailed(r(3), error: .closedEarly, replayable: true, now: at(2)) == [
                .closeConnection(c(0)), .cancelIdleTimer(c(1)), .execute(r(3), on: c(1)),
            ]
        )
        #expect(pool.counters.pool.retries == 1)
        #expect(pool.counters.backends[0].retries == 1)
        // The second failure spends the last try.
        #expect(
            pool.requestFailed(r(3), error: .closedEarly, replayable: true, now: at(3)) == [
                .closeConnection(c(1)), .failRequest(r(3), .backend(.closedEarly)),
            ]
        )
        #expect(pool.counters.pool.retries == 1)
    }

    @Test func aRetryGoesBackToTheSameBackendWhenItIsTheOnlyOne() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)])
        _ = pool.roundTrip(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(1))
        #expect(
            pool.requestFailed(r(2), error: .closedEarly, replayable: true, now: at(2)) == [
                .closeConnection(c(0)), .scheduleQueueTimer(r(2), at: at(5002)), .createConnection(c(1), backend: 0),
            ]
        )
    }

    @Test func aRequestThatCannotBeReplayedIsNotRetried() {
        var pool = makePool()
        _ = pool.roundTrip(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(1))
        #expect(
            pool.requestFailed(r(2), error: .closedEarly, replayable: false, now: at(2)) == [
                .closeConnection(c(0)), .failRequest(r(2), .backend(.closedEarly)),
            ]
        )
    }

    @Test func unknownRoleIsNotRetried() {
        var pool = makePool()
        _ = pool.roundTrip(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(1))
        #expect(
            pool.requestFailed(r(2), error: .rejected(protocolStatus: 3), replayable: true, now: at(2)) == [
                .scheduleIdleTimer(c(0), at: at(60_002)), .failRequest(r(2), .backend(.rejected(protocolStatus: 3))),
            ]
        )
    }

    @Test func aRetryIsQueuedAheadOfOlderWaiters() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1, multiplexCapacity: 2)]) { $0.tries = 3 }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.connectionCapacityKnown(c(0), capacity: 2, now: at(0))
        _ = pool.requestArrived(r(3), now: at(1))  // waits
        _ = pool.requestArrived(r(4), now: at(1))  // waits
        // r2 is rejected as overloaded. Its slot goes to r3 at once; the retry waits in front of r4,
        // which has waited less long in total.
        #expect(
            pool.requestFailed(r(2), error: .rejected(protocolStatus: 2), replayable: true, now: at(2)) == [
                .cancelQueueTimer(r(3)), .execute(r(3), on: c(0)), .scheduleQueueTimer(r(2), at: at(5002)),
            ]
        )
        #expect(pool.requestFinished(r(1), now: at(3)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
    }
}
