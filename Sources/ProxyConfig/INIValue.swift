/// The value of one `key = value` line, split into words with quoting already resolved.
///
/// Keeping the words and the whitespace between them (instead of one string) lets multi-part
/// values such as `param = NAME VALUE` or `spawn = cmd "an arg"` honour quotes, while
/// single-part values can still be read back exactly as written.
struct INIValue: Sendable, Equatable {
    /// Words split on unquoted whitespace; quotes removed, so `"a b"` is one word and `""` an empty one.
    var words: [String]
    /// The unquoted whitespace runs between `words` (always `words.count - 1` of them).
    var separators: [String]
    /// The value as written (after the comment was cut off), for messages.
    var raw: String

    init(words: [String], separators: [String], raw: String) {
        self.words = words
        self.separators = separators
        self.raw = raw
    }

    /// The whole value with quotes resolved and inner whitespace kept.
    var text: String {
        Self.join(words[...], separators[...])
    }

    /// Everything after the first word (and the whitespace that follows it), as written but unquoted.
    var rest: String {
        guard words.count > 1 else { return "" }
        return Self.join(words.dropFirst(), separators.dropFirst())
    }

    private static func join(_ words: ArraySlice<String>, _ separators: ArraySlice<String>) -> String {
        var result = ""
        var separatorIterator = separators.makeIterator()
        for (offset, word) in words.enumerated() {
            if offset > 0, let separator = separatorIterator.next() {
                result += separator
            }
            result += word
        }
        return result
    }
}
