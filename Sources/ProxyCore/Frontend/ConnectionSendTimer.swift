#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// `send_timeout` on a whole client connection, the same for HTTP/1 and HTTP/2: a socket that
/// stays unwritable that long belongs to a client that stopped reading, which through
/// backpressure would pin its backend requests for ever. It is reset (SO_LINGER 0: what the
/// kernel still holds for it is dropped) and closed. The per-response `min_send_rate` clock is
/// the exchange's (`ExchangeClock`); this one also covers a connection between responses.
///
/// Lazy: a large response (a file region over the high watermark) makes the socket unwritable
/// and writable again within one flush, every time. Only the start of a stall is noted; one
/// timer, armed at the first stall, checks at its deadline whether that stall (or a later one)
/// has lasted long enough, instead of a task scheduled and cancelled per response.
final class ConnectionSendTimer {
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// When the socket stopped taking bytes; nil while it takes them.
    private var stalledSince: NIODeadline?
    /// Dropped when the connection closes.
    private var channel: (any Channel)?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Notes when the socket stops taking bytes, and when it takes them again.
    func writabilityChanged(isWritable: Bool, channel: any Channel) {
        if isWritable {
            stalledSince = nil
            return
        }
        guard stalledSince == nil else { return }
        let now = NIODeadline.now()
        stalledSince = now
        self.channel = channel
        if timer == nil { arm(at: now + timeout) }
    }

    /// The connection closed: nothing may fire for it any more.
    func stop() {
        timer?.cancel()
        timer = nil
        stalledSince = nil
        channel = nil
    }

    private func arm(at deadline: NIODeadline) {
        guard let channel else { return }
        timer = channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            fired()
        }
    }

    /// At the deadline: reset and close when the stall has lasted `send_timeout`; otherwise wait
    /// for the rest of the current stall, or for the next one.
    private func fired() {
        guard let stalledSince, let channel else { return }
        let due = stalledSince + timeout
        guard due <= .now() else {
            arm(at: due)
            return
        }
        stop()
        Self.resetOnClose(channel)
        channel.close(promise: nil)
    }

    /// SO_LINGER 0: the close sends RST and drops what the socket still buffers.
    static func resetOnClose(_ channel: any Channel) {
        // On the channel's loop the option is set at once, before the close that follows.
        _ = (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
    }
}
