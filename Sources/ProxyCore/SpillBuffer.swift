#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import NIOCore
import Synchronization

/// Bytes held for one request: a request body read before the backend is asked (PHP-FPM needs
/// CONTENT_LENGTH up front, and a slow upload must not hold a worker), or the response of a
/// client that reads slower than the backend writes.
///
/// Bytes stay in memory up to `memoryLimit` (and while the connection's and the loop's
/// ``BufferBudget`` allow), the rest goes to an unlinked temporary file in `temp_dir` (like
/// nginx's temp paths) up to `spillLimit` and the budgets. File writes are blocking but small and
/// sequential, the same trade nginx makes. Bytes taken out give their memory back at once; a
/// file read to its end is truncated, so a long response that a client drains as it goes never
/// holds more than its backlog on disk.
final class SpillBuffer {
    /// What `append` did.
    enum Outcome: Equatable {
        case held
        /// No room under this allowance; nothing was taken.
        case full(BufferBudget.Scope)
    }

    private var memory: ByteBuffer
    private let memoryLimit: Int
    private let spillLimit: Int
    private let budget: BufferBudget
    private let tempDir: String
    private var fd: CInt = -1
    private var fileLength = 0
    private var readOffset = 0
    /// Bytes in memory that count against the budget (taken out ones are given back).
    private var memoryHeld = 0
    /// Bytes ever appended (a request body's length).
    private(set) var length = 0
    /// Bytes held now, memory and file.
    var heldBytes: Int { memoryHeld + fileLength - readOffset }

    init(memoryLimit: Int, spillLimit: Int, budget: BufferBudget, tempDir: String, allocator: ByteBufferAllocator) {
        self.memoryLimit = memoryLimit
        self.spillLimit = spillLimit
        self.budget = budget
        self.tempDir = tempDir
        self.memory = allocator.buffer(capacity: 0)
    }

    deinit {
        if fd >= 0 { Self.release(fd, bytes: fileLength) }
        budget.releaseMemory(memoryHeld)
        budget.releaseSpill(fileLength)
    }

    /// Closing (or truncating) a large unlinked file frees its blocks in the calling thread,
    /// and with online discard (ext4 `discard`) that waits for the device: seconds for a few
    /// hundred megabytes, measured with the event loop in `blkdev_issue_discard`. So files are
    /// truncated and closed on a thread of their own, never on an event loop.
    private static let releaseQueue = DispatchQueue(label: "fcgiproxy.spill-release", qos: .utility)

    /// Bytes of files handed to that thread and not freed yet: still on disk, so the
    /// per-loop `max_spill` shares count them (``BufferBudget/reserveSpill(_:)``); a disk slower
    /// to free than attackers are to fill cannot push the total past the limit.
    static let releasingBytes = Atomic<Int>(0)

    private static func release(_ descriptor: CInt, bytes: Int) {
        releasingBytes.add(bytes, ordering: .relaxed)
        releaseQueue.async {
            _ = ftruncate(descriptor, 0)
            close(descriptor)
            releasingBytes.subtract(bytes, ordering: .relaxed)
        }
    }

    /// Holds `buffer` whole, or nothing (`.full`). `force` holds it in memory beyond every limit:
    /// for the few bytes of a read already under way when the holder decided to stop reading.
    func append(_ buffer: ByteBuffer, force: Bool = false) throws(HTTPError) -> Outcome {
        let count = buffer.readableBytes
        // Bytes go to memory only while the file holds nothing unread: order is kept.
        if readOffset == fileLength {
            if force || (memoryHeld + count <= memoryLimit && budget.reserveMemory(count)) {
                if force { budget.forceMemory(count) }
                var buffer = buffer
                memory.writeBuffer(&buffer)
                memoryHeld += count
                length += count
                return .held
            }
        } else if force {
            // Behind file bytes: to the file regardless of its limits.
            budget.forceSpill(count)
            try write(buffer)
            length += count
            return .held
        }
        guard fileLength + count <= spillLimit else { return .full(.request) }
        if let refused = budget.reserveSpill(count) { return .full(refused) }
        do {
            try write(buffer)
        } catch {
            budget.releaseSpill(count)
            throw error
        }
        length += count
        return .held
    }

    private func write(_ buffer: ByteBuffer) throws(HTTPError) {
        if fd < 0 { try openTempFile() }
        try buffer.withUnsafeReadableBytes { bytes throws(HTTPError) in
            var offset = 0
            while offset < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + offset, bytes.count - offset, off_t(fileLength + offset))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HTTPError(500, "cannot write to a temporary file in \(tempDir) (errno \(errno))")
                }
                offset += n
            }
        }
        fileLength += buffer.readableBytes
    }

    /// The next piece, or nil when nothing is held. Memory first, then the file.
    func nextChunk(maxLength: Int, allocator: ByteBufferAllocator) throws(HTTPError) -> ByteBuffer? {
        if memory.readableBytes > 0 {
            let chunk = memory.readSlice(length: min(maxLength, memory.readableBytes))!
            memoryHeld -= chunk.readableBytes
            budget.releaseMemory(chunk.readableBytes)
            if memory.readableBytes == 0 {
                // The slices handed out keep the old storage alive as long as they need it.
                memory = allocator.buffer(capacity: 0)
            }
            return chunk
        }
        guard fd >= 0, readOffset < fileLength else { return nil }
        let count = min(maxLength, fileLength - readOffset)
        var chunk = allocator.buffer(capacity: count)
        let read = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            let n = pread(fd, bytes.baseAddress!, count, off_t(readOffset))
            return max(n, 0)
        }
        guard read > 0 else {
            throw HTTPError(500, "cannot read back a temporary file (errno \(errno))")
        }
        readOffset += read
        if readOffset == fileLength {
            // Drained: the space goes back (the file is freed off the loop; a new one is made if
            // needed), and new bytes may use memory again.
            Self.release(fd, bytes: fileLength)
            fd = -1
            budget.releaseSpill(fileLength)
            fileLength = 0
            readOffset = 0
        }
        return chunk
    }

    private func openTempFile() throws(HTTPError) {
        var template = Array("\(tempDir)/fcgiproxy-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw HTTPError(500, "cannot create a temporary file in \(tempDir) (errno \(errno))")
        }
        // Unlinked at once: the file disappears with the descriptor, even if we crash.
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fd = descriptor
    }
}

@available(*, unavailable)
extension SpillBuffer: Sendable {}
