extension RouteRegex {
    /// A zero-width test between two scalars.
    enum Assertion: Sendable, Equatable {
        /// `^`: start of the path.
        case start
        /// `$`: end of the path (not before a final newline: paths have none to forgive).
        case end
        /// `\b`: a word scalar (ASCII `\w`) on exactly one side.
        case wordBoundary
        /// `\B`: the same on both sides.
        case notWordBoundary
    }

    /// A parsed pattern. Captures are not kept: a route only asks whether the path matches.
    indirect enum Node: Equatable {
        case literal(UInt32)
        case set(ScalarSet)
        case assertion(Assertion)
        case sequence([Node])
        case alternation([Node])
        /// `max` nil: unbounded. Lazy and greedy forms give the same yes/no, so are not told apart.
        case repetition(Node, min: Int, max: Int?)
    }

    /// Reads a pattern into a ``Node``, refusing, with a message naming it, every construct
    /// that an automaton cannot run in linear time or that we do not implement.
    ///
    /// Anything that is not plainly ours is an error rather than a literal (an unknown escape, a
    /// stray `]` or `{`): a route pattern written for PCRE or Swift Regex must either mean the
    /// same here or fail at load, never silently match something else.
    struct Parser {
        /// Counted repetition beyond this is refused, so `{n,m}` cannot multiply the program.
        static let maxCount = 1000
        /// Group nesting beyond this is refused: the parser and compiler recurse per level.
        static let maxDepth = 100
        /// Follows the construct in every refusal that is about running time.
        private static let notLinear = "is not supported: route regexes run in linear time"

        private let scalars: [Unicode.Scalar]
        private var position = 0
        private var depth = 0
        private var caseInsensitive = false

        private init(_ pattern: String) {
            scalars = Array(pattern.unicodeScalars)
        }

        static func parse(_ pattern: String) throws(SyntaxError) -> Node {
            var parser = Parser(pattern)
            return try parser.whole()
        }

        private var peek: Unicode.Scalar? {
            position < scalars.count ? scalars[position] : nil
        }

        private func peek(ahead offset: Int) -> Unicode.Scalar? {
            position + offset < scalars.count ? scalars[position + offset] : nil
        }

        private mutating func next() -> Unicode.Scalar? {
            defer { position += 1 }
            return peek
        }

        /// The pattern text from `start` up to the current position, for messages.
        private func text(from start: Int) -> String {
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars[start..<min(position, scalars.count)])
            return String(text)
        }

        private mutating func whole() throws(SyntaxError) -> Node {
            if scalars.starts(with: "(?i)".unicodeScalars) {
                position = 4
                caseInsensitive = true
            }
            let node = try alternation()
            if position < scalars.count {
                // alternation() stops only at the end or at a ")" no group opened.
                throw SyntaxError("unmatched ) at character \(position + 1)")
            }
            return node
        }

        private mutating func alternation() throws(SyntaxError) -> Node {
            var branches = [try sequence()]
            while peek == "|" {
                position += 1
                branches.append(try sequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func sequence() throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let scalar = peek, scalar != "|", scalar != ")" {
                items.append(try quantified())
            }
            return items.count == 1 ? items[0] : .sequence(items)
        }

        private mutating func quantified() throws(SyntaxError) -> Node {
            let atomStart = position
            let atom = try self.atom()
            let start = position
            guard let (min, max) = try quantifier() else {
                return atom
            }
            // A bare `^*` is surely a mistake; `(^)*` (an assertion alone in a group) is legal
            // if pointless, as elsewhere.
            if case .assertion = atom, scalars[atomStart] != "(" {
                throw SyntaxError("quantifier \(text(from: start)) follows an anchor, which has no width to repeat")
            }
            if peek == "?" {
                position += 1
            } else if peek == "+" {
                position += 1
                throw SyntaxError("possessive quantifier \(text(from: start)) \(Self.notLinear)")
            }
            if let scalar = peek, "*+?{".unicodeScalars.contains(scalar) {
                throw SyntaxError("quantifier \(scalar) follows another quantifier")
            }
            return .repetition(atom, min: min, max: max)
        }

        /// `*`, `+`, `?`, `{n}`, `{n,}` or `{n,m}` as (min, max), or nil if none follows.
        private mutating func quantifier() throws(SyntaxError) -> (Int, Int?)? {
            switch peek {
            case "*":
                position += 1
                return (0, nil)
            case "+":
                position += 1
                return (1, nil)
            case "?":
                position += 1
                return (0, 1)
            case "{":
                return try countedRepetition()
            default:
                return nil
            }
        }

        private mutating func countedRepetition() throws(SyntaxError) -> (Int, Int?) {
            let start = position
            position += 1
            let first = number()
            var last = first
            if peek == "," {
                position += 1
                last = number()
            }
            guard let low = first, peek == "}" else {
                position += peek == nil ? 0 : 1
                throw SyntaxError(
                    "malformed repetition \(text(from: start)): expected {n}, {n,} or {n,m} (\\{ is a literal brace)")
            }
            position += 1
            for count in [low, last ?? 0] where count > Self.maxCount {
                throw SyntaxError("repetition count \(count) in \(text(from: start)) is above \(Self.maxCount)")
            }
            if let high = last, high < low {
                throw SyntaxError("repetition \(text(from: start)) has its maximum below its minimum")
            }
            return (low, last)
        }

        /// Decimal digits, saturating far above ``maxCount`` so a long run cannot overflow.
        private mutating func number() -> Int? {
            var value: Int?
            while let scalar = peek, let digit = Self.digitValue(scalar) {
                value = Swift.min((value ?? 0) * 10 + digit, 1_000_000)
                position += 1
            }
            return value
        }

        private static func digitValue(_ scalar: Unicode.Scalar) -> Int? {
            ("0"..."9").contains(scalar) ? Int(scalar.value - 0x30) : nil
        }

        private mutating func atom() throws(SyntaxError) -> Node {
            let start = position
            guard let scalar = next() else {
                // sequence() calls this only with a scalar left.
                preconditionFailure("atom() at the end of the pattern")
            }
            switch scalar {
            case "(":
                return try group(openedAt: start)
            case "[":
                return try bracketClass(openedAt: start)
            case ".":
                return .set(.dot)
            case "^":
                return .assertion(.start)
            case "$":
                return .assertion(.end)
            case "\\":
                switch try escape() {
                case .scalar(let value): return literal(value)
                case .set(let ranges): return .set(ScalarSet(ranges))
                case .assertion(let assertion): return .assertion(assertion)
                }
            case "*", "+", "?", "{":
                throw SyntaxError("quantifier \(scalar) at character \(start + 1) has nothing to repeat")
            case "]", "}":
                throw SyntaxError("unmatched \(scalar) at character \(start + 1) (\\\(scalar) is a literal)")
            default:
                return literal(scalar.value)
            }
        }

        private func literal(_ value: UInt32) -> Node {
            guard caseInsensitive else {
                return .literal(value)
            }
            let folded = ScalarSet.caseFolded([value...value])
            return folded.count == 1 ? .literal(value) : .set(ScalarSet(folded))
        }

        // MARK: Groups

        private mutating func group(openedAt start: Int) throws(SyntaxError) -> Node {
            if peek == "?" {
                position += 1
                try groupKind(openedAt: start)
            }
            depth += 1
            guard depth <= Self.maxDepth else {
                throw SyntaxError("groups are nested deeper than \(Self.maxDepth)")
            }
            let inner = try alternation()
            guard peek == ")" else {
                throw SyntaxError("( at character \(start + 1) is never closed")
            }
            position += 1
            depth -= 1
            return inner
        }

        /// After `(?`: consumes what makes a plain group (`:` or a name) and refuses the rest.
        /// Named groups are accepted as plain groups (nginx configurations use them for
        /// captures, which a route does not need).
        private mutating func groupKind(openedAt start: Int) throws(SyntaxError) {
            guard let kind = next() else {
                throw SyntaxError("( at character \(start + 1) is never closed")
            }
            switch kind {
            case ":":
                return
            case "<" where peek == "=" || peek == "!":
                position += 1
                throw SyntaxError("lookbehind \(text(from: start)) \(Self.notLinear)")
            case "<":
                try groupName(closedBy: ">", openedAt: start)
            case "'":
                try groupName(closedBy: "'", openedAt: start)
            case "P" where peek == "<":
                position += 1
                try groupName(closedBy: ">", openedAt: start)
            case "P" where peek == "=":
                position += 1
                throw SyntaxError("backreference \(text(from: start)) \(Self.notLinear)")
            case "P" where peek == ">":
                throw SyntaxError("subroutine call \(text(from: start)) is not supported")
            case "R", "&", "+", "0"..."9":
                throw SyntaxError("recursion or subroutine call \(text(from: start)) is not supported")
            case "=", "!":
                throw SyntaxError("lookahead \(text(from: start)) \(Self.notLinear)")
            case ">":
                throw SyntaxError("atomic group \(text(from: start)) \(Self.notLinear)")
            case "i" where peek == ")":
                throw SyntaxError("(?i) is supported only at the very start of the pattern")
            case _ where kind.properties.isAlphabetic || kind == "-" || kind == "^":
                while let more = peek, more.properties.isAlphabetic || more == "-" {
                    position += 1
                }
                position += peek == ")" || peek == ":" ? 1 : 0
                throw SyntaxError(
                    "inline option \(text(from: start)) is not supported (only (?i), at the very start)")
            default:
                throw SyntaxError("group syntax \(text(from: start)) is not supported")
            }
        }

        private mutating func groupName(closedBy close: Unicode.Scalar, openedAt start: Int) throws(SyntaxError) {
            let nameStart = position
            while let scalar = peek, scalar == "_" || Self.isASCIIAlphanumeric(scalar) {
                position += 1
            }
            let valid = position > nameStart && Self.digitValue(scalars[nameStart]) == nil
            guard valid, next() == close else {
                throw SyntaxError("malformed group name in \(text(from: start))")
            }
        }

        private static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            scalar.isASCII && scalar.properties.isAlphabetic || digitValue(scalar) != nil
        }

        // MARK: Escapes and classes

        enum Escape {
            case scalar(UInt32)
            case set(ScalarSet.Ranges)
            case assertion(Assertion)
        }

        /// After `\`, in a class or out of one. Punctuation (any scalar that is not an ASCII
        /// letter or digit) stands for itself; letters and digits must be ones we know.
        private mutating func escape() throws(SyntaxError) -> Escape {
            let start = position - 1
            guard let scalar = next() else {
                throw SyntaxError("the pattern ends with a lone \\")
            }
            switch scalar {
            case "d": return .set(ScalarSet.digit)
            case "D": return .set(ScalarSet.complement(ScalarSet.digit))
            case "w": return .set(ScalarSet.word)
            case "W": return .set(ScalarSet.complement(ScalarSet.word))
            case "s": return .set(ScalarSet.space)
            case "S": return .set(ScalarSet.complement(ScalarSet.space))
            case "t": return .scalar(0x09)
            case "n": return .scalar(0x0A)
            case "r": return .scalar(0x0D)
            case "b": return .assertion(.wordBoundary)
            case "B": return .assertion(.notWordBoundary)
            case "1"..."9", "k", "g":
                while let more = peek, Self.digitValue(more) != nil {
                    position += 1
                }
                throw SyntaxError("backreference \(text(from: start)) \(Self.notLinear)")
            case "p", "P":
                if peek == "{" {
                    while let more = next(), more != "}" {}
                }
                throw SyntaxError("Unicode property \(text(from: start)) is not supported")
            case _ where Self.isASCIIAlphanumeric(scalar):
                throw SyntaxError("escape \(text(from: start)) is not supported")
            default:
                return .scalar(scalar.value)
            }
        }

        /// `[…]` or `[^…]`, after the `[`.
        private mutating func bracketClass(openedAt start: Int) throws(SyntaxError) -> Node {
            let negated = peek == "^"
            position += negated ? 1 : 0
            var ranges: ScalarSet.Ranges = []
            while true {
                let memberStart = position
                guard let scalar = next() else {
                    throw SyntaxError("[ at character \(start + 1) is never closed")
                }
                if scalar == "]" {
                    guard !ranges.isEmpty else {
                        throw SyntaxError("empty class \(text(from: start)) (\\] is a literal ] in a class)")
                    }
                    break
                }
                // Swift Regex reads these as set operations and PCRE as literals: refuse both
                // readings rather than pick one.
                if "&~-".unicodeScalars.contains(scalar), peek == scalar {
                    throw SyntaxError("\(scalar)\(scalar) in a class is not supported (escape the characters)")
                }
                let low = try classMember(scalar)
                guard peek == "-", let after = peek(ahead: 1), after != "]" else {
                    switch low {
                    case .scalar(let value): ranges.append(value...value)
                    case .set(let members): ranges += members
                    case .assertion: preconditionFailure("classMember() returns no assertion")
                    }
                    continue
                }
                position += 2
                let high = try classMember(after)
                guard case .scalar(let lower) = low, case .scalar(let upper) = high else {
                    throw SyntaxError("range \(text(from: memberStart)) in a class has a class escape as an end")
                }
                guard lower <= upper else {
                    throw SyntaxError("range \(text(from: memberStart)) in a class goes backwards")
                }
                ranges.append(lower...upper)
            }
            if caseInsensitive {
                ranges = ScalarSet.caseFolded(ranges)
            }
            return .set(ScalarSet(ranges, negated: negated))
        }

        /// One member of a class, its first scalar already consumed: a scalar, or the ranges of
        /// a class escape such as `\d`.
        private mutating func classMember(_ scalar: Unicode.Scalar) throws(SyntaxError) -> Escape {
            switch scalar {
            case "[":
                throw SyntaxError("[ inside a class is not supported (\\[ is a literal [)")
            case "\\":
                let escaped = try escape()
                if case .assertion = escaped {
                    throw SyntaxError("\(text(from: position - 2)) is not supported in a class")
                }
                return escaped
            default:
                return .scalar(scalar.value)
            }
        }
    }
}
