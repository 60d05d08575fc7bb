import ArgumentParser
import Dispatch
import Logging
import NIOConcurrencyHelpers
import ProxyConfig
import ProxyCore

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

    func run() async throws {
        let configuration: ProxyConfiguration
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
        let context = try ProxyContext(configuration: configuration, logger: logger)
        let server = ProxyServer(context: context)
        try await server.start()
        logger.info("fcgiproxy \(FCGIProxyVersion.string) ready")
        await waitForTermination()
        logger.info("shutting down")
        try await server.shutdown()
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
