// libFuzzer target: the INI configuration parser, from text in memory (ConfigParser.parse).
//
// The input is the file's text (invalid UTF-8 becomes U+FFFD, as when reading a file).
// Invariants (ConfigErrors is a valid outcome): a rejection names at least one error, each with
// a line number within the text; parsing is deterministic (checked on short texts).
import ProxyConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).count
    let first: Result<ProxyConfiguration, ConfigErrors>
    do {
        first = .success(try ConfigParser.parse(text, fileName: "fuzz.ini"))
    } catch {
        require(!error.errors.isEmpty, "ConfigErrors without errors")
        for item in error.errors {
            require(item.line >= 0 && item.line <= lines, "error on line \(item.line) of \(lines): \(item)")
            require(item.file == "fuzz.ini", "error in file \(item.file)")
        }
        first = .failure(error)
    }
    // Deterministic: the same configuration, or the same errors. Checked on short texts only:
    // a second parse of every input would halve the executions.
    guard size <= 512 else { return 0 }
    switch (first, Result { () throws(ConfigErrors) in try ConfigParser.parse(text, fileName: "fuzz.ini") }) {
    case (.success(let one), .success(let two)):
        require(one == two, "two parses of the same text differ")
    case (.failure(let one), .failure(let two)):
        require(one.errors == two.errors, "two parses of the same text fail differently")
    default:
        fatalError("one of two parses of the same text failed")
    }
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
