/// The validators of a static file's current representation (RFC 9110 §8.8), made from what
/// `stat` says about it, so that conditional and range requests can be answered without
/// reading the file.
///
/// The entity tag is strong and has nginx's form, `"<mtime hex>-<size hex>"`: a cache that
/// moves from nginx to this proxy (or back) keeps validating, and a file rewritten in place
/// within the same second with the same size is the known, accepted blind spot of this scheme.
struct FileValidators: Sendable, Equatable {
    /// Bytes in the file.
    let size: Int
    /// Last modification, seconds since 1970.
    let modified: Int
    /// The strong entity tag, quotes included, e.g. `"5e3f1b2a-1f4"`.
    let etag: String
    /// The Last-Modified field value (IMF-fixdate).
    let lastModified: String

    init(size: Int, modified: Int) {
        self.size = size
        self.modified = modified
        self.etag = "\"" + Self.hex(modified) + "-" + Self.hex(size) + "\""
        self.lastModified = HTTPDate.format(modified)
    }

    /// Lower-case hex as nginx's `%xT`/`%xO` print it; a negative value (a file dated before
    /// 1970) as its two's complement, so the tag never holds a `-` of its own.
    private static func hex(_ value: Int) -> String {
        String(UInt64(bitPattern: Int64(value)), radix: 16)
    }
}
