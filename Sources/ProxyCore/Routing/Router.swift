import ProxyConfig

/// Picks the route for a request: the first `[route:*]` in file order whose `match` fits the
/// normalized path and whose `host` list (if any) contains the request's host.
///
/// Regular expressions are compiled once here, so a bad pattern fails at startup/reload and
/// never on a request.
public struct Router: Sendable {
    /// A `match = ~ REGEX` that ``RouteRegex`` refuses.
    public struct InvalidPattern: Error, Sendable, Equatable, CustomStringConvertible {
        /// `[route:NAME]` of the offending route.
        public var routeName: String
        /// Line of the route's section header.
        public var line: Int
        /// The pattern as written after `~`.
        public var pattern: String
        /// Why it was refused, naming the construct.
        public var message: String

        /// `route NAME (line N): invalid regex …`, for the config check output.
        public var description: String {
            "route \(routeName) (line \(line)): invalid regex \(pattern): \(message)"
        }
    }

    private enum Matcher: Sendable {
        case prefix(String)
        case exact(String)
        case regex(RouteRegex)
    }

    /// A matched route, shared by reference: an exchange keeps one pointer instead of a copy of
    /// the route's dozen strings and arrays (a retain and release each, per request).
    public final class Route: Sendable {
        public let config: RouteConfig
        /// Index of the pool it names in the `pools` the router was built with; nil if absent.
        public let poolIndex: Int?
        /// SCRIPT_NAME of a front controller (`script` set): fixed by the configuration, so
        /// worked out once here rather than per request (it takes a string or two to build).
        let frontControllerScriptName: String?
        /// SCRIPT_NAME of a route without `root` (an application server): fixed too.
        let applicationScriptName: String?

        init(config: RouteConfig, poolIndex: Int?) {
            self.config = config
            self.poolIndex = poolIndex
            self.frontControllerScriptName = config.script.map {
                ScriptResolver.scriptName(ofFrontController: $0, root: config.root)
            }
            self.applicationScriptName = ScriptResolver.applicationScriptName(of: config)
        }
    }

    private struct Entry: Sendable {
        var route: Route
        var matcher: Matcher
    }

    private let entries: [Entry]

    /// Compiles every route's matcher; throws for the first regex that does not compile.
    /// `pools`: pool names in their index order, for ``Route/poolIndex``.
    public init(routes: [RouteConfig], pools: [String] = []) throws(InvalidPattern) {
        var entries: [Entry] = []
        entries.reserveCapacity(routes.count)
        for route in routes {
            let matcher: Matcher
            switch route.match {
            case .prefix(let prefix):
                matcher = .prefix(prefix)
            case .exact(let path):
                matcher = .exact(path)
            case .regex(let pattern):
                do {
                    matcher = .regex(try RouteRegex(pattern))
                } catch {
                    throw InvalidPattern(
                        routeName: route.name, line: route.line, pattern: pattern, message: "\(error)")
                }
            }
            entries.append(Entry(route: Route(config: route, poolIndex: pools.firstIndex(of: route.pool)), matcher: matcher))
        }
        self.entries = entries
    }

    /// The first route whose match fits `path` (already normalized by ``RequestPath``) and whose
    /// host list is empty or contains `host` (a `Host` value: case and port do not matter).
    public func route(path: String, host: String?) -> RouteConfig? {
        match(path: path, host: host)?.config
    }

    /// Like ``route(path:host:)``, as the shared ``Route``.
    public func match(path: String, host: String?) -> Route? {
        // Normalized lazily: most configurations have no host lists at all.
        var normalized: String?
        for entry in entries {
            guard Self.matches(entry.matcher, path: path) else {
                continue
            }
            if entry.route.config.hosts.isEmpty {
                return entry.route
            }
            guard let host else {
                continue
            }
            if normalized == nil {
                normalized = Self.normalizedHost(host)
            }
            if let normalized, Self.hostList(entry.route.config.hosts, contains: normalized) {
                return entry.route
            }
        }
        return nil
    }

    private static func matches(_ matcher: Matcher, path: String) -> Bool {
        switch matcher {
        case .prefix(let prefix): path.hasPrefix(prefix)
        case .exact(let exact): path == exact
        case .regex(let regex): regex.matches(path)
        }
    }

    /// Lowercased, without port and without a trailing dot (`Example.COM.:8080` → `example.com`);
    /// an IPv6 literal keeps its brackets (`[::1]:80` → `[::1]`).
    public static func normalizedHost(_ host: String) -> String {
        if let fast = normalizedASCIIHost(host) {
            return fast
        }
        var name: Substring
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") {
                name = host[...close]
            } else {
                name = host[...]
            }
        } else if let colon = host.lastIndex(of: ":") {
            name = host[..<colon]
        } else {
            name = host[...]
        }
        if name.hasSuffix(".") {
            name = name.dropLast()
        }
        return name.lowercased()
    }

    /// The common case in one byte scan, without Unicode case mapping: a lowercase ASCII name
    /// or IPv4 address, optionally with a port. Nil for anything else (uppercase, brackets,
    /// non-ASCII), which takes the general path.
    private static func normalizedASCIIHost(_ host: String) -> String? {
        // (end of the name, byte count), or nil for the general path.
        let scanned = host.withUTF8Bytes { bytes -> (Int, Int)? in
            var lastColon: Int?
            for index in bytes.indices {
                switch bytes[index] {
                case UInt8(ascii: "["), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x80...: return nil
                case UInt8(ascii: ":"): lastColon = index
                default: break
                }
            }
            var end = lastColon ?? bytes.count
            if end > 0, bytes[end - 1] == UInt8(ascii: ".") {
                end -= 1
            }
            return (end, bytes.count)
        }
        guard let (end, count) = scanned else { return nil }
        return end == count ? host : String(Substring(host.utf8.prefix(end)))
    }

    /// Config hosts are written lowercased without port; an IPv6 literal may be written with or
    /// without brackets, so both spellings are accepted.
    private static func hostList(_ hosts: [String], contains host: String) -> Bool {
        if hosts.contains(host) {
            return true
        }
        if host.hasPrefix("["), host.hasSuffix("]") {
            return hosts.contains(String(host.dropFirst().dropLast()))
        }
        return false
    }
}
