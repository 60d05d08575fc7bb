#if HTTP2
import NIOCore

/// A channel handler over `HTTP2ServerSession` that answers every request with one fixed
/// response. It is the I/O shell the exchange-backed handler will grow from, and serves to test
/// the bridge on real sockets (h2c with prior knowledge) before the exchange speaks HTTP/2.
public final class HTTP2FixedResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let session: HTTP2ServerSession
    private let status: Int
    private let headers: [(name: String, value: String)]
    private let body: ByteBuffer
    private var closing = false

    public init(
        configuration: HTTP2SessionConfiguration = .init(), status: Int = 200,
        headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()
    ) {
        self.session = HTTP2ServerSession(configuration: configuration)
        self.status = status
        self.headers = headers + [("content-length", String(body.readableBytes))]
        self.body = body
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        // The server preface (SETTINGS) goes out at once, not only after the client spoke.
        if context.channel.isActive { writeOutput(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        writeOutput(context: context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.receive(unwrapInboundIn(data))
        handleEvents(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        // One write per read burst: every frame the burst caused goes out together.
        writeOutput(context: context)
        context.fireChannelReadComplete()
    }

    private func handleEvents(context: ChannelHandlerContext) {
        while let event = session.nextEvent() {
            switch event {
            case .requestBody(let streamID, let bytes):
                session.consume(streamID: streamID, count: bytes.readableBytes)
            case .requestEnd(let streamID):
                let empty = body.readableBytes == 0
                session.submitResponse(streamID: streamID, status: status, headers: headers, endStream: empty)
                if !empty { session.sendResponseBody(streamID: streamID, body, endStream: true) }
            case .streamClosed(let streamID, _, _):
                session.releaseStream(streamID)
            case .connectionError:
                closing = true
            case .requestHead, .responseDrained, .requestRejected, .streamReset, .goAway:
                break
            }
        }
    }

    private func writeOutput(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 0)
        session.flush(into: &buffer)
        handleEvents(context: context)  // draining response buffers may have queued some
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if closing || session.isFinished {
            closing = true
            context.close(promise: nil)
        }
    }
}
#endif
