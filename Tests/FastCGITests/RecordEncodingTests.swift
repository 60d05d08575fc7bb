import FastCGI
import NIOCore
import Testing

/// Byte-exact encodings of each record type, against vectors written by hand from the FastCGI 1.0 spec.
@Suite struct RecordEncodingTests {
    @Test func recordTypesHaveSpecWireValues() {
        let types: [FastCGIRecordType] = [
            .beginRequest, .abortRequest, .endRequest, .params, .stdin, .stdout, .stderr, .data, .getValues,
            .getValuesResult, .unknownType,
        ]
        #expect(types.map(\.rawValue) == Array(1...11))
        #expect(FastCGIRole.responder.rawValue == 1)
        #expect(FastCGIRole.authorizer.rawValue == 2)
        #expect(FastCGIRole.filter.rawValue == 3)
        #expect(FastCGIProtocolStatus.unknownRole.rawValue == 3)
    }

    @Test func headerFieldsAreBigEndianInSpecOrder() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIRecordHeader(type: .stdout, requestID: 0x1234, contentLength: 0xABCD, paddingLength: 0xEF)
        #expect(bytes(buffer) == [1, 6, 0x12, 0x34, 0xAB, 0xCD, 0xEF, 0])
    }

    @Test func beginRequestResponderKeepConnection() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIBeginRequest(requestID: 1, role: .responder, flags: FastCGIConstants.keepConnectionFlag)
        #expect(bytes(buffer) == [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
    }

    @Test func beginRequestFilterWithoutFlagsOnHighRequestID() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIBeginRequest(requestID: 0xFFFE, role: .filter, flags: 0)
        #expect(bytes(buffer) == [1, 1, 0xFF, 0xFE, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0])
    }

    @Test func abortRequestHasNoContent() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIAbortRequest(requestID: 0x0102)
        #expect(bytes(buffer) == [1, 2, 1, 2, 0, 0, 0, 0])
    }

    @Test func endRequestCarriesStatuses() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIEndRequest(requestID: 7, appStatus: 0x0102_0304, protocolStatus: .overloaded)
        #expect(bytes(buffer) == [1, 3, 0, 7, 0, 8, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0])
    }

    @Test func streamEndIsAnEmptyRecord() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIStreamEnd(type: .params, requestID: 3)
        buffer.writeFastCGIStreamEnd(type: .stdin, requestID: 3)
        buffer.writeFastCGIStreamEnd(type: .stdout, requestID: 0x0100)
        #expect(
            bytes(buffer) == [
                1, 4, 0, 3, 0, 0, 0, 0,
                1, 5, 0, 3, 0, 0, 0, 0,
                1, 6, 1, 0, 0, 0, 0, 0,
            ]
        )
    }

    @Test func unknownTypeIsAManagementRecord() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIUnknownType(42)
        #expect(bytes(buffer) == [1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func getValuesSendsNamesWithEmptyValues() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIGetValues(names: [FastCGIConstants.maxConns, FastCGIConstants.mpxsConns])
        // "FCGI_MAX_CONNS" is 14 bytes, "FCGI_MPXS_CONNS" 15: content 2+14 + 2+15 = 33, padded by 7 to 40.
        let expected: [UInt8] =
            [1, 9, 0, 0, 0, 33, 7, 0]
            + [14, 0] + Array("FCGI_MAX_CONNS".utf8)
            + [15, 0] + Array("FCGI_MPXS_CONNS".utf8)
            + [0, 0, 0, 0, 0, 0, 0]
        #expect(bytes(buffer) == expected)
    }

    @Test func getValuesResultSendsPairs() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIGetValuesResult([
            (name: FastCGIConstants.maxReqs, value: "50"), (name: FastCGIConstants.mpxsConns, value: "1"),
        ])
        // 2+13+2 and 2+15+1: content 35, padded by 5 to 40.
        let expected: [UInt8] =
            [1, 10, 0, 0, 0, 35, 5, 0]
            + [13, 2] + Array("FCGI_MAX_REQS".utf8) + Array("50".utf8)
            + [15, 1] + Array("FCGI_MPXS_CONNS".utf8) + Array("1".utf8)
            + [0, 0, 0, 0, 0]
        #expect(bytes(buffer) == expected)
    }

    @Test func getValuesWithNoNamesIsAnEmptyRecord() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIGetValues(names: [])
        #expect(bytes(buffer) == [1, 9, 0, 0, 0, 0, 0, 0])
    }

    @Test func wholeRecordIsPaddedToEightBytes() {
        var buffer = ByteBuffer()
        buffer.writeFastCGIRecord(FastCGIRecord(type: 200, requestID: 5, content: ByteBuffer(bytes: [9, 8, 7])))
        #expect(bytes(buffer) == [1, 200, 0, 5, 0, 3, 5, 0, 9, 8, 7, 0, 0, 0, 0, 0])
    }

    @Test func writersAppendAfterExistingBytes() {
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
        buffer.moveReaderIndex(forwardBy: 1)
        buffer.writeFastCGIGetValues(names: ["X"])
        #expect(bytes(buffer) == [0xBB, 1, 9, 0, 0, 0, 3, 5, 0, 1, 0, 0x58, 0, 0, 0, 0, 0])
    }
}
