/// One physical line of an INI file, classified.
enum INILine: Sendable, Equatable {
    /// Empty, or only a comment.
    case blank
    /// `[kind]` or `[kind:name]`, both trimmed.
    case section(kind: String, name: String?)
    /// `key = value`.
    case entry(key: String, value: INIValue)

    /// Syntax the line-level reader rejects; the caller adds file and line.
    struct SyntaxError: Error, Sendable, Equatable {
        var message: String
    }

    /// Classifies one line (without its line terminator).
    ///
    /// `;` and `#` start a comment at the start of a line or after whitespace, so values such as
    /// `~ \.php$` or `a;b` survive unquoted; inside double quotes they are always literal.
    /// Inside quotes `\"` and `\\` are escapes and any other backslash is kept, so regexes
    /// can be quoted without doubling their backslashes.
    static func parse(_ line: Substring) throws(SyntaxError) -> INILine {
        let content = try stripComment(line).trimmingWhitespace()
        if content.isEmpty {
            return .blank
        }
        if content.first == "[" {
            return try parseSectionHeader(content)
        }
        guard let equals = content.firstIndex(of: "=") else {
            throw SyntaxError(message: "expected \"key = value\", \"[section]\" or a comment, found \"\(content)\"")
        }
        let key = content[..<equals].trimmingWhitespace()
        if key.isEmpty {
            throw SyntaxError(message: "missing key before \"=\"")
        }
        guard key.allSatisfy(isKeyCharacter) else {
            throw SyntaxError(message: "invalid key \"\(key)\" (letters, digits, \"_\" and \"-\" only)")
        }
        let value = try splitValue(content[content.index(after: equals)...].trimmingWhitespace())
        return .entry(key: String(key), value: value)
    }

    private static func isKeyCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == "-")
    }

    /// The line up to its comment, if any.
    private static func stripComment(_ line: Substring) throws(SyntaxError) -> Substring {
        var inQuotes = false
        var afterWhitespace = true
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            if inQuotes {
                if character == "\\", let next = line.index(index, offsetBy: 1, limitedBy: line.endIndex),
                    next < line.endIndex, line[next] == "\"" || line[next] == "\\"
                {
                    index = next
                } else if character == "\"" {
                    inQuotes = false
                }
                afterWhitespace = false
            } else {
                if character == "\"" {
                    inQuotes = true
                } else if (character == ";" || character == "#") && afterWhitespace {
                    return line[..<index]
                }
                afterWhitespace = character.isWhitespace
            }
            index = line.index(after: index)
        }
        if inQuotes {
            throw SyntaxError(message: "unterminated quoted string (missing closing \")")
        }
        return line
    }

    private static func parseSectionHeader(_ content: Substring) throws(SyntaxError) -> INILine {
        guard let close = content.firstIndex(of: "]") else {
            throw SyntaxError(message: "section header \"\(content)\" is missing \"]\"")
        }
        let trailing = content[content.index(after: close)...].trimmingWhitespace()
        if !trailing.isEmpty {
            throw SyntaxError(message: "unexpected text \"\(trailing)\" after section header")
        }
        let inside = content[content.index(after: content.startIndex)..<close]
        guard let colon = inside.firstIndex(of: ":") else {
            return .section(kind: String(inside.trimmingWhitespace()), name: nil)
        }
        let kind = inside[..<colon].trimmingWhitespace()
        let name = inside[inside.index(after: colon)...].trimmingWhitespace()
        return .section(kind: String(kind), name: String(name))
    }

    /// Splits an already comment-free, trimmed value into words, resolving quotes.
    private static func splitValue(_ value: Substring) throws(SyntaxError) -> INIValue {
        var words: [String] = []
        var separators: [String] = []
        var word = ""
        // A word exists once it has a character or an opening quote, so `""` yields an empty word.
        var inWord = false
        var separator = ""
        var inQuotes = false
        var index = value.startIndex
        while index < value.endIndex {
            let character = value[index]
            if inQuotes {
                if character == "\\", let next = value.index(index, offsetBy: 1, limitedBy: value.endIndex),
                    next < value.endIndex, value[next] == "\"" || value[next] == "\\"
                {
                    word.append(value[next])
                    index = next
                } else if character == "\"" {
                    inQuotes = false
                } else {
                    word.append(character)
                }
            } else if character.isWhitespace {
                if inWord {
                    words.append(word)
                    word = ""
                    inWord = false
                }
                separator.append(character)
            } else {
                if !inWord {
                    if !words.isEmpty {
                        separators.append(separator)
                    }
                    separator = ""
                    inWord = true
                }
                if character == "\"" {
                    inQuotes = true
                } else {
                    word.append(character)
                }
            }
            index = value.index(after: index)
        }
        if inQuotes {
            throw SyntaxError(message: "unterminated quoted string (missing closing \")")
        }
        if inWord {
            words.append(word)
        }
        return INIValue(words: words, separators: separators, raw: String(value))
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (Foundation's trimming, without Foundation).
    func trimmingWhitespace() -> SubSequence {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
            let last = lastIndex(where: { !$0.isWhitespace })
        else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
