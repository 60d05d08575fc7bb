import Logging
import NIOCore

/// Logs accept errors (EMFILE, ENFILE, …) of a listener at most once a second, with how many
/// were not logged since: a process out of descriptors must not also flood its log.
final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = any Channel

    private let logger: Logger
    private var lastLogged: NIODeadline?
    private var suppressed = 0

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = NIODeadline.now()
        if let lastLogged, now - lastLogged < .seconds(1) {
            suppressed += 1
            return
        }
        let more = suppressed > 0 ? " (\(suppressed) more since the last report)" : ""
        logger.error("cannot accept connections: \(error); pausing accepts for 250 ms\(more)")
        lastLogged = now
        suppressed = 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension AcceptErrorLogger: Sendable {}
