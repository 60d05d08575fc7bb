/// Where each route and pool counts, by name, for the life of the process.
///
/// A reload renumbers routes and pools (they are indexed in file order), so the per-loop
/// counters are indexed by slot instead: a name keeps its slot across reloads, a new name gets
/// the next one, and a removed name keeps its slot (and its counters' last values, since
/// Prometheus counters must never go back). The table only grows. Route slot 0 is the "no
/// route" slot (label `-`).
///
/// Touched only when a configuration is installed (start, reload) and by the exporter, under its
/// lock; never on the hot path, which reads a generation's ``RecordingTables``.
struct MetricSlots: Sendable, Equatable {
    private(set) var routeNames: [String] = [MetricSlots.noRouteName]
    private(set) var poolNames: [String] = []

    static let noRouteName = "-"

    /// The slot of a route name, added when new.
    mutating func routeSlot(named name: String) -> Int {
        Self.slot(of: name, in: &routeNames)
    }

    /// The slot of a pool name, added when new.
    mutating func poolSlot(named name: String) -> Int {
        Self.slot(of: name, in: &poolNames)
    }

    private static func slot(of name: String, in names: inout [String]) -> Int {
        if let index = names.firstIndex(of: name) { return index }
        names.append(name)
        return names.count - 1
    }
}
