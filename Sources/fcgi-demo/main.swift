// fcgi-demo: a small FastCGI application built on FastCGIWorker that shows what the stack does.
//
//   GET  /               the request's CGI variables as an HTML table
//   ANY  /echo           the request body back, with X-Echo-Length and X-Echo-SHA256 headers
//   GET  /stream?n=N     Server-Sent Events: one event per second, N of them
//   GET  /slow?ms=N      sleeps N milliseconds, then answers
//   GET  /bytes?n=N      N bytes of a-z, streamed in chunks, with Content-Length
//
// Usage: fcgi-demo [--unix PATH | --tcp HOST:PORT]
// Without options it serves on the listening socket inherited as descriptor 0, as spawn-fcgi and
// mod_fcgid start workers. Logs go to stderr.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastCGIWorker
import Logging

func listenAddress(from arguments: [String]) -> FastCGIWorkerConfiguration.ListenAddress? {
    switch arguments.count {
    case 0:
        return .standardInput
    case 2 where arguments[0] == "--unix":
        return .unix(path: arguments[1])
    case 2 where arguments[0] == "--tcp":
        guard let colon = arguments[1].lastIndex(of: ":"), let port = Int(arguments[1][arguments[1].index(after: colon)...])
        else { return nil }
        return .tcp(host: String(arguments[1][..<colon]), port: port)
    default:
        return nil
    }
}

guard let listen = listenAddress(from: Array(CommandLine.arguments.dropFirst())) else {
    let usage = "usage: fcgi-demo [--unix PATH | --tcp HOST:PORT]\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "fcgi-demo")
let server = FastCGIWorkerServer(configuration: .init(listen: listen), responder: DemoApp(logger: logger), logger: logger)
try await server.run()
