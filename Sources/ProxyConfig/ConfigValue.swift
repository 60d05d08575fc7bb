/// Parsers for the value types the INI keys share (sizes, durations, addresses…).
///
/// Each throws ``ValueError`` carrying only what was expected; the caller knows the key, the
/// raw value and the line, and builds the message from them.
enum ConfigValue {
    /// Why a value was rejected, phrased to follow "expected".
    struct ValueError: Error, Sendable, Equatable {
        var expected: String

        init(_ expected: String) {
            self.expected = expected
        }
    }

    static func positiveInt(_ value: INIValue) throws(ValueError) -> Int {
        guard let number = decimal(value.text), number > 0 else {
            throw ValueError("a positive integer")
        }
        return number
    }

    /// `auto` (nil: one per core) or a positive integer.
    static func threads(_ value: INIValue) throws(ValueError) -> Int? {
        if value.text.lowercased() == "auto" {
            return nil
        }
        guard let number = decimal(value.text), number > 0 else {
            throw ValueError("\"auto\" or a positive integer")
        }
        return number
    }

    static func bool(_ value: INIValue) throws(ValueError) -> Bool {
        switch value.text.lowercased() {
        case "on", "yes", "true", "1": return true
        case "off", "no", "false", "0": return false
        default: throw ValueError("on/off, yes/no, true/false or 1/0")
        }
    }

    /// Bytes, with an optional 1024-based `k`/`m`/`g` suffix; zero allowed.
    static func size(_ value: INIValue) throws(ValueError) -> Int {
        guard let bytes = bytes(value.text) else {
            throw ValueError("a size in bytes, optionally with k/m/g (e.g. 16m)")
        }
        return bytes
    }

    /// Like ``size(_:)`` for limits where zero would refuse every request.
    static func positiveSize(_ value: INIValue) throws(ValueError) -> Int {
        guard let bytes = bytes(value.text), bytes > 0 else {
            throw ValueError("a size in bytes above 0, optionally with k/m/g (e.g. 32k)")
        }
        return bytes
    }

    /// Seconds, or a number with `ms`/`s`/`m`/`h`; must be above zero (a zero timeout is never meant).
    static func duration(_ value: INIValue) throws(ValueError) -> Duration {
        let expected = ValueError("a duration above 0, optionally with ms/s/m/h (e.g. 10s)")
        let text = value.text.lowercased()
        let number: Substring
        let secondsPerUnit: Int
        if text.hasSuffix("ms") {
            guard let milliseconds = decimal(text.dropLast(2)), milliseconds > 0 else { throw expected }
            return .milliseconds(milliseconds)
        } else if text.hasSuffix("s") {
            (number, secondsPerUnit) = (text.dropLast(), 1)
        } else if text.hasSuffix("m") {
            (number, secondsPerUnit) = (text.dropLast(), 60)
        } else if text.hasSuffix("h") {
            (number, secondsPerUnit) = (text.dropLast(), 3600)
        } else {
            (number, secondsPerUnit) = (text[...], 1)
        }
        guard let count = decimal(number), count > 0 else { throw expected }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: secondsPerUnit)
        if overflow { throw expected }
        return .seconds(seconds)
    }

    /// `host:port`, `[v6]:port` or `unix:/path`.
    static func address(_ value: INIValue) throws(ValueError) -> SocketAddressSpec {
        try address(value.text)
    }

    /// `ADDRESS`, optionally followed by `tls` and `name=NAME` (a socket-activation name), in
    /// any order.
    static func listen(_ value: INIValue) throws(ValueError) -> ListenConfig {
        let expected = ValueError(
            "host:port, [v6]:port or unix:/path, optionally followed by \"tls\" and \"name=NAME\""
        )
        guard let first = value.words.first, let parsed = try? address(first) else { throw expected }
        var listener = ListenConfig(address: parsed)
        for word in value.words.dropFirst() {
            if word.lowercased() == "tls", !listener.tls {
                listener.tls = true
            } else if word.hasPrefix("name="), listener.name == nil {
                let name = String(word.dropFirst("name=".count))
                // systemd's FileDescriptorName= rules: printable ASCII, no colon, at most 255.
                guard !name.isEmpty, name.utf8.count <= 255, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") })
                else {
                    throw ValueError("name=NAME with 1 to 255 printable ASCII characters, no colon (systemd's FileDescriptorName=)")
                }
                listener.name = name
            } else {
                throw expected
            }
        }
        return listener
    }

    static func absolutePath(_ value: INIValue) throws(ValueError) -> String {
        let path = value.text
        guard path.first == "/" else {
            throw ValueError("an absolute path (starting with \"/\")")
        }
        return path
    }

    /// Absolute; trailing slashes are dropped (a lone "/" stays) so `directory + "/name"`
    /// never doubles one.
    static func absoluteDirectory(_ value: INIValue) throws(ValueError) -> String {
        var path = Substring(try absolutePath(value))
        while path.count > 1 && path.last == "/" {
            path = path.dropLast()
        }
        return String(path)
    }

    static func nonEmpty(_ value: INIValue) throws(ValueError) -> String {
        guard !value.text.isEmpty else {
            throw ValueError("a non-empty value")
        }
        return value.text
    }

    /// `NAME VALUE`, where the value is the rest of the line and may be empty.
    static func namedValue(
        _ value: INIValue,
        validName: (String) -> Bool,
        nameRule: String
    ) throws(ValueError) -> (name: String, value: String) {
        guard let name = value.words.first, validName(name) else {
            throw ValueError("NAME VALUE, NAME made of \(nameRule)")
        }
        return (name, value.rest)
    }

    /// A non-negative decimal integer with no sign or spaces, or nil (also on overflow).
    static func decimal(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return nil
        }
        return Int(text)
    }

    private static func bytes(_ text: String) -> Int? {
        let lowered = text.lowercased()
        let multiplier: Int
        switch lowered.last {
        case "k": multiplier = 1024
        case "m": multiplier = 1024 * 1024
        case "g": multiplier = 1024 * 1024 * 1024
        default: multiplier = 1
        }
        guard let count = decimal(multiplier == 1 ? lowered[...] : lowered.dropLast()) else {
            return nil
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// Like the `INIValue` overload, for one word of a multi-word value.
    static func address(_ text: String) throws(ValueError) -> SocketAddressSpec {
        let expected = ValueError("host:port, [v6]:port or unix:/path")
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.count > 1, path.first == "/" else {
                throw ValueError("unix: followed by an absolute socket path")
            }
            return .unix(path: path)
        }
        let host: Substring
        let portText: Substring
        if text.first == "[" {
            // Brackets are the only way to tell an IPv6 address's colons from the port's.
            guard let close = text.firstIndex(of: "]") else { throw expected }
            host = text[text.index(after: text.startIndex)..<close]
            let afterHost = text[text.index(after: close)...]
            guard afterHost.first == ":", Self.isIPv6Literal(host) else {
                throw expected
            }
            portText = afterHost.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw expected }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ValueError("an IPv6 address in brackets, like [::1]:8080")
            }
            guard !host.isEmpty, host.allSatisfy(isHostCharacter) else { throw expected }
        }
        guard let port = decimal(portText), (1...65535).contains(port) else {
            throw ValueError("a port from 1 to 65535 after the host")
        }
        return .tcp(host: String(host), port: port)
    }

    /// Loose on purpose: the address is resolved at startup, which reports real errors; this only
    /// catches what is clearly not an IPv6 address (a name in brackets, stray characters).
    private static func isIPv6Literal(_ text: Substring) -> Bool {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        let address = parts[0]
        guard address.contains(":"), address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
            return false
        }
        // A zone (interface) after `%`, as in fe80::1%eth0.
        guard parts.count == 2 else { return true }
        return !parts[1].isEmpty && parts[1].allSatisfy(isHostCharacter)
    }

    static func isHostCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "." || character == "-"
            || character == "_")
    }
}
