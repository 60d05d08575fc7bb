import Testing

@testable import ProxyCore

@Suite struct MultipartByteRangesTests {
    @Test func boundary() {
        #expect(MultipartByteRanges.makeBoundary(1) == "00000000000000000001")
        #expect(MultipartByteRanges.makeBoundary(0) == "00000000000000000000")
        #expect(MultipartByteRanges.makeBoundary(1234567890) == "00000000001234567890")
        #expect(MultipartByteRanges.makeBoundary(UInt64.max) == "18446744073709551615")
    }

    @Test func framing() {
        let body = MultipartByteRanges(
            ranges: [0..<2, 5..<8], size: 10, contentType: "text/plain", boundary: "00000000000000000001")
        #expect(body.contentType == "multipart/byteranges; boundary=00000000000000000001")
        #expect(
            body.partHeader(0)
                == "\r\n--00000000000000000001\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n")
        #expect(
            body.partHeader(1)
                == "\r\n--00000000000000000001\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\n")
        #expect(body.closing == "\r\n--00000000000000000001--\r\n")
        let file = Array("0123456789".utf8)
        #expect(Self.assemble(body, file: file) == """
            \r
            --00000000000000000001\r
            Content-Type: text/plain\r
            Content-Range: bytes 0-1/10\r
            \r
            01\r
            --00000000000000000001\r
            Content-Type: text/plain\r
            Content-Range: bytes 5-7/10\r
            \r
            567\r
            --00000000000000000001--\r

            """)
    }

    @Test(arguments: [
        [0..<1],
        [0..<2, 5..<8],
        [0..<100, 200..<300, 999_999..<1_000_000],
        [Range<Int>](),
    ])
    func contentLengthIsExact(ranges: [Range<Int>]) {
        let body = MultipartByteRanges(
            ranges: ranges, size: 1_000_000, contentType: "application/octet-stream",
            boundary: MultipartByteRanges.makeBoundary(42))
        var expected = body.closing.utf8.count
        for (index, range) in ranges.enumerated() {
            expected += body.partHeader(index).utf8.count + range.count
        }
        #expect(body.contentLength == expected)
        // Spelled out for the one-range case: the header is fixed text plus the numbers.
        if ranges == [0..<1] {
            let header = "\r\n--00000000000000000042\r\nContent-Type: application/octet-stream\r\n"
                + "Content-Range: bytes 0-0/1000000\r\n\r\n"
            #expect(body.contentLength == header.utf8.count + 1 + "\r\n--00000000000000000042--\r\n".utf8.count)
        }
    }

    @Test func assembledBodyHasContentLength() {
        let file = Array((0..<1000).map { UInt8(truncatingIfNeeded: $0) })
        let body = MultipartByteRanges(
            ranges: [3..<17, 100..<101, 900..<1000], size: file.count, contentType: "image/png",
            boundary: MultipartByteRanges.makeBoundary(7))
        #expect(Self.assembleBytes(body, file: file).count == body.contentLength)
    }

    @Test func noContentTypeLine() {
        let body = MultipartByteRanges(ranges: [1..<3], size: 5, contentType: "", boundary: "B")
        #expect(body.partHeader(0) == "\r\n--B\r\nContent-Range: bytes 1-2/5\r\n\r\n")
        #expect(body.contentLength == body.partHeader(0).utf8.count + 2 + body.closing.utf8.count)
    }

    @Test func nonASCIIContentTypeCountsBytes() {
        let body = MultipartByteRanges(ranges: [0..<1], size: 1, contentType: "text/é", boundary: "B")
        #expect(body.contentLength == body.partHeader(0).utf8.count + 1 + body.closing.utf8.count)
        #expect(body.partHeader(0).utf8.count == body.partHeader(0).unicodeScalars.count + 1)
    }

    private static func assembleBytes(_ body: MultipartByteRanges, file: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (index, range) in body.ranges.enumerated() {
            bytes += Array(body.partHeader(index).utf8)
            bytes += file[range]
        }
        return bytes + Array(body.closing.utf8)
    }

    private static func assemble(_ body: MultipartByteRanges, file: [UInt8]) -> String {
        String(decoding: assembleBytes(body, file: file), as: UTF8.self)
    }
}
