import Testing

@testable import ProxyCore

@Suite struct ByteRangesTests {
    // RFC 9110 §14.1.2's examples, for a 10000-byte representation.
    @Test(arguments: [
        ("bytes=0-499", [0..<500]),
        ("bytes=500-999", [500..<1000]),
        ("bytes=-500", [9500..<10000]),
        ("bytes=9500-", [9500..<10000]),
        ("bytes=0-0,-1", [0..<1, 9999..<10000]),
        ("bytes= 0-999, 4500-5499, -1000", [0..<1000, 4500..<5500, 9000..<10000]),
        // Overlapping and adjacent ranges are coalesced.
        ("bytes=500-600,601-999", [500..<1000]),
        ("bytes=500-700,601-999", [500..<1000]),
    ])
    func rfcExamples(header: String, expected: [Range<Int>]) {
        #expect(ByteRanges.evaluate(header, size: 10000) == .partial(expected))
    }

    @Test(arguments: [
        ("bytes=0-", [0..<100]),
        ("bytes=0-99", [0..<100]),
        ("bytes=0-1000", [0..<100]),
        ("bytes=-100", [0..<100]),
        ("bytes=-1000", [0..<100]),
        ("bytes=99-", [99..<100]),
        ("bytes=10-19", [10..<20]),
        ("BYTES=10-19", [10..<20]),
        ("Bytes=10-19", [10..<20]),
        (" bytes=10-19 ", [10..<20]),
        ("bytes=10-19,", [10..<20]),
        ("bytes=,10-19", [10..<20]),
        ("bytes=10-19,,\t,30-39", [10..<20, 30..<40]),
        ("bytes=30-39,10-19", [10..<20, 30..<40]),
        ("bytes=10-19,20-29", [10..<30]),
        ("bytes=10-19,21-29", [10..<20, 21..<30]),
        ("bytes=10-50,20-30", [10..<51]),
        ("bytes=0-0,0-0,0-0", [0..<1]),
        ("bytes=50-,-10", [50..<100]),
        ("bytes=0-99999999999999999999999", [0..<100]),
        ("bytes=-99999999999999999999999", [0..<100]),
        // Unsatisfiable ranges are dropped when another is satisfiable.
        ("bytes=100-200,0-0", [0..<1]),
        ("bytes=-0,5-5", [5..<6]),
        ("bytes=99999999999999999999999-,5-5", [5..<6]),
    ])
    func partial(header: String, expected: [Range<Int>]) {
        #expect(ByteRanges.evaluate(header, size: 100) == .partial(expected))
    }

    @Test(arguments: [
        "", "bytes", "bytes=", "bytes= ", "bytes=,", "bytes=,,", "bits=0-1", "items=0-1", "bytes 0-1", "bytes =0-1",
        "bytes=1", "bytes=a-b", "bytes=-", "bytes=--1", "bytes=1--2", "bytes=1-2-3", "bytes=+1-2", "bytes=1-+2",
        "bytes=-+1", "bytes=0x10-20", "bytes=1 -2", "bytes=1- 2", "bytes=20-10", "bytes=0-1,20-10", "bytes=0-1,x",
        "bytes=0-1;0-2", "bytes=1.5-2", "bytes\u{1d}0-1", "bytes=٣-4",
    ])
    func invalidIsIgnored(header: String) {
        #expect(ByteRanges.evaluate(header, size: 100) == .full)
    }

    @Test(arguments: ["bytes=100-", "bytes=100-200", "bytes=1000-", "bytes=-0", "bytes=100-100,200-", "bytes=-0,-0"])
    func unsatisfiable(header: String) {
        #expect(ByteRanges.evaluate(header, size: 100) == .unsatisfiable)
    }

    @Test(arguments: ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-100", "bytes=0-,-5"])
    func emptyFile(header: String) {
        #expect(ByteRanges.evaluate(header, size: 0) == .unsatisfiable)
    }

    @Test func invalidBeatsUnsatisfiable() {
        #expect(ByteRanges.evaluate("bytes=0-,x", size: 0) == .full)
    }

    @Test func maxRanges() {
        let sixteen = (0..<16).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        #expect(ByteRanges.evaluate("bytes=" + sixteen, size: 100) == .partial((0..<16).map { $0 * 2..<$0 * 2 + 1 }))
        let seventeen = (0..<17).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        #expect(ByteRanges.evaluate("bytes=" + seventeen, size: 100) == .full)
        #expect(ByteRanges.evaluate("bytes=0-0,2-2,4-4", size: 100, maxRanges: 2) == .full)
        #expect(ByteRanges.evaluate("bytes=0-0,2-2", size: 100, maxRanges: 2) == .partial([0..<1, 2..<3]))
        #expect(ByteRanges.evaluate("bytes=0-0", size: 100, maxRanges: 0) == .full)
        #expect(ByteRanges.evaluate("bytes=0-0", size: 100, maxRanges: Int.max) == .partial([0..<1]))
        // Dropped unsatisfiable ranges do not count.
        let far = (0..<40).map { "\(1000 + $0)-" }.joined(separator: ",")
        #expect(ByteRanges.evaluate("bytes=" + far + ",5-6", size: 100) == .partial([5..<7]))
    }

    /// CVE-2011-3192: many overlapping ranges collapse into one, not many copies of the file.
    @Test func apacheKiller() {
        let header = "bytes=0-," + (1..<1300).map { "\($0 % 7)-\($0 * 3)" }.joined(separator: ",")
        #expect(ByteRanges.evaluate(header, size: 1_000_000) == .partial([0..<1_000_000]))
        let zeros = "bytes=" + Array(repeating: "0-", count: 5000).joined(separator: ",")
        #expect(ByteRanges.evaluate(zeros, size: 10) == .partial([0..<10]))
    }

    @Test func contentRange() {
        #expect(ByteRanges.contentRange(0..<100, size: 1000) == "bytes 0-99/1000")
        #expect(ByteRanges.contentRange(999..<1000, size: 1000) == "bytes 999-999/1000")
        #expect(ByteRanges.unsatisfiedContentRange(size: 1000) == "bytes */1000")
        #expect(ByteRanges.unsatisfiedContentRange(size: 0) == "bytes */0")
    }
}
