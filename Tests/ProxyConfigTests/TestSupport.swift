import ProxyConfig
import Testing

/// File name used in messages by every test that parses text.
let testFile = "test.ini"

/// A pool section that satisfies validation, for tests that are about something else.
let minimalPool = """
    [pool:php]
    backend = 127.0.0.1:9000
    """

/// Parses text that must be valid; records an issue with every message otherwise.
func parseValid(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ProxyConfiguration? {
    do {
        return try ConfigParser.parse(text, fileName: testFile)
    } catch {
        Issue.record("unexpected errors:\n\(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Parses text that must be invalid and returns its errors (none, with an issue, if it parsed).
func parseErrors(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigError] {
    do {
        let config = try ConfigParser.parse(text, fileName: testFile)
        Issue.record("expected errors, but it parsed: \(config)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.errors
    }
}

/// Checks that the text yields exactly one error, on that line, whose printed form starts with
/// `test.ini:LINE: prefix`.
func expectOneError(
    _ text: String,
    line: Int,
    startingWith prefix: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let errors = parseErrors(text, sourceLocation: sourceLocation)
    #expect(errors.count == 1, "errors: \(errors)", sourceLocation: sourceLocation)
    guard let error = errors.first else { return }
    #expect(error.file == testFile, sourceLocation: sourceLocation)
    #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
    #expect(
        error.description.hasPrefix("\(testFile):\(line): \(prefix)"),
        "got: \(error)",
        sourceLocation: sourceLocation
    )
}

/// The server section of `[server]` + the given lines.
func parseServer(_ lines: String, sourceLocation: SourceLocation = #_sourceLocation) -> ServerConfig? {
    parseValid("[server]\n" + lines, sourceLocation: sourceLocation)?.server
}

/// The only pool of `[pool:p]` + the given lines.
func parsePool(_ lines: String, sourceLocation: SourceLocation = #_sourceLocation) -> PoolConfig? {
    parseValid("[pool:p]\n" + lines, sourceLocation: sourceLocation)?.pools.first
}

/// The only route of a valid pool `php` plus `[route:r]` with `pool = php`, `root = /srv` and the given lines.
func parseRoute(_ lines: String, sourceLocation: SourceLocation = #_sourceLocation) -> RouteConfig? {
    parseValid(minimalPool + "\n[route:r]\npool = php\nroot = /srv\n" + lines, sourceLocation: sourceLocation)?
        .routes.first
}
