import NIOCore

/// Makes backend- or client-supplied bytes safe for a log line: printable ASCII passes,
/// everything else (control characters, newlines, non-ASCII) becomes `\xHH`, so a hostile script
/// cannot forge log lines or terminal escapes.
enum LogEscaping {
    static func escape(_ buffer: ByteBuffer, limit: Int) -> String {
        var out = ""
        out.reserveCapacity(min(buffer.readableBytes, limit) + 8)
        var count = 0
        let hex: [Character] = Array("0123456789abcdef")
        // A trailing newline is the line's end, not content worth escaping.
        var view = buffer.readableBytesView[...]
        while let last = view.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
            view = view.dropLast()
        }
        for byte in view {
            if count >= limit {
                out += "…"
                break
            }
            if byte >= 0x20 && byte < 0x7f && byte != UInt8(ascii: "\\") {
                out.append(Character(Unicode.Scalar(byte)))
            } else {
                out += "\\x"
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            }
            count += 1
        }
        return out
    }
}
