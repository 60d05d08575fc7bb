import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyConfig
import ProxyCore
import WorkerSupervisor

/// SIGHUP: reads and checks the file again, then switches the server to it. A file with errors
/// changes nothing (the errors are logged with file:line). Reloads run one after the other.
final class Reloader: Sendable {
    private let configPath: String
    private let server: ProxyServer
    private let workers: SpawnedWorkers
    private let notifier: SystemdNotifier?
    private let logger: Logger
    private let status: @Sendable () -> String
    /// Supervisors retired by reloads whose old requests are still draining.
    private let retired = NIOLockedValueBox<[ObjectIdentifier: WorkerSupervisor]>([:])
    private let attempts = NIOLockedValueBox(1)

    init(
        configPath: String,
        server: ProxyServer,
        workers: SpawnedWorkers,
        notifier: SystemdNotifier?,
        logger: Logger,
        status: @escaping @Sendable () -> String
    ) {
        self.configPath = configPath
        self.server = server
        self.workers = workers
        self.notifier = notifier
        self.logger = logger
        self.status = status
    }

    func reload() async {
        notifier?.reloading(status: "reloading \(configPath)")
        defer { notifier?.ready(status: status()) }
        logger.info("SIGHUP: reloading \(configPath)")

        var configuration: ProxyConfiguration
        do {
            configuration = try ConfigParser.load(path: configPath)
        } catch {
            // Every line as file:line: message, as --check-config prints them.
            for line in error.description.split(separator: "\n") {
                logger.error("reload: \(line)")
            }
            logger.error("reload failed: the running configuration stays in force")
            server.recordReload(success: false)
            return
        }
        let running = server.context
        // Names the sockets of changed spawn pools (`<pool>.<attempt>.sock`): unique per attempt.
        let attempt = attempts.withLockedValue { count in
            count += 1
            return count
        }
        let change: SpawnedWorkers.Change
        do {
            change = try workers.prepare(&configuration, generation: attempt)
        } catch {
            logger.error("reload: \(configPath): cannot start workers: \(error)")
            logger.error("reload failed: the running configuration stays in force")
            server.recordReload(success: false)
            return
        }
        let result: ProxyServer.ReloadResult
        do {
            let context = try ProxyContext(configuration: configuration, logger: logger, previous: running)
            result = try await server.reload(to: context)
        } catch {
            logger.error("reload: \(configPath): \(error)")
            logger.error("reload failed: the running configuration stays in force")
            server.recordReload(success: false)
            await workers.abandon(change)
            return
        }
        do {
            try workers.commit(change)
        } catch {
            logger.error("reload: starting workers: \(error)")
        }
        server.recordReload(success: true)
        let plan = result.plan
        logger.info("reload \(result.generation): \(plan.summary)")
        if !plan.restartOnlyKeys.isEmpty {
            // `metrics` is one of them: its listener is bound once, at start.
            logger.warning("reload \(result.generation): \(plan.restartOnlyKeys.joined(separator: ", ")) changed but take effect only after a restart")
        }
        retired.withLockedValue { retired in
            for supervisor in change.retired { retired[ObjectIdentifier(supervisor)] = supervisor }
        }
        let logger = self.logger
        let retiredNow = change.retired
        result.retiredPoolsDrained.whenSuccess { [retired] in
            logger.info("reload \(result.generation): pools of the previous configuration drained")
            guard !retiredNow.isEmpty else { return }
            Task {
                for supervisor in retiredNow {
                    let still = retired.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(supervisor)) != nil }
                    if still { await supervisor.stop(grace: .seconds(5)) }
                }
            }
        }
    }

    /// At exit: the workers of pools that a reload retired and that were still draining.
    func stopRetiredWorkers(grace: Duration) async {
        let left = retired.withLockedValue { retired in
            defer { retired = [:] }
            return Array(retired.values)
        }
        for supervisor in left {
            await supervisor.stop(grace: grace)
        }
    }
}
