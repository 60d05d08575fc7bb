/// What the preconditions of a request for a static file decide (RFC 9110 §13.2.2).
enum ConditionalOutcome: Equatable {
    /// Send the file. `rangeAllowed` is false when an If-Range validator did not match: then a
    /// Range header must be ignored and the whole file sent (RFC 9110 §13.1.5).
    case proceed(rangeAllowed: Bool)
    /// 304 Not Modified (only ever for GET and HEAD).
    case notModified
    /// 412 Precondition Failed.
    case preconditionFailed
}

/// Evaluates the conditional header fields of a request against a static file's validators,
/// so that caches revalidate without a body and lost updates are prevented, without any I/O.
enum ConditionalRequest {
    /// The outcome of the preconditions, in the order of RFC 9110 §13.2.2:
    /// 1. If-Match (strong comparison; `*` matches, as the file exists): no match → 412.
    /// 2. Else If-Unmodified-Since: the file is newer than the date → 412.
    /// 3. If-None-Match (weak comparison; `*` matches): a match → 304 for GET/HEAD, else 412.
    /// 4. Else, for GET/HEAD, If-Modified-Since: not newer than the date → 304.
    /// 5. If-Range: see `rangeAllowed`.
    ///
    /// Each argument is the field's value, nil when absent; several field lines are joined with
    /// commas. An entity-tag list is read leniently: an element that is not an entity tag is
    /// skipped, so it never matches; a present but empty If-Match matches nothing (412, as
    /// nginx does). An If-Modified-Since or If-Unmodified-Since that is not a valid HTTP-date
    /// (several field lines of dates are not) is ignored, as RFC 9110 requires.
    ///
    /// If-Range matches when it is a strong entity tag equal to the current one (a weak tag
    /// never does) or an HTTP-date exactly equal to the Last-Modified time. Anything else —
    /// a mismatch, a weak tag, an invalid value, a list — sets `rangeAllowed` to false, so the
    /// whole file is sent, which is always a correct answer. The caller ignores `rangeAllowed`
    /// when the request has no Range field.
    static func evaluate(
        ifMatch: String?, ifNoneMatch: String?, ifModifiedSince: String?, ifUnmodifiedSince: String?,
        ifRange: String?, isGetOrHead: Bool, validators: FileValidators
    ) -> ConditionalOutcome {
        if let ifMatch {
            if !EntityTagList.contains(ifMatch, etag: validators.etag, weak: false) {
                return .preconditionFailed
            }
        } else if let ifUnmodifiedSince, let date = HTTPDate.parse(ifUnmodifiedSince[...]) {
            if validators.modified > date { return .preconditionFailed }
        }
        if let ifNoneMatch {
            if EntityTagList.contains(ifNoneMatch, etag: validators.etag, weak: true) {
                return isGetOrHead ? .notModified : .preconditionFailed
            }
        } else if isGetOrHead, let ifModifiedSince, let date = HTTPDate.parse(ifModifiedSince[...]) {
            if validators.modified <= date { return .notModified }
        }
        guard let ifRange else { return .proceed(rangeAllowed: true) }
        return .proceed(rangeAllowed: ifRangeMatches(ifRange[...], validators: validators))
    }

    private static func ifRangeMatches(_ value: Substring, validators: FileValidators) -> Bool {
        let value = value.trimmingOWS()
        if value.hasPrefix("\"") {
            // A single strong tag, nothing after it.
            return value == validators.etag[...]
        }
        if value.hasPrefix("W/") { return false }
        guard let date = HTTPDate.parse(value) else { return false }
        return date == validators.modified
    }
}

/// Reads `#entity-tag` lists and `*` (RFC 9110 §8.8.3, §13.1.1, §13.1.2).
enum EntityTagList {
    /// Whether `list` is `*` or names `etag` (a strong tag, quotes included). With `weak`, a
    /// `W/` tag with the same opaque part also matches (weak comparison); without, it never
    /// does (strong comparison).
    static func contains(_ list: String, etag: String, weak: Bool) -> Bool {
        let bytes = Array(list.utf8)
        let wanted = Array(etag.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                index += 1
                continue
            }
            if byte == UInt8(ascii: "*") {
                // `*` alone in its element.
                var next = index + 1
                while next < bytes.count, bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") {
                    next += 1
                }
                if next == bytes.count || bytes[next] == UInt8(ascii: ",") { return true }
                index = skipElement(bytes, from: next)
                continue
            }
            var isWeak = false
            var start = index
            if byte == UInt8(ascii: "W"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "/") {
                isWeak = true
                start = index + 2
            }
            guard start < bytes.count, bytes[start] == UInt8(ascii: "\"") else {
                index = skipElement(bytes, from: index)
                continue
            }
            // The closing quote: etagc excludes `"` (and has no escapes).
            var end = start + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += 1 }
            guard end < bytes.count else { return false }
            var after = end + 1
            while after < bytes.count, bytes[after] == UInt8(ascii: " ") || bytes[after] == UInt8(ascii: "\t") {
                after += 1
            }
            if after < bytes.count, bytes[after] != UInt8(ascii: ",") {
                // Junk after the tag: the element is not an entity tag.
                index = skipElement(bytes, from: after)
                continue
            }
            if (weak || !isWeak), bytes[start...end].elementsEqual(wanted) { return true }
            index = after
        }
        return false
    }

    /// The index after the next comma that is outside quotes.
    private static func skipElement(_ bytes: [UInt8], from index: Int) -> Int {
        var index = index
        var quoted = false
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if bytes[index] == UInt8(ascii: ","), !quoted {
                return index + 1
            }
            index += 1
        }
        return index
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (OWS).
    fileprivate func trimmingOWS() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
