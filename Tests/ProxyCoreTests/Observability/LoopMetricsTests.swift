import Testing

@testable import ProxyCore

@Suite struct LoopMetricsTests {
    @Test(arguments: [(200, 0), (204, 0), (101, 0), (301, 1), (404, 2), (499, 2), (500, 3), (503, 3), (999, 3)])
    func statusClasses(status: Int, expected: Int) {
        #expect(LoopMetrics.statusClass(status) == expected)
    }

    /// Bounds are inclusive (Prometheus' `le`); beyond the last one is the +Inf bucket.
    @Test func bucketEdges() {
        #expect(LoopMetrics.bucket(nanoseconds: 0) == 0)
        #expect(LoopMetrics.bucket(nanoseconds: 1_000_000) == 0)
        #expect(LoopMetrics.bucket(nanoseconds: 1_000_001) == 1)
        #expect(LoopMetrics.bucket(nanoseconds: 2_500_000) == 1)
        #expect(LoopMetrics.bucket(nanoseconds: 60_000_000_000) == LoopMetrics.durationBounds.count - 1)
        #expect(LoopMetrics.bucket(nanoseconds: 60_000_000_001) == LoopMetrics.durationBounds.count)
        #expect(LoopMetrics.bucketCount == LoopMetrics.durationBounds.count + 1)
    }

    @Test func recordsIntoTheRouteAndClassSlots() {
        var metrics = LoopMetrics(routes: 2, pools: 1)
        #expect(metrics.routeCount == 3)
        #expect(metrics.noRoute == 0)
        metrics.recordRequest(route: 1, status: 200, nanoseconds: 3_000_000, bodyBytesIn: 5, bodyBytesOut: 100)
        metrics.recordRequest(route: 1, status: 502, nanoseconds: 3_500_000, bodyBytesIn: 0, bodyBytesOut: 50)
        metrics.recordRequest(route: 2, status: 404, nanoseconds: 10, bodyBytesIn: 0, bodyBytesOut: 7)
        #expect(metrics.requests == [0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
        let bucket = LoopMetrics.bucket(nanoseconds: 3_000_000)
        #expect(metrics.durationCounts[1 * LoopMetrics.bucketCount + bucket] == 2)
        #expect(metrics.durationNanos[1 * LoopMetrics.bucketCount + bucket] == 6_500_000)
        #expect(metrics.durationCounts[2 * LoopMetrics.bucketCount] == 1)
        #expect(metrics.requestBodyBytes == [0, 5, 0])
        #expect(metrics.responseBodyBytes == [0, 150, 7])
    }

    @Test func endRequestsAndStderrPerPool() {
        var metrics = LoopMetrics(routes: 1, pools: 2)
        metrics.recordEndRequest(pool: 1, protocolStatus: 0)
        metrics.recordEndRequest(pool: 1, protocolStatus: 2)
        metrics.recordEndRequest(pool: 0, protocolStatus: 3)
        // A status the protocol does not define is not counted (and does not trap).
        metrics.recordEndRequest(pool: 0, protocolStatus: 7)
        metrics.recordStderrLine(pool: 1)
        #expect(metrics.endRequests == [0, 0, 0, 1, 1, 0, 1, 0])
        #expect(metrics.stderrLines == [0, 1])
    }

    @Test func loopsAddUp() {
        var a = LoopMetrics(routes: 1, pools: 1)
        var b = LoopMetrics(routes: 1, pools: 1)
        a.recordRequest(route: 0, status: 200, nanoseconds: 1, bodyBytesIn: 1, bodyBytesOut: 2)
        b.recordRequest(route: 0, status: 200, nanoseconds: 1, bodyBytesIn: 3, bodyBytesOut: 4)
        b.recordRequest(route: 1, status: 400, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 1)
        a.connectionsAccepted = 2
        b.connectionsAccepted = 5
        b.recordStderrLine(pool: 0)
        let sum = a.adding(b)
        #expect(sum.requests[0] == 2)
        #expect(sum.requests[1 * LoopMetrics.statusClasses + 2] == 1)
        #expect(sum.durationCounts[0] == 2)
        #expect(sum.durationNanos[0] == 2)
        #expect(sum.requestBodyBytes == [4, 0])
        #expect(sum.responseBodyBytes == [6, 1])
        #expect(sum.connectionsAccepted == 7)
        #expect(sum.stderrLines == [1])
    }

    /// A scrape during a reload may read one loop already grown to the new slots and another
    /// not yet: the sum has the larger shape, and growing keeps what was counted.
    @Test func loopsOfDifferentShapesAddUp() {
        var grown = LoopMetrics(routes: 1, pools: 1)
        grown.recordRequest(route: 1, status: 200, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 3)
        grown.grow(routeSlots: 4, poolSlots: 2)
        #expect(grown.routeCount == 4 && grown.poolCount == 2)
        #expect(grown.responseBodyBytes == [0, 3, 0, 0])
        grown.recordRequest(route: 3, status: 500, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 1)
        grown.recordStderrLine(pool: 1)
        var old = LoopMetrics(routes: 1, pools: 1)
        old.recordRequest(route: 1, status: 200, nanoseconds: 1, bodyBytesIn: 0, bodyBytesOut: 2)
        for sum in [old.adding(grown), grown.adding(old)] {
            #expect(sum.routeCount == 4 && sum.poolCount == 2)
            #expect(sum.responseBodyBytes == [0, 5, 0, 1])
            #expect(sum.requests[3 * LoopMetrics.statusClasses + 3] == 1)
            #expect(sum.stderrLines == [0, 1])
        }
        // Growing never shrinks.
        grown.grow(routeSlots: 2, poolSlots: 1)
        #expect(grown.routeCount == 4 && grown.poolCount == 2)
    }
}
