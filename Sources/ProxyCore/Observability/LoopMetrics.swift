/// What one event loop counted: plain integers in fixed-size arrays, written only on that loop
/// (no atomics, no locks, no allocation per request). A scrape copies each loop's value on its
/// own loop and sums them (``adding(_:)``); totals only grow.
///
/// Routes and pools are indexed by their ``MetricSlots`` slot, which a name keeps across reloads;
/// route slot 0 holds the requests that matched no route (label `-`). A reload that brings new
/// names grows the arrays (on the loop, before the loop serves the new generation).
struct LoopMetrics: Sendable, Equatable {
    /// Upper bounds of the request-duration histogram, in nanoseconds (Prometheus' `le`), from
    /// 1 ms to 60 s; a last, implicit bucket holds everything slower (`+Inf`).
    static let durationBounds: [Int64] = [
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
        30_000_000_000, 60_000_000_000,
    ]
    static var bucketCount: Int { durationBounds.count + 1 }
    /// 2xx, 3xx, 4xx, 5xx (no final status is 1xx; anything below 200 would count as 2xx).
    static let statusClasses = 4
    /// FCGI_REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE.
    static let protocolStatuses = 4

    private(set) var routeCount: Int
    private(set) var poolCount: Int

    /// `[route * statusClasses + class]`
    var requests: [Int]
    /// `[route * bucketCount + bucket]`: requests whose duration fell in that bucket (not
    /// cumulative) and the sum of their durations, so a scrape can hand the registry exact sums.
    var durationCounts: [Int]
    var durationNanos: [Int64]
    /// Request body bytes received from clients, response body bytes sent to them, per route.
    var requestBodyBytes: [Int]
    var responseBodyBytes: [Int]
    /// `[pool * protocolStatuses + status]`: END_REQUEST records by protocol status.
    var endRequests: [Int]
    /// STDERR records (each is logged as one line) per pool.
    var stderrLines: [Int]
    /// Client connections accepted on this loop.
    var connectionsAccepted = 0

    /// `routeSlots` route slots (the no-route slot included), `poolSlots` pool slots.
    init(routeSlots: Int, poolSlots: Int) {
        routeCount = 0
        poolCount = 0
        requests = []
        durationCounts = []
        durationNanos = []
        requestBodyBytes = []
        responseBodyBytes = []
        endRequests = []
        stderrLines = []
        grow(routeSlots: max(routeSlots, 1), poolSlots: poolSlots)
    }

    /// `routes` routes in slots 1..., `pools` pools: the slots of a first configuration.
    init(routes: Int, pools: Int) {
        self.init(routeSlots: routes + 1, poolSlots: pools)
    }

    /// The slot of requests that matched no route.
    static let noRoute = 0
    var noRoute: Int { Self.noRoute }

    /// Adds zeroed slots up to these counts (never shrinks: counters of removed names stay).
    mutating func grow(routeSlots: Int, poolSlots: Int) {
        if routeSlots > routeCount {
            let added = routeSlots - routeCount
            requests += repeatElement(0, count: added * Self.statusClasses)
            durationCounts += repeatElement(0, count: added * Self.bucketCount)
            durationNanos += repeatElement(0, count: added * Self.bucketCount)
            requestBodyBytes += repeatElement(0, count: added)
            responseBodyBytes += repeatElement(0, count: added)
            routeCount = routeSlots
        }
        if poolSlots > poolCount {
            let added = poolSlots - poolCount
            endRequests += repeatElement(0, count: added * Self.protocolStatuses)
            stderrLines += repeatElement(0, count: added)
            poolCount = poolSlots
        }
    }

    static func statusClass(_ status: Int) -> Int {
        min(max(status / 100, 2), 5) - 2
    }

    static func bucket(nanoseconds: Int64) -> Int {
        // 15 bounds: a linear scan touches one cache line and usually stops early.
        var index = 0
        while index < durationBounds.count, nanoseconds > durationBounds[index] {
            index += 1
        }
        return index
    }

    /// One finished request. `route` is a slot from 0 to `routeCount - 1`.
    mutating func recordRequest(route: Int, status: Int, nanoseconds: Int64, bodyBytesIn: Int, bodyBytesOut: Int) {
        requests[route * Self.statusClasses + Self.statusClass(status)] += 1
        let slot = route * Self.bucketCount + Self.bucket(nanoseconds: nanoseconds)
        durationCounts[slot] += 1
        durationNanos[slot] += nanoseconds
        requestBodyBytes[route] += bodyBytesIn
        responseBodyBytes[route] += bodyBytesOut
    }

    /// An END_REQUEST with this protocol status (unknown values are not counted).
    mutating func recordEndRequest(pool: Int, protocolStatus: Int) {
        guard protocolStatus >= 0, protocolStatus < Self.protocolStatuses else { return }
        endRequests[pool * Self.protocolStatuses + protocolStatus] += 1
    }

    mutating func recordStderrLine(pool: Int) {
        stderrLines[pool] += 1
    }

    /// Element-wise sum. Loops may be read in the middle of a reload, some already grown: the
    /// sum has the larger shape (slots mean the same on every loop).
    func adding(_ other: LoopMetrics) -> LoopMetrics {
        var sum = self
        sum.grow(routeSlots: other.routeCount, poolSlots: other.poolCount)
        Self.add(&sum.requests, other.requests)
        Self.add(&sum.durationCounts, other.durationCounts)
        Self.add(&sum.durationNanos, other.durationNanos)
        Self.add(&sum.requestBodyBytes, other.requestBodyBytes)
        Self.add(&sum.responseBodyBytes, other.responseBodyBytes)
        Self.add(&sum.endRequests, other.endRequests)
        Self.add(&sum.stderrLines, other.stderrLines)
        sum.connectionsAccepted += other.connectionsAccepted
        return sum
    }

    private static func add<T: BinaryInteger>(_ into: inout [T], _ other: [T]) {
        for index in other.indices {
            into[index] += other[index]
        }
    }
}
