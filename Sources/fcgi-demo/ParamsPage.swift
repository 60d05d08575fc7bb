import FastCGIWorker
import NIOCore

/// `GET /`: the CGI variables the web server sent, in its order, as an HTML table.
struct ParamsPage: FastCGIResponder {
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
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
        if request.method != "HEAD" {
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
