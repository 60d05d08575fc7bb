import Testing

@testable import ProxyCore

/// `"2ebc98a1-1f4"`, Sun, 06 Nov 1994 08:49:37 GMT.
private let file = FileValidators(size: 500, modified: 784_111_777)
private let etag = "\"2ebc98a1-1f4\""
private let lastModified = "Sun, 06 Nov 1994 08:49:37 GMT"
private let earlier = "Sun, 06 Nov 1994 08:49:36 GMT"
private let later = "Sun, 06 Nov 1994 08:49:38 GMT"

@Suite struct ConditionalRequestTests {
    private func evaluate(
        ifMatch: String? = nil, ifNoneMatch: String? = nil, ifModifiedSince: String? = nil,
        ifUnmodifiedSince: String? = nil, ifRange: String? = nil, isGetOrHead: Bool = true
    ) -> ConditionalOutcome {
        ConditionalRequest.evaluate(
            ifMatch: ifMatch, ifNoneMatch: ifNoneMatch, ifModifiedSince: ifModifiedSince,
            ifUnmodifiedSince: ifUnmodifiedSince, ifRange: ifRange, isGetOrHead: isGetOrHead,
            validators: file)
    }

    @Test func noConditions() {
        #expect(file.etag == etag)
        #expect(file.lastModified == lastModified)
        #expect(evaluate() == .proceed(rangeAllowed: true))
        #expect(evaluate(isGetOrHead: false) == .proceed(rangeAllowed: true))
    }

    // MARK: If-Match

    @Test(arguments: [
        etag, "*", " * ", "\"x\", \(etag)", "\"x\",\(etag)", "\"x\" ,  \(etag) , \"y\"", "junk, \(etag)",
        "\"a,b\", \(etag)", "W/\"x\", \(etag)",
    ])
    func ifMatchMatches(value: String) {
        #expect(evaluate(ifMatch: value) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifMatch: value, isGetOrHead: false) == .proceed(rangeAllowed: true))
    }

    @Test(arguments: [
        "W/\(etag)", "\"x\"", "", " ", "2ebc98a1-1f4", "\"2EBC98A1-1F4\"", "\"2ebc98a1-1f4", "\(etag)x",
        "\"a,\(etag)\"", "*x", "w/\(etag)", "\"2ebc98a1-1f4 \"",
    ])
    func ifMatchFails(value: String) {
        #expect(evaluate(ifMatch: value) == .preconditionFailed)
    }

    @Test func ifMatchOverridesIfUnmodifiedSince() {
        // A matching If-Match makes If-Unmodified-Since irrelevant.
        #expect(evaluate(ifMatch: etag, ifUnmodifiedSince: earlier) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifMatch: "\"x\"", ifUnmodifiedSince: later) == .preconditionFailed)
    }

    // MARK: If-Unmodified-Since

    @Test func ifUnmodifiedSince() {
        #expect(evaluate(ifUnmodifiedSince: earlier) == .preconditionFailed)
        #expect(evaluate(ifUnmodifiedSince: lastModified) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifUnmodifiedSince: later) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifUnmodifiedSince: "Sunday, 06-Nov-94 08:49:36 GMT") == .preconditionFailed)
        #expect(evaluate(ifUnmodifiedSince: "Sun Nov  6 08:49:36 1994") == .preconditionFailed)
        // Not a date (or a list of dates): ignored.
        #expect(evaluate(ifUnmodifiedSince: "yesterday") == .proceed(rangeAllowed: true))
        #expect(evaluate(ifUnmodifiedSince: "\(earlier), \(earlier)") == .proceed(rangeAllowed: true))
    }

    // MARK: If-None-Match

    @Test(arguments: [etag, "W/\(etag)", "*", "\"x\", W/\(etag)", "\"a\",\"b\" , \(etag)"])
    func ifNoneMatchMatches(value: String) {
        #expect(evaluate(ifNoneMatch: value) == .notModified)
        #expect(evaluate(ifNoneMatch: value, isGetOrHead: false) == .preconditionFailed)
    }

    @Test(arguments: ["\"x\"", "", "W/\"x\"", "2ebc98a1-1f4", "\"2ebc98a1-1f5\"", "W/ \(etag)"])
    func ifNoneMatchDoesNotMatch(value: String) {
        #expect(evaluate(ifNoneMatch: value) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifNoneMatch: value, isGetOrHead: false) == .proceed(rangeAllowed: true))
    }

    @Test func ifNoneMatchOverridesIfModifiedSince() {
        // A non-matching If-None-Match means the client's copy is stale, whatever its date says.
        #expect(evaluate(ifNoneMatch: "\"x\"", ifModifiedSince: later) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifNoneMatch: etag, ifModifiedSince: earlier) == .notModified)
        #expect(evaluate(ifNoneMatch: "", ifModifiedSince: later) == .proceed(rangeAllowed: true))
    }

    // MARK: If-Modified-Since

    @Test func ifModifiedSince() {
        #expect(evaluate(ifModifiedSince: lastModified) == .notModified)
        #expect(evaluate(ifModifiedSince: later) == .notModified)
        #expect(evaluate(ifModifiedSince: earlier) == .proceed(rangeAllowed: true))
        #expect(evaluate(ifModifiedSince: "Sunday, 06-Nov-94 08:49:37 GMT") == .notModified)
        #expect(evaluate(ifModifiedSince: "Sun Nov  6 08:49:37 1994") == .notModified)
        // Only for GET and HEAD.
        #expect(evaluate(ifModifiedSince: later, isGetOrHead: false) == .proceed(rangeAllowed: true))
        // Invalid or several: ignored.
        #expect(evaluate(ifModifiedSince: "Sun, 06 Nov 1994") == .proceed(rangeAllowed: true))
        #expect(evaluate(ifModifiedSince: "\(later), \(later)") == .proceed(rangeAllowed: true))
        #expect(evaluate(ifModifiedSince: "") == .proceed(rangeAllowed: true))
    }

    // MARK: Order

    @Test func order() {
        // If-Match fails before If-None-Match would say 304.
        #expect(evaluate(ifMatch: "\"x\"", ifNoneMatch: etag) == .preconditionFailed)
        // If-Unmodified-Since fails before If-Modified-Since would say 304.
        #expect(evaluate(ifModifiedSince: later, ifUnmodifiedSince: earlier) == .preconditionFailed)
        // Both pass, then If-None-Match decides.
        #expect(evaluate(ifMatch: "*", ifNoneMatch: "*") == .notModified)
        #expect(evaluate(ifMatch: etag, ifNoneMatch: "\"x\"", ifRange: "\"x\"") == .proceed(rangeAllowed: false))
        // A 304 wins over If-Range.
        #expect(evaluate(ifModifiedSince: later, ifRange: "\"x\"") == .notModified)
    }

    // MARK: If-Range

    @Test(arguments: [etag, " \(etag) ", lastModified, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"])
    func ifRangeMatches(value: String) {
        #expect(evaluate(ifRange: value) == .proceed(rangeAllowed: true))
    }

    @Test(arguments: [
        "W/\(etag)", "\"x\"", "*", "", earlier, later, "\(etag), \(etag)", "\(etag) x", "2ebc98a1-1f4",
        "yesterday", "\(lastModified), \(lastModified)",
    ])
    func ifRangeDoesNotMatch(value: String) {
        #expect(evaluate(ifRange: value) == .proceed(rangeAllowed: false))
    }

    @Test func entityTagListComparison() {
        #expect(EntityTagList.contains("W/\"a\"", etag: "\"a\"", weak: true))
        #expect(!EntityTagList.contains("W/\"a\"", etag: "\"a\"", weak: false))
        #expect(EntityTagList.contains("\"\"", etag: "\"\"", weak: false))
        #expect(!EntityTagList.contains("\"a\" \"b\"", etag: "\"b\"", weak: false))
        #expect(EntityTagList.contains(",,\"b\",,", etag: "\"b\"", weak: false))
        #expect(EntityTagList.contains("\t\"b\"\t", etag: "\"b\"", weak: false))
        #expect(!EntityTagList.contains("\"", etag: "\"\"", weak: false))
        #expect(EntityTagList.contains("\"a\", *", etag: "\"b\"", weak: false))
        #expect(!EntityTagList.contains("\"*\"", etag: "\"b\"", weak: false))
    }
}
