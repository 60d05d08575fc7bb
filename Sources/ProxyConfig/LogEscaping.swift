/// Makes bytes from a backend, a worker or a client safe for one log line.
public enum LogEscaping {
    /// Printable ASCII passes; everything else (control characters, escape sequences,
    /// non-ASCII) becomes `\xHH`, and so does the backslash, so the escaping is unambiguous and
    /// nobody can forge log lines or send terminal escapes. At most `limit` input bytes are
    /// shown, then `…`.
    public static func escape(_ bytes: some Collection<UInt8>, limit: Int = .max) -> String {
        let hex = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(min(bytes.count, limit) + 4)
        var count = 0
        for byte in bytes {
            if count == limit {
                out += "…"
                break
            }
            count += 1
            if byte >= 0x20 && byte < 0x7f && byte != UInt8(ascii: "\\") {
                out.append(Character(Unicode.Scalar(byte)))
            } else {
                out += "\\x"
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            }
        }
        return out
    }
}
