#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import ProxyConfig
import ProxyCore
import WorkerSupervisor

/// The supervisors of the `spawn =` pools, by pool name, kept across reloads: a pool whose
/// settings did not change keeps its workers; a new or changed one gets a new supervisor (on a
/// socket of its own, so the old workers finish their requests); the old one stops once the
/// requests of its generation have drained.
final class SpawnedWorkers: Sendable {
    fileprivate struct Entry: Sendable {
        /// The pool as written in the file (before its backend is pointed at the socket).
        var written: PoolConfig
        var supervisor: WorkerSupervisor
    }

    /// What ``prepare(_:generation:)`` decided; nothing is running yet.
    struct Change: Sendable {
        fileprivate var entries: [String: Entry]
        /// New supervisors, sockets bound, workers not started.
        var created: [WorkerSupervisor]
        /// Supervisors the new configuration no longer uses.
        var retired: [WorkerSupervisor]
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let logger: Logger
    private let runDirectory: @Sendable () throws -> String

    /// `runDirectory` is asked (once per prepare) only when a pool needs a socket there.
    init(logger: Logger, runDirectory: @escaping @Sendable () throws -> String) {
        self.logger = logger
        self.runDirectory = runDirectory
    }

    /// Points every `spawn` pool of `configuration` at its workers' socket, reusing the
    /// supervisor of an unchanged pool and binding a new one for the others.
    func prepare(_ configuration: inout ProxyConfiguration, generation: Int) throws -> Change {
        let current = entries.withLockedValue { $0 }
        var next: [String: Entry] = [:]
        var created: [WorkerSupervisor] = []
        do {
            for index in configuration.pools.indices where configuration.pools[index].spawn != nil {
                let written = configuration.pools[index]
                if let entry = current[written.name], ReloadPlan.sameSettings(entry.written, written) {
                    next[written.name] = entry
                    configuration.pools[index].backends = [entry.supervisor.backendAddress]
                    continue
                }
                var pool = written
                if pool.backends.isEmpty, current[pool.name] != nil {
                    // The old workers keep `<pool>.sock` until they drained.
                    let folder = try runDirectory()
                    pool.backends = [.unix(path: "\(folder)/\(pool.name).\(generation).sock")]
                }
                let supervisor = try WorkerSupervisor(pool: pool, runDirectory: try runDirectory(), logger: logger)
                created.append(supervisor)
                next[written.name] = Entry(written: written, supervisor: supervisor)
                configuration.pools[index].backends = [supervisor.backendAddress]
            }
        } catch {
            for supervisor in created {
                Task { await supervisor.stop(grace: .seconds(1)) }
            }
            throw error
        }
        let kept = Set(next.values.map { ObjectIdentifier($0.supervisor) })
        let retired = current.values.map(\.supervisor).filter { !kept.contains(ObjectIdentifier($0)) }
        return Change(entries: next, created: created, retired: retired)
    }

    /// Starts the new workers and makes the change the current set.
    func commit(_ change: Change) throws {
        for supervisor in change.created {
            try supervisor.start()
        }
        entries.withLockedValue { $0 = change.entries }
    }

    /// The change will not be used (the reload failed): its new supervisors stop.
    func abandon(_ change: Change) async {
        for supervisor in change.created {
            await supervisor.stop(grace: .seconds(1))
        }
    }

    /// Unix sockets of the current supervisors (to hand over to `user =` before dropping root).
    var unixSocketPaths: [String] {
        entries.withLockedValue { entries in
            entries.values.compactMap { entry in
                if case .unix(let path) = entry.supervisor.backendAddress { return path }
                return nil
            }
        }
    }

    func stopAll(grace: Duration) async {
        let all = entries.withLockedValue { entries in
            defer { entries = [:] }
            return Array(entries.values)
        }
        for entry in all {
            await entry.supervisor.stop(grace: grace)
        }
    }
}
