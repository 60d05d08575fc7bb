#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTP field values (and CGI response heads) are bytes; Swift strings are Unicode. This is how
/// a `String` carries any byte sequence unchanged from one side of the proxy to the other.
///
/// Valid UTF-8 (ASCII included) becomes the string it spells, at the cost of a copy. Each byte
/// that is not part of valid UTF-8 (`\xe9` of a Latin-1 filename, say) becomes one scalar from
/// U+10FF80…U+10FFFF (the last Private Use plane: 0x80 → U+10FF80, 0xFF → U+10FFFF), and
/// ``withBytes(_:_:)`` turns those back into the byte. The rare valid UTF-8 input that itself
/// spells a scalar of that range has its four bytes escaped one by one, so every byte sequence
/// round-trips exactly. Only bytes 0x80…0xFF are ever escaped: the encoding can never produce
/// a control byte (CR, LF, NUL) that was not in the input.
///
/// A string that did not come from ``string(_:)`` (configuration, the proxy's own values) goes
/// out as its UTF-8, unless it holds scalars of that range.
public enum FieldBytes {
    /// The string that carries exactly `bytes`.
    public static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        if !bytes.contains(where: { $0 >= 0x80 }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        if !containsEscapeRange(bytes), let text = String(validating: bytes, as: UTF8.self) {
            return text
        }
        return escaping(bytes)
    }

    /// ``string(_:)`` of a byte collection.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        if let text = bytes.withContiguousStorageIfAvailable({ string(UnsafeRawBufferPointer($0)) }) {
            return text
        }
        return Array(bytes).withUnsafeBytes { string($0) }
    }

    /// Calls `body` with the bytes `text` stands for: its UTF-8 as it is unless it holds escapes.
    public static func withBytes<Result>(_ text: String, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var text = text
        return try text.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            guard containsEscapeRange(raw) else { return try body(raw) }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(raw.count)
            for scalar in String(decoding: raw, as: UTF8.self).unicodeScalars {
                if scalar.value >= escapeBase + 0x80 {
                    bytes.append(UInt8(truncatingIfNeeded: scalar.value - escapeBase))
                } else {
                    bytes.append(contentsOf: String(scalar).utf8)
                }
            }
            return try bytes.withUnsafeBytes(body)
        }
    }

    /// The bytes `text` stands for.
    public static func bytes(_ text: String) -> [UInt8] {
        withBytes(text) { Array($0) }
    }

    /// U+10FF00 + byte.
    static let escapeBase: UInt32 = 0x10FF00

    /// Whether the UTF-8 of a scalar in U+10FF80…U+10FFFF (F4 8F BE/BF xx) may be in `bytes`.
    @inline(__always)
    static func containsEscapeRange(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 3, let base = bytes.baseAddress else { return false }
        // memchr: values are on every response's path, and 0xF4 is rare.
        var start = base
        let end = base + bytes.count
        while let found = memchr(start, 0xF4, end - start) {
            let at = UnsafeRawPointer(found)
            guard end - at >= 3 else { return false }
            if at.load(fromByteOffset: 1, as: UInt8.self) == 0x8F, at.load(fromByteOffset: 2, as: UInt8.self) & 0xFE == 0xBE {
                return true
            }
            start = at + 1
        }
        return false
    }

    private static func escaping(_ bytes: UnsafeRawBufferPointer) -> String {
        var scalars = String.UnicodeScalarView()
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        // The parser's results partition the input in order: `index` follows them.
        var index = 0
        func escape(_ count: Int) {
            for offset in 0..<count {
                scalars.append(Unicode.Scalar(escapeBase + UInt32(bytes[index + offset]))!)
            }
            index += count
        }
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if scalar.value >= escapeBase + 0x80 {
                    escape(encoded.count)
                } else {
                    scalars.append(scalar)
                    index += encoded.count
                }
            case .error(let length):
                escape(length)
            case .emptyInput:
                return String(scalars)
            }
        }
    }
}
