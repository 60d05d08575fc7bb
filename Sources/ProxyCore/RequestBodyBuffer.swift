#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// Holds a request body whose length is not known up front (chunked), because PHP-FPM needs
/// CONTENT_LENGTH before the first STDIN byte.
///
/// Bytes stay in memory up to `memoryLimit`, the rest goes to an unlinked temporary file (like
/// nginx's client_body_temp_path). File writes are blocking but small and sequential, the same
/// trade nginx makes; the total is capped by `max_body_size` before it gets here.
final class RequestBodyBuffer {
    private var memory: ByteBuffer
    private let memoryLimit: Int
    private let tempDir: String
    private var fd: CInt = -1
    private var fileLength = 0
    private var readOffset = 0
    private(set) var length = 0

    init(memoryLimit: Int, tempDir: String, allocator: ByteBufferAllocator) {
        self.memoryLimit = memoryLimit
        self.tempDir = tempDir
        self.memory = allocator.buffer(capacity: 0)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    func append(_ buffer: ByteBuffer) throws(HTTPError) {
        length += buffer.readableBytes
        if fd < 0, memory.readableBytes + buffer.readableBytes <= memoryLimit {
            var buffer = buffer
            memory.writeBuffer(&buffer)
            return
        }
        if fd < 0 { try openTempFile() }
        try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) in
            var offset = 0
            while offset < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + offset, bytes.count - offset, off_t(fileLength + offset))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HTTPError(500, "cannot write request body to temporary file (errno \(errno))")
                }
                offset += n
            }
        }
        fileLength += buffer.readableBytes
    }

    /// The next piece of the body to send, or nil at the end. Memory first, then the file.
    func nextChunk(maxLength: Int, allocator: ByteBufferAllocator) throws(HTTPError) -> ByteBuffer? {
        if memory.readableBytes > 0 {
            return memory.readSlice(length: min(maxLength, memory.readableBytes))
        }
        guard fd >= 0, readOffset < fileLength else { return nil }
        let count = min(maxLength, fileLength - readOffset)
        var chunk = allocator.buffer(capacity: count)
        let read = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            let n = pread(fd, bytes.baseAddress!, count, off_t(readOffset))
            return max(n, 0)
        }
        guard read > 0 else {
            throw HTTPError(500, "cannot read request body back from temporary file (errno \(errno))")
        }
        readOffset += read
        return chunk
    }

    private func openTempFile() throws(HTTPError) {
        var template = Array("\(tempDir)/fcgiproxy-body-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw HTTPError(500, "cannot create temporary body file in \(tempDir) (errno \(errno))")
        }
        // Unlinked at once: the file disappears with the descriptor, even if we crash.
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fd = descriptor
    }
}

@available(*, unavailable)
extension RequestBodyBuffer: Sendable {}
