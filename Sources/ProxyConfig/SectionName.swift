/// The rule for the NAME in `[pool:NAME]` and `[route:NAME]`.
enum SectionName {
    /// Letters, digits, `-`, `_` and `.`: safe to print unquoted in logs and metric labels.
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}
