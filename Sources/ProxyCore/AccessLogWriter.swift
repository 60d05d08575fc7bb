#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore

/// The one thread that writes the access log: event loops hand it whole buffers of lines and
/// never block on the disk (a slow or full disk, or a stderr pipe nobody reads, must not stall
/// requests). Jobs run in the order they were handed over.
final class AccessLogWriter: @unchecked Sendable {
    enum Job {
        case write(ByteBuffer)
        /// Runs on the writer thread between two writes (reopen, barrier).
        case run(@Sendable () -> Void)
        case stop
    }

    /// `true` while jobs wait. Guards `jobs` and `thread`.
    private let condition = ConditionLock(value: false)
    private var jobs: [Job] = []
    private var thread: pthread_t?
    private let fd: CInt
    private let wholeLinesOnly: Bool

    /// `wholeLinesOnly` for a descriptor others write to as well (stderr, shared with the error
    /// log): writes are cut at line ends, at most PIPE_BUF bytes each, which a pipe (journald)
    /// keeps whole, so no error line lands inside an access line.
    init(fd: CInt, wholeLinesOnly: Bool = false) {
        self.fd = fd
        self.wholeLinesOnly = wholeLinesOnly
    }

    /// Queues a job; starts the thread on first use (so `--check-config` starts none).
    func enqueue(_ job: Job) {
        condition.lock()
        jobs.append(job)
        if thread == nil {
            startThread()
        }
        condition.unlock(withValue: true)
    }

    /// Waits until every job queued before this call has run.
    func barrier() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            enqueue(.run { continuation.resume() })
        }
    }

    /// Writes what is queued, then ends the thread and waits for it.
    func stop() {
        condition.lock()
        guard let thread else {
            condition.unlock()
            return
        }
        self.thread = nil
        jobs.append(.stop)
        condition.unlock(withValue: true)
        pthread_join(thread, nil)
    }

    deinit {
        stop()
    }

    // Called with the lock held.
    private func startThread() {
        var thread = pthread_t()
        let argument = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let writer = Unmanaged<AccessLogWriter>.fromOpaque(argument!).takeRetainedValue()
                writer.run()
                return nil
            }, argument)
        precondition(result == 0, "cannot start the access log writer thread: errno \(result)")
        self.thread = thread
    }

    private func run() {
        var batch: [Job] = []
        while true {
            condition.lock(whenValue: true)
            swap(&batch, &jobs)
            condition.unlock(withValue: false)
            for job in batch {
                switch job {
                case .write(let buffer):
                    writeAll(buffer)
                case .run(let body):
                    body()
                case .stop:
                    return
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func writeAll(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                var end = bytes.count
                if wholeLinesOnly, end - offset > Self.atomicWriteSize {
                    // The last line end within PIPE_BUF; a longer line goes whole, unprotected.
                    end = offset + Self.atomicWriteSize
                    while end > offset, bytes[end - 1] != UInt8(ascii: "\n") { end -= 1 }
                    if end == offset { end = offset + Self.atomicWriteSize }
                }
                let written = write(fd, bytes.baseAddress! + offset, end - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    // Disk full or a closed stderr: lines are lost, requests are not held up.
                    return
                }
                offset += written
            }
        }
    }

    /// PIPE_BUF on Linux: pipe writes up to this size are never interleaved with others.
    static let atomicWriteSize = 4096
}
