#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte classes and small parses of HTTP syntax (RFC 9110) shared by the two parsers that read
/// raw header bytes: `HTTP1RequestParser` (client requests) and `CGIResponseHeadParser`
/// (backend responses).
enum HTTPSyntax {
    /// tchar (RFC 9110 §5.6.2) as two bit masks: bytes 0–63 and 64–127.
    private static let tokenLow: UInt64 = 0x03ff_6cfa_0000_0000
    private static let tokenHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte < 64 { return tokenLow >> byte & 1 == 1 }
        if byte < 128 { return tokenHigh >> (byte - 64) & 1 == 1 }
        return false
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// 1*DIGIT, at most 18 of them (so it fits an Int); nil for anything else (a sign, a comma
    /// list, spaces, nothing).
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count > 0, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// ASCII case-insensitive comparison with a lowercase name, without building a String.
    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 0x20 : byte
            if lowered != expected[index] { return false }
        }
        return true
    }

    /// The index of the first LF at or after `start`, or nil. memchr: a head is a few hundred
    /// bytes of which a dozen are line ends, and it finds them several times faster than a loop.
    static func lineFeed(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
            let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}
