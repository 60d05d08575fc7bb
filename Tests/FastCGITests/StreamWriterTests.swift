import FastCGI
import NIOCore
import Testing

@Suite struct StreamWriterTests {
    /// Input sizes and the content length of each record the spec-conforming split must produce:
    /// chunks of 65528 (a multiple of 8), then the rest.
    static let splits: [(size: Int, chunks: [Int])] = [
        (0, []),
        (1, [1]),
        (65528, [65528]),
        (65529, [65528, 1]),
        (65535, [65528, 7]),
        (65536, [65528, 8]),
        (200_000, [65528, 65528, 65528, 3416]),
    ]

    @Test(arguments: Self.splits.indices)
    func splitsIntoBoundedAlignedRecords(index: Int) throws {
        let (size, chunks) = Self.splits[index]
        let input = patternBuffer(count: size, seed: 3)
        var wire = ByteBuffer()
        wire.writeFastCGIStream(type: .stdin, requestID: 0x0203, content: input)

        let records = try #require(rawRecords(wire))
        #expect(records.map(\.contentLength) == chunks)
        var reassembled = ByteBuffer()
        for record in records {
            #expect(record.version == 1)
            #expect(record.type == FastCGIRecordType.stdin.rawValue)
            #expect(record.requestID == 0x0203)
            #expect(record.reserved == 0)
            #expect(record.contentLength + record.paddingLength <= 65535)
            #expect((record.contentLength + record.paddingLength) % 8 == 0)
            #expect(record.paddingLength < 8)
            #expect(record.padding.allSatisfy { $0 == 0 })
            reassembled.writeImmutableBuffer(record.content)
        }
        #expect(reassembled == input)
    }

    @Test func smallStreamIsByteExact() {
        var wire = ByteBuffer()
        wire.writeFastCGIStream(type: .stdout, requestID: 1, content: ByteBuffer(string: "Hi"))
        #expect(bytes(wire) == [1, 6, 0, 1, 0, 2, 6, 0, 0x48, 0x69, 0, 0, 0, 0, 0, 0])
    }

    @Test func emptyContentWritesNothing() {
        var wire = ByteBuffer(bytes: [0x55])
        wire.writeFastCGIStream(type: .stdout, requestID: 1, content: ByteBuffer())
        #expect(bytes(wire) == [0x55])
    }

    @Test func usesOnlyReadableBytesOfContent() {
        var content = ByteBuffer(bytes: [0xAA, 1, 2, 3])
        content.moveReaderIndex(forwardBy: 1)
        var wire = ByteBuffer()
        wire.writeFastCGIStream(type: .data, requestID: 2, content: content)
        #expect(bytes(wire) == [1, 8, 0, 2, 0, 3, 5, 0, 1, 2, 3, 0, 0, 0, 0, 0])
    }

    @Test func decoderReassemblesStream() throws {
        let input = patternBuffer(count: 200_000, seed: 11)
        var wire = ByteBuffer()
        wire.writeFastCGIStream(type: .stdout, requestID: 4, content: input)
        wire.writeFastCGIStreamEnd(type: .stdout, requestID: 4)
        let (records, leftover) = try decodeRecords(wire)
        #expect(leftover == 0)
        #expect(records.count == 5)
        #expect(records.last?.content.readableBytes == 0)
        var reassembled = ByteBuffer()
        for record in records {
            #expect(record.recordType == .stdout)
            reassembled.writeImmutableBuffer(record.content)
        }
        #expect(reassembled == input)
    }
}
