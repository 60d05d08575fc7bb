/// The per-section bookkeeping every section reader needs: duplicate keys and uniform messages.
struct SectionKeys {
    /// `[server]`, `[pool:php]`…, as shown in messages.
    let label: String
    /// First line of each non-repeatable key seen so far.
    private var firstLines: [String: Int] = [:]

    init(label: String) {
        self.label = label
    }

    /// Parses a key that may appear once; reports duplicates and bad values, returning nil for both.
    mutating func single<T>(
        _ entry: INIEntry,
        _ errors: inout ConfigErrorList,
        _ parse: (INIValue) throws(ConfigValue.ValueError) -> T
    ) -> T? {
        if let first = firstLines[entry.key] {
            errors.add(line: entry.line, "duplicate key \"\(entry.key)\" in \(label) (first set on line \(first))")
            return nil
        }
        firstLines[entry.key] = entry.line
        return repeated(entry, &errors, parse)
    }

    /// Parses a key that may appear any number of times.
    func repeated<T>(
        _ entry: INIEntry,
        _ errors: inout ConfigErrorList,
        _ parse: (INIValue) throws(ConfigValue.ValueError) -> T
    ) -> T? {
        do {
            return try parse(entry.value)
        } catch {
            errors.add(
                line: entry.line,
                "invalid value \"\(entry.value.raw)\" for \"\(entry.key)\" in \(label): expected \(error.expected)"
            )
            return nil
        }
    }

    func unknown(_ entry: INIEntry, _ errors: inout ConfigErrorList) {
        errors.add(line: entry.line, "unknown key \"\(entry.key)\" in \(label)")
    }

    /// Whether the key was set (for "needs X" checks across keys).
    func line(of key: String) -> Int? {
        firstLines[key]
    }
}
