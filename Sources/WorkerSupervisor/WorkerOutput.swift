#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyConfig

/// Logs the workers' stderr (and stdout) of one pool: one log record per line, escaped,
/// truncated and rate-limited, so a chatty or hostile worker can neither forge log lines nor
/// flood the log.
final class WorkerOutputLog: Sendable {
    /// Longest logged line in bytes; the rest of the line is dropped.
    static let maxLineLength = 2048
    /// Lines per second allowed in the long run, and the burst allowed on top.
    static let linesPerSecond = 100.0
    static let burst = 200.0

    private let logger: Logger
    private let limiter: NIOLockedValueBox<RateLimiter>

    init(logger: Logger) {
        self.logger = logger
        self.limiter = NIOLockedValueBox(RateLimiter(capacity: Self.burst, refillPerSecond: Self.linesPerSecond))
    }

    func log(line: some Collection<UInt8>, truncated: Bool, pid: pid_t) {
        let (admitted, dropped) = limiter.withLockedValue { $0.admit(now: .now()) }
        guard admitted else { return }
        var metadata: Logger.Metadata = ["pid": "\(pid)"]
        if dropped > 0 {
            logger.warning("worker stderr: \(dropped) lines dropped (rate limit)", metadata: metadata)
        }
        var text = Self.escape(line)
        if truncated {
            text += "…"
            metadata["truncated"] = "true"
        }
        logger.warning("worker stderr: \(text)", metadata: metadata)
    }

    static func escape(_ bytes: some Collection<UInt8>) -> String {
        LogEscaping.escape(bytes)
    }
}

/// Token bucket; counts what it refused so the next admitted line can say so.
struct RateLimiter: Sendable {
    private let capacity: Double
    private let refillPerSecond: Double
    private var tokens: Double
    private var last: NIODeadline?
    private var dropped = 0

    init(capacity: Double, refillPerSecond: Double) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        self.tokens = capacity
    }

    /// Whether one more line may be logged now, and how many were refused since the last one.
    mutating func admit(now: NIODeadline) -> (admitted: Bool, dropped: Int) {
        if let last {
            let elapsed = Double((now - last).nanoseconds) / 1e9
            tokens = min(capacity, tokens + max(0, elapsed) * refillPerSecond)
        }
        last = now
        guard tokens >= 1 else {
            dropped += 1
            return (false, 0)
        }
        tokens -= 1
        defer { dropped = 0 }
        return (true, dropped)
    }
}

/// Cuts one worker's output pipe into lines for ``WorkerOutputLog``.
final class WorkerOutputHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let log: WorkerOutputLog
    private let pid: pid_t
    private var line: [UInt8] = []
    /// The current line passed the length limit: its rest is skipped up to the newline.
    private var skipping = false

    init(log: WorkerOutputLog, pid: pid_t) {
        self.log = log
        self.pid = pid
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                if !skipping {
                    emit(truncated: false)
                }
                skipping = false
                line.removeAll(keepingCapacity: true)
            } else if !skipping {
                if line.count == WorkerOutputLog.maxLineLength {
                    emit(truncated: true)
                    line.removeAll(keepingCapacity: true)
                    skipping = true
                } else {
                    line.append(byte)
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            flush()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A read error on our own pipe has no remedy; the worker's output is just lost from here.
        context.close(promise: nil)
    }

    /// A last line without newline (the worker died mid-line) still gets logged.
    private func flush() {
        if !line.isEmpty && !skipping {
            emit(truncated: false)
        }
        line.removeAll()
        skipping = false
    }

    private func emit(truncated: Bool) {
        var text = line[...]
        // CRLF line ends are common in worker output; the CR is not part of the message.
        if text.last == UInt8(ascii: "\r") {
            text = text.dropLast()
        }
        log.log(line: text, truncated: truncated, pid: pid)
    }
}
