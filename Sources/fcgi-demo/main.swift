// A small FastCGI worker built on FastCGIWorker: GET / answers with a page listing the CGI variables.
//
// Usage: fcgi-demo [--unix PATH | --tcp HOST:PORT]
// Without options it serves on the listening socket inherited as descriptor 0, as spawn-fcgi and
// mod_fcgid start workers.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastCGIWorker
import Logging
import NIOCore

struct ParamsPage: FastCGIResponder {
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let method = request.params["REQUEST_METHOD"] ?? "GET"
        let path = request.params["DOCUMENT_URI"] ?? request.params["SCRIPT_NAME"] ?? "/"
        guard method == "GET" || method == "HEAD" else {
            try await writer.writeHead(status: 405, headers: [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return
        }
        guard path == "/" else {
            try await writer.writeHead(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8")])
            try await writer.write("not found\n")
            return
        }
        var page = "<!doctype html>\n<title>fcgi-demo</title>\n<h1>FastCGI params</h1>\n<table>\n"
        for (name, value) in request.params {
            page += "<tr><th>\(escapeHTML(name))</th><td>\(escapeHTML(value))</td></tr>\n"
        }
        page += "</table>\n"
        let body = ByteBuffer(string: page)
        try await writer.writeHead(
            status: 200,
            headers: [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "\(body.readableBytes)")]
        )
        if method == "GET" {
            try await writer.write(body)
        }
    }
}

func escapeHTML(_ text: String) -> String {
    var escaped = ""
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        default: escaped.append(character)
        }
    }
    return escaped
}

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
    print("usage: fcgi-demo [--unix PATH | --tcp HOST:PORT]")
    exit(2)
}
let logger = Logger(label: "fcgi-demo")
let server = FastCGIWorkerServer(configuration: .init(listen: listen), responder: ParamsPage(), logger: logger)
try await server.run()
