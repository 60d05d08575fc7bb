import ProxyConfig
import Testing

/// Our matcher against Swift `Regex` on many small generated patterns and paths: for the
/// syntax both accept, the yes/no answer must be the same.
///
/// The generator sticks to that common ground: ASCII paths without newlines (Swift matches
/// Characters and lets `$` match before a final newline; we match scalars and `$` only at the
/// end) and `\b` compared with Swift's simple word boundaries (its default is Unicode's rules).
@Suite struct RouteRegexDifferentialTests {
    /// SplitMix64: a fixed seed gives the same cases on every run and platform.
    private struct Generator {
        private var state: UInt64

        init(seed: UInt64) {
            state = seed
        }

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        mutating func below(_ bound: Int) -> Int {
            Int(next() % UInt64(bound))
        }

        mutating func pick<T>(_ choices: [T]) -> T {
            choices[below(choices.count)]
        }
    }

    private static let atoms = [
        "a", "b", "/", "\\.", ".", "x", "A",
        "[ab]", "[^a]", "[a-c]", "[^/]", "[/.]", "[-a]", "[\\d.]", "[^\\w]",
        "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\/", "\\-",
    ]
    private static let anchors = ["^", "$", "\\b", "\\B"]
    private static let quantifiers = ["*", "+", "?", "{2}", "{1,}", "{0,2}", "{1,3}", "{0}"]
    private static let pathAlphabet: [Character] = ["a", "b", "/", ".", "x", "1", "_", " ", "A", "c"]

    private func pattern(_ random: inout Generator, depth: Int) -> String {
        var branches: [String] = []
        for _ in 0..<(random.below(4) == 0 ? 2 : 1) {
            var branch = ""
            for _ in 0..<(1 + random.below(3)) {
                branch += item(&random, depth: depth)
            }
            branches.append(branch)
        }
        return branches.joined(separator: "|")
    }

    private func item(_ random: inout Generator, depth: Int) -> String {
        let roll = random.below(10)
        if roll == 0 {
            return random.pick(Self.anchors)
        }
        var atom: String
        if roll <= 2 && depth > 0 {
            let open = random.pick(["(", "(?:"])
            atom = open + pattern(&random, depth: depth - 1) + ")"
        } else {
            atom = random.pick(Self.atoms)
        }
        if random.below(2) == 0 {
            atom += random.pick(Self.quantifiers)
            if random.below(4) == 0 {
                atom += "?"
            }
        }
        return atom
    }

    private func path(_ random: inout Generator) -> String {
        String((0..<random.below(9)).map { _ in random.pick(Self.pathAlphabet) })
    }

    @Test(arguments: [false, true])
    func sameAnswerAsSwiftRegex(caseInsensitive: Bool) throws {
        var random = Generator(seed: caseInsensitive ? 0xCA5E : 0x5EED)
        var compared = 0
        var matched = 0
        for _ in 0..<1500 {
            let pattern = (caseInsensitive ? "(?i)" : "") + pattern(&random, depth: 2)
            let ours = try RouteRegex(pattern)
            let theirs = try Regex(pattern).wordBoundaryKind(.simple)
            for _ in 0..<16 {
                let path = path(&random)
                let expected = path.contains(theirs)
                #expect(ours.matches(path) == expected, "\(pattern) on \"\(path)\"")
                compared += 1
                matched += expected ? 1 : 0
            }
        }
        // Both answers are well represented, or the comparison proves little.
        #expect(matched > compared / 5 && matched < compared * 4 / 5, "\(matched) of \(compared)")
    }
}
