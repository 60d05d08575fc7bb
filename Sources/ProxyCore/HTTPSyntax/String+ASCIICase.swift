extension String {
    /// Runs `body` on the UTF-8 bytes as one buffer: native and small strings have them
    /// contiguous already (no copy); anything else is copied once. A loop over a buffer is several
    /// times faster than one over `utf8`, which checks the string's representation per byte.
    @inline(__always)
    func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        var copy = self
        return try copy.withUTF8(body)
    }

    /// Whether the string equals `lowercased` (ASCII, lowercase) ignoring ASCII case, without
    /// building a lowercased copy: header names are compared this way on every request.
    func equalsLowercasedASCII(_ lowercased: StaticString) -> Bool {
        guard utf8.count == lowercased.utf8CodeUnitCount else { return false }
        return withUTF8Bytes { HTTPSyntax.equalsLowercased(UnsafeRawBufferPointer($0), lowercased) }
    }
}
