#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Content-Type of a static file by its extension, from the system's `/etc/mime.types`
/// (so types follow the distribution, as with nginx's `types` or Apache's `TypesConfig`), over
/// a built-in table that keeps the common web types right when that file is missing, e.g. in a
/// minimal container.
///
/// Types are returned bare, without `; charset=…`: nginx adds no charset by default either, and
/// the proxy cannot know a text file's encoding.
struct MediaTypes: Sendable {
    /// By lower-cased extension (no dot).
    let types: [String: String]

    /// The type of files with no or an unknown extension.
    static let fallback = "application/octet-stream"

    init(types: [String: String]) {
        self.types = types
    }

    /// Reads the `/etc/mime.types` format: per line a media type, then zero or more extensions,
    /// separated by spaces or tabs; `#` starts a comment; blank lines and lines whose first word
    /// is not `type/subtype` are skipped. Extensions are lower-cased; an extension listed twice
    /// takes the later type (as Apache and Python's mimetypes read the file).
    init(mimeTypes contents: String) {
        var types: [String: String] = [:]
        for line in contents.utf8.split(separator: UInt8(ascii: "\n")) {
            let text = line.prefix { $0 != UInt8(ascii: "#") }
            let words = text.split { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0B || $0 == 0x0C }
            guard let type = words.first, words.count > 1,
                let slash = type.firstIndex(of: UInt8(ascii: "/")),
                slash != type.startIndex, type.index(after: slash) != type.endIndex
            else { continue }
            let typeName = String(Substring(type))
            for word in words.dropFirst() {
                let ext = String(Substring(word))
                types[Self.hasUppercase(ext.utf8) ? Self.lowercased(ext) : ext] = typeName
            }
        }
        self.types = types
    }

    /// The Content-Type for the file `path` names, by the extension of its last segment (the
    /// part after the last dot, compared case-insensitively); `application/octet-stream` when it
    /// has none or an unknown one. A name whose only dot leads it (`.profile`) has none.
    ///
    /// On the hot path: short extensions (up to 15 bytes) fit a small string, so the lookup
    /// allocates only to lower-case an extension that has upper-case letters.
    func contentType(forPath path: Substring) -> String {
        let bytes = path.utf8
        var index = bytes.endIndex
        while index > bytes.startIndex {
            let previous = bytes.index(before: index)
            let byte = bytes[previous]
            if byte == UInt8(ascii: "/") { return Self.fallback }
            if byte == UInt8(ascii: ".") {
                guard previous > bytes.startIndex, bytes[bytes.index(before: previous)] != UInt8(ascii: "/"),
                    index < bytes.endIndex
                else { return Self.fallback }
                let ext = path[index...]
                let key = Self.hasUppercase(ext.utf8) ? Self.lowercased(String(ext)) : String(ext)
                return types[key] ?? Self.fallback
            }
            index = previous
        }
        return Self.fallback
    }

    /// `path`'s table (see `init(mimeTypes:)`) over the built-in one, entries from the file
    /// winning; just the built-in table when the file cannot be read (missing, unreadable, not a
    /// regular file, over 4 MiB) or lists no extension.
    static func load(path: String = "/etc/mime.types") -> MediaTypes {
        guard let contents = readSmallFile(path) else { return builtIn }
        let file = MediaTypes(mimeTypes: contents)
        guard !file.types.isEmpty else { return builtIn }
        return MediaTypes(types: builtIn.types.merging(file.types) { _, fromFile in fromFile })
    }

    /// The common web types, as Debian's media-types package (`/etc/mime.types`) spells them.
    /// `.map` (source maps) is JSON; `.br` has no registered type and is left to the fallback.
    static let builtIn = MediaTypes(types: [
        "html": "text/html", "htm": "text/html", "shtml": "text/html",
        "xhtml": "application/xhtml+xml",
        "css": "text/css",
        "js": "text/javascript", "mjs": "text/javascript",
        "json": "application/json", "map": "application/json",
        "jsonld": "application/ld+json", "webmanifest": "application/manifest+json",
        "xml": "application/xml", "xsl": "application/xslt+xml",
        "rss": "application/x-rss+xml", "atom": "application/atom+xml",
        "txt": "text/plain", "csv": "text/csv", "md": "text/markdown", "markdown": "text/markdown",
        "ics": "text/calendar", "vtt": "text/vtt",
        "svg": "image/svg+xml", "svgz": "image/svg+xml",
        "png": "image/png", "apng": "image/apng", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "jxl": "image/jxl",
        "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
        "ico": "image/vnd.microsoft.icon",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "eot": "application/vnd.ms-fontobject",
        "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
        "tar": "application/x-tar", "xz": "application/x-xz", "7z": "application/x-7z-compressed",
        "wasm": "application/wasm",
        "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg",
        "mov": "video/quicktime", "mpeg": "video/mpeg", "mpg": "video/mpeg",
        "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "flac": "audio/flac",
        "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "wav": "audio/x-wav",
    ])

    private static func hasUppercase(_ bytes: some Sequence<UInt8>) -> Bool {
        bytes.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    /// ASCII lower case only: extensions are ASCII, and the Unicode rules of
    /// `String.lowercased()` would make some other byte sequences equal.
    private static func lowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// A regular file's contents, or nil when it cannot be opened, is not a regular file, is
    /// over `limit` bytes or a read fails.
    private static func readSmallFile(_ path: String, limit: Int = 4 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > limit { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
