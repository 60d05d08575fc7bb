import NIOCore
import NIOHTTP1

/// One configuration generation's way from what an exchange holds to the per-loop counter slots
/// (``MetricSlots``) and to the names the access log writes, built once per generation (start,
/// reload) so that the end of an exchange looks things up without building a string.
struct RecordingTables: Sendable {
    /// `line` of each configured route, in configuration order. A file's routes have distinct
    /// section lines, so an int comparison finds the route; configurations built in code (line 0
    /// for all) fall back to comparing names.
    let routeLines: [Int]
    let routeNames: [String]
    let linesAreUnique: Bool
    /// Route index → route slot; pool index → pool slot.
    let routeSlots: [Int]
    let poolSlots: [Int]
    /// How many slots existed when these tables were built: a loop's ``LoopMetrics`` grows to
    /// this before it serves the generation.
    let routeSlotCount: Int
    let poolSlotCount: Int
    /// `[pool][backend]`: the backend as the access log names it (`127.0.0.1:9000`,
    /// `unix:/run/php.sock`).
    let upstreamNames: [[String]]

    /// Gives the context's new route and pool names their slots in `slots`.
    init(context: ProxyContext, slots: inout MetricSlots) {
        routeLines = context.configuration.routes.map(\.line)
        routeNames = context.configuration.routes.map(\.name)
        linesAreUnique = Set(routeLines).count == routeLines.count
        routeSlots = context.configuration.routes.map { slots.routeSlot(named: $0.name) }
        poolSlots = context.pools.map { slots.poolSlot(named: $0.config.name) }
        routeSlotCount = slots.routeNames.count
        poolSlotCount = slots.poolNames.count
        upstreamNames = context.pools.map { pool in pool.config.backends.map(\.description) }
    }

    /// Tables of their own (tests and servers built without an exporter).
    init(context: ProxyContext) {
        var slots = MetricSlots()
        self.init(context: context, slots: &slots)
    }

    /// The metrics slot of a route, or the no-route slot.
    func routeSlot(_ route: (line: Int, name: String)?) -> Int {
        guard let route else { return LoopMetrics.noRoute }
        for index in routeLines.indices where routeLines[index] == route.line {
            if linesAreUnique || routeNames[index] == route.name { return routeSlots[index] }
        }
        return LoopMetrics.noRoute
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
    /// `generation`: the one the exchange started with (its indices, its access log).
    /// `now`: a clock reading the caller has just taken, if any.
    func exchangeEnded(_ record: ExchangeRecord, in generation: ProxyGeneration, now: NIODeadline? = nil) {
        let now = now ?? NIODeadline.now()
        let requestNanoseconds = countExchange(
            route: record.route, status: record.status, bodyBytesIn: record.bodyBytesIn,
            bodyBytesOut: record.bodyBytesOut, start: record.start, in: generation, now: now)
        guard let accessLogBuffer = generation.accessLogBuffer else { return }
        let recording = generation.recording
        var upstreamAddress: String?
        var upstreamNanoseconds: Int64?
        if let pool = record.pool, let backend = record.backend, let upstreamStart = record.upstreamStart {
            upstreamAddress = recording.upstreamName(pool: pool, backend: backend)
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

    /// The counters' part of ``exchangeEnded(_:in:now:)``, for a generation without access log
    /// (no record to build). Returns the request's duration in nanoseconds.
    @discardableResult
    func countExchange(
        route: (line: Int, name: String)?, status: Int, bodyBytesIn: Int, bodyBytesOut: Int, start: NIODeadline,
        in generation: ProxyGeneration, now: NIODeadline
    ) -> Int64 {
        let requestNanoseconds = (now - start).nanoseconds
        metrics.recordRequest(
            route: generation.recording.routeSlot(route),
            status: status,
            nanoseconds: requestNanoseconds,
            bodyBytesIn: bodyBytesIn,
            bodyBytesOut: bodyBytesOut
        )
        return requestNanoseconds
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
            ),
            in: current
        )
    }
}
