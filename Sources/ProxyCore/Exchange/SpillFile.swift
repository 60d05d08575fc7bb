#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import NIOCore
import Synchronization

/// The unlinked temporary file behind a ``SpillBuffer``: owns its descriptor, does the blocking
/// reads and writes (on whatever thread calls them), and frees the file when the last user lets
/// go of it. A read or write under way keeps the object, and so the descriptor, alive: a
/// descriptor closed under a thread still writing could be reused by a socket meanwhile.
final class SpillFile: Sendable {
    private let descriptor: CInt
    private let retiredBytes = Atomic<Int>(0)

    /// Closing (or truncating) a large unlinked file frees its blocks in the calling thread,
    /// and with online discard (ext4 `discard`) that waits for the device: seconds for a few
    /// hundred megabytes, measured with the event loop in `blkdev_issue_discard`. So files are
    /// truncated and closed on a thread of their own, never on an event loop, and one at a time.
    private static let releaseQueue = DispatchQueue(label: "fcgiproxy.spill-release", qos: .utility)

    /// Bytes of files given up and not freed yet: still on disk, so the per-loop `max_spill`
    /// shares count them (``BufferBudget/reserveSpill(_:)``); a disk slower to free than
    /// attackers are to fill cannot push the total past the limit.
    static let releasingBytes = Atomic<Int>(0)

    /// A new file in `directory`, already unlinked: it disappears with the descriptor, even if
    /// we crash.
    init(in directory: String) throws(HTTPError) {
        var template = Array("\(directory)/fcgiproxy-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw HTTPError(500, "cannot create a temporary file in \(directory) (errno \(errno))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.descriptor = descriptor
    }

    /// The owner is done with the file, which holds `bytes`: they count as being freed from now
    /// until the file is truncated.
    func retire(bytes: Int) {
        retiredBytes.store(bytes, ordering: .relaxed)
        Self.releasingBytes.add(bytes, ordering: .relaxed)
    }

    deinit {
        let descriptor = descriptor
        let bytes = retiredBytes.load(ordering: .relaxed)
        Self.releaseQueue.async {
            _ = ftruncate(descriptor, 0)
            close(descriptor)
            Self.releasingBytes.subtract(bytes, ordering: .relaxed)
        }
    }

    /// Writes `buffers` one after the other from `offset`. Blocking: this is where a process
    /// that dirties pages faster than the disk takes them is made to wait.
    func write(_ buffers: [ByteBuffer], at offset: Int) -> Result<Void, HTTPError> {
        var position = offset
        for buffer in buffers {
            let failure = buffer.withUnsafeReadableBytes { bytes -> HTTPError? in
                var done = 0
                while done < bytes.count {
                    let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position + done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        return HTTPError(500, "cannot write to a temporary file (errno \(errno))")
                    }
                    done += n
                }
                return nil
            }
            if let failure { return .failure(failure) }
            position += buffer.readableBytes
        }
        return .success(())
    }

    /// Up to `count` bytes from `offset` (fewer only at a short read). Blocking.
    func read(_ count: Int, at offset: Int, allocator: ByteBufferAllocator) -> Result<ByteBuffer, HTTPError> {
        var chunk = allocator.buffer(capacity: count)
        var failedErrno: CInt = 0
        _ = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            while true {
                let n = pread(descriptor, bytes.baseAddress!, count, off_t(offset))
                if n < 0, errno == EINTR { continue }
                if n <= 0 { failedErrno = n < 0 ? errno : 0 }
                return max(n, 0)
            }
        }
        guard chunk.readableBytes > 0 else {
            return .failure(HTTPError(500, "cannot read back a temporary file (errno \(failedErrno))"))
        }
        return .success(chunk)
    }
}
