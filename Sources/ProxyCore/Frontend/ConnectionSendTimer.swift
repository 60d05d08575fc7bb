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
struct ConnectionSendTimer {
    private var timer: Scheduled<Void>?

    /// Starts the clock when the socket stops taking bytes, stops it when it takes them again.
    mutating func writabilityChanged(isWritable: Bool, channel: any Channel, timeout: TimeAmount) {
        if isWritable {
            stop()
        } else if timer == nil {
            timer = channel.eventLoop.scheduleTask(in: timeout) {
                Self.resetOnClose(channel)
                channel.close(promise: nil)
            }
        }
    }

    /// The connection closed: nothing may fire for it any more.
    mutating func stop() {
        timer?.cancel()
        timer = nil
    }

    /// SO_LINGER 0: the close sends RST and drops what the socket still buffers.
    static func resetOnClose(_ channel: any Channel) {
        // On the channel's loop the option is set at once, before the close that follows.
        _ = (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
    }
}
