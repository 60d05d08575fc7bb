import FastCGI
import NIOCore
import Testing

@Suite struct ParamsWriterTests {
    @Test func singlePairIsByteExact() throws {
        var writer = FastCGIParamsWriter(requestID: 1, buffer: ByteBuffer())
        try writer.append(name: "A", value: "b")
        #expect(
            bytes(writer.finish()) == [
                1, 4, 0, 1, 0, 4, 4, 0, 1, 1, 0x41, 0x62, 0, 0, 0, 0,
                1, 4, 0, 1, 0, 0, 0, 0,
            ]
        )
    }

    @Test func noPairsWritesOnlyTheStreamEnd() {
        var writer = FastCGIParamsWriter(requestID: 0x0A0B, buffer: ByteBuffer())
        #expect(bytes(writer.finish()) == [1, 4, 0x0A, 0x0B, 0, 0, 0, 0])
    }

    @Test func appendsAfterExistingRecords() throws {
        var buffer = ByteBuffer(bytes: [0xEE])
        buffer.moveReaderIndex(forwardBy: 1)
        buffer.writeFastCGIBeginRequest(requestID: 2, role: .responder, flags: 1)
        var writer = FastCGIParamsWriter(requestID: 2, buffer: buffer)
        try writer.append(name: "K", value: ByteBuffer(bytes: [0xFF]))
        try writer.append(name: ByteBuffer(bytes: [0x4C]), value: ByteBuffer(bytes: [0x00]))
        #expect(
            bytes(writer.finish()) == [
                1, 1, 0, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
                1, 4, 0, 2, 0, 8, 0, 0, 1, 1, 0x4B, 0xFF, 1, 1, 0x4C, 0x00,
                1, 4, 0, 2, 0, 0, 0, 0,
            ]
        )
    }

    @Test func manyPairsSpillIntoRecordsThatEachParseAlone() throws {
        var expected: [(name: String, value: String)] = []
        for index in 0..<300 {
            // Values of varying lengths (some needing 4-byte prefixes) so record boundaries fall unevenly.
            expected.append((name: "HTTP_X_HEADER_\(index)", value: String(repeating: "v", count: 100 + index * 7)))
        }
        var writer = FastCGIParamsWriter(requestID: 7, buffer: ByteBuffer())
        for pair in expected {
            try writer.append(name: pair.name, value: pair.value)
        }
        let records = try #require(rawRecords(writer.finish()))

        #expect(records.count > 3)
        #expect(records.last?.contentLength == 0)
        #expect(records.last?.paddingLength == 0)
        var parsed: [(name: String, value: String)] = []
        for record in records {
            #expect(record.version == 1)
            #expect(record.type == FastCGIRecordType.params.rawValue)
            #expect(record.requestID == 7)
            #expect(record.contentLength + record.paddingLength <= 65535)
            #expect(record.padding.allSatisfy { $0 == 0 })
            // Parsing each record on its own fails if any pair straddles a record boundary.
            let pairs = try FastCGINameValuePairs.parse(record.content)
            parsed += pairs.map { (name: String(buffer: $0.name), value: String(buffer: $0.value)) }
        }
        #expect(parsed.map(\.name) == expected.map(\.name))
        #expect(parsed.map(\.value) == expected.map(\.value))
        // Records are packed: each full record left no room for the pair that starts the next one.
        for (record, next) in zip(records, records.dropFirst()) where next.contentLength > 0 {
            var nextContent = next.content
            let maybeFirstPair = nextContent.readFastCGINameValuePair()
            let firstPair = try #require(maybeFirstPair)
            let firstPairLength = FastCGINameValuePairs.encodedLength(
                nameLength: firstPair.name.readableBytes,
                valueLength: firstPair.value.readableBytes
            )
            #expect(record.contentLength + firstPairLength > 65535)
        }
    }

    @Test func pairFillingAWholeRecordIsAcceptedWithoutPadding() throws {
        // 1 (name length) + 4 (value length) + 1 (name) + 65529 (value) = 65535.
        let value = patternBuffer(count: 65529)
        var writer = FastCGIParamsWriter(requestID: 1, buffer: ByteBuffer())
        try writer.append(name: "A", value: "b")
        try writer.append(name: "N", value: value)
        try writer.append(name: "C", value: "d")
        let records = try #require(rawRecords(writer.finish()))
        #expect(records.map(\.contentLength) == [4, 65535, 4, 0])
        #expect(records.map(\.paddingLength) == [4, 0, 4, 0])
        let big = try FastCGINameValuePairs.parse(records[1].content)
        #expect(big.count == 1)
        #expect(big.first?.value == value)
    }

    @Test func pairTooLargeForOneRecordThrowsAndWritesNothing() throws {
        var writer = FastCGIParamsWriter(requestID: 1, buffer: ByteBuffer())
        try writer.append(name: "A", value: "b")
        let huge = String(repeating: "x", count: 70000)
        #expect(throws: FastCGIProtocolError.nameValuePairTooLarge(1 + 4 + 4 + 70000)) {
            try writer.append(name: "HUGE", value: huge)
        }
        // One byte over a record: 1 + 4 + 1 + 65530.
        #expect(throws: FastCGIProtocolError.nameValuePairTooLarge(65536)) {
            try writer.append(name: "N", value: patternBuffer(count: 65530))
        }
        try writer.append(name: "C", value: "d")
        #expect(
            bytes(writer.finish()) == [
                1, 4, 0, 1, 0, 8, 0, 0, 1, 1, 0x41, 0x62, 1, 1, 0x43, 0x64,
                1, 4, 0, 1, 0, 0, 0, 0,
            ]
        )
    }

    @Test func finishedBufferIsDecodableRequest() throws {
        var buffer = ByteBuffer()
        buffer.writeFastCGIBeginRequest(requestID: 5, role: .responder, flags: 0)
        var writer = FastCGIParamsWriter(requestID: 5, buffer: buffer)
        try writer.append(name: "SCRIPT_FILENAME", value: "/var/www/index.php")
        try writer.append(name: "REQUEST_METHOD", value: "GET")
        var request = writer.finish()
        request.writeFastCGIStreamEnd(type: .stdin, requestID: 5)
        let (records, leftover) = try decodeRecords(request)
        #expect(leftover == 0)
        #expect(records.map(\.recordType) == [.beginRequest, .params, .params, .stdin])
        let pairs = try FastCGINameValuePairs.parse(records[1].content)
        #expect(pairs.map { String(buffer: $0.name) } == ["SCRIPT_FILENAME", "REQUEST_METHOD"])
        #expect(pairs.map { String(buffer: $0.value) } == ["/var/www/index.php", "GET"])
    }
}
