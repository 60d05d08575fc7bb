extension String {
    /// Whether the string equals `lowercased` (ASCII, lowercase) ignoring ASCII case, without
    /// building a lowercased copy: header names are compared this way on every request.
    func equalsLowercasedASCII(_ lowercased: StaticString) -> Bool {
        let utf8 = self.utf8
        guard utf8.count == lowercased.utf8CodeUnitCount else { return false }
        var pointer = lowercased.utf8Start
        for byte in utf8 {
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == pointer.pointee else { return false }
            pointer += 1
        }
        return true
    }
}
