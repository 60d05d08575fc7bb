/// The framing of a `multipart/byteranges` body (RFC 9110 §14.6) for a 206 with several
/// ranges: the part headers and closing delimiter as strings, and the exact body length, so
/// the response can carry a Content-Length and the file bytes can be sent between the part
/// headers without copying them.
///
/// The body is, for each range, `partHeader(i)` followed by the range's bytes, then
/// `closing`. Like nginx, every delimiter starts with CRLF, the first one included (the
/// CRLF before the first delimiter is part of the multipart preamble, RFC 2046 §5.1.1).
struct MultipartByteRanges: Sendable {
    let ranges: [Range<Int>]
    let size: Int
    let boundary: String
    private let partHeaders: [String]
    /// The Content-Type of the response, e.g. `multipart/byteranges; boundary=00000000000000000001`.
    let contentType: String
    /// The exact length of the whole body: part headers, ranges and closing delimiter.
    let contentLength: Int
    /// The delimiter after the last part: `\r\n--BOUNDARY--\r\n`.
    let closing: String

    /// `contentType` is the file's type, repeated in each part (left out when empty);
    /// `boundary` must not occur in the file, which `makeBoundary` makes unlikely enough for
    /// clients that search for it (well-behaved ones only read Content-Range).
    init(ranges: [Range<Int>], size: Int, contentType: String, boundary: String) {
        self.ranges = ranges
        self.size = size
        self.boundary = boundary
        let typeLine = contentType.isEmpty ? "" : "Content-Type: " + contentType + "\r\n"
        self.partHeaders = ranges.map { range in
            "\r\n--" + boundary + "\r\n" + typeLine + "Content-Range: " + ByteRanges.contentRange(range, size: size)
                + "\r\n\r\n"
        }
        self.closing = "\r\n--" + boundary + "--\r\n"
        self.contentType = "multipart/byteranges; boundary=" + boundary
        self.contentLength =
            partHeaders.reduce(0) { $0 + $1.utf8.count } + ranges.reduce(0) { $0 + $1.count } + closing.utf8.count
    }

    /// A boundary from a counter: 20 digits, zero-padded, as nginx makes them. It only has to
    /// be absent from the parts; a per-process counter keeps it cheap and reproducible in tests.
    static func makeBoundary(_ counter: UInt64) -> String {
        let digits = String(counter)
        return String(repeating: "0", count: 20 - digits.count) + digits
    }

    /// The delimiter and headers before part `index` (0-based), e.g.
    /// `\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-99/1000\r\n\r\n`.
    func partHeader(_ index: Int) -> String {
        partHeaders[index]
    }
}
