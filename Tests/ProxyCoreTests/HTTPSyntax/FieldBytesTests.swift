import HTTPFieldBytes
import Testing

@Suite struct FieldBytesTests {
    private func roundTrip(_ bytes: [UInt8]) -> [UInt8] {
        FieldBytes.bytes(bytes.withUnsafeBytes { FieldBytes.string($0) })
    }

    @Test func utf8IsTheStringItSpells() {
        for text in ["", "plain ascii", "Grüße ☃", "😀 x", "a\u{10FF7F}b"] {
            let string = Array(text.utf8).withUnsafeBytes { FieldBytes.string($0) }
            #expect(string == text)
            #expect(FieldBytes.bytes(string) == Array(text.utf8))
        }
    }

    @Test func bytesThatAreNotUTF8RoundTrip() {
        let cases: [[UInt8]] = [
            [0xE9, 0xFF], [0x65, 0xE9, 0x74, 0xE9], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80],  // a surrogate
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xC0, 0xAF],  // overlong
            [0xF4, 0x8F, 0xBF, 0xBF],  // valid UTF-8 of U+10FFFF itself, in the escape range
            [0xF4, 0x8F, 0xBE, 0x80, 0x41], [0x80], [0xFE, 0xFF, 0x00, 0x0D],
        ]
        for bytes in cases {
            #expect(roundTrip(bytes) == bytes, "\(bytes)")
        }
        let latin1 = [UInt8]([0xE9, 0x74, 0xE9]).withUnsafeBytes { FieldBytes.string($0) }
        #expect(latin1.unicodeScalars.map(\.value) == [0x10FFE9, 0x74, 0x10FFE9])
    }

    @Test func everyByteSequenceRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0...12, using: &generator)
            // Biased towards the bytes UTF-8 is made of.
            let pool: [UInt8] = [0x00, 0x0A, 0x41, 0x7F, 0x80, 0x8F, 0xBE, 0xBF, 0xC3, 0xE9, 0xED, 0xF0, 0xF4, 0xFF]
            let bytes = (0..<count).map { _ in Bool.random(using: &generator) ? pool.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator) }
            #expect(roundTrip(bytes) == bytes, "\(bytes)")
        }
    }

    /// What the escapes stand for is only ever a byte of 0x80 or more: no CR, LF or NUL can come
    /// out that was not in the input.
    @Test func escapesNeverMakeControlBytes() {
        let string = [UInt8](0x80...0xFF).withUnsafeBytes { FieldBytes.string($0) }
        let out = FieldBytes.bytes(string)
        #expect(out == [UInt8](0x80...0xFF))
        #expect(FieldBytes.bytes("\u{10FF0A}\u{10FF00}") == Array("\u{10FF0A}\u{10FF00}".utf8), "below the range: as UTF-8")
    }
}
