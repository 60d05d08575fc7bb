/// Which request paths must never be answered from the file system as bytes, whatever the
/// files are: dotfiles (`.git/`, `.env`, `.htpasswd`) leak secrets, and a PHP source file —
/// or an editor's or deploy tool's copy of one, `index.php~`, `config.php.bak` — leaks code
/// and credentials the interpreter would have kept to itself.
enum StaticPathPolicy {
    /// Whether any segment of `path` (normalized, starting with `/`) begins with a dot. The
    /// first segment may be exactly `.well-known` (RFC 8615: ACME challenges, security.txt…);
    /// the segments below it are still checked, so `/.well-known/.secret` is hidden.
    static func isHidden(_ path: Substring) -> Bool {
        // Per request: walked in place, no array of segments.
        let bytes = path.utf8
        var start = bytes.startIndex
        var isFirst = true
        while start != bytes.endIndex {
            if bytes[start] == UInt8(ascii: "/") {
                bytes.formIndex(after: &start)
                continue
            }
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
            if bytes[start] == UInt8(ascii: "."), !(isFirst && bytes[start..<end].elementsEqual(".well-known".utf8)) {
                return true
            }
            isFirst = false
            start = end
        }
        return false
    }

    /// Whether the last segment of `path` looks like a script: it contains `.php` anywhere,
    /// ASCII case-insensitively (`x.PHP`, `a.phps`, `a.php5`, `index.php~`, `a.php.bak`), or,
    /// when `splitPath` (the configured script suffix) is neither empty nor `.php`, contains
    /// that. Such a file is never sent as bytes: it is either run by the backend or refused.
    static func mayBeScript(_ path: Substring, splitPath: String) -> Bool {
        let bytes = path.utf8
        let name = bytes.lastIndex(of: UInt8(ascii: "/")).map { bytes[bytes.index(after: $0)...] } ?? bytes
        if contains(name, ".php".utf8) { return true }
        guard !splitPath.isEmpty, !splitPath.utf8.elementsEqual(".php".utf8) else { return false }
        return contains(name, splitPath.utf8)
    }

    /// Whether `needle` occurs in `haystack`, ASCII letters compared case-insensitively (per
    /// request: no arrays built).
    private static func contains(_ haystack: Substring.UTF8View, _ needle: some Collection<UInt8>) -> Bool {
        guard let first = needle.first.map(lowercased) else { return true }
        var start = haystack.startIndex
        while start != haystack.endIndex {
            if lowercased(haystack[start]) == first {
                var candidate = start
                var matched = true
                for byte in needle {
                    guard candidate != haystack.endIndex, lowercased(haystack[candidate]) == lowercased(byte) else {
                        matched = false
                        break
                    }
                    haystack.formIndex(after: &candidate)
                }
                if matched { return true }
            }
            haystack.formIndex(after: &start)
        }
        return false
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `path` is absolute, names something below `directory`, and has no `.`, `..` or empty
    /// segment that could lead out of it.
    static func isFile(_ path: String, inside directory: String) -> Bool {
        let prefix = directory == "/" ? "/" : directory + "/"
        guard path.hasPrefix(prefix), path.utf8.count > prefix.utf8.count, !path.utf8.contains(0) else {
            return false
        }
        for segment in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            if segment.isEmpty || segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                return false
            }
        }
        return true
    }
}
