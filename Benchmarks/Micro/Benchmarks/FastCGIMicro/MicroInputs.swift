// The inputs of the micro-benchmarks, built once outside the measured loops.
import FastCGI
import NIOCore
import NIOHTTP1
import ProxyConfig
import ProxyCore

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

    static let phpParams: [(name: String, value: String)] = [
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

    /// A browser's request for a page of a PHP application, as NIOHTTP1 hands it to the front end.
    static let browserHead = HTTPRequestHead(
        version: .http1_1,
        method: .GET,
        uri: "/blog/2024/10/some-article-title?page=2&sort=recent",
        headers: HTTPHeaders([
            ("Host", "www.example.com"),
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"),
            ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            ("Accept-Language", "en-US,en;q=0.5"),
            ("Accept-Encoding", "gzip, deflate, br, zstd"),
            ("Referer", "https://www.example.com/blog/"),
            ("Connection", "keep-alive"),
            ("Cookie", "PHPSESSID=3f1c0a9e8b7d6c5b4a39281706f5e4d3; theme=dark"),
            ("Cookie", "consent=1"),
            ("Upgrade-Insecure-Requests", "1"),
            ("Sec-Fetch-Dest", "document"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-User", "?1"),
            ("Priority", "u=0, i"),
        ])
    )

    /// `browserHead` as the bytes a browser sends.
    static var browserHeadBytes: ByteBuffer {
        var bytes = ByteBuffer(string: "\(browserHead.method.rawValue) \(browserHead.uri) HTTP/1.1\r\n")
        for field in browserHead.headers {
            bytes.writeString("\(field.name): \(field.value)\r\n")
        }
        bytes.writeString("\r\n")
        return bytes
    }

    /// A typical PHP application's routes: a status page for the monitoring, the static files
    /// nobody should send to PHP, and a front controller for everything else.
    static let routes: [RouteConfig] = [
        RouteConfig(name: "status", match: .exact("/fpm-status"), pool: "php", root: "/var/www/app/public"),
        RouteConfig(name: "uploads", match: .prefix("/uploads/"), pool: "php", root: "/var/www/app/public"),
        RouteConfig(
            name: "app", pool: "php", root: "/var/www/app/public",
            script: "/var/www/app/public/index.php", params: [("APP_ENV", "production")]
        ),
    ]

    /// The front end's connection: what a TCP listener reports for a client.
    static let connection = ConnectionInfo(
        remoteAddress: "203.0.113.77", remotePort: 51234, localAddress: "10.0.0.5", localPort: 80, isTLS: false
    )

    /// A 64 KiB response body, as one buffer (what a worker's handler hands over).
    static let body64k = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
}
