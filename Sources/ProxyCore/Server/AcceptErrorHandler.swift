import Logging
import NIOCore

/// A listener's answer to accept errors (EMFILE, ENFILE, …): stop accepting for a moment, say so
/// at most once a second, then accept again.
///
/// NIO's AcceptBackoffHandler does not stop the spin here: after a failed accept the channel
/// still counts a read as pending and stays registered for readability, so a level-triggered
/// epoll reports the waiting connection again at once (measured: ~4,600 accept4 → EMFILE a
/// second). Turning `autoRead` off unregisters the listener; turning it on again re-registers.
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel

    private let logger: Logger
    private let pause: TimeAmount
    private var paused = false
    private var lastLogged: NIODeadline?
    private var suppressed = 0

    init(logger: Logger, pause: TimeAmount = .milliseconds(250)) {
        self.logger = logger
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is IOError else {
            context.fireErrorCaught(error)
            return
        }
        report(error)
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(.autoRead, value: false)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = NIOLoopBound(context.channel, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: pause) {
            handler.value.paused = false
            try? channel.value.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    private func report(_ error: any Error) {
        let now = NIODeadline.now()
        if let lastLogged, now - lastLogged < .seconds(1) {
            suppressed += 1
            return
        }
        let more = suppressed > 0 ? " (\(suppressed) more since the last report)" : ""
        logger.error("cannot accept connections: \(error); pausing accepts for \(pause.nanoseconds / 1_000_000) ms\(more)")
        lastLogged = now
        suppressed = 0
    }
}

@available(*, unavailable)
extension AcceptErrorHandler: Sendable {}
