import FastCGI
import NIOCore
import Testing

@Suite struct NameValuePairsTests {
    /// The length prefix the spec requires for each length: one byte below 128, else four bytes big-endian
    /// with the top bit set.
    static let lengthPrefixes: [(length: Int, prefix: [UInt8])] = [
        (0, [0x00]),
        (127, [0x7F]),
        (128, [0x80, 0x00, 0x00, 0x80]),
        (65535, [0x80, 0x00, 0xFF, 0xFF]),
        (1 << 24, [0x81, 0x00, 0x00, 0x00]),
    ]

    @Test(arguments: Self.lengthPrefixes.indices)
    func valueLengthPrefixIsByteExact(index: Int) throws {
        let (length, prefix) = Self.lengthPrefixes[index]
        let value = patternBuffer(count: length)
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: ByteBuffer(bytes: [0x4E]), value: value, to: &buffer)
        #expect(buffer.readableBytes == FastCGINameValuePairs.encodedLength(nameLength: 1, valueLength: length))
        #expect(buffer.readableBytes == 1 + prefix.count + 1 + length)
        #expect(buffer.getBytes(at: buffer.readerIndex, length: 1 + prefix.count + 1) == [1] + prefix + [0x4E])
        #expect(buffer.getSlice(at: buffer.readerIndex + 2 + prefix.count, length: length) == value)

        let pairs = try FastCGINameValuePairs.parse(buffer)
        #expect(pairs.count == 1)
        #expect(bytes(pairs[0].name) == [0x4E])
        #expect(pairs[0].value == value)
    }

    @Test(arguments: Self.lengthPrefixes.indices)
    func nameLengthPrefixIsByteExact(index: Int) throws {
        let (length, prefix) = Self.lengthPrefixes[index]
        let name = String(repeating: "n", count: length)
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: name, value: "v", to: &buffer)
        #expect(buffer.getBytes(at: buffer.readerIndex, length: prefix.count + 1) == prefix + [1])
        #expect(buffer.readableBytes == FastCGINameValuePairs.encodedLength(nameLength: length, valueLength: 1))
        let pairs = try FastCGINameValuePairs.parse(buffer)
        #expect(pairs.count == 1)
        // Whole-buffer comparison: a per-byte check of 16 MiB takes seconds in debug builds.
        #expect(pairs[0].name == ByteBuffer(repeating: UInt8(ascii: "n"), count: length))
        #expect(bytes(pairs[0].value) == [UInt8(ascii: "v")])
    }

    @Test func encodedLengthCountsBothPrefixes() {
        #expect(FastCGINameValuePairs.encodedLength(nameLength: 0, valueLength: 0) == 2)
        #expect(FastCGINameValuePairs.encodedLength(nameLength: 127, valueLength: 127) == 256)
        #expect(FastCGINameValuePairs.encodedLength(nameLength: 128, valueLength: 127) == 260)
        #expect(FastCGINameValuePairs.encodedLength(nameLength: 128, valueLength: 128) == 264)
    }

    @Test func writesStringPairsAsUTF8() {
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: "QUERY_STRING", value: "é=1", to: &buffer)
        #expect(bytes(buffer) == [12, 4] + Array("QUERY_STRING".utf8) + [0xC3, 0xA9, 0x3D, 0x31])
        var mixed = ByteBuffer()
        FastCGINameValuePairs.write(name: "X", value: ByteBuffer(bytes: [0xFF, 0x00]), to: &mixed)
        #expect(bytes(mixed) == [1, 2, 0x58, 0xFF, 0x00])
    }

    @Test func parsesSeveralPairsIncludingEmptyAndNonUTF8() throws {
        let wire: [UInt8] =
            [1, 0, 0x41]  // "A" = ""
            + [0, 1, 0x42]  // "" = "B"
            + [2, 0x80, 0, 0, 0x80, 0xFF, 0xFE] + [UInt8](repeating: 0x7A, count: 128)
        let pairs = try FastCGINameValuePairs.parse(ByteBuffer(bytes: wire))
        #expect(pairs.map { bytes($0.name) } == [[0x41], [], [0xFF, 0xFE]])
        #expect(pairs.map { bytes($0.value) } == [[], [0x42], [UInt8](repeating: 0x7A, count: 128)])
    }

    @Test func parseIgnoresBytesBeforeReaderIndex() throws {
        var buffer = ByteBuffer(bytes: [9, 9, 1, 1, 0x61, 0x62])
        buffer.moveReaderIndex(forwardBy: 2)
        let pairs = try FastCGINameValuePairs.parse(buffer)
        #expect(pairs.map { bytes($0.name) } == [[0x61]])
        #expect(pairs.map { bytes($0.value) } == [[0x62]])
    }

    @Test func parseOfEmptyContentIsEmpty() throws {
        #expect(try FastCGINameValuePairs.parse(ByteBuffer()).isEmpty)
    }

    @Test func parseRejectsEveryTruncation() throws {
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: "SHORT", value: "x", to: &buffer)
        let firstPairEnd = buffer.readableBytes
        FastCGINameValuePairs.write(name: "LONG", value: String(repeating: "y", count: 200), to: &buffer)
        let wire = bytes(buffer)
        for length in 1..<wire.count where length != firstPairEnd {
            #expect(throws: FastCGIProtocolError.malformedNameValuePair) {
                try FastCGINameValuePairs.parse(ByteBuffer(bytes: wire[0..<length]))
            }
        }
        #expect(try FastCGINameValuePairs.parse(ByteBuffer(bytes: wire[0..<firstPairEnd])).count == 1)
        #expect(try FastCGINameValuePairs.parse(buffer).count == 2)
    }

    @Test func parseRejectsLengthBeyondContent() {
        // A 4-byte length claiming 2^31-1 bytes must fail cleanly, not allocate or trap.
        let wire: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0x41]
        #expect(throws: FastCGIProtocolError.malformedNameValuePair) {
            try FastCGINameValuePairs.parse(ByteBuffer(bytes: wire))
        }
    }

    @Test func incrementalReadConsumesNothingUntilPairIsComplete() {
        let wire: [UInt8] = [0x80, 0, 0, 3, 1] + Array("abc".utf8) + [0x64]
        for length in 0..<wire.count {
            var partial = ByteBuffer(bytes: wire[0..<length])
            let pair = partial.readFastCGINameValuePair()
            #expect(pair == nil)
            #expect(partial.readableBytes == length)
        }
        var whole = ByteBuffer(bytes: wire + [7])
        let pair = whole.readFastCGINameValuePair()
        #expect(pair.map { bytes($0.name) } == Array("abc".utf8))
        #expect(pair.map { bytes($0.value) } == [0x64])
        #expect(bytes(whole) == [7])
    }
}
