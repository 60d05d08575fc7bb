import NIOHTTP1
import ProxyConfig

/// The client side of the connection a request arrived on, as the CGI variables need it.
public struct ConnectionInfo: Sendable, Equatable {
    /// REMOTE_ADDR: the peer's IP address without brackets or port.
    public var remoteAddress: String
    /// REMOTE_PORT.
    public var remotePort: Int {
        didSet { remotePortText = String(remotePort) }
    }
    /// SERVER_ADDR, and SERVER_NAME when the request has no host.
    public var localAddress: String
    /// SERVER_PORT.
    public var localPort: Int {
        didSet { localPortText = String(localPort) }
    }
    /// The ports as PARAMS values, made once per connection rather than once per request.
    private(set) var remotePortText: String
    private(set) var localPortText: String
    /// Whether the connection is TLS (REQUEST_SCHEME https, HTTPS=on).
    public var isTLS: Bool

    /// Memberwise; addresses without brackets or port.
    public init(remoteAddress: String, remotePort: Int, localAddress: String, localPort: Int, isTLS: Bool) {
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.remotePortText = String(remotePort)
        self.localAddress = localAddress
        self.localPort = localPort
        self.localPortText = String(localPort)
        self.isTLS = isTLS
    }

    /// Values for a connection on a unix-socket listener, which has no IP addresses or ports.
    ///
    /// nginx sends `unix:` and empty ports there, which breaks applications that parse
    /// REMOTE_ADDR as an IP. A unix socket is reachable only from this host, so the addresses
    /// are loopback; REMOTE_PORT is 0; SERVER_PORT is the scheme's default port (80/443) so
    /// that applications building absolute URLs from it produce no odd `:0`.
    public static func unixSocket(isTLS: Bool = false) -> ConnectionInfo {
        ConnectionInfo(
            remoteAddress: "127.0.0.1", remotePort: 0, localAddress: "127.0.0.1", localPort: isTLS ? 443 : 80,
            isTLS: isTLS)
    }
}

/// The FastCGI PARAMS for one request (RFC 3875 §4.1 plus what PHP-FPM expects), in the order
/// they are sent.
///
/// Every name comes either from the fixed list below, from the route's `param` lines, or is
/// `HTTP_` + a request header name, so a client can never set SCRIPT_FILENAME, DOCUMENT_ROOT,
/// PHP_VALUE, HTTPS or any other unprefixed name. No name is ever sent twice: PHP-FPM keeps the
/// last duplicate, which would let a later entry silently override an earlier one.
public struct CGIParameters: Sendable {
    /// Name-value pairs in sending order, names unique.
    public var pairs: [(name: String, value: String)]

    /// Wraps ready pairs; normally `build(…)` makes them.
    public init(pairs: [(name: String, value: String)]) {
        self.pairs = pairs
    }

    /// The value of `name`, if present (a linear search: for tests and logging).
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Builds the PARAMS for a request.
    ///
    /// - `contentLength`: the body length from the proxy's OWN framing (never the client's
    ///   `Content-Length` header): `nil` when the request has no body, which is sent as
    ///   `CONTENT_LENGTH` = "" like nginx does; `0` for an explicit empty body (e.g. a POST with
    ///   `Content-Length: 0` or an empty chunked body).
    /// - SERVER_PROTOCOL is the request's own version (`HTTP/1.1`, `HTTP/1.0`, `HTTP/2.0`).
    /// - SERVER_NAME is the absolute-form authority or the first `Host`, lowercased and without
    ///   port; the local address when there is neither. HTTP_HOST likewise carries the
    ///   absolute-form authority when there is one (RFC 9112 §3.2.2: it wins over `Host`).
    /// - Route `param` lines follow the fixed params; one with the name of a fixed param
    ///   replaces its value in place (the configuration is trusted, e.g. `param = HTTPS on`
    ///   behind a TLS terminator). A route param named `HTTP_X` suppresses the client's `X`
    ///   header so the client cannot override it.
    /// - Then one `HTTP_*` per request header name: uppercased, `-` → `_`, repeated headers
    ///   joined with ", " (Cookie with "; "). Dropped: names with anything but letters, digits
    ///   and `-` (this drops `_`, nginx's `ignore_invalid_headers` rule), `Proxy` (httpoxy),
    ///   `Content-Type`/`Content-Length` (they are CONTENT_*), hop-by-hop and framing headers,
    ///   `Proxy-Authorization`, and any value containing NUL, CR or LF.
    public static func build(
        head: HTTPRequestHead,
        requestPath: RequestPath,
        script: ResolvedScript,
        route: RouteConfig,
        contentLength: Int?,
        connection: ConnectionInfo,
        serverSoftware: String
    ) -> CGIParameters {
        build(
            head: head, requestPath: requestPath, script: script, routeParams: route.params, contentLength: contentLength,
            connection: connection, serverSoftware: serverSoftware)
    }

    /// The same with the route's `param` lines only (what an exchange passes: no copy of the
    /// whole route configuration per request).
    static func build(
        head: HTTPRequestHead,
        requestPath: RequestPath,
        script: ResolvedScript,
        routeParams: [(name: String, value: String)],
        contentLength: Int?,
        connection: ConnectionInfo,
        serverSoftware: String
    ) -> CGIParameters {
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(fixedParamCount + routeParams.count + head.headers.count)

        let host = (requestPath.absoluteFormHost ?? head.headers.first(name: "host")).flatMap {
            isSafeValue($0) ? $0 : nil
        }
        let serverName = host.map(Router.normalizedHost).flatMap { $0.isEmpty ? nil : $0 }

        pairs.append(("SCRIPT_FILENAME", script.scriptFilename))
        pairs.append(("SCRIPT_NAME", script.scriptName))
        pairs.append(("PATH_INFO", script.pathInfo))
        if !script.pathInfo.isEmpty {
            pairs.append(("PATH_TRANSLATED", joinPath(script.documentRoot, script.pathInfo)))
        }
        pairs.append(("DOCUMENT_ROOT", script.documentRoot))
        pairs.append(("REQUEST_URI", requestPath.requestURI))
        pairs.append(("QUERY_STRING", requestPath.query))
        pairs.append(("REQUEST_METHOD", head.method.rawValue))
        pairs.append(("CONTENT_TYPE", head.headers.first(name: "content-type") ?? ""))
        pairs.append(("CONTENT_LENGTH", contentLength.map { String($0) } ?? ""))
        pairs.append(("SERVER_PROTOCOL", protocolName(head.version)))
        pairs.append(("SERVER_NAME", serverName ?? connection.localAddress))
        pairs.append(("SERVER_PORT", connection.localPortText))
        pairs.append(("SERVER_ADDR", connection.localAddress))
        pairs.append(("REMOTE_ADDR", connection.remoteAddress))
        pairs.append(("REMOTE_PORT", connection.remotePortText))
        pairs.append(("GATEWAY_INTERFACE", "CGI/1.1"))
        pairs.append(("SERVER_SOFTWARE", serverSoftware))
        pairs.append(("REQUEST_SCHEME", connection.isTLS ? "https" : "http"))
        if connection.isTLS {
            pairs.append(("HTTPS", "on"))
        }
        pairs.append(("REDIRECT_STATUS", "200"))

        var routeHeaderNames: [String] = []
        for param in routeParams {
            if let index = pairs.firstIndex(where: { $0.name == param.name }) {
                pairs[index].value = param.value
            } else {
                pairs.append((param.name, param.value))
            }
            if param.name.hasPrefix("HTTP_") {
                routeHeaderNames.append(param.name)
            }
        }

        let headerStart = pairs.count
        var hostEmitted = false
        for header in head.headers {
            guard !isDroppedHeader(header.name), let name = cgiName(forHeader: header.name), isSafeValue(header.value)
            else {
                continue
            }
            if !routeHeaderNames.isEmpty && routeHeaderNames.contains(name) {
                continue
            }
            if name == "HTTP_HOST" {
                // Only the Host that SERVER_NAME was taken from, so the two cannot disagree.
                if !hostEmitted, let host {
                    pairs.append((name, host))
                }
                hostEmitted = true
                continue
            }
            // Header counts are small; a linear search beats hashing every name.
            if let index = pairs[headerStart...].firstIndex(where: { $0.name == name }) {
                pairs[index].value += name == "HTTP_COOKIE" ? "; " : ", "
                pairs[index].value += header.value
            } else {
                pairs.append((name, header.value))
            }
        }
        if !hostEmitted, let host, !routeHeaderNames.contains("HTTP_HOST") {
            pairs.append(("HTTP_HOST", host))
        }
        return CGIParameters(pairs: pairs)
    }

    /// Fixed params, counted for `reserveCapacity`.
    private static let fixedParamCount = 22

    /// Request headers that never become HTTP_* params: httpoxy, the two that are CONTENT_*,
    /// and hop-by-hop/framing headers that describe the client connection, not the request.
    /// Judged on the header's own name (any case; `_` spellings never get a CGI name at all),
    /// by length first: no CGI name is built and no string hashed for the common headers.
    static func isDroppedHeader(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: return name.equalsLowercasedASCII("te")
        case 5: return name.equalsLowercasedASCII("proxy")
        case 7: return name.equalsLowercasedASCII("trailer") || name.equalsLowercasedASCII("upgrade")
        case 10: return name.equalsLowercasedASCII("connection") || name.equalsLowercasedASCII("keep-alive")
        case 12: return name.equalsLowercasedASCII("content-type")
        case 14: return name.equalsLowercasedASCII("content-length") || name.equalsLowercasedASCII("http2-settings")
        case 16: return name.equalsLowercasedASCII("proxy-connection")
        case 17: return name.equalsLowercasedASCII("transfer-encoding")
        case 19: return name.equalsLowercasedASCII("proxy-authorization")
        default: return false
        }
    }

    /// `HTTP_` + the name uppercased with `-` → `_`, or nil for a name with any other character.
    private static func cgiName(forHeader name: String) -> String? {
        let utf8 = name.utf8
        let valid = name.withUTF8Bytes { bytes in
            !bytes.isEmpty
                && bytes.allSatisfy { byte in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                        true
                    default:
                        false
                    }
                }
        }
        guard valid else {
            return nil
        }
        // Shorter names fit a String inline: building them costs no allocation.
        if utf8.count > 10, let known = knownCGIName(forHeader: utf8) {
            return known
        }
        let prefix: StaticString = "HTTP_"
        return name.withUTF8Bytes { bytes in
            String(unsafeUninitializedCapacity: prefix.utf8CodeUnitCount + bytes.count) { buffer in
                var position = 0
                for offset in 0..<prefix.utf8CodeUnitCount {
                    buffer[position] = prefix.utf8Start[offset]
                    position += 1
                }
                for byte in bytes {
                    switch byte {
                    case UInt8(ascii: "-"): buffer[position] = UInt8(ascii: "_")
                    case UInt8(ascii: "a")...UInt8(ascii: "z"): buffer[position] = byte - 0x20
                    default: buffer[position] = byte
                    }
                    position += 1
                }
                return position
            }
        }
    }

    /// The HTTP/1 parser already refuses these; checked again because an HTTP/2 front end or a
    /// future decoder option must not be able to carry them into `$_SERVER`.
    private static func isSafeValue(_ value: String) -> Bool {
        value.withUTF8Bytes { bytes in
            !bytes.contains { $0 == 0 || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
        }
    }

    /// Literals for the versions we speak: an interpolated string costs an allocation.
    private static func protocolName(_ version: HTTPVersion) -> String {
        switch (version.major, version.minor) {
        case (1, 1): return "HTTP/1.1"
        case (1, 0): return "HTTP/1.0"
        case (2, 0): return "HTTP/2.0"
        default: return "HTTP/\(version.major).\(version.minor)"
        }
    }

    private static func joinPath(_ root: String, _ path: String) -> String {
        root.hasSuffix("/") && path.hasPrefix("/") ? root + path.dropFirst() : root + path
    }
}
