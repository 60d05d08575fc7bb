import NIOCore
import NIOHTTP1

/// The metrics listener's only handler: `GET /metrics` (or HEAD) answers the Prometheus text,
/// anything else 404. One request at a time per connection (scrapers do not pipeline).
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Produces the body of a scrape (hops to the event loops, off this one's thread).
    typealias Scrape = @Sendable (any EventLoop) -> EventLoopFuture<[UInt8]>

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let scrape: Scrape
    private var head: HTTPRequestHead?

    init(scrape: @escaping Scrape) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics", head.method == .GET || head.method == .HEAD else {
            var body = context.channel.allocator.buffer(capacity: 16)
            body.writeStaticString("not found\n")
            write(status: .notFound, contentType: "text/plain", body: body, head: head, context: context)
            return
        }
        let channel = context.channel
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        scrape(context.eventLoop).hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            guard channel.isActive else { return }
            switch result {
            case .success(let bytes):
                var body = context.channel.allocator.buffer(capacity: bytes.count)
                body.writeBytes(bytes)
                handler.write(status: .ok, contentType: Self.contentType, body: body, head: head, context: context)
            case .failure:
                var body = context.channel.allocator.buffer(capacity: 32)
                body.writeStaticString("metrics unavailable\n")
                handler.write(status: .serviceUnavailable, contentType: "text/plain", body: body, head: head, context: context)
            }
        }
    }

    private func write(
        status: HTTPResponseStatus, contentType: String, body: ByteBuffer, head: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension MetricsHTTPHandler: Sendable {}
