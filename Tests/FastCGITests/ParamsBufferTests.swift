import FastCGI
import NIOCore
import Testing

/// `FastCGIParamsBuffer` must put on the wire exactly what the pair-by-pair writer does, for
/// any request id, and survive reuse.
@Suite struct ParamsBufferTests {
    private static func reference(
        _ pairs: [(name: String, value: String)], requestID: UInt16, flags: UInt8, endingStdin: Bool
    ) throws -> [UInt8] {
        var writer = FastCGIParamsWriter(requestID: requestID, flags: flags, allocator: ByteBufferAllocator())
        for pair in pairs { try writer.append(name: pair.name, value: pair.value) }
        return Array(writer.finish(endingStdin: endingStdin).readableBytesView)
    }

    private static func framed(
        _ buffer: FastCGIParamsBuffer, requestID: UInt16, flags: UInt8, endingStdin: Bool, after prefix: [UInt8] = []
    ) -> [UInt8] {
        var out = ByteBuffer(bytes: prefix)
        buffer.writeRequestStart(requestID: requestID, flags: flags, endingStdin: endingStdin, into: &out)
        return Array(out.readableBytesView.dropFirst(prefix.count))
    }

    static let cases: [[(name: String, value: String)]] = [
        [],
        [("A", "b")],
        // Small (inline) and heap strings, an empty value, a long (4-byte) length, non-ASCII.
        [
            ("SCRIPT_FILENAME", "/var/www/html/index.php"), ("QUERY_STRING", ""),
            ("HTTP_X_LONG", String(repeating: "x", count: 300)), ("HTTP_X_UTF8", "grüße ✓"),
            (String(repeating: "N", count: 200), "v"),
        ],
        // Over one record: the pairs go into several PARAMS records.
        (0..<300).map { ("HTTP_X_HEADER_\($0)", String(repeating: "v", count: 100 + $0 * 7)) },
    ]

    @Test(arguments: 0..<4)
    func sameBytesAsThePairByPairWriter(caseIndex: Int) throws {
        let pairs = Self.cases[caseIndex]
        // A small start capacity: the big cases must grow it.
        let buffer = FastCGIParamsBuffer(capacity: 64)
        buffer.encode { encoder in
            for pair in pairs { encoder.append(name: pair.name, value: pair.value) }
        }
        #expect(buffer.oversizedPair == nil)
        for (requestID, endingStdin, flags) in [(UInt16(1), false, UInt8(0)), (0x1234, true, 1), (0xffff, false, 1)] {
            let expected = try Self.reference(pairs, requestID: requestID, flags: flags, endingStdin: endingStdin)
            #expect(Self.framed(buffer, requestID: requestID, flags: flags, endingStdin: endingStdin) == expected)
            // Appended behind what the buffer already holds, not over it.
            #expect(Self.framed(buffer, requestID: requestID, flags: flags, endingStdin: endingStdin, after: [9, 9, 9]) == expected)
        }
    }

    @Test func resetForgetsThePairsButTheNextRequestIsComplete() throws {
        let buffer = FastCGIParamsBuffer(capacity: 64)
        buffer.encode { encoder in
            for pair in Self.cases[3] { encoder.append(name: pair.name, value: pair.value) }
        }
        buffer.encode { _ in }
        #expect(buffer.count == 0)
        let pairs = Self.cases[2]
        buffer.encode { encoder in
            for pair in pairs { encoder.append(name: pair.name, value: pair.value) }
        }
        let expected = try Self.reference(pairs, requestID: 7, flags: 1, endingStdin: true)
        #expect(Self.framed(buffer, requestID: 7, flags: 1, endingStdin: true) == expected)
    }

    @Test func aPairLargerThanOneRecordIsReportedAndLeftOut() throws {
        let buffer = FastCGIParamsBuffer()
        buffer.encode { encoder in
            encoder.append(name: "A", value: "b")
            encoder.append(name: "BIG", value: String(repeating: "x", count: 70_000))
            encoder.append(name: "HUGE", value: "y", String(repeating: "y", count: 80_000)[...])
            encoder.append(name: "C", value: "d")
        }
        #expect(buffer.oversizedPair?.name == "BIG", "the first one is named")
        #expect(buffer.oversizedPair?.encodedLength == 1 + 4 + 3 + 70_000)
        let expected = try Self.reference([("A", "b"), ("C", "d")], requestID: 1, flags: 0, endingStdin: false)
        #expect(Self.framed(buffer, requestID: 1, flags: 0, endingStdin: false) == expected)
        buffer.encode { _ in }
        #expect(buffer.oversizedPair == nil)
    }

    @Test func noPairsIsBeginRequestAndStreamEnds() {
        let buffer = FastCGIParamsBuffer()
        buffer.encode { _ in }
        #expect(
            Self.framed(buffer, requestID: 0x1234, flags: 1, endingStdin: true) == [
                1, 1, 0x12, 0x34, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
                1, 4, 0x12, 0x34, 0, 0, 0, 0,
                1, 5, 0x12, 0x34, 0, 0, 0, 0,
            ])
    }

    @Test func aValueInTwoPartsIsTheJoinedValue() throws {
        let buffer = FastCGIParamsBuffer()
        let path = "/dir/ünï/x.php/extra"
        buffer.encode { encoder in
            encoder.append(name: "PATH_TRANSLATED", value: "/srv/www", path.dropFirst(4))
            encoder.append(name: "EMPTY", value: "", ""[...])
            encoder.append(name: "LONG", value: String(repeating: "a", count: 100), String(repeating: "b", count: 100)[...])
        }
        let expected = try Self.reference(
            [("PATH_TRANSLATED", "/srv/www/ünï/x.php/extra"), ("EMPTY", ""), ("LONG", String(repeating: "a", count: 100) + String(repeating: "b", count: 100))],
            requestID: 3, flags: 1, endingStdin: false)
        #expect(Self.framed(buffer, requestID: 3, flags: 1, endingStdin: false) == expected)
    }

    /// A value of raw bytes (a header that was not UTF-8) is sent as those bytes.
    @Test func rawBytesValueIsSentAsIs() throws {
        let buffer = FastCGIParamsBuffer()
        let raw: [UInt8] = [0xE9, 0xFF, 0x41]
        let long = [UInt8](repeating: 0xFE, count: 300)
        buffer.encode { encoder in
            raw.withUnsafeBytes { encoder.append(name: "HTTP_X_OBS", bytes: $0) }
            long.withUnsafeBytes { encoder.append(name: "HTTP_X_LONG", bytes: $0) }
            encoder.append(name: "A", value: "b")
        }
        var writer = FastCGIParamsWriter(requestID: 1, flags: 0, allocator: ByteBufferAllocator())
        try writer.append(name: "HTTP_X_OBS", value: ByteBuffer(bytes: raw))
        try writer.append(name: "HTTP_X_LONG", value: ByteBuffer(bytes: long))
        try writer.append(name: "A", value: "b")
        let expected = Array(writer.finish(endingStdin: false).readableBytesView)
        #expect(Self.framed(buffer, requestID: 1, flags: 0, endingStdin: false) == expected)
    }
}
