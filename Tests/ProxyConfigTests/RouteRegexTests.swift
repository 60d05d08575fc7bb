@testable import ProxyConfig
import Testing

@Suite struct RouteRegexTests {
    private func matches(
        _ pattern: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool? {
        do {
            return try RouteRegex(pattern).matches(path)
        } catch {
            Issue.record("\(pattern) refused: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test(arguments: [
        // Search anywhere unless anchored.
        ("\\.php$", "/a/b.php", true),
        ("\\.php$", "/a/b.php/x", false),
        ("\\.php(/|$)", "/a/b.php/info", true),
        ("\\.php(/|$)", "/a/b.phpx", false),
        ("^/img/.*\\.png$", "/img/a/b.png", true),
        ("^/img/.*\\.png$", "/x/img/a.png", false),
        ("img", "/x/img/a.png", true),
        ("", "/anything", true),
        ("", "", true),
        ("^$", "", true),
        ("^$", "/", false),
        // The front-controller split everyone writes, and its worst case.
        ("^(.+\\.php)(/.*)?$", "/index.php", true),
        ("^(.+\\.php)(/.*)?$", "/index.php/a/b", true),
        ("^(.+\\.php)(/.*)?$", "/a/a/a/x.txt", false),
        ("(a+)+b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true),
        ("(a+)+b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        // Dot, classes, escapes.
        ("^/.$", "/é", true),
        ("a.c", "a\nc", false),
        ("^[a-z0-9_]+$", "abc_09", true),
        ("^[a-z0-9_]+$", "abC", false),
        ("^/[^/]+$", "/file", true),
        ("^/[^/]+$", "/dir/file", false),
        ("^/[^/]+$", "/müller", true),
        ("^/[^ü]+$", "/müller", false),
        ("[-a]", "-", true),
        ("[a-]", "-", true),
        ("[\\]\\[]", "]", true),
        ("[\\d.]+$", "/v1.2", true),
        ("^\\d+$", "123", true),
        ("^\\D+$", "a1", false),
        ("^\\w+$", "a_Z9", true),
        ("^\\W$", "/", true),
        ("\\s", "a b", true),
        ("^\\S+$", "a\tb", false),
        ("\\t", "a\tb", true),
        ("\\n", "a\nb", true),
        ("\\.\\/\\-\\\\\\$\\^\\(\\)\\{\\}\\|\\*\\+\\?", "./-\\$^(){}|*+?", true),
        ("^/\\~user$", "/~user", true),
        ("ü", "/müller", true),
        // Groups, alternation, repetition.
        ("^/(api|static)/", "/static/x", true),
        ("^/(api|static)/", "/other/x", false),
        ("^/(?:a|b)c$", "/bc", true),
        ("^/(?<name>a|b)c$", "/ac", true),
        ("^/(?P<name>a)$", "/a", true),
        ("^/(?'name'a)$", "/a", true),
        ("^a|b$", "xb", true),
        ("^(a|)$", "", true),
        ("^a{3}$", "aaa", true),
        ("^a{3}$", "aa", false),
        ("^a{2,}$", "aaaaa", true),
        ("^a{2,}$", "a", false),
        ("^a{1,2}$", "aaa", false),
        ("^a{0}$", "", true),
        ("^(ab){2}$", "abab", true),
        ("^a*?b+?c??$", "aabb", true),
        ("^a{2,3}?$", "aaa", true),
        ("^(a*)*$", "aaa", true),
        ("^(a?){3}a{3}$", "aaa", true),
        ("^()*$", "", true),
        ("(^)+a", "ab", true),
        ("(^)+a", "ba", false),
        // Anchors and word boundaries.
        ("^a$", "a", true),
        ("a$", "a\n", false),
        ("\\bphp\\b", "/a.php", true),
        ("\\bphp\\b", "/aphp", false),
        ("\\Bphp", "/aphp", true),
        ("\\Bphp", "/php", false),
        // Case.
        ("(?i)^/admin", "/ADMIN/x", true),
        ("(?i)^/[a-c]+$", "/AbC", true),
        ("(?i)^/[^a]$", "/A", false),
        ("^/admin", "/ADMIN", false),
    ])
    func table(pattern: String, path: String, expected: Bool) {
        #expect(matches(pattern, path) == expected, "\(pattern) on \(path)")
    }

    @Test(arguments: [
        ("(a)\\1", "backreference \\1 is not supported: route regexes run in linear time"),
        ("(a)\\12", "backreference \\12 is not supported"),
        ("(?<x>a)\\k<x>", "backreference \\k is not supported"),
        ("(?<x>a)(?P=x)", "backreference (?P= is not supported"),
        ("a(?=b)", "lookahead (?= is not supported: route regexes run in linear time"),
        ("a(?!b)", "lookahead (?! is not supported"),
        ("(?<=a)b", "lookbehind (?<= is not supported"),
        ("(?<!a)b", "lookbehind (?<! is not supported"),
        ("(?>a+)b", "atomic group (?> is not supported"),
        ("a++b", "possessive quantifier ++ is not supported"),
        ("a{2}+", "possessive quantifier {2}+ is not supported"),
        ("\\p{L}", "Unicode property \\p{L} is not supported"),
        ("\\PL", "Unicode property \\P is not supported"),
        ("\\x41", "escape \\x is not supported"),
        ("\\A/", "escape \\A is not supported"),
        ("a\\", "the pattern ends with a lone \\"),
        ("(?m)^a", "inline option (?m) is not supported"),
        ("(?i:a)", "inline option (?i: is not supported"),
        ("a(?i)b", "(?i) is supported only at the very start"),
        ("(?#note)a", "group syntax (?# is not supported"),
        ("(a|(?R))", "recursion or subroutine call (?R is not supported"),
        ("(?<x>a)(?P>x)", "subroutine call (?P is not supported"),
        ("(?<1a>x)", "malformed group name"),
        ("(unclosed", "( at character 1 is never closed"),
        ("a)", "unmatched ) at character 2"),
        ("[abc", "[ at character 1 is never closed"),
        ("[]a]", "empty class []"),
        ("a]", "unmatched ] at character 2"),
        ("a}", "unmatched } at character 2"),
        ("*a", "quantifier * at character 1 has nothing to repeat"),
        ("(+a)", "quantifier + at character 2 has nothing to repeat"),
        ("a|?", "quantifier ? at character 3 has nothing to repeat"),
        ("a**", "quantifier * follows another quantifier"),
        ("^*", "quantifier * follows an anchor"),
        ("\\b+", "quantifier + follows an anchor"),
        ("a{x}", "malformed repetition {x"),
        ("a{,3}", "malformed repetition {,3}"),
        ("a{2", "malformed repetition {2"),
        ("a{1001}", "repetition count 1001 in {1001} is above 1000"),
        ("a{1,99999999}", "repetition count 1000000 in {1,99999999} is above 1000"),
        ("a{3,2}", "repetition {3,2} has its maximum below its minimum"),
        ("[z-a]", "range z-a in a class goes backwards"),
        ("[\\d-z]", "range \\d-z in a class has a class escape as an end"),
        ("[[:alpha:]]", "[ inside a class is not supported"),
        ("[a&&b]", "&& in a class is not supported"),
        ("[a\\b]", "\\b is not supported in a class"),
        ("(a{1000}){11}", "pattern too large: it compiles to more than 10000 instructions"),
        ("((a{1000}){1000}){1000}", "pattern too large"),
        (String(repeating: "(", count: 101) + String(repeating: ")", count: 101), "groups are nested deeper than 100"),
    ])
    func refused(pattern: String, message: String) {
        #expect {
            _ = try RouteRegex(pattern)
        } throws: { error in
            (error as? RouteRegex.SyntaxError)?.message.hasPrefix(message) == true
        }
    }

    @Test func refusalMessageIsTheDescription() {
        let message = "backreference \\1 is not supported: route regexes run in linear time"
        #expect(throws: RouteRegex.SyntaxError(message)) {
            _ = try RouteRegex("(a)\\1")
        }
        #expect("\(RouteRegex.SyntaxError("x"))" == "x")
    }

    @Test func largestAllowedProgramsCompile() throws {
        #expect(try RouteRegex("a{1000}").program.count == 1001)
        #expect(try RouteRegex("(ab){0,1000}").program.count <= RouteRegex.Compiler.maxInstructions)
        #expect(try RouteRegex("(a{1000}){9}").program.count <= RouteRegex.Compiler.maxInstructions)
    }

    // MARK: Linear time

    /// At most one step per instruction per position (a position before each scalar and one at
    /// the end). A backtracking engine takes cubic steps on the first and exponential on the
    /// second; no timing, so the test says the same on any machine.
    private func expectLinear(
        _ pattern: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let regex = try RouteRegex(pattern)
        let length = path.unicodeScalars.count
        #expect(!regex.matches(path), sourceLocation: sourceLocation)
        let steps = regex.matchSteps(path)
        #expect(steps <= regex.program.count * (length + 1), "\(steps) steps", sourceLocation: sourceLocation)
        // The work is really there: every position costs something.
        #expect(steps >= length, sourceLocation: sourceLocation)
    }

    @Test func frontControllerSplitIsLinearOnAHostilePath() throws {
        var path = ""
        while path.utf8.count < 64 * 1024 - 6 {
            path += "/a"
        }
        path += "/x.txt"
        try expectLinear("^(.+\\.php)(/.*)?$", path)
    }

    @Test func nestedQuantifierIsLinear() throws {
        try expectLinear("(a+)+b", String(repeating: "a", count: 10_000))
    }

    @Test func anchoredSearchStopsWhenNoThreadIsLeft() throws {
        let regex = try RouteRegex("^/api/")
        let path = "/web/" + String(repeating: "x", count: 10_000)
        #expect(!regex.matches(path))
        #expect(regex.matchSteps(path) < 100)
    }
}
