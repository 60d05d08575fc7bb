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
        let supervisors = try startWorkers(&configuration, logger: logger)
        do {
            let context = try ProxyContext(configuration: configuration, logger: logger)
            let server = ProxyServer(context: context)
            try await server.start()
            logger.info("fcgiproxy \(FCGIProxyVersion.string) ready")
            await waitForTermination()
            logger.info("shutting down")
            try await server.shutdown()
        } catch {
            logger.critical("\(error)")
            await stopWorkers(supervisors)
            throw ExitCode(1)
        }
        await stopWorkers(supervisors)
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

    private func stopWorkers(_ supervisors: [WorkerSupervisor]) async {
        for supervisor in supervisors {
            await supervisor.stop(grace: .seconds(5))
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

    /// Suspends until SIGTERM or SIGINT.
    private func waitForTermination() async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let waiting = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiting.withLockedValue { $0 = continuation }
            for source in sources {
                // Resumed once, however many signals arrive.
                source.setEventHandler {
                    waiting.withLockedValue { pending in
                        pending?.resume()
                        pending = nil
                    }
                }
                source.resume()
            }
        }
        for source in sources { source.cancel() }
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
