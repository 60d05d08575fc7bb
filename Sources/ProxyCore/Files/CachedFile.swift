import NIOCore

/// A small file held in memory as read at one ``FileIdentity``, with the parts of its response
/// head that cost allocations to make per request (entity tag, Last-Modified, Content-Length).
/// Immutable: a changed file gets a new one.
final class CachedFile: Sendable {
    let identity: FileIdentity
    /// The file's bytes; responses send slices of it (no copy).
    let bytes: ByteBuffer
    let validators: FileValidators
    /// `bytes.readableBytes` as a Content-Length value.
    let contentLength: String

    init(identity: FileIdentity, bytes: ByteBuffer) {
        self.identity = identity
        self.bytes = bytes
        // The bytes decide the length: a file that shrank while being read is sent as read.
        self.validators = FileValidators(size: bytes.readableBytes, modified: identity.modifiedSeconds)
        self.contentLength = String(bytes.readableBytes)
    }
}
