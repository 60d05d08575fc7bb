import ArgumentParser
import Dispatch
import Logging
import NIOConcurrencyHelpers
import ProxyConfig
import ProxyCore
import WorkerSupervisor

#if HTTP2
import ProxyHTTP2
#endif

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
            } catch let errors as ConfigErrors {
                // Already file:line (a TLS certificate or key that cannot be loaded).
                printError(errors.description)
                throw ExitCode(2)
            } catch {
                printError("\(config): \(error)")
                throw ExitCode(2)
            }
            print("\(config): configuration OK")
            return
        }

        let level = Logger.Level(configName: configuration.server.logLevel)
        LoggingSystem.bootstrap { label in
            ErrorLogHandler(label: label, level: level)
        }
        let logger = Logger(label: "fcgiproxy")
        // Caught before anything starts, so that a stop request during start-up is not lost.
        let signals = ShutdownSignals()
        // SIGHUP's default action would kill us before the reload handler exists.
        signal(SIGHUP, SIG_IGN)
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

        let createdRunDirectory = NIOLockedValueBox<String?>(nil)
        let tempDir = configuration.server.tempDir
        let workers = SpawnedWorkers(logger: logger) { [runDir] in
            try createdRunDirectory.withLockedValue { created in
                if let created { return created }
                let folder = try Self.runDirectory(runDir: runDir, tempDir: tempDir)
                created = folder
                return folder
            }
        }
        let initialWorkers: SpawnedWorkers.Change
        do {
            initialWorkers = try workers.prepare(&configuration, generation: 1)
        } catch {
            printError("\(config): cannot start workers: \(error)")
            for socket in inheritedSockets { close(socket.descriptor) }
            throw ExitCode(1)
        }
        let server: ProxyServer
        do {
            let context = try ProxyContext(configuration: configuration, logger: logger)
            server = ProxyServer(context: context)
            try await server.start(inheritedSockets: inheritedSockets)
            // Root is needed up to here (ports below 1024, sockets in root-owned folders); the
            // workers start after, so they run as the same user.
            if let target = try PrivilegeDrop.target(user: configuration.server.user, group: configuration.server.group) {
                var handed = initialWorkers.created.compactMap { supervisor -> String? in
                    if case .unix(let path) = supervisor.backendAddress { return path }
                    return nil
                }
                if runDir == nil, let folder = createdRunDirectory.withLockedValue({ $0 }), getenv("RUNTIME_DIRECTORY") == nil {
                    handed.append(folder)
                }
                PrivilegeDrop.handOver(handed, uid: target.uid, gid: target.gid)
                try PrivilegeDrop.drop(uid: target.uid, gid: target.gid, userName: target.userName, logger: logger)
            }
            try workers.commit(initialWorkers)
        } catch {
            logger.critical("\(error)")
            notifier?.status("failed to start: \(error)")
            await workers.abandon(initialWorkers)
            await workers.stopAll(grace: .seconds(5))
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

        // SIGHUP: reload. Signals that arrive during a reload fold into one more reload after it.
        let (reloadRequests, reloadContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let reloadSource = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reloadSource.setEventHandler { reloadContinuation.yield() }
        reloadSource.resume()
        let reloader = Reloader(
            configPath: config, server: server, workers: workers, notifier: notifier, logger: logger, status: statusLine
        )
        let reloads = Task {
            for await _ in reloadRequests {
                await reloader.reload()
            }
        }

        notifier?.ready(status: statusLine())
        let watchdog = notifier.map {
            SystemdWatchdog(notifier: $0, group: server.eventLoopGroup, watchdogInterval: watchdogInterval, status: statusLine)
        }
        watchdog?.start()
        #if HTTP2
        logger.info("fcgiproxy \(FCGIProxyVersion.string) ready (nghttp2 \(HTTP2Support.libraryVersion))")
        #else
        logger.info("fcgiproxy \(FCGIProxyVersion.string) ready")
        #endif

        let first = await signals.waitForFirst()
        // No reload after a stop signal; one under way finishes first (it may have bound listeners).
        reloadSource.cancel()
        reloadContinuation.finish()
        await reloads.value
        stopping.withLockedValue { $0 = true }
        let timeout = server.context.configuration.server.shutdownTimeout
        logger.info("\(ShutdownSignals.name(first)): stopping; requests in flight have \(timeout) to finish (send it again to stop at once)")
        notifier?.stopping(status: statusLine())
        // The stop must end even if an event loop never comes back (a bug, a call that blocks):
        // the signal thread, which no loop can hold up, ends the process after the grace period
        // and a margin, or shortly after a second signal.
        let stopDeadline = Double(timeout.components.seconds) + 10
        DispatchQueue.global().asyncAfter(deadline: .now() + stopDeadline) { [logger] in
            logger.critical("stop did not complete \(Int(stopDeadline)) s after the signal: exiting")
            _exit(1)
        }
        signals.onRepeat { [server, logger] number in
            logger.notice("\(ShutdownSignals.name(number)) again: closing every connection now")
            server.closeAllConnections()
            DispatchQueue.global().asyncAfter(deadline: .now() + 3) {
                logger.critical("stop did not complete 3 s after the second signal: exiting")
                _exit(1)
            }
        }
        do {
            try await server.shutdown(gracePeriod: timeout)
        } catch {
            logger.error("shutdown: \(error)")
        }
        watchdog?.stop()
        await reloader.stopRetiredWorkers(grace: signals.repeated ? .milliseconds(200) : .seconds(5))
        await workers.stopAll(grace: signals.repeated ? .milliseconds(200) : .seconds(5))
        logger.info("stopped")
    }

    /// `--run-dir`, else systemd's RuntimeDirectory=, else a fresh private folder.
    private static func runDirectory(runDir: String?, tempDir: String) throws -> String {
        if let runDir { return runDir }
        if let runtime = getenv("RUNTIME_DIRECTORY").map({ String(cString: $0) }), !runtime.isEmpty {
            // systemd may pass several, separated by colons: the first is ours.
            return String(runtime.split(separator: ":").first ?? Substring(runtime))
        }
        var template = Array("\(tempDir)/fcgiproxy-run-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw RunDirectoryError(description: "cannot create a run folder in \(tempDir): errno \(errno)")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private struct RunDirectoryError: Error, CustomStringConvertible {
        var description: String
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
    static let number = "0.1.0"
    /// The optional features this binary was built with (package traits), so `--version` tells
    /// which build is installed.
    static let features: [String] = {
        var features: [String] = []
        #if HTTP2
        features.append("http2")
        #else
        features.append("no http2")
        #endif
        #if TLS
        features.append("tls")
        #else
        features.append("no tls")
        #endif
        return features
    }()
    static let string = "\(number) (\(features.joined(separator: ", ")))"
}
