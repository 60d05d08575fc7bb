/// A content coding a static file may also be stored in, next to it (`style.css.br`,
/// `style.css.gz`), so compressed bytes are served without compressing per request.
enum PrecompressedCoding: String, Sendable, CaseIterable {
    case br
    case gzip

    /// What the compressed copy's name adds to the file's name.
    var fileSuffix: String {
        switch self {
        case .br: ".br"
        case .gzip: ".gz"
        }
    }

    /// The codings `acceptEncoding` (the Accept-Encoding value, several field lines joined with
    /// commas) allows, in the server's order of preference: br, then gzip (br is smaller; the
    /// client's q-values only decide yes or no, as with nginx's gzip_static and brotli_static).
    ///
    /// A coding is accepted when listed (names case-insensitive, `x-gzip` counting as gzip) with
    /// a q-value above 0, or not listed while `*` is, with a q-value above 0. `identity` plays no
    /// part. An explicit `q=0` anywhere for a coding refuses it (when in doubt, send the file
    /// uncompressed, which every client takes); an element with an invalid q-value is ignored.
    /// No header or an empty one accepts nothing: clients that can decompress say so.
    static func accepted(acceptEncoding: String?) -> [PrecompressedCoding] {
        guard let acceptEncoding, !acceptEncoding.isEmpty else { return [] }
        // Per coding (and `*`): nil not listed, true listed with q > 0 only, false refused.
        var listed: [Bool?] = [nil, nil]
        var wildcard: Bool?
        for element in acceptEncoding.utf8.split(separator: UInt8(ascii: ",")) {
            let pieces = element.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
            let name = trimmed(pieces[0])
            guard !name.isEmpty else { continue }
            var acceptable = true
            var valid = true
            for parameter in pieces.dropFirst() {
                let parameter = trimmed(parameter)
                guard parameter.first.map({ $0 | 0x20 }) == UInt8(ascii: "q"),
                    let equals = parameter.dropFirst().first(where: { $0 != 0x20 && $0 != 0x09 }),
                    equals == UInt8(ascii: "=")
                else { continue }
                let value = trimmed(parameter.drop(while: { $0 != UInt8(ascii: "=") }).dropFirst())
                guard let positive = qValueIsPositive(value) else {
                    valid = false
                    break
                }
                acceptable = positive
            }
            guard valid else { continue }
            let slot: Int
            if equalsIgnoringCase(name, "br") {
                slot = 0
            } else if equalsIgnoringCase(name, "gzip") || equalsIgnoringCase(name, "x-gzip") {
                slot = 1
            } else if name.elementsEqual("*".utf8) {
                wildcard = (wildcard ?? true) && acceptable
                continue
            } else {
                continue
            }
            listed[slot] = (listed[slot] ?? true) && acceptable
        }
        var result: [PrecompressedCoding] = []
        for (index, coding) in allCases.enumerated() where listed[index] ?? wildcard ?? false {
            result.append(coding)
        }
        return result
    }

    /// Whether a qvalue (`0`, `0.5`, `1.000`, …; RFC 9110 §12.4.2) is above 0; nil when it is
    /// not a qvalue.
    private static func qValueIsPositive(_ value: ArraySlice<UInt8>) -> Bool? {
        guard let first = value.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        let rest = value.dropFirst()
        if rest.isEmpty { return first == UInt8(ascii: "1") }
        guard rest.first == UInt8(ascii: "."), rest.count <= 4 else { return nil }
        let decimals = rest.dropFirst()
        guard decimals.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        if first == UInt8(ascii: "1") {
            return decimals.allSatisfy { $0 == UInt8(ascii: "0") } ? true : nil
        }
        return decimals.contains { $0 != UInt8(ascii: "0") }
    }

    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> ArraySlice<UInt8> {
        trimmed(ArraySlice(bytes))
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var bytes = bytes
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return bytes
    }

    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { pair in
                let byte = pair.0 >= UInt8(ascii: "A") && pair.0 <= UInt8(ascii: "Z") ? pair.0 | 0x20 : pair.0
                return byte == pair.1
            }
        }
    }
}
