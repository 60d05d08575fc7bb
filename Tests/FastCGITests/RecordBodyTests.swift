import FastCGI
import NIOCore
import Testing

@Suite struct RecordBodyTests {
    @Test func beginRequestBodyParsesRoleAndFlags() throws {
        let body = try FastCGIBeginRequestBody(parsing: ByteBuffer(bytes: [0, 1, 1, 0, 0, 0, 0, 0]))
        #expect(body == FastCGIBeginRequestBody(role: 1, flags: 1))
        #expect(body.keepConnection)
        let other = try FastCGIBeginRequestBody(parsing: ByteBuffer(bytes: [0x01, 0x02, 0xFE, 9, 9, 9, 9, 9]))
        #expect(other.role == 0x0102)
        #expect(other.flags == 0xFE)
        #expect(!other.keepConnection)
    }

    @Test func beginRequestBodyRespectsReaderIndex() throws {
        var content = ByteBuffer(bytes: [0xFF, 0, 3, 1, 0, 0, 0, 0, 0])
        content.moveReaderIndex(forwardBy: 1)
        #expect(try FastCGIBeginRequestBody(parsing: content) == FastCGIBeginRequestBody(role: 3, flags: 1))
    }

    @Test(arguments: [0, 7, 9, 16])
    func fixedBodiesOfWrongLengthThrow(length: Int) {
        let content = ByteBuffer(repeating: 0, count: length)
        #expect(throws: FastCGIProtocolError.malformedBody(type: 1)) {
            try FastCGIBeginRequestBody(parsing: content)
        }
        #expect(throws: FastCGIProtocolError.malformedBody(type: 3)) {
            try FastCGIEndRequestBody(parsing: content)
        }
        #expect(throws: FastCGIProtocolError.malformedBody(type: 11)) {
            try FastCGIUnknownTypeBody(parsing: content)
        }
    }

    @Test func endRequestBodyParsesStatuses() throws {
        let body = try FastCGIEndRequestBody(parsing: ByteBuffer(bytes: [0xDE, 0xAD, 0xBE, 0xEF, 3, 0, 0, 0]))
        #expect(body == FastCGIEndRequestBody(appStatus: 0xDEAD_BEEF, protocolStatus: 3))
        #expect(FastCGIProtocolStatus(rawValue: body.protocolStatus) == .unknownRole)
    }

    @Test func endRequestBodyRoundTripsThroughEncoder() throws {
        var wire = ByteBuffer()
        wire.writeFastCGIEndRequest(requestID: 1, appStatus: 255, protocolStatus: .requestComplete)
        let content = try #require(wire.getSlice(at: wire.readerIndex + 8, length: 8))
        #expect(try FastCGIEndRequestBody(parsing: content) == FastCGIEndRequestBody(appStatus: 255, protocolStatus: 0))
    }

    @Test func unknownTypeBodyParsesType() throws {
        let body = try FastCGIUnknownTypeBody(parsing: ByteBuffer(bytes: [200, 0, 0, 0, 0, 0, 0, 0]))
        #expect(body == FastCGIUnknownTypeBody(type: 200))
    }

    @Test func getValuesResultParsesAsPairs() throws {
        var wire = ByteBuffer()
        wire.writeFastCGIGetValuesResult([(name: FastCGIConstants.maxConns, value: "10")])
        let (records, _) = try decodeRecords(wire)
        let record = try #require(records.first)
        #expect(record.recordType == .getValuesResult)
        #expect(record.requestID == FastCGIConstants.managementRequestID)
        let pairs = try FastCGINameValuePairs.parse(record.content)
        #expect(pairs.map { String(buffer: $0.name) } == ["FCGI_MAX_CONNS"])
        #expect(pairs.map { String(buffer: $0.value) } == ["10"])
    }
}
