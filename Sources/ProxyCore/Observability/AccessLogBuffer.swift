#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1

/// One event loop's pending access log lines. Lines are formatted straight into a buffer that
/// goes to the ``AccessLogWriter`` thread when it passes 32 KiB, or 100 ms after its first line,
/// or when the server asks (SIGUSR1, shutdown). Only touched on its loop.
final class AccessLogBuffer {
    let log: AccessLog
    private let eventLoop: any EventLoop
    private var buffer: ByteBuffer
    private var flushScheduled = false
    private var cachedSecond = -1
    private var cachedTimestamp = ""

    static let handOffSize = 32 * 1024
    static let flushDelay = TimeAmount.milliseconds(100)

    init(log: AccessLog, eventLoop: any EventLoop) {
        self.log = log
        self.eventLoop = eventLoop
        self.buffer = ByteBuffer()
    }

    /// Formats one line. `upstreamAddress` nil: no backend was asked.
    func append(
        remoteAddress: String,
        head: HTTPRequestHead,
        status: Int,
        bytesSent: Int,
        upstreamAddress: String?,
        upstreamNanoseconds: Int64?,
        requestNanoseconds: Int64
    ) {
        if buffer.capacity == 0 {
            buffer.reserveCapacity(Self.handOffSize + 4096)
        }
        AccessLog.format(
            into: &buffer,
            remoteAddress: remoteAddress,
            timestamp: timestamp(),
            head: head,
            status: status,
            bytesSent: bytesSent,
            upstreamAddress: upstreamAddress,
            upstreamNanoseconds: upstreamNanoseconds,
            requestNanoseconds: requestNanoseconds
        )
        if buffer.readableBytes >= Self.handOffSize {
            handOff()
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: Self.flushDelay) {
                self.flushScheduled = false
                self.handOff()
            }
        }
    }

    /// Gives the lines so far to the writer thread.
    func handOff() {
        guard buffer.readableBytes > 0 else { return }
        log.writer.enqueue(.write(buffer))
        // A fresh one: the writer owns the old storage now (no copy-on-write on the next line).
        buffer = ByteBuffer()
    }

    /// The local time, formatted at most once a second per loop.
    private func timestamp() -> String {
        let now = time(nil)
        if Int(now) != cachedSecond {
            cachedSecond = Int(now)
            cachedTimestamp = AccessLog.timestamp(now)
        }
        return cachedTimestamp
    }
}
