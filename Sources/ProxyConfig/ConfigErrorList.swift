/// Collects the errors of one file so parsing can go on after the first and report them all.
struct ConfigErrorList {
    let file: String
    private(set) var errors: [ConfigError] = []

    init(file: String) {
        self.file = file
    }

    var isEmpty: Bool { errors.isEmpty }

    mutating func add(line: Int, _ message: String) {
        errors.append(ConfigError(file: file, line: line, message: message))
    }

    /// All errors ordered by line; checks that run after the whole file (like missing pools)
    /// would otherwise print out of order. The sort is stable, so same-line errors keep their order.
    func sorted() -> ConfigErrors {
        let ordered = errors.enumerated().sorted { lhs, rhs in
            (lhs.element.line, lhs.offset) < (rhs.element.line, rhs.offset)
        }
        return ConfigErrors(ordered.map(\.element))
    }
}
