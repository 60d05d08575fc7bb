/// Turns the INI configuration file into a validated ``ProxyConfiguration``.
///
/// Syntax: `[server]`, `[pool:NAME]` and `[route:NAME]` sections (NAME: letters, digits, `-`, `_`,
/// `.`) holding `key = value` lines. `;` and `#` start a comment at the start of a line or after
/// whitespace. Double quotes keep `;`, `#` and spaces in a value (`\"` and `\\` escape inside them).
/// Sizes take 1024-based `k`/`m`/`g`; durations take `ms`/`s`/`m`/`h` (plain numbers are seconds);
/// booleans are on/off, yes/no, true/false or 1/0.
///
/// Every problem the parser can find is reported, each as `file:line: message`, in one
/// ``ConfigErrors``, so a `--check-config` run shows them all at once.
public enum ConfigParser {
    /// Parses INI text. `fileName` is used in messages. Collects ALL errors it can and throws them together.
    public static func parse(_ text: String, fileName: String) throws(ConfigErrors) -> ProxyConfiguration {
        var reader = Reader(fileName: fileName)
        var lineNumber = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            reader.read(line, number: lineNumber)
        }
        return try reader.finish()
    }

    /// Reads and parses a file; an unreadable file is a ConfigErrors with line 0.
    public static func load(path: String) throws(ConfigErrors) -> ProxyConfiguration {
        let text: String
        do {
            text = try FileReader.readText(path: path)
        } catch {
            throw ConfigErrors([ConfigError(file: path, line: 0, message: error.message)])
        }
        return try parse(text, fileName: path)
    }
}

extension ConfigParser {
    /// The state of one pass over a file: which section lines belong to, and all sections so far.
    private struct Reader {
        /// Where `key = value` lines go.
        private enum Current {
            case none
            case server
            case pool(Int)
            case route(Int)
            /// Under an unknown section: its keys cannot be checked, and reporting each would only
            /// repeat the section's error.
            case skipped
        }

        private var errors: ConfigErrorList
        private var current = Current.none
        private var server = ServerSection()
        private var serverLine: Int?
        private var pools: [PoolSection] = []
        private var routes: [RouteSection] = []
        /// Whether each pool or route counts; invalid or duplicate names are still read, for their
        /// own key errors, but not kept.
        private var poolKept: [Bool] = []
        private var routeKept: [Bool] = []
        private var poolLines: [String: Int] = [:]
        private var routeLines: [String: Int] = [:]

        init(fileName: String) {
            errors = ConfigErrorList(file: fileName)
        }

        mutating func read(_ text: Substring, number: Int) {
            let line: INILine
            do {
                line = try INILine.parse(text)
            } catch {
                errors.add(line: number, "syntax error: \(error.message)")
                return
            }
            switch line {
            case .blank:
                break
            case .section(let kind, let name):
                startSection(kind: kind, name: name, line: number)
            case .entry(let key, let value):
                apply(INIEntry(key: key, value: value, line: number))
            }
        }

        private mutating func startSection(kind: String, name: String?, line: Int) {
            switch (kind, name) {
            case ("server", nil):
                if let first = serverLine {
                    // Continue into the same section so duplicate keys across both are still caught.
                    errors.add(line: line, "duplicate section [server] (first on line \(first))")
                } else {
                    serverLine = line
                }
                current = .server
            case ("server", .some):
                errors.add(line: line, "section [server] takes no name")
                current = .server
            case ("pool", let name?) where SectionName.isValid(name):
                let isNew = Self.register(name, line: line, kind: "pool", in: &poolLines, &errors)
                pools.append(PoolSection(name: name, line: line))
                poolKept.append(isNew)
                current = .pool(pools.count - 1)
            case ("route", let name?) where SectionName.isValid(name):
                let isNew = Self.register(name, line: line, kind: "route", in: &routeLines, &errors)
                routes.append(RouteSection(name: name, line: line))
                routeKept.append(isNew)
                current = .route(routes.count - 1)
            case ("pool", let name), ("route", let name):
                errors.add(line: line, invalidNameMessage(kind: kind, name: name))
                current = .skipped
            default:
                errors.add(
                    line: line,
                    "unknown section type [\(kind)\(name.map { ":" + $0 } ?? "")]"
                        + " (expected [server], [pool:NAME] or [route:NAME])"
                )
                current = .skipped
            }
        }

        private func invalidNameMessage(kind: String, name: String?) -> String {
            guard let name, !name.isEmpty else {
                return "section [\(kind)] needs a name: [\(kind):NAME]"
            }
            return "invalid \(kind) name \"\(name)\" (letters, digits, \"-\", \"_\" and \".\" only)"
        }

        /// Records a pool or route name; false (with an error) if the name was already taken.
        private static func register(
            _ name: String,
            line: Int,
            kind: String,
            in lines: inout [String: Int],
            _ errors: inout ConfigErrorList
        ) -> Bool {
            if let first = lines[name] {
                errors.add(line: line, "duplicate \(kind) \"\(name)\" (first defined on line \(first))")
                return false
            }
            lines[name] = line
            return true
        }

        private mutating func apply(_ entry: INIEntry) {
            switch current {
            case .none:
                errors.add(line: entry.line, "key \"\(entry.key)\" outside of any section")
            case .server:
                server.apply(entry, &errors)
            case .pool(let index):
                pools[index].apply(entry, &errors)
            case .route(let index):
                routes[index].apply(entry, &errors)
            case .skipped:
                break
            }
        }

        /// Runs the checks that need the whole file, then returns the configuration or every error.
        consuming func finish() throws(ConfigErrors) -> ProxyConfiguration {
            let serverConfig = server.finish(&errors)
            var poolConfigs: [PoolConfig] = []
            for (pool, kept) in zip(pools, poolKept) where kept {
                poolConfigs.append(pool.finish(&errors))
            }
            let poolNames = Set(poolLines.keys)
            var routeConfigs: [RouteConfig] = []
            for (route, kept) in zip(routes, routeKept) where kept {
                routeConfigs.append(route.finish(pools: poolNames, &errors))
            }
            if !errors.isEmpty {
                throw errors.sorted()
            }
            return ProxyConfiguration(
                server: serverConfig,
                pools: poolConfigs,
                routes: routeConfigs,
                sourceName: errors.file
            )
        }
    }
}
