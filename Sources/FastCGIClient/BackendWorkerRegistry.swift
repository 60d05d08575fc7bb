import NIOConcurrencyHelpers
import NIOCore

/// The pool shards of the whole process that hold connections, by backend address, so that a
/// shard whose new connection stalls in a backend's listen queue can free a worker that a shard
/// on another event loop pins.
///
/// PHP-FPM gives each keep-alive connection a worker of its own until it closes. Every event loop
/// has its own shard of a pool (and a pool another loop reloaded may still drain), each with its
/// own share of `max_conns`; with more connections in all than FPM has workers, the idle ones of
/// one loop can hold every worker while another loop's new connection waits in FPM's backlog.
/// The stall check frees a worker in its own shard first; when that shard has no connection to
/// give up, it asks the others that talk to the same address, one after the other on their own
/// loops, until one does. Touched only when a shard first connects, when it is retired, and at
/// a stall: never per request.
final class BackendWorkerRegistry: Sendable {
    static let shared = BackendWorkerRegistry()

    /// A shard, used only on its own event loop (every use goes through `pool.eventLoop`).
    struct Shard: @unchecked Sendable {
        let pool: FastCGIConnectionPool
        let addresses: [SocketAddress]
    }

    private let shards = NIOLockedValueBox<[ObjectIdentifier: Shard]>([:])

    func register(_ pool: FastCGIConnectionPool) {
        let shard = Shard(pool: pool, addresses: pool.settings.backends)
        shards.withLockedValue { $0[ObjectIdentifier(pool)] = shard }
    }

    func unregister(_ pool: FastCGIConnectionPool) {
        _ = shards.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(pool)) }
    }

    /// Asks the other shards with connections to `address`, one at a time on their loops, to
    /// free a worker there (``FastCGIConnectionPool/freeWorker(at:)``); stops at the first that does.
    func freeWorker(at address: SocketAddress, except pool: FastCGIConnectionPool) {
        let others = shards.withLockedValue { shards in
            shards.values.filter { $0.pool !== pool && $0.addresses.contains(address) }
        }
        Self.ask(others[...], toFreeWorkerAt: address)
    }

    private static func ask(_ shards: ArraySlice<Shard>, toFreeWorkerAt address: SocketAddress) {
        guard let shard = shards.first else { return }
        shard.pool.eventLoop.execute {
            if shard.pool.freeWorker(at: address) { return }
            ask(shards.dropFirst(), toFreeWorkerAt: address)
        }
    }
}
