// Micro-benchmarks of the per-request work fcgiproxy does besides I/O: decoding the backend's
// records, building the PARAMS stream, parsing the CGI response head. Each reports wall clock,
// throughput and heap allocations (mallocCountTotal, via the MallocInterposer trait) per
// iteration. "Baseline" measures an empty iteration: what the harness itself allocates.
import Benchmark
import CGIHeadParser
import FastCGI
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    Benchmark("Baseline (empty iteration)") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(index)
        }
    }

    // What PHP-FPM sends back for a 64 KiB page: a CGI head and the body in 8 KiB STDOUT
    // records (PHP's output buffer size), the empty STDOUT record and END_REQUEST.
    let stdoutStream = MicroInputs.stdoutStream(bodyBytes: 64 * 1024, recordBytes: 8 * 1024)
    Benchmark("FastCGI decode STDOUT stream (64 KiB in 8 KiB records)") { benchmark in
        for _ in benchmark.scaledIterations {
            // Moving the reader index of a copy does not copy the storage.
            var buffer = stdoutStream
            var decoder = FastCGIRecordDecoder()
            var contentBytes = 0
            while let record = try decoder.decode(buffer: &buffer) {
                contentBytes &+= record.content.readableBytes
            }
            blackHole(contentBytes)
        }
    }

    // BEGIN_REQUEST and PARAMS of a typical PHP page view through a front controller.
    let params = MicroInputs.phpParams
    Benchmark("PARAMS build (typical PHP request, \(params.count) pairs)") { benchmark in
        for _ in benchmark.scaledIterations {
            var buffer = ByteBufferAllocator().buffer(capacity: 2048)
            buffer.writeFastCGIBeginRequest(requestID: 1, role: .responder, flags: 1)
            var writer = FastCGIParamsWriter(requestID: 1, buffer: buffer)
            for (name, value) in params {
                try writer.append(name: name, value: value)
            }
            blackHole(writer.finish())
        }
    }

    // A PHP response head as PHP-FPM writes it, followed by the start of the body.
    let head = MicroInputs.cgiHead
    Benchmark("CGI response head parse (PHP page, 7 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            var buffer = head
            var parser = CGIResponseHeadParser()
            switch try parser.feed(&buffer) {
            case .head(let parsed, let body):
                blackHole(parsed.status)
                blackHole(body.readableBytes)
            case .needMoreData:
                fatalError("incomplete head")
            }
        }
    }
}

enum MicroInputs {
    static func stdoutStream(bodyBytes: Int, recordBytes: Int) -> ByteBuffer {
        var stream = ByteBuffer()
        var first = true
        var remaining = bodyBytes
        while remaining > 0 {
            var content = ByteBuffer()
            if first {
                content.writeString("Content-Type: text/html; charset=UTF-8\r\nX-Powered-By: PHP/8.2.29\r\n\r\n")
                first = false
            }
            let n = min(recordBytes - content.readableBytes, remaining)
            content.writeRepeatingByte(UInt8(ascii: "x"), count: n)
            remaining -= n
            stream.writeFastCGIStream(type: .stdout, requestID: 1, content: content)
        }
        stream.writeFastCGIStreamEnd(type: .stdout, requestID: 1)
        stream.writeFastCGIEndRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete)
        return stream
    }

    static let phpParams: [(String, String)] = [
        ("SCRIPT_FILENAME", "/var/www/app/public/index.php"),
        ("SCRIPT_NAME", "/index.php"),
        ("PATH_INFO", "/blog/2024/10/some-article-title"),
        ("DOCUMENT_ROOT", "/var/www/app/public"),
        ("REQUEST_URI", "/blog/2024/10/some-article-title?page=2&sort=recent"),
        ("QUERY_STRING", "page=2&sort=recent"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "443"),
        ("SERVER_ADDR", "10.0.0.5"),
        ("REMOTE_ADDR", "203.0.113.77"),
        ("REMOTE_PORT", "51234"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "fcgiproxy"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "www.example.com"),
        ("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"),
        ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
        ("HTTP_REFERER", "https://www.example.com/blog/"),
        ("HTTP_COOKIE", "PHPSESSID=3f1c0a9e8b7d6c5b4a39281706f5e4d3; theme=dark; consent=1"),
        ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
        ("HTTP_SEC_FETCH_DEST", "document"),
        ("HTTP_SEC_FETCH_MODE", "navigate"),
    ]

    static let cgiHead: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.writeString(
            "Status: 200 OK\r\n"
                + "X-Powered-By: PHP/8.2.29\r\n"
                + "Content-Type: text/html; charset=UTF-8\r\n"
                + "Set-Cookie: PHPSESSID=3f1c0a9e8b7d6c5b4a39281706f5e4d3; path=/; HttpOnly\r\n"
                + "Cache-Control: no-store, no-cache, must-revalidate\r\n"
                + "Pragma: no-cache\r\n"
                + "Content-Length: 5120\r\n"
                + "\r\n"
                + "<!DOCTYPE html><html><head><title>Blog</title></head><body>"
        )
        return buffer
    }()
}
