import FastCGI
import NIOCore
import NIOTestUtils
import Testing

@Suite struct RecordDecoderTests {
    /// A record of every type FastCGI 1.0 defines, plus one it does not, as hand-written wire bytes and the
    /// record the decoder must produce from them.
    static let vectors: [(wire: [UInt8], record: FastCGIRecord)] = [
        (
            [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
            FastCGIRecord(type: .beginRequest, requestID: 1, content: ByteBuffer(bytes: [0, 1, 1, 0, 0, 0, 0, 0]))
        ),
        ([1, 2, 0, 2, 0, 0, 0, 0], FastCGIRecord(type: .abortRequest, requestID: 2, content: ByteBuffer())),
        (
            [1, 3, 0, 3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            FastCGIRecord(type: .endRequest, requestID: 3, content: ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 0]))
        ),
        (
            [1, 4, 0, 4, 0, 4, 4, 0, 1, 1, 0x41, 0x62, 0, 0, 0, 0],
            FastCGIRecord(type: .params, requestID: 4, content: ByteBuffer(bytes: [1, 1, 0x41, 0x62]))
        ),
        ([1, 5, 0, 5, 0, 1, 0, 0, 0x7A], FastCGIRecord(type: .stdin, requestID: 5, content: ByteBuffer(bytes: [0x7A]))),
        (
            [1, 6, 1, 0, 0, 2, 1, 0, 0x4F, 0x4B, 0],
            FastCGIRecord(type: .stdout, requestID: 256, content: ByteBuffer(bytes: [0x4F, 0x4B]))
        ),
        ([1, 7, 0, 7, 0, 0, 0, 0], FastCGIRecord(type: .stderr, requestID: 7, content: ByteBuffer())),
        ([1, 8, 0, 8, 0, 1, 7, 0, 3, 0, 0, 0, 0, 0, 0, 0], FastCGIRecord(type: .data, requestID: 8, content: ByteBuffer(bytes: [3]))),
        (
            [1, 9, 0, 0, 0, 3, 5, 0, 1, 0, 0x58, 0, 0, 0, 0, 0],
            FastCGIRecord(type: .getValues, requestID: 0, content: ByteBuffer(bytes: [1, 0, 0x58]))
        ),
        (
            [1, 10, 0, 0, 0, 4, 4, 0, 1, 1, 0x58, 0x31, 0, 0, 0, 0],
            FastCGIRecord(type: .getValuesResult, requestID: 0, content: ByteBuffer(bytes: [1, 1, 0x58, 0x31]))
        ),
        (
            [1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0],
            FastCGIRecord(type: .unknownType, requestID: 0, content: ByteBuffer(bytes: [42, 0, 0, 0, 0, 0, 0, 0]))
        ),
        ([1, 99, 0xAB, 0xCD, 0, 1, 0, 0, 5], FastCGIRecord(type: 99, requestID: 0xABCD, content: ByteBuffer(bytes: [5]))),
    ]

    @Test func decodesEveryRecordType() throws {
        for vector in Self.vectors {
            let (records, leftover) = try decodeRecords(ByteBuffer(bytes: vector.wire))
            #expect(records == [vector.record])
            #expect(leftover == 0)
        }
    }

    @Test func unknownTypeSurvivesWithRawValue() throws {
        let (records, _) = try decodeRecords(ByteBuffer(bytes: [1, 99, 0, 1, 0, 0, 0, 0]))
        #expect(records.first?.type == 99)
        #expect(records.first?.recordType == nil)
    }

    @Test func verifierAcceptsEverySplitOfEveryType() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: Self.vectors.map { (ByteBuffer(bytes: $0.wire), [$0.record]) },
            decoderFactory: { FastCGIRecordDecoder() }
        )
    }

    /// A record with `paddingLength` padding bytes that are not zero, to show the decoder skips rather than
    /// inspects them.
    static func paddedRecord(paddingLength: Int) -> (wire: ByteBuffer, record: FastCGIRecord) {
        let content = patternBuffer(count: 13, seed: paddingLength)
        var wire = ByteBuffer()
        wire.writeFastCGIRecordHeader(type: .stdout, requestID: 9, contentLength: 13, paddingLength: paddingLength)
        wire.writeImmutableBuffer(content)
        wire.writeRepeatingByte(0xEE, count: paddingLength)
        return (wire, FastCGIRecord(type: .stdout, requestID: 9, content: content))
    }

    @Test(arguments: [0, 1, 7, 255])
    func acceptsPadding(paddingLength: Int) throws {
        let (wire, record) = Self.paddedRecord(paddingLength: paddingLength)
        #expect(wire.readableBytes == 8 + 13 + paddingLength)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(wire, [record]), (ByteBuffer(bytes: Self.vectors[0].wire), [Self.vectors[0].record])],
            decoderFactory: { FastCGIRecordDecoder() }
        )
    }

    @Test func byteByByteFeedYieldsEachRecordOnlyWhenComplete() throws {
        var stream = ByteBuffer()
        var expected: [FastCGIRecord] = []
        var recordEnds: Set<Int> = []
        for paddingLength in [0, 1, 7, 255] {
            let (wire, record) = Self.paddedRecord(paddingLength: paddingLength)
            stream.writeImmutableBuffer(wire)
            expected.append(record)
            recordEnds.insert(stream.readableBytes)
        }
        let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
        var decoded: [FastCGIRecord] = []
        var fed = 0
        for byte in stream.readableBytesView {
            try processor.process(buffer: ByteBuffer(bytes: [byte])) { decoded.append($0) }
            fed += 1
            // A record appears exactly when its last padding byte arrives, not before.
            #expect(decoded.count == recordEnds.filter { $0 <= fed }.count)
        }
        #expect(decoded == expected)
        #expect(processor.unprocessedBytes == 0)
    }

    @Test func partialRecordConsumesNothing() throws {
        var decoder = FastCGIRecordDecoder()
        let wire = Self.vectors[0].wire
        for length in 0..<wire.count {
            var buffer = ByteBuffer(bytes: wire[0..<length])
            let record = try decoder.decode(buffer: &buffer)
            #expect(record == nil)
            #expect(buffer.readableBytes == length)
        }
    }

    @Test func decodesRecordsRelativeToReaderIndex() throws {
        // Junk before the reader index must not be mistaken for part of the record.
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF] + Self.vectors[4].wire + [1, 2])
        buffer.moveReaderIndex(forwardBy: 3)
        var decoder = FastCGIRecordDecoder()
        let record = try decoder.decode(buffer: &buffer)
        #expect(record == Self.vectors[4].record)
        #expect(bytes(buffer) == [1, 2])
    }

    @Test func contentIsASliceOfTheInput() throws {
        var buffer = ByteBuffer(bytes: Self.vectors[5].wire)
        let inputBase = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        var decoder = FastCGIRecordDecoder()
        let decoded = try decoder.decode(buffer: &buffer)
        let record = try #require(decoded)
        let contentBase = record.content.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(contentBase == inputBase + 8)
    }

    @Test(arguments: [UInt8(0), 2, 0xFF])
    func unsupportedVersionThrows(version: UInt8) throws {
        var decoder = FastCGIRecordDecoder()
        var whole = ByteBuffer(bytes: [version, 6, 0, 1, 0, 0, 0, 0])
        #expect(throws: FastCGIProtocolError.unsupportedVersion(version)) {
            try decoder.decode(buffer: &whole)
        }
        // The first byte alone is enough to reject a peer that does not speak FastCGI 1.
        var firstByte = ByteBuffer(bytes: [version])
        #expect(throws: FastCGIProtocolError.unsupportedVersion(version)) {
            try decoder.decode(buffer: &firstByte)
        }
    }

    @Test func unsupportedVersionAfterGoodRecordThrowsThroughProcessor() throws {
        let stream = ByteBuffer(bytes: Self.vectors[1].wire + [2, 6, 0, 1, 0, 0, 0, 0])
        var decoded: [FastCGIRecord] = []
        let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
        #expect(throws: FastCGIProtocolError.unsupportedVersion(2)) {
            try processor.process(buffer: stream) { decoded.append($0) }
        }
        #expect(decoded == [Self.vectors[1].record])
    }

    @Test func encoderOutputRoundTrips() throws {
        var wire = ByteBuffer()
        wire.writeFastCGIBeginRequest(requestID: 3, role: .authorizer, flags: 0)
        wire.writeFastCGIAbortRequest(requestID: 3)
        wire.writeFastCGIEndRequest(requestID: 3, appStatus: 1, protocolStatus: .cantMultiplexConnection)
        wire.writeFastCGIStream(type: .stderr, requestID: 3, content: ByteBuffer(bytes: [1, 2, 3]))
        wire.writeFastCGIUnknownType(77)
        let (records, leftover) = try decodeRecords(wire)
        #expect(leftover == 0)
        #expect(records.map(\.recordType) == [.beginRequest, .abortRequest, .endRequest, .stderr, .unknownType])
        #expect(records.map(\.requestID) == [3, 3, 3, 3, 0])
        #expect(try FastCGIBeginRequestBody(parsing: records[0].content) == FastCGIBeginRequestBody(role: 2, flags: 0))
        #expect(
            try FastCGIEndRequestBody(parsing: records[2].content)
                == FastCGIEndRequestBody(appStatus: 1, protocolStatus: 1)
        )
        #expect(bytes(records[3].content) == [1, 2, 3])
        #expect(try FastCGIUnknownTypeBody(parsing: records[4].content) == FastCGIUnknownTypeBody(type: 77))
    }
}
