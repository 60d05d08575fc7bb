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
        /// Runs on the writer thread between two writes (reopen, barrier) with `false`; queued
        /// after the writer stopped, runs at once with `true` (the descriptor may be closed).
        case run(@Sendable (_ stopped: Bool) -> Void)
        case stop
    }

    /// `true` while jobs wait. Guards `jobs` and `thread`.
    private let condition = ConditionLock(value: false)
    private var jobs: [Job] = []
    private var thread: pthread_t?
    /// Set by the first ``stop(wait:)``; later ones do nothing.
    private var stopped = false
    private let fd: CInt
    private let wholeLinesOnly: Bool
    private let closesDescriptor: Bool

    /// `wholeLinesOnly` for a descriptor others write to as well (stderr, shared with the error
    /// log): writes are cut at line ends, at most PIPE_BUF bytes each, which a pipe (journald)
    /// keeps whole, so no error line lands inside an access line. `closesDescriptor`: `fd` is
    /// closed once the last queued line is written (at ``stop(wait:)``).
    init(fd: CInt, wholeLinesOnly: Bool = false, closesDescriptor: Bool = false) {
        self.fd = fd
        self.wholeLinesOnly = wholeLinesOnly
        self.closesDescriptor = closesDescriptor
    }

    /// Queues a job; starts the thread on first use (so `--check-config` starts none).
    func enqueue(_ job: Job) {
        condition.lock()
        if stopped {
            // Nothing writes any more; a barrier or reopen must not wait for a thread that is gone.
            condition.unlock()
            if case .run(let body) = job { body(true) }
            return
        }
        jobs.append(job)
        if thread == nil {
            startThread()
        }
        condition.unlock(withValue: true)
    }

    /// Waits until every job queued before this call has run.
    func barrier() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            enqueue(.run { _ in continuation.resume() })
        }
    }

    /// Writes what is queued, then ends the thread (and closes the descriptor if it owns it).
    /// `wait`: returns only when that is done; without, returns at once, so that the last
    /// reference to a log replaced by a reload can go on an event loop without blocking it on
    /// the disk.
    func stop(wait: Bool = true) {
        condition.lock()
        guard !stopped else {
            condition.unlock()
            return
        }
        stopped = true
        guard let thread else {
            condition.unlock()
            if closesDescriptor { Glibc.close(fd) }
            return
        }
        self.thread = nil
        jobs.append(.stop)
        condition.unlock(withValue: true)
        if wait {
            pthread_join(thread, nil)
        } else {
            pthread_detach(thread)
        }
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
                    body(false)
                case .stop:
                    if closesDescriptor { Glibc.close(fd) }
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
