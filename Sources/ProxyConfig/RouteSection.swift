/// Reads one `[route:NAME]` section into a ``RouteConfig``.
struct RouteSection {
    private var keys: SectionKeys
    private var config: RouteConfig

    init(name: String, line: Int) {
        keys = SectionKeys(label: "[route:\(name)]")
        config = RouteConfig(name: name, pool: "", root: "", line: line)
    }

    mutating func apply(_ entry: INIEntry, _ errors: inout ConfigErrorList) {
        switch entry.key {
        case "match":
            if let match = keys.single(entry, &errors, Self.match) { config.match = match }
        case "host":
            if let hosts = keys.repeated(entry, &errors, Self.hosts) { config.hosts += hosts }
        case "pool":
            if let pool = keys.single(entry, &errors, Self.poolName) { config.pool = pool }
        case "root":
            if let root = keys.single(entry, &errors, ConfigValue.absoluteDirectory) { config.root = root }
        case "index":
            if let index = keys.single(entry, &errors, Self.index) { config.index = index }
        case "files":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.files = enabled }
        case "fallback":
            if let path = keys.single(entry, &errors, Self.fallback) { config.fallback = path }
        case "internal":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.internal = enabled }
        case "symlinks":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.symlinks = enabled }
        case "precompressed":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.precompressed = enabled }
        case "split_path":
            if let suffix = keys.single(entry, &errors, Self.splitPath) { config.splitPath = suffix }
        case "script":
            if let script = keys.single(entry, &errors, ConfigValue.absolutePath) { config.script = script }
        case "param":
            if let param = keys.repeated(entry, &errors, Self.param) { config.params.append(param) }
        case "request_buffering":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.requestBuffering = enabled }
        case "response_buffering":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.responseBuffering = enabled }
        case "header":
            if let header = keys.repeated(entry, &errors, Self.header) { config.headers.append(header) }
        case "status":
            if let status = keys.single(entry, &errors, Self.status) { config.status = status }
        case "body_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.bodyTimeout = timeout }
        default:
            keys.unknown(entry, &errors)
        }
    }

    /// The finished route, checked against the pools the file defines.
    func finish(pools: Set<String>, _ errors: inout ConfigErrorList) -> RouteConfig {
        let name = config.name
        if keys.line(of: "status") != nil {
            // The route answers itself: what only a backend or a tree of files uses is a mistake.
            for key in Self.treeKeys + ["pool", "script", "param", "internal"] {
                if let line = keys.line(of: key) {
                    errors.add(line: line, "route \"\(name)\" answers with \"status\": \"\(key)\" has no use there")
                }
            }
            return config
        }
        let hasPool = keys.line(of: "pool") != nil
        let hasRoot = keys.line(of: "root") != nil
        if let line = keys.line(of: "pool") {
            // An empty name means the value itself was invalid, which is already reported.
            if !config.pool.isEmpty && !pools.contains(config.pool) {
                errors.add(line: line, "pool \"\(config.pool)\" used by [route:\(name)] is not defined")
            }
        } else if !hasRoot {
            errors.add(
                line: config.line,
                "route \"\(name)\" has no \"pool\" (nor a \"root\" to serve files from, nor a \"status\" to answer with)"
            )
        }
        if !hasRoot {
            // No root: the route fronts an application server, which gets every path as
            // PATH_INFO. What only a tree of files uses is a mistake without one.
            if let line = keys.line(of: "script") {
                // A front controller's file is under DOCUMENT_ROOT.
                errors.add(line: line, "route \"\(name)\" has \"script\" but no \"root\" (needed for DOCUMENT_ROOT)")
            }
            for key in Self.treeKeys where key != "root" {
                if let line = keys.line(of: key) {
                    let why = hasPool ? ": without one every path goes to the pool as PATH_INFO" : ""
                    errors.add(line: line, "route \"\(name)\" has \"\(key)\" but no \"root\"\(why)")
                }
            }
        }
        if !hasPool && hasRoot {
            // Files only: nothing can run a script.
            for key in ["script", "fallback"] {
                if let line = keys.line(of: key) {
                    errors.add(line: line, "route \"\(name)\" has \"\(key)\" but no \"pool\" to run it")
                }
            }
            if !config.files, let line = keys.line(of: "files") {
                errors.add(line: line, "route \"\(name)\" has \"files = off\" and no \"pool\": it serves nothing")
            }
        }
        if let line = keys.line(of: "fallback"), keys.line(of: "script") != nil {
            errors.add(
                line: line,
                "route \"\(name)\" has both \"script\" and \"fallback\": both say what runs when no file fits"
            )
        }
        if config.internal, let line = keys.line(of: "internal"), hasPool {
            errors.add(
                line: line,
                "route \"\(name)\" is \"internal\" and has a \"pool\": an internal route serves files only"
            )
        }
        return config
    }

    /// Keys that only make sense for a tree of files under `root`.
    private static let treeKeys = ["root", "index", "split_path", "files", "symlinks", "precompressed", "fallback"]

    /// `/prefix`, `= /exact` or `~ REGEX`.
    private static func match(_ value: INIValue) throws(ConfigValue.ValueError) -> RouteMatch {
        let text = value.text
        if text.first == "~" {
            let pattern = String(text.dropFirst().trimmingWhitespace())
            guard !pattern.isEmpty else {
                throw ConfigValue.ValueError("a regular expression after \"~\"")
            }
            do {
                _ = try RouteRegex(pattern)
            } catch {
                throw ConfigValue.ValueError("a valid regular expression after \"~\" (\(error))")
            }
            return .regex(pattern)
        }
        if text.first == "=" {
            let path = String(text.dropFirst().trimmingWhitespace())
            guard path.first == "/" else {
                throw ConfigValue.ValueError("a path starting with \"/\" after \"=\"")
            }
            return .exact(path)
        }
        guard text.first == "/" else {
            throw ConfigValue.ValueError("/prefix, \"= /exact\" or \"~ REGEX\"")
        }
        return .prefix(text)
    }

    /// One or more host names, compared later against the request's Host without its port.
    private static func hosts(_ value: INIValue) throws(ConfigValue.ValueError) -> [String] {
        guard !value.words.isEmpty else {
            throw ConfigValue.ValueError("one or more host names")
        }
        var hosts: [String] = []
        for word in value.words {
            hosts.append(try host(word.lowercased()))
        }
        return hosts
    }

    private static func host(_ text: String) throws(ConfigValue.ValueError) -> String {
        let expected = ConfigValue.ValueError("host names (optionally with :port, which is ignored)")
        if text.first == "[" {
            // IPv6 literal: the Host header keeps the brackets, so the route does too.
            guard let close = text.firstIndex(of: "]") else { throw expected }
            let literal = text[...close]
            let port = text[text.index(after: close)...]
            guard literal.count > 2, port.isEmpty || Self.isPort(port) else { throw expected }
            return String(literal)
        }
        var name = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            guard Self.isPort(text[colon...]) else { throw expected }
            name = text[..<colon]
        }
        guard !name.isEmpty, name.allSatisfy(ConfigValue.isHostCharacter) else { throw expected }
        return String(name)
    }

    /// `:digits`
    private static func isPort(_ text: Substring) -> Bool {
        text.first == ":" && ConfigValue.decimal(text.dropFirst()) != nil
    }

    /// 200 (an empty-handed "yes", e.g. for a health check) or an error status.
    private static func status(_ value: INIValue) throws(ConfigValue.ValueError) -> Int {
        guard let status = ConfigValue.decimal(value.text), status == 200 || (400...599).contains(status) else {
            throw ConfigValue.ValueError("200 or a status from 400 to 599")
        }
        return status
    }

    private static func poolName(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        guard SectionName.isValid(value.text) else {
            throw ConfigValue.ValueError("a pool name (letters, digits, \"-\", \"_\", \".\")")
        }
        return value.text
    }

    /// One or more names tried in order, each a file of the directory itself: no `/`, and not
    /// hidden (hidden names are never served).
    private static func index(_ value: INIValue) throws(ConfigValue.ValueError) -> [String] {
        guard !value.words.isEmpty, value.words.allSatisfy({ !$0.isEmpty && !$0.contains("/") && $0.first != "." })
        else {
            throw ConfigValue.ValueError(
                "file names in the directory, without \"/\" and not starting with \".\" (e.g. index.php index.html)")
        }
        return value.words
    }

    /// A URL path of a file: from `/`, not ending in `/`, no `.` or `..` segment, no query (the
    /// request's own goes along), no whitespace or control bytes.
    private static func fallback(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        let path = value.text
        guard path.first == "/", path.last != "/",
            path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "?" && $0 != "#" }),
            !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." })
        else {
            throw ConfigValue.ValueError("a URL path starting with \"/\", without a query (e.g. /index.php)")
        }
        return path
    }

    private static func splitPath(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        let suffix = value.text
        guard suffix.count > 1, suffix.first == ".", !suffix.contains("/"), !suffix.contains(where: \.isWhitespace)
        else {
            throw ConfigValue.ValueError("an extension starting with \".\" (e.g. .php)")
        }
        return suffix
    }

    private static func param(_ value: INIValue) throws(ConfigValue.ValueError) -> (name: String, value: String) {
        try ConfigValue.namedValue(value, validName: isParamName, nameRule: "letters, digits and \"_\"")
    }

    /// `NAME VALUE`: a field name (RFC 9110 token) the proxy does not own, and a value without
    /// control characters.
    private static func header(_ value: INIValue) throws(ConfigValue.ValueError) -> (name: String, value: String) {
        let header = try ConfigValue.namedValue(value, validName: isFieldName, nameRule: "RFC 9110 token characters")
        if reservedFields.contains(header.name.lowercased()) {
            throw ConfigValue.ValueError("a field the proxy does not set itself (not \(header.name))")
        }
        guard header.value.unicodeScalars.allSatisfy({ $0 == "\t" || $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw ConfigValue.ValueError("a value without control characters")
        }
        return header
    }

    /// Framing and hop-by-hop fields: the proxy writes them from what it does, not from a route.
    private static let reservedFields: Set<String> = [
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "proxy-connection", "status",
    ]

    private static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
            }
    }

    private static func isParamName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
