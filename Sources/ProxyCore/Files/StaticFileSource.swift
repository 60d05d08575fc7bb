import NIOCore

/// Where a static response's body comes from: a small file's bytes in memory, or an open
/// descriptor (sendfile or chunked reads).
enum StaticFileSource {
    case memory(CachedFile)
    case descriptor(StaticFile)

    var validators: FileValidators {
        switch self {
        case .memory(let file): file.validators
        case .descriptor(let file): FileValidators(size: file.size, modified: file.modified)
        }
    }

    /// The Content-Length of a whole-file answer when it is at hand without formatting.
    var contentLength: String? {
        if case .memory(let file) = self { file.contentLength } else { nil }
    }
}
