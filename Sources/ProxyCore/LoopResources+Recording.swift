import NIOCore
import NIOHTTP1

/// What the end of an exchange needs to find its slots and names without building a string:
/// route lines (to index routes by the `RouteConfig` an exchange holds) and upstream names.
struct RecordingTables {
    /// `line` of each configured route, in configuration order. A file's routes have distinct
    /// section lines, so an int comparison finds the route; configurations built in code (line 0
    /// for all) fall back to comparing names.
    let routeLines: [Int]
    let routeNames: [String]
    let linesAreUnique: Bool
    /// `[pool][backend]`: the backend as the access log names it (`127.0.0.1:9000`,
    /// `unix:/run/php.sock`).
    let upstreamNames: [[String]]

    init(context: ProxyContext) {
        routeLines = context.configuration.routes.map(\.line)
        routeNames = context.configuration.routes.map(\.name)
        linesAreUnique = Set(routeLines).count == routeLines.count
        upstreamNames = context.pools.map { pool in pool.config.backends.map(\.description) }
    }

    /// The metrics slot of a route: its index, or the last slot for no route.
    func routeSlot(_ route: (line: Int, name: String)?, noRoute: Int) -> Int {
        guard let route else { return noRoute }
        for index in routeLines.indices where routeLines[index] == route.line {
            if linesAreUnique || routeNames[index] == route.name { return index }
        }
        return noRoute
    }

    func upstreamName(pool: Int, backend: Int) -> String? {
        guard upstreamNames.indices.contains(pool), upstreamNames[pool].indices.contains(backend) else { return nil }
        return upstreamNames[pool][backend]
    }
}

/// One finished exchange, as the access log and the counters see it.
struct ExchangeRecord {
    var remoteAddress: String
    var head: HTTPRequestHead
    var status: Int
    var bodyBytesIn: Int
    var bodyBytesOut: Int
    /// `line` and `name` of the route's `RouteConfig`, nil when none matched.
    var route: (line: Int, name: String)?
    /// Pool and backend of the last backend attempt; nil when no backend was reached.
    var pool: Int?
    var backend: Int?
    /// Head received.
    var start: NIODeadline
    /// Connection lease to END_REQUEST (or failure) of the backend request; nil when none ran.
    var upstreamStart: NIODeadline?
    var upstreamEnd: NIODeadline?
}

extension LoopResources {
    /// The one call at the end of every response: counters, then the access log line.
    func exchangeEnded(_ record: ExchangeRecord) {
        let now = NIODeadline.now()
        let requestNanoseconds = (now - record.start).nanoseconds
        let route = recordingTables.routeSlot(record.route, noRoute: metrics.noRoute)
        metrics.recordRequest(
            route: route,
            status: record.status,
            nanoseconds: requestNanoseconds,
            bodyBytesIn: record.bodyBytesIn,
            bodyBytesOut: record.bodyBytesOut
        )
        guard let accessLogBuffer else { return }
        var upstreamAddress: String?
        var upstreamNanoseconds: Int64?
        if let pool = record.pool, let backend = record.backend, let upstreamStart = record.upstreamStart {
            upstreamAddress = recordingTables.upstreamName(pool: pool, backend: backend)
            upstreamNanoseconds = ((record.upstreamEnd ?? now) - upstreamStart).nanoseconds
        }
        accessLogBuffer.append(
            remoteAddress: record.remoteAddress,
            head: record.head,
            status: record.status,
            bytesSent: record.bodyBytesOut,
            upstreamAddress: upstreamAddress,
            upstreamNanoseconds: upstreamNanoseconds,
            requestNanoseconds: requestNanoseconds
        )
    }

    /// A request the HTTP parser rejected before it had a head: logged as nginx does, with a
    /// placeholder request line, and counted under no route.
    func requestRejected(remoteAddress: String, status: Int, bytesSent: Int) {
        exchangeEnded(
            ExchangeRecord(
                remoteAddress: remoteAddress,
                head: HTTPRequestHead(version: .http1_1, method: .RAW(value: "-"), uri: "-"),
                status: status,
                bodyBytesIn: 0,
                bodyBytesOut: bytesSent,
                start: .now()
            )
        )
    }
}
