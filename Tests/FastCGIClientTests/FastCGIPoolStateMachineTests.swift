import NIOCore
import Testing

@testable import FastCGIClient

// Shared helpers for the FastCGIPoolStateMachine suites. Time is explicit: `at(ms)` is a point on a
// test clock, so every deadline in an expected action can be written out.

typealias Pool = FastCGIPoolStateMachine

func at(_ milliseconds: Int64) -> NIODeadline {
    .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000)
}

func r(_ number: Int) -> Pool.RequestID { Pool.RequestID(number) }
func c(_ number: Int) -> Pool.ConnectionID { Pool.ConnectionID(number) }

func makePool(
    _ backends: [Pool.BackendSettings] = [Pool.BackendSettings(maxConnections: 4)],
    _ configure: (inout Pool.PoolSettings) -> Void = { _ in }
) -> Pool {
    var settings = Pool.PoolSettings(
        queueSize: 16,
        queueTimeout: .seconds(5),
        idleTimeout: .seconds(60),
        keepalive: true,
        maxFails: 3,
        failTimeout: .seconds(10),
        tries: 2,
        balance: .roundRobin
    )
    configure(&settings)
    return Pool(backends: backends, settings: settings)
}

extension Pool {
    /// Runs one request to its end on a fresh or idle connection and returns the backend it used.
    mutating func roundTrip(_ request: RequestID, now: NIODeadline) -> Int? {
        var backend: Int?
        for action in requestArrived(request, now: now) {
            if case .createConnection(let connection, let index) = action {
                backend = index
                _ = connectionEstablished(connection, now: now)
            }
            if case .execute(_, let connection) = action {
                backend = connections.first { $0.id == connection }?.backend
            }
        }
        _ = requestFinished(request, now: now)
        return backend
    }
}

@Suite struct FastCGIPoolStateMachineTests {
    @Test func theFirstRequestOpensAConnectionAndRunsWhenItIsUp() {
        var pool = makePool()
        #expect(pool.requestArrived(r(1), now: at(0)) == [.scheduleQueueTimer(r(1), at: at(5000)), .createConnection(c(0), backend: 0)])
        #expect(pool.connectionEstablished(c(0), now: at(10)) == [.cancelQueueTimer(r(1)), .execute(r(1), on: c(0))])
        #expect(pool.requestFinished(r(1), now: at(20)) == [.scheduleIdleTimer(c(0), at: at(60_020))])
        #expect(pool.counters.pool.idleConnections == 1)
        #expect(pool.counters.backends[0].requests == 1)
    }

    @Test func anIdleConnectionIsReusedMostRecentlyUsedFirst() {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(2), now: at(5))  // c1 idle since 5
        _ = pool.requestFinished(r(1), now: at(9))  // c0 idle since 9: most recent
        #expect(pool.requestArrived(r(3), now: at(10)) == [.cancelIdleTimer(c(0)), .execute(r(3), on: c(0))])
        #expect(pool.requestArrived(r(4), now: at(11)) == [.cancelIdleTimer(c(1)), .execute(r(4), on: c(1))])
        #expect(pool.counters.backends[0].startingConnections == 0)
    }

    @Test func aBusyConnectionLeadsToANewOneUnderTheLimit() {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        #expect(pool.requestArrived(r(2), now: at(2)) == [.scheduleQueueTimer(r(2), at: at(5002)), .createConnection(c(1), backend: 0)])
    }

    /// FCGI_MAX_CONNS from the backend lowers the limit (never raises it) for new connections.
    @Test func theBackendsOwnConnectionLimitLowersOurs() {
        var pool = makePool()
        pool.backendConnectionLimitKnown(backend: 0, limit: 2)
        #expect(pool.maxConnections(backend: 0) == 2)
        var creates = 0
        for number in 1...5 {
            for case .createConnection(_, _) in pool.requestArrived(r(number), now: at(0)) { creates += 1 }
        }
        #expect(creates == 2)
        pool.backendConnectionLimitKnown(backend: 0, limit: 100)
        #expect(pool.maxConnections(backend: 0) == 4, "the configured limit stays the ceiling")
    }

    @Test func tenRequestsWithALimitOfFourOpenFourConnectionsAndQueueSix() {
        var pool = makePool()
        var creates: [Pool.ConnectionID] = []
        for number in 1...10 {
            for case .createConnection(let connection, _) in pool.requestArrived(r(number), now: at(0)) {
                creates.append(connection)
            }
        }
        #expect(creates == [c(0), c(1), c(2), c(3)])
        #expect(pool.counters.pool.queueDepth == 6)
        #expect(pool.counters.pool.waiting == 10)
        // Each connection takes the oldest waiter.
        #expect(pool.connectionEstablished(c(2), now: at(1)) == [.cancelQueueTimer(r(1)), .execute(r(1), on: c(2))])
        #expect(pool.connectionEstablished(c(0), now: at(1)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
        #expect(pool.counters.pool.queueDepth == 6)
    }

    @Test func aReleasedSlotGoesToTheNextWaiterInArrivalOrder() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        #expect(pool.requestArrived(r(2), now: at(2)) == [.scheduleQueueTimer(r(2), at: at(5002))])
        #expect(pool.requestArrived(r(3), now: at(3)) == [.scheduleQueueTimer(r(3), at: at(5003))])
        #expect(pool.requestFinished(r(1), now: at(4)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
        #expect(pool.requestFinished(r(2), now: at(5)) == [.cancelQueueTimer(r(3)), .execute(r(3), on: c(0))])
        #expect(pool.requestFinished(r(3), now: at(6)) == [.scheduleIdleTimer(c(0), at: at(60_006))])
    }

    @Test func aMultiplexedConnectionServesItsCapacityThenQueues() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1, multiplexCapacity: 3)])
        for number in 1...5 { _ = pool.requestArrived(r(number), now: at(0)) }
        #expect(pool.connectionEstablished(c(0), now: at(1)) == [.cancelQueueTimer(r(1)), .execute(r(1), on: c(0))])
        // The backend announces 10 (FCGI_MAX_REQS); our configuration caps it at 3.
        #expect(
            pool.connectionCapacityKnown(c(0), capacity: 10, now: at(2)) == [
                .cancelQueueTimer(r(2)), .execute(r(2), on: c(0)), .cancelQueueTimer(r(3)), .execute(r(3), on: c(0)),
            ]
        )
        #expect(pool.counters.backends[0].leasedSlots == 3)
        #expect(pool.counters.pool.waiting == 2)
        #expect(pool.requestFinished(r(2), now: at(3)) == [.cancelQueueTimer(r(4)), .execute(r(4), on: c(0))])
    }

    @Test func aBackendWithoutMultiplexingKeepsCapacityOne() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        #expect(pool.connectionCapacityKnown(c(0), capacity: 8, now: at(2)) == [])
    }

    @Test func cantMultiplexTurnsMultiplexingOffAndRetriesTheRequest() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1, multiplexCapacity: 4)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionCapacityKnown(c(0), capacity: 4, now: at(1))
        #expect(pool.counters.backends[0].leasedSlots == 2)
        // r2 is refused: it waits (capacity is now 1, r1 still runs, limit reached) without spending its retry.
        #expect(
            pool.requestFailed(r(2), error: .rejected(protocolStatus: 1), replayable: true, now: at(2)) == [
                .scheduleQueueTimer(r(2), at: at(5002))
            ]
        )
        #expect(pool.connectionCapacityKnown(c(0), capacity: 4, now: at(3)) == [])
        #expect(pool.requestFinished(r(1), now: at(4)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(0))])
        #expect(pool.counters.pool.retries == 1)
        // The free retry left the real one: a broken connection is still retried once.
        let actions = pool.requestFailed(r(2), error: .closedEarly, replayable: true, now: at(5))
        #expect(actions.contains(.createConnection(c(1), backend: 0)))
        #expect(!actions.contains { if case .failRequest = $0 { return true } else { return false } })
    }

    @Test func anIdleConnectionClosesAfterTheIdleTimeoutAndStaleTimersAreIgnored() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        #expect(pool.requestFinished(r(1), now: at(100)) == [.scheduleIdleTimer(c(0), at: at(60_100))])
        #expect(pool.requestArrived(r(2), now: at(200)) == [.cancelIdleTimer(c(0)), .execute(r(2), on: c(0))])
        #expect(pool.requestFinished(r(2), now: at(300)) == [.scheduleIdleTimer(c(0), at: at(60_300))])
        // The first timer raced with its cancellation: the connection has not been idle long enough.
        #expect(pool.idleTimerFired(c(0), now: at(60_100)) == [])
        #expect(pool.idleTimerFired(c(0), now: at(60_300)) == [.closeConnection(c(0))])
        #expect(pool.idleTimerFired(c(0), now: at(60_400)) == [])
        #expect(pool.counters.pool.idleConnections == 0)
        #expect(pool.requestArrived(r(3), now: at(70_000)).contains(.createConnection(c(1), backend: 0)))
    }

    @Test func aTimerForABusyConnectionIsIgnored() {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        #expect(pool.idleTimerFired(c(0), now: at(90_000)) == [])
    }

    @Test func withoutKeepaliveAConnectionClosesAfterOneRequest() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)]) { $0.keepalive = false }
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        // r2 cannot share c0 even though it is the only allowed connection: it waits for c0 to go.
        #expect(pool.requestArrived(r(2), now: at(2)) == [.scheduleQueueTimer(r(2), at: at(5002))])
        #expect(pool.requestFinished(r(1), now: at(3)) == [.closeConnection(c(0)), .createConnection(c(1), backend: 0)])
        #expect(pool.connectionEstablished(c(1), now: at(4)) == [.cancelQueueTimer(r(2)), .execute(r(2), on: c(1))])
        #expect(pool.requestFinished(r(2), now: at(5)) == [.closeConnection(c(1))])
        #expect(pool.connectionClosed(c(1), now: at(6)) == [])
    }

    @Test func anIdleConnectionClosedByTheBackendIsForgotten() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.requestFinished(r(1), now: at(1))
        #expect(pool.connectionClosed(c(0), now: at(2)) == [.cancelIdleTimer(c(0))])
        #expect(pool.counters.pool.idleConnections == 0)
        #expect(pool.requestArrived(r(2), now: at(3)) == [.scheduleQueueTimer(r(2), at: at(5003)), .createConnection(c(1), backend: 0)])
    }

    @Test func aLeasedConnectionClosedByTheBackendLeavesTheRequestToTheCaller() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.requestArrived(r(2), now: at(1))  // waits: limit 1
        // The slot is gone with the connection: the waiter gets a new connection.
        #expect(pool.connectionClosed(c(0), now: at(2)) == [.createConnection(c(1), backend: 0)])
        // The caller reports r1's failure; a body already streamed to the client forbids a retry.
        #expect(pool.requestFailed(r(1), error: .closedEarly, replayable: false, now: at(3)) == [.failRequest(r(1), .backend(.closedEarly))])
        #expect(pool.counters.pool.errors.closedEarly == 1)
    }

    @Test func aFailureReportedBeforeTheCloseClosesTheConnection() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 1)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        #expect(
            pool.requestFailed(r(1), error: .readTimeout, replayable: false, now: at(1)) == [
                .closeConnection(c(0)), .failRequest(r(1), .backend(.readTimeout)),
            ]
        )
        #expect(pool.connectionClosed(c(0), now: at(2)) == [])
    }

    @Test func shutdownClosesIdleConnectionsAndWaitsForRunningRequests() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), now: at(2))  // c0 idle, c1 runs r2
        #expect(pool.shutdown(now: at(5)) == [.cancelIdleTimer(c(0)), .closeConnection(c(0))])
        #expect(pool.requestArrived(r(5), now: at(6)) == [.failRequest(r(5), .shuttingDown)])
        #expect(!pool.isShutDown)
        #expect(pool.requestFinished(r(2), now: at(8)) == [.closeConnection(c(1)), .shutdownComplete])
        #expect(pool.isShutDown)
        #expect(pool.shutdown(now: at(9)) == [])
    }

    @Test func shutdownFailsWaitersAndClosesConnectsWhenTheyComplete() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        _ = pool.requestArrived(r(2), now: at(2))  // waits for c1
        #expect(pool.shutdown(now: at(3)) == [.cancelQueueTimer(r(2)), .failRequest(r(2), .shuttingDown)])
        #expect(pool.connectionEstablished(c(1), now: at(4)) == [.closeConnection(c(1))])
        #expect(pool.requestFinished(r(1), now: at(5)) == [.closeConnection(c(0)), .shutdownComplete])
    }

    @Test func shutdownOfAnEmptyPoolCompletesAtOnce() {
        var pool = makePool()
        #expect(pool.shutdown(now: at(0)) == [.shutdownComplete])
    }

    @Test func aFailedRequestIsNotRetriedDuringShutdown() {
        var pool = makePool()
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(0))
        _ = pool.shutdown(now: at(1))
        #expect(
            pool.requestFailed(r(1), error: .closedEarly, replayable: true, now: at(2)) == [
                .closeConnection(c(0)), .failRequest(r(1), .backend(.closedEarly)), .shutdownComplete,
            ]
        )
    }

    @Test func countersTrackConnectionsAndRequests() {
        var pool = makePool([Pool.BackendSettings(maxConnections: 2), Pool.BackendSettings(maxConnections: 2)])
        _ = pool.requestArrived(r(1), now: at(0))
        _ = pool.requestArrived(r(2), now: at(0))
        _ = pool.connectionEstablished(c(0), now: at(1))
        var counters = pool.counters
        #expect(counters.pool.requests == 2)
        #expect(counters.pool.activeConnections == 1)
        #expect(counters.pool.startingConnections == 1)
        #expect(counters.backends[0].activeConnections == 1)
        #expect(counters.backends[1].startingConnections == 1)
        _ = pool.connectionEstablished(c(1), now: at(1))
        _ = pool.requestFinished(r(1), aborted: true, now: at(2))
        counters = pool.counters
        #expect(counters.pool.aborts == 1)
        #expect(counters.backends[0].aborts == 1)
        #expect(counters.backends[0].idleConnections == 1)
    }
}
