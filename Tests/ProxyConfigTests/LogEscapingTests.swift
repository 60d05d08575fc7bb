import ProxyConfig
import Testing

@Suite struct LogEscapingTests {
    @Test func controlCharactersBackslashAndNonASCIIAreEscaped() {
        let bytes: [UInt8] = [0x1b] + Array("[31ma\\b\r".utf8) + [0xc3, 0xa9, 0x7f]
        #expect(LogEscaping.escape(bytes) == "\\x1b[31ma\\x5cb\\x0d\\xc3\\xa9\\x7f")
    }
}
