/// How many bytes the proxy may hold for clients: in memory and in temporary files.
///
/// One budget per client connection (`connection_buffer`, `connection_spill`: over all its
/// requests, so 100 HTTP/2 streams share one allowance) chained to one per event loop (its
/// share of `max_buffer_memory` and `max_spill`). Loop-bound like everything it counts, so a
/// plain class: no lock, no atomic. The price of per-loop shares is that one loop cannot use
/// what another leaves unused.
final class BufferBudget {
    /// Which allowance said no (for the log line and the status).
    enum Scope: Sendable, CustomStringConvertible {
        case request, connection, server

        var description: String {
            switch self {
            case .request: "request"
            case .connection: "connection"
            case .server: "server"
            }
        }
    }

    var memoryLimit: Int
    var spillLimit: Int
    private(set) var memoryUsed = 0
    private(set) var spillUsed = 0
    let parent: BufferBudget?
    /// The scope this budget stands for when it refuses.
    let scope: Scope

    /// Bytes handed to spill files and not written yet: memory until the spill threads write
    /// them (``SpillBuffer``), counted here and in every parent.
    private(set) var unwrittenBytes = 0
    /// How many of those a loop holds before requests that cannot pause are given up. Only the
    /// loop's (server scope) budget has a limit.
    let unwrittenLimit: Int

    /// A loop may hold this much not yet written to spill files: 16 MiB, a few seconds of a slow
    /// disk's writeback, where 1 000 HTTP/2 streams each a little behind would be a gigabyte.
    static let loopUnwrittenLimit = 16 << 20

    init(memoryLimit: Int, spillLimit: Int, scope: Scope, parent: BufferBudget? = nil) {
        self.memoryLimit = memoryLimit
        self.spillLimit = spillLimit
        self.scope = scope
        self.parent = parent
        self.unwrittenLimit = parent == nil ? Self.loopUnwrittenLimit : .max
    }

    func addUnwritten(_ count: Int) {
        unwrittenBytes += count
        parent?.addUnwritten(count)
    }

    /// This budget or a parent holds more unwritten bytes than it should.
    var unwrittenOverLimit: Bool {
        unwrittenBytes > unwrittenLimit || parent?.unwrittenOverLimit == true
    }

    /// Takes `count` bytes of memory from this budget and its parents, or nothing.
    func reserveMemory(_ count: Int) -> Bool {
        guard memoryUsed + count <= memoryLimit else { return false }
        if let parent, !parent.reserveMemory(count) { return false }
        memoryUsed += count
        return true
    }

    /// Takes memory beyond the limits: bytes already read that must go somewhere.
    func forceMemory(_ count: Int) {
        memoryUsed += count
        parent?.forceMemory(count)
    }

    func forceSpill(_ count: Int) {
        spillUsed += count
        parent?.forceSpill(count)
    }

    func releaseMemory(_ count: Int) {
        memoryUsed -= count
        parent?.releaseMemory(count)
    }

    /// Takes `count` bytes of temporary file space; on refusal, the scope that refused.
    func reserveSpill(_ count: Int) -> Scope? {
        // The server's share also counts files still being freed (by any loop).
        let freeing = parent == nil ? SpillFile.releasingBytes.load(ordering: .relaxed) : 0
        guard spillUsed + freeing + count <= spillLimit else { return scope }
        if let parent, let refused = parent.reserveSpill(count) { return refused }
        spillUsed += count
        return nil
    }

    func releaseSpill(_ count: Int) {
        spillUsed -= count
        parent?.releaseSpill(count)
    }
}

@available(*, unavailable)
extension BufferBudget: Sendable {}
