import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private PHP-FPM for the pool tests, with the knobs ``PHPFPM`` does not offer: `pm.max_requests`,
/// an `env[BACKEND]` name (printed by whoami.php), and stop/kill/restart on the same socket path.
final class PoolPHPFPM: @unchecked Sendable {
    struct Options: Sendable {
        var children = 2
        /// `pm.max_requests` (0: never recycle a worker).
        var maxRequests = 0
        /// `env[BACKEND]`, printed by whoami.php.
        var name = "fpm"
    }

    let dir: TempDir
    let options: Options
    let socketPath: String
    let logPath: String
    private let lock = NSLock()
    private var current: SpawnedProcess?

    /// Writes the config into a fresh temp dir and starts PHP-FPM.
    init(_ options: Options) async throws {
        guard Paths.phpFPM != nil else {
            throw HarnessError("no /usr/sbin/php-fpm* (apt-get install php-fpm)")
        }
        self.options = options
        dir = try TempDir("fcgiproxy-pool-fpm")
        socketPath = dir.file("php.sock")
        logPath = dir.file("php-fpm.log")
        try await start()
    }

    /// Starts (again) on the same socket path and waits until the socket exists.
    func start() async throws {
        guard let fpm = Paths.phpFPM else { throw HarnessError("no php-fpm") }
        // A stale socket from a killed instance would make the wait below return at once.
        unlink(socketPath)
        // As root, workers stay root (`-R`): the checkout may sit under a folder only root can
        // enter (CI clones into one), and workers as www-data could not read examples/php.
        let userLines = ""
        let config = """
            [global]
            pid = \(dir.file("php-fpm.pid"))
            error_log = \(logPath)
            daemonize = no

            [\(options.name)]
            \(userLines)listen = \(socketPath)
            listen.mode = 0666
            pm = static
            pm.max_children = \(options.children)
            pm.max_requests = \(options.maxRequests)
            catch_workers_output = yes
            clear_env = no
            env[BACKEND] = \(options.name)
            request_terminate_timeout = 0
            php_admin_value[output_buffering] = 0

            """
        let configPath = try dir.write("php-fpm.conf", config)
        let process = try ChildProcess.launch(
            fpm, ["--nodaemonize", "--fpm-config", configPath] + (getuid() == 0 ? ["-R"] : []), logPath: dir.file("php-fpm.out"))
        lock.withLock { current = process }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        while !FileManager.default.fileExists(atPath: socketPath) {
            if !process.isRunning || clock.now > deadline {
                process.stop()
                throw HarnessError("php-fpm did not come up:\n\(dir.read("php-fpm.log"))\(dir.read("php-fpm.out"))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private var process: SpawnedProcess? { lock.withLock { current } }

    var masterPID: pid_t? { process?.pid }
    var isRunning: Bool { process?.isRunning ?? false }

    /// The master's children (its workers), from /proc.
    func workerPIDs() -> [pid_t] {
        guard let pid = masterPID,
            let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
        else { return [] }
        return text.split(separator: " ").compactMap { pid_t($0) }
    }

    /// Waits until the master has `options.children` workers (they are forked after the socket exists).
    func waitForWorkers(timeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while workerPIDs().count < options.children {
            guard clock.now < deadline else { throw HarnessError("php-fpm workers did not start:\n\(log())") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// SIGUSR2: graceful reload (the master re-executes itself, keeping its pid and socket).
    func reload() { process?.signal(SIGUSR2) }

    /// SIGKILL to the master and every worker: the backend vanishes as in a crash.
    func killHard() {
        guard let process else { return }
        let workers = workerPIDs()
        process.signal(SIGKILL)
        for worker in workers { kill(worker, SIGKILL) }
        while process.isRunning { usleep(2_000) }
        // Orphaned workers are reparented to init, which reaps them; wait until they are gone.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(2)
        while clock.now < deadline, workers.contains(where: Self.isAlive) { usleep(2_000) }
    }

    /// True while `pid` exists and is not a zombie (an orphan's reaper may be slow).
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    func stop() { process?.stop() }

    func log() -> String { dir.read("php-fpm.log") + dir.read("php-fpm.out") }

    deinit { stop() }
}
