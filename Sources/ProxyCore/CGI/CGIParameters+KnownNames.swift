extension CGIParameters {
    /// CGI names of request headers that browsers, API clients and proxies commonly send, each longer
    /// than the 15 UTF-8 bytes a `String` holds inline. Returning one of these literals (immortal,
    /// never freed) instead of building `HTTP_` + the name saves one allocation per such header:
    /// 7 of the 19 allocations of a typical browser request's head → PARAMS (Benchmarks/Micro).
    /// Names not listed are built as before; the list only saves work, it decides nothing.
    static let knownHeaderNames: [String] = [
        "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING", "HTTP_UPGRADE_INSECURE_REQUESTS",
        "HTTP_SEC_FETCH_DEST", "HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_USER",
        "HTTP_SEC_CH_UA_MOBILE", "HTTP_SEC_CH_UA_PLATFORM", "HTTP_CACHE_CONTROL",
        "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_NONE_MATCH", "HTTP_AUTHORIZATION", "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_REQUESTED_WITH",
        // Dropped after the lookup (they are CONTENT_* or hop-by-hop), but looked up first.
        "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING",
    ]

    /// ``knownHeaderNames`` by the length of their header part (after `HTTP_`), with those bytes.
    private static let knownByLength: [[(header: [UInt8], name: String)]] = {
        var table = [[(header: [UInt8], name: String)]](repeating: [], count: 32)
        for name in knownHeaderNames {
            let header = Array(name.utf8.dropFirst(5))
            table[header.count].append((header, name))
        }
        return table
    }()

    /// The entry of ``knownHeaderNames`` that is `HTTP_` + `name` uppercased with `-` → `_`, if any.
    /// A name with `_` matches nothing, though the caller has already dropped such names: the table
    /// must never be what lets `Accept_Language` pass as `Accept-Language`. Compares raw bytes: a
    /// generic UTF8View comparison cost more time than the allocations it saved.
    static func knownCGIName(forHeader name: String.UTF8View) -> String? {
        let length = name.count
        guard length < knownByLength.count, !knownByLength[length].isEmpty else {
            return nil
        }
        let found = name.withContiguousStorageIfAvailable { bytes -> String? in
            for candidate in knownByLength[length] {
                var index = 0
                while index < length {
                    let byte = bytes[index]
                    let cgiByte: UInt8
                    switch byte {
                    case UInt8(ascii: "-"): cgiByte = UInt8(ascii: "_")
                    case UInt8(ascii: "_"): cgiByte = 0  // never in a known name
                    case UInt8(ascii: "a")...UInt8(ascii: "z"): cgiByte = byte - 0x20
                    default: cgiByte = byte
                    }
                    guard cgiByte == candidate.header[index] else { break }
                    index += 1
                }
                if index == length {
                    return candidate.name
                }
            }
            return nil
        }
        return found ?? nil
    }
}
