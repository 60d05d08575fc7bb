import FastCGI
import HTTPFieldBytes
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

/// Receives PARAMS from ``CGIParameters/emit(head:requestPath:script:routeParams:contentLength:connection:serverSoftware:into:)``:
/// a list (``CGIParameters``) or FastCGI bytes (`FastCGIParamsEncoder`, what an exchange sends).
public protocol CGIParameterSink {
    mutating func append(name: String, value: String)
    /// A pair whose value is `prefix` + `suffix` (no joined string needed).
    mutating func append(name: String, value prefix: String, _ suffix: Substring)
    /// A pair whose value is raw bytes: a header value that was not UTF-8 (``FieldBytes``).
    mutating func append(name: String, bytes: UnsafeRawBufferPointer)
}

extension FastCGIParamsEncoder: CGIParameterSink {}

/// The FastCGI PARAMS for one request (RFC 3875 §4.1 plus what PHP-FPM expects), in the order
/// they are sent.
///
/// Every name comes either from the fixed list below, from the route's `param` lines, or is
/// `HTTP_` + a request header name, so a client can never set SCRIPT_FILENAME, DOCUMENT_ROOT,
/// PHP_VALUE, HTTPS or any other unprefixed name. No name is ever sent twice: PHP-FPM keeps the
/// last duplicate, which would let a later entry silently override an earlier one.
public struct CGIParameters: Sendable, CGIParameterSink {
    /// Name-value pairs in sending order, names unique.
    public var pairs: [(name: String, value: String)]

    /// Wraps ready pairs; normally ``emit(head:requestPath:script:routeParams:contentLength:connection:serverSoftware:into:)`` fills them.
    public init(pairs: [(name: String, value: String)] = []) {
        self.pairs = pairs
    }

    public mutating func append(name: String, value: String) {
        pairs.append((name, value))
    }

    public mutating func append(name: String, value prefix: String, _ suffix: Substring) {
        pairs.append((name, prefix + suffix))
    }

    /// Kept as the string that carries the bytes (``FieldBytes``): nothing is lost.
    public mutating func append(name: String, bytes: UnsafeRawBufferPointer) {
        pairs.append((name, FieldBytes.string(bytes)))
    }

    /// The value of `name`, if present (a linear search: for tests and logging).
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Hands the PARAMS of a request to `sink` in sending order, each name once.
    ///
    /// - `routeParams`: the route's `param` lines (what an exchange passes: no copy of the
    ///   whole route configuration per request).
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
    ///
    /// The sink is never asked to change what it was given: an exchange encodes the pairs
    /// straight into FastCGI bytes (no list of pairs per request). So a route param replacing
    /// a fixed one is looked up as the fixed one is sent, and repeated headers are joined
    /// before they are sent.
    public static func emit<Sink: CGIParameterSink>(
        head: HTTPRequestHead,
        requestPath: RequestPath,
        script: ResolvedScript,
        routeParams: [(name: String, value: String)],
        contentLength: Int?,
        connection: ConnectionInfo,
        serverSoftware: String,
        into sink: inout Sink
    ) {
        let host = (requestPath.absoluteFormHost ?? head.headers.first(name: "host")).flatMap {
            isSafeValue($0) ? $0 : nil
        }
        let serverName = host.map(Router.normalizedHost).flatMap { $0.isEmpty ? nil : $0 }

        // A route param with a fixed name replaces its value in place; the last such line wins.
        // Looked for only when the route has one: most have none, or only names of their own.
        let overridesFixed = !routeParams.isEmpty && routeParams.contains { fixedNames.contains($0.name) }
        func routeValue(_ name: String) -> String? {
            overridesFixed ? routeParams.last(where: { $0.name == name })?.value : nil
        }
        func fixed(_ name: String, _ value: String) {
            sink.append(name: name, value: routeValue(name) ?? value)
        }
        fixed("SCRIPT_FILENAME", script.scriptFilename)
        fixed("SCRIPT_NAME", script.scriptName)
        fixed("PATH_INFO", script.pathInfo)
        // PATH_INFO mapped into the document root; an application route has no root to map into.
        if !script.pathInfo.isEmpty, !script.documentRoot.isEmpty {
            if let routeValue = routeValue("PATH_TRANSLATED") {
                sink.append(name: "PATH_TRANSLATED", value: routeValue)
            } else {
                // The document root and PATH_INFO with one slash between them.
                let root = script.documentRoot
                let path = script.pathInfo
                sink.append(
                    name: "PATH_TRANSLATED", value: root,
                    root.hasSuffix("/") && path.hasPrefix("/") ? path.dropFirst() : path[...])
            }
        }
        fixed("DOCUMENT_ROOT", script.documentRoot)
        fixed("REQUEST_URI", requestPath.requestURI)
        fixed("QUERY_STRING", requestPath.query)
        fixed("REQUEST_METHOD", head.method.rawValue)
        fixed("CONTENT_TYPE", head.headers.first(name: "content-type") ?? "")
        fixed("CONTENT_LENGTH", contentLength.map { String($0) } ?? "")
        fixed("SERVER_PROTOCOL", protocolName(head.version))
        fixed("SERVER_NAME", serverName ?? connection.localAddress)
        fixed("SERVER_PORT", connection.localPortText)
        fixed("SERVER_ADDR", connection.localAddress)
        fixed("REMOTE_ADDR", connection.remoteAddress)
        fixed("REMOTE_PORT", connection.remotePortText)
        fixed("GATEWAY_INTERFACE", "CGI/1.1")
        fixed("SERVER_SOFTWARE", serverSoftware)
        fixed("REQUEST_SCHEME", connection.isTLS ? "https" : "http")
        if connection.isTLS {
            fixed("HTTPS", "on")
        }
        fixed("REDIRECT_STATUS", "200")

        // The route's other params, each at its first line with its last value.
        for (index, param) in routeParams.enumerated() {
            if isSentAsFixed(param.name, script: script, isTLS: connection.isTLS) { continue }
            if routeParams[..<index].contains(where: { $0.name == param.name }) { continue }
            sink.append(name: param.name, value: routeParams.last { $0.name == param.name }!.value)
        }

        let hostEmitted = emitHeaders(head.headers, host: host, routeParams: routeParams, into: &sink)
        if !hostEmitted, let host, routeParams.isEmpty || !routeParams.contains(where: { $0.name == "HTTP_HOST" }) {
            sink.append(name: "HTTP_HOST", value: host)
        }
    }

    /// The HTTP_* params, repeated headers joined where they first appear (", ", Cookie "; ");
    /// returns whether HTTP_HOST was settled (sent, or not to be sent). Built in a list on the
    /// stack first (a join must reach back to the first occurrence), then handed to the sink.
    private static func emitHeaders<Sink: CGIParameterSink>(
        _ headers: HTTPHeaders, host: String?, routeParams: [(name: String, value: String)], into sink: inout Sink
    ) -> Bool {
        withUnsafeTemporaryAllocation(of: (name: String, value: String).self, capacity: headers.count) { list -> Bool in
            guard let base = list.baseAddress else { return false }
            var count = 0
            defer { base.deinitialize(count: count) }
            var hostEmitted = false
            for header in headers {
                guard let name = headerParamName(header, routeParams: routeParams) else { continue }
                if name == "HTTP_HOST" {
                    // Only the Host that SERVER_NAME was taken from, so the two cannot disagree.
                    if !hostEmitted, let host {
                        (base + count).initialize(to: (name, host))
                        count += 1
                    }
                    hostEmitted = true
                    continue
                }
                // Header counts are small; a linear search beats hashing every name.
                if let index = (0..<count).first(where: { base[$0].name == name }) {
                    base[index].value += name == "HTTP_COOKIE" ? "; " : ", "
                    base[index].value += header.value
                } else {
                    (base + count).initialize(to: (name, header.value))
                    count += 1
                }
            }
            for index in 0..<count {
                // The bytes the client sent, also where they were not UTF-8.
                FieldBytes.withBytes(base[index].value) { sink.append(name: base[index].name, bytes: $0) }
            }
            return hostEmitted
        }
    }

    /// The param name a header is sent under, or nil when it is not sent: dropped names, names
    /// with characters other than letters, digits and `-`, unsafe values, and names a route
    /// param of the same HTTP_ name overrides.
    @inline(__always)
    private static func headerParamName(
        _ header: (name: String, value: String), routeParams: [(name: String, value: String)]
    ) -> String? {
        guard !isDroppedHeader(header.name), let name = cgiName(forHeader: header.name), isSafeValue(header.value) else {
            return nil
        }
        if !routeParams.isEmpty && routeParams.contains(where: { $0.name == name }) {
            return nil
        }
        return name
    }

    /// Whether `emit` sends `name` among the fixed params for this request.
    private static func isSentAsFixed(_ name: String, script: ResolvedScript, isTLS: Bool) -> Bool {
        switch name {
        case "PATH_TRANSLATED": return !script.pathInfo.isEmpty && !script.documentRoot.isEmpty
        case "HTTPS": return isTLS
        default: return fixedNames.contains(name)
        }
    }

    /// The fixed params (PATH_TRANSLATED and HTTPS are sent only sometimes).
    private static let fixedNames: Set<String> = [
        "PATH_TRANSLATED", "HTTPS", "SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_INFO", "DOCUMENT_ROOT", "REQUEST_URI", "QUERY_STRING",
        "REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT",
        "SERVER_ADDR", "REMOTE_ADDR", "REMOTE_PORT", "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "REQUEST_SCHEME",
        "REDIRECT_STATUS",
    ]

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
        // Shorter names fit a String inline: building them costs no allocation. Host, in every
        // HTTP/1.1 request, is worth a literal all the same (building a string is ~30 ns).
        if utf8.count > 10, let known = knownCGIName(forHeader: utf8) {
            return known
        }
        if utf8.count == 4, name.equalsLowercasedASCII("host") {
            return "HTTP_HOST"
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
}
