/// What a `Host` field (or an absolute-form authority) may hold: `host [":" port]` with host an
/// IP-literal in brackets or a name (RFC 3986 §3.2.2), checked before anything is derived from
/// it (routing by host, SERVER_NAME, HTTP_HOST).
///
/// Names are held to what DNS names and IPv4 addresses use: letters, digits, `-`, `.`, `_`,
/// `~`, and no empty label inside (`a..b`). RFC 3986 would also let a reg-name carry
/// sub-delims and percent-escapes, but no host is named that way, and each one is a way to make
/// the proxy and the application disagree about the host (`a,b`, `%61`, `a;b`). nginx answers
/// 400 to the same shapes (`a/b`, `../..`, `a b`). An empty value is allowed: RFC 9112 §3.2
/// asks for one when the target has no authority.
enum HostField {
    static func isValid(_ value: String) -> Bool {
        var bytes = value.utf8[...]
        if bytes.isEmpty { return true }
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy(isIPLiteralByte) else { return false }
            bytes = bytes[bytes.index(after: close)...]
            return bytes.isEmpty || isPort(bytes)
        }
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            guard isPort(bytes[colon...]) else { return false }
            bytes = bytes[..<colon]
        }
        guard !bytes.isEmpty else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            guard isNameByte(byte) else { return false }
            // "a..b", or a leading ".": an empty label, which `..` path tricks are made of.
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") || previous == 0 { return false }
            previous = byte
        }
        return true
    }

    /// `":" *DIGIT` up to 65535 (RFC 3986 allows an empty port).
    private static func isPort(_ bytes: Substring.UTF8View.SubSequence) -> Bool {
        guard bytes.first == UInt8(ascii: ":") else { return false }
        let digits = bytes.dropFirst()
        guard digits.count <= 5 else { return false }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return false }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value <= 65535
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// IPv6 (hex digits, `:`, and `.` for an embedded IPv4 address).
    private static func isIPLiteralByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }
}
