/// What a Range header asks of a static file (RFC 9110 §14.2).
enum ByteRangeResult: Equatable {
    /// Send the whole file (200): no usable Range.
    case full
    /// Send these ranges (206), ascending, non-empty, within the file, neither overlapping nor
    /// adjacent; one range is a single-part response, several a multipart/byteranges one.
    case partial([Range<Int>])
    /// 416 Range Not Satisfiable.
    case unsatisfiable
}

/// Reads the `bytes` Range header of a request for a static file (RFC 9110 §14.1.2), so that
/// downloads resume and media seek, while a client cannot make one request cost many times
/// the file (the "Range: bytes=0-,0-,0-…" attack on Apache, CVE-2011-3192).
enum ByteRanges {
    /// The ranges of `rangeHeader` for a file of `size` bytes:
    /// - `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes), in a comma list with
    ///   optional whitespace and empty elements; the unit is case-insensitive.
    /// - `.full` when the value is not a valid `bytes` ranges-specifier (another unit, bad
    ///   syntax, `b < a`): a server may ignore Range, and the whole file is always correct.
    /// - Each range is clipped to the file; one that starts at or beyond its end, or a `-0`, is
    ///   unsatisfiable and dropped; when none is left, `.unsatisfiable`. For an empty file every
    ///   range is unsatisfiable, `-n` included (as nginx; RFC 9110 would allow an empty 206).
    /// - The ranges are sorted, and overlapping or adjacent ones coalesced into one (RFC 9110
    ///   §14.2 allows coalescing; sorting departs from its SHOULD to keep the requested order,
    ///   but makes the overlap check linear and a multipart body one forward pass over the
    ///   file). More than `maxRanges` ranges left after that → `.full`.
    /// - A range covering the whole file is still `.partial`, so `bytes=0-` gets 206 as it
    ///   does from nginx (clients probing for range support expect that).
    /// Numbers too large for an `Int` are saturated, not rejected: `bytes=0-99999999999999999999`
    /// is the whole file.
    static func evaluate(_ rangeHeader: String, size: Int, maxRanges: Int = 16) -> ByteRangeResult {
        var bytes = Substring(rangeHeader).utf8[...]
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            bytes.removeFirst()
        }
        let unit = "bytes=".utf8
        guard bytes.count > unit.count,
            zip(bytes.prefix(unit.count), unit).allSatisfy({ asciiLowercased($0) == $1 })
        else { return .full }
        bytes.removeFirst(unit.count)

        var ranges: [Range<Int>] = []
        var specCount = 0
        for element in bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            var spec = element[...]
            while let first = spec.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                spec.removeFirst()
            }
            while let last = spec.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
                spec.removeLast()
            }
            if spec.isEmpty { continue }
            specCount += 1
            guard let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { return .full }
            let firstText = spec[..<dash]
            let lastText = spec[spec.index(after: dash)...]
            if firstText.isEmpty {
                // suffix-range
                guard let length = number(lastText) else { return .full }
                if length > 0, size > 0 {
                    ranges.append(max(0, size - length)..<size)
                }
            } else {
                guard let first = number(firstText) else { return .full }
                var last = Int.max
                if !lastText.isEmpty {
                    guard let value = number(lastText), value >= first else { return .full }
                    last = value
                }
                if first < size {
                    ranges.append(first..<(last >= size - 1 ? size : last + 1))
                }
            }
        }
        guard specCount > 0 else { return .full }
        guard !ranges.isEmpty else { return .unsatisfiable }

        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int>] = []
        for range in ranges {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                if range.upperBound > last.upperBound {
                    merged[merged.count - 1] = last.lowerBound..<range.upperBound
                }
            } else {
                merged.append(range)
            }
        }
        return merged.count > maxRanges ? .full : .partial(merged)
    }

    /// The Content-Range of a part, e.g. `bytes 0-99/1000`.
    static func contentRange(_ range: Range<Int>, size: Int) -> String {
        "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
    }

    /// The Content-Range of a 416, e.g. `bytes */1000`.
    static func unsatisfiedContentRange(size: Int) -> String {
        "bytes */\(size)"
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// A non-empty run of ASCII digits, saturated at `Int.max`; nil for anything else (a sign,
    /// a space inside, an empty string).
    private static func number(_ digits: Substring.UTF8View.SubSequence) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return value
    }
}
