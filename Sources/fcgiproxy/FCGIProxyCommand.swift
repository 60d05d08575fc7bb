import ArgumentParser
import Dispatch
import Logging
import NIOConcurrencyHelpers
import ProxyConfig
import ProxyCore
import WorkerSupervisor

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's command line.
@main
struct FCGIProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcgiproxy",
        abstract: "HTTP to FastCGI reverse proxy.",
        version: FCGIProxyVersion.string
    )

    @Option(name: .long, help: "Path of the INI configuration file.")
    var config: String

    @Flag(name: .long, help: "Check the configuration, print errors as file:line: message, and exit.")
    var checkConfig = false

    @Option(
        name: .long,
        help: "Folder for the sockets of spawned workers (default: $RUNTIME_DIRECTORY under systemd, else a private folder in temp_dir)."
    )
    var runDir: String?

    func run() async throws {
        var configuration: ProxyConfiguration
        do {
            configuration = try ConfigParser.load(path: config)
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        if checkConfig {
            // Addresses and routes must also be usable, not only well-formed.
            do {
                _ = try ProxyContext(configuration: configuration, logger: Logger(label: "fcgiproxy"))
            } catch {
                printError("\(config): \(error)")
                throw ExitCode(2)
            }
            print("\(config): configuration OK")
            return
        }

        let level = Logger.Level(configName: configuration.server.logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fcgiproxy")
        // Caught before anything starts, so that a stop request during start-up is not lost.
        let signals = ShutdownSignals()
        // Read and unset before workers are spawned: they must not inherit systemd's variables.
        let notifier = SystemdNotifier.fromEnvironment()
        let inheritedSockets = SystemdSocketActivation.takeFromEnvironment()
        let watchdogInterval = SystemdWatchdog.intervalFromEnvironment()
        ResourceLimits.raiseOpenFileLimit(logger: logger)
        if let notifier {
            logger.debug("systemd notifications to \(notifier.socketPath)")
        }
        if !inheritedSockets.isEmpty {
            logger.info("socket activation: \(inheritedSockets.map(\.description).joined(separator: ", "))")
        }

        let supervisors: [WorkerSupervisor]
        do {
            supervisors = try startWorkers(&configuration, logger: logger)
        } catch {
            for socket in inheritedSockets { close(socket.descriptor) }
            throw error
        }
        let server: ProxyServer
        do {
            let context = try ProxyContext(configuration: configuration, logger: logger)
            server = ProxyServer(context: context)
            try await server.start(inheritedSockets: inheritedSockets)
        } catch {
            logger.critical("\(error)")
            notifier?.status("failed to start: \(error)")
            await stopWorkers(supervisors, grace: .seconds(5))
            throw ExitCode(1)
        }

        // logrotate's postrotate: `kill -USR1` reopens the access log file.
        signal(SIGUSR1, SIG_IGN)
        let reopenSource = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        reopenSource.setEventHandler { [server] in
            Task {
                do {
                    try await server.reopenAccessLog()
                    logger.info("SIGUSR1: access log reopened")
                } catch {
                    logger.error("SIGUSR1: \(error)")
                }
            }
        }
        reopenSource.resume()
        defer { reopenSource.cancel() }

        // Every listener is bound and the workers are started: now we are ready.
        let stopping = NIOLockedValueBox(false)
        let statusLine: @Sendable () -> String = { [server] in
            let count = server.connectionCount
            let noun = count == 1 ? "connection" : "connections"
            return stopping.withLockedValue { $0 } ? "stopping, \(count) \(noun) left" : "serving, \(count) \(noun)"
        }
        notifier?.ready(status: statusLine())
        let watchdog = notifier.map {
            SystemdWatchdog(notifier: $0, group: server.eventLoopGroup, watchdogInterval: watchdogInterval, status: statusLine)
        }
        watchdog?.start()
        logger.info("fcgiproxy \(FCGIProxyVersion.string) ready")

        let first = await signals.waitForFirst()
        stopping.withLockedValue { $0 = true }
        let timeout = configuration.server.shutdownTimeout
        logger.info("\(ShutdownSignals.name(first)): stopping; requests in flight have \(timeout) to finish (send it again to stop at once)")
        notifier?.stopping(status: statusLine())
        signals.onRepeat { [server, logger] number in
            logger.notice("\(ShutdownSignals.name(number)) again: closing every connection now")
            server.closeAllConnections()
        }
        do {
            try await server.shutdown(gracePeriod: timeout)
        } catch {
            logger.error("shutdown: \(error)")
        }
        watchdog?.stop()
        await stopWorkers(supervisors, grace: signals.repeated ? .milliseconds(200) : .seconds(5))
        logger.info("stopped")
    }

    /// Starts the workers of every pool with `spawn` and points the pool at their socket.
    private func startWorkers(_ configuration: inout ProxyConfiguration, logger: Logger) throws -> [WorkerSupervisor] {
        guard configuration.pools.contains(where: { $0.spawn != nil }) else { return [] }
        let directory = try runDirectory(tempDir: configuration.server.tempDir)
        var supervisors: [WorkerSupervisor] = []
        do {
            for index in configuration.pools.indices where configuration.pools[index].spawn != nil {
                let supervisor = try WorkerSupervisor(pool: configuration.pools[index], runDirectory: directory, logger: logger)
                try supervisor.start()
                configuration.pools[index].backends = [supervisor.backendAddress]
                supervisors.append(supervisor)
            }
        } catch {
            printError("\(config): cannot start workers: \(error)")
            for supervisor in supervisors {
                // Best effort: their children die with us anyway (PR_SET_PDEATHSIG).
                Task { await supervisor.stop(grace: .seconds(1)) }
            }
            throw ExitCode(1)
        }
        return supervisors
    }

    private func stopWorkers(_ supervisors: [WorkerSupervisor], grace: Duration) async {
        for supervisor in supervisors {
            await supervisor.stop(grace: grace)
        }
    }

    /// `--run-dir`, else systemd's RuntimeDirectory=, else a fresh private folder.
    private func runDirectory(tempDir: String) throws -> String {
        if let runDir { return runDir }
        if let runtime = getenv("RUNTIME_DIRECTORY").map({ String(cString: $0) }), !runtime.isEmpty {
            // systemd may pass several, separated by colons: the first is ours.
            return String(runtime.split(separator: ":").first ?? Substring(runtime))
        }
        var template = Array("\(tempDir)/fcgiproxy-run-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            printError("cannot create a run folder in \(tempDir): errno \(errno)")
            throw ExitCode(1)
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func printError(_ text: String) {
        var stderr = StandardError()
        print(text, to: &stderr)
    }

}

private struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        string.withCString { pointer in
            _ = Glibc.write(STDERR_FILENO, pointer, strlen(pointer))
        }
    }
}

extension Logger.Level {
    init(configName: String) {
        switch configName {
        case "trace": self = .trace
        case "debug": self = .debug
        case "notice": self = .notice
        case "warning": self = .warning
        case "error": self = .error
        case "critical": self = .critical
        default: self = .info
        }
    }
}

enum FCGIProxyVersion {
    static let string = "0.1.0"
}
