/// A request-target split into path and query, with the path decoded and normalized once, the
/// way every later step (routing, script split, SCRIPT_NAME, PATH_INFO) must see it.
///
/// Policy (see DESIGN.md "Security defaults"):
/// - the path is percent-decoded exactly once, so `%252e` becomes the literal text `%2e`;
/// - `%2F` decodes to `/` and then separates segments, as nginx does: routing and the script
///   split see one and the same form, so they cannot disagree about it;
/// - dot-segments are removed (RFC 3986 §5.2.4) and runs of `/` merged, but a `..` that would
///   climb above `/` is rejected instead of being clamped;
/// - any C0 control or DEL, raw or decoded (this covers NUL, CR and LF), a malformed `%`-escape,
///   a raw space or `#`, or a decoded path that is not valid UTF-8 is a 400;
/// - the query is kept exactly as sent (no decoding): it only has to be free of raw controls,
///   because PHP decodes it itself and `%00` there cannot reach a file name;
/// - origin-form (`/path`) and absolute-form (`http://host/path`) are accepted; asterisk-form
///   (`OPTIONS *`) and authority-form (`CONNECT host:port`) cannot name a script: 400.
public struct RequestPath: Sendable, Equatable {
    /// The normalized, decoded path; always starts with `/`.
    public var path: String
    /// The path as sent, before `?` (for absolute-form: the path part after the authority).
    public var rawPath: String
    /// The query as sent, without the `?`; empty when there is none.
    public var query: String
    /// The origin-form part of the target as sent (path and `?query`): the value of REQUEST_URI.
    public var requestURI: String
    /// The authority of an absolute-form target (`host[:port]`, as sent); it overrides `Host`.
    public var absoluteFormHost: String?

    /// Splits and normalizes `target`; throws `HTTPError(400)` for anything the policy above rejects.
    public init(target: String) throws(HTTPError) {
        // Raw controls are checked over the whole target once, authority included.
        // Bytes above 0x7F are not in RFC 9112's request-target either (clients percent-encode
        // them); refused as HAProxy does, rather than guessed at.
        let clean = target.withUTF8Bytes { bytes in
            !bytes.contains { Self.isControl($0) || $0 >= 0x80 || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "#") }
        }
        guard clean else {
            throw HTTPError(400, "invalid character in request-target")
        }
        let originForm: Substring
        if target.utf8.first == UInt8(ascii: "/") {
            originForm = target[...]
            self.absoluteFormHost = nil
        } else {
            let (host, rest) = try Self.splitAbsoluteForm(target)
            originForm = rest
            self.absoluteFormHost = host
        }
        self.requestURI = String(originForm)

        let rawPath: Substring
        if let questionMark = originForm.utf8.firstIndex(of: UInt8(ascii: "?")) {
            rawPath = originForm[..<questionMark]
            self.query = String(originForm[originForm.index(after: questionMark)...])
        } else {
            rawPath = originForm
            self.query = ""
        }
        self.rawPath = String(rawPath)
        self.path = try Self.normalize(rawPath)
    }

    private static func isControl(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F
    }

    /// `scheme://authority[/path][?query]` → (authority, origin-form). Only http and https name
    /// something this proxy can serve; the authority must be a valid ``HostField`` (so userinfo,
    /// `a@b`, a classic way to make two parsers disagree about the host, is refused).
    private static func splitAbsoluteForm(_ target: String) throws(HTTPError) -> (String, Substring) {
        guard let colon = target.utf8.firstIndex(of: UInt8(ascii: ":")) else {
            throw HTTPError(400, "request-target is neither origin-form nor absolute-form")
        }
        let scheme = target[..<colon].lowercased()
        guard scheme == "http" || scheme == "https", target[colon...].hasPrefix("://") else {
            throw HTTPError(400, "request-target is neither origin-form nor absolute-form")
        }
        let authorityStart = target.utf8.index(colon, offsetBy: 3)
        let afterAuthority = target[authorityStart...]
        let authorityEnd =
            afterAuthority.utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
            ?? target.endIndex
        let authority = target[authorityStart..<authorityEnd]
        guard !authority.isEmpty, HostField.isValid(String(authority)) else {
            throw HTTPError(400, "invalid authority in absolute-form request-target")
        }
        let rest = target[authorityEnd...]
        // "http://host" and "http://host?q" have an empty path, which means "/".
        let originForm = rest.utf8.first == UInt8(ascii: "/") ? rest : Substring("/" + rest)
        return (String(authority), originForm)
    }

    /// Decodes once and removes dot-segments and empty segments in a single pass over the bytes.
    private static func normalize(_ raw: Substring) throws(HTTPError) -> String {
        if !needsNormalization(raw) {
            return String(raw)
        }
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        var out: [UInt8] = []
        out.reserveCapacity(raw.utf8.count)
        out.append(slash)
        // Index in `out` where the segment being written starts; `out[segmentStart - 1]` is "/".
        var segmentStart = 1

        // Returns whether the segment just ended was a real one (so a "/" must follow it).
        func endSegment() throws(HTTPError) -> Bool {
            let length = out.count - segmentStart
            if length == 0 {
                return false
            }
            if length == 1 && out[segmentStart] == dot {
                out.removeLast()
                return false
            }
            if length == 2 && out[segmentStart] == dot && out[segmentStart + 1] == dot {
                out.removeLast(2)
                if segmentStart == 1 {
                    throw HTTPError(400, "path climbs above the root")
                }
                // Drop the previous segment, keeping the "/" before it.
                out.removeLast()
                while out.last != slash {
                    out.removeLast()
                }
                segmentStart = out.count
                return false
            }
            return true
        }

        var bytes = raw.utf8.makeIterator()
        while let byte = bytes.next() {
            var decoded = byte
            if byte == UInt8(ascii: "%") {
                guard let high = bytes.next().flatMap(hexValue), let low = bytes.next().flatMap(hexValue) else {
                    throw HTTPError(400, "malformed percent-escape in path")
                }
                decoded = high << 4 | low
                if isControl(decoded) {
                    throw HTTPError(400, "encoded control character in path")
                }
            }
            if decoded == slash {
                if try endSegment() {
                    out.append(slash)
                }
                segmentStart = out.count
            } else {
                out.append(decoded)
            }
        }
        _ = try endSegment()

        guard let path = String(validating: out, as: UTF8.self) else {
            throw HTTPError(400, "path is not valid UTF-8 after decoding")
        }
        return path
    }

    /// The common case (no escapes, no "//", no "/." anywhere) is already normal: skip the copy.
    private static func needsNormalization(_ raw: Substring) -> Bool {
        var previousWasSlash = false
        for byte in raw.utf8 {
            if byte == UInt8(ascii: "%") {
                return true
            }
            if previousWasSlash && (byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".")) {
                return true
            }
            previousWasSlash = byte == UInt8(ascii: "/")
        }
        return false
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
