import FastCGI
import NIOCore
import Testing

/// `FastCGIParamsWriter.requestStart` must put on the wire exactly what the pair-by-pair writer does.
@Suite struct ParamsRequestStartTests {
    private static func reference(
        _ pairs: [(name: String, value: String)], flags: UInt8, endingStdin: Bool
    ) throws -> [UInt8] {
        var writer = FastCGIParamsWriter(requestID: 0x1234, flags: flags, allocator: ByteBufferAllocator())
        for pair in pairs { try writer.append(name: pair.name, value: pair.value) }
        let buffer = writer.finish(endingStdin: endingStdin)
        return Array(buffer.readableBytesView)
    }

    private static func onePass(
        _ pairs: [(name: String, value: String)], flags: UInt8, endingStdin: Bool
    ) throws -> [UInt8] {
        let buffer = try FastCGIParamsWriter.requestStart(
            requestID: 0x1234, flags: flags, pairs: pairs, endingStdin: endingStdin, allocator: ByteBufferAllocator())
        return Array(buffer.readableBytesView)
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
        // Over one record: the splitting path.
        (0..<300).map { ("HTTP_X_HEADER_\($0)", String(repeating: "v", count: 100 + $0 * 7)) },
    ]

    @Test(arguments: 0..<4)
    func sameBytesAsThePairByPairWriter(caseIndex: Int) throws {
        let pairs = Self.cases[caseIndex]
        for endingStdin in [false, true] {
            for flags: UInt8 in [0, 1] {
                let expected = try Self.reference(pairs, flags: flags, endingStdin: endingStdin)
                #expect(try Self.onePass(pairs, flags: flags, endingStdin: endingStdin) == expected)
            }
        }
    }

    @Test func emptyPairsIsBeginRequestAndStreamEnds() throws {
        #expect(
            try Self.onePass([], flags: 1, endingStdin: true) == [
                1, 1, 0x12, 0x34, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
                1, 4, 0x12, 0x34, 0, 0, 0, 0,
                1, 5, 0x12, 0x34, 0, 0, 0, 0,
            ])
    }

    @Test func aPairLargerThanOneRecordThrows() {
        #expect(throws: FastCGIProtocolError.self) {
            _ = try Self.onePass([("BIG", String(repeating: "x", count: 70_000))], flags: 0, endingStdin: false)
        }
    }
}
