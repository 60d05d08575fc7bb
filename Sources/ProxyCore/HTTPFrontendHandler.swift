import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1

/// The HTTP/1.1 side of one client connection.
///
/// NIO's decoder and `HTTPServerPipelineHandler` (ordering of pipelined requests) sit in front of
/// it, so it sees one request at a time. Each request becomes an ``Exchange``; this handler only
/// routes events to it, maps parser errors to statuses, and gates reads for backpressure.
final class HTTPFrontendHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let shared: ProxyContext
    let resources: LoopResources
    let timeouts: ConnectionTimeoutHandler
    let connectionInfo: ConnectionInfo
    private(set) var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// Set once the connection is known to end after the current response.
    private var closeAfterResponse = false

    /// The exchange asks us to stop reading (request body faster than the backend takes it).
    private var readingPaused = false
    private var pendingRead = false

    init(shared: ProxyContext, resources: LoopResources, timeouts: ConnectionTimeoutHandler, connectionInfo: ConnectionInfo) {
        self.shared = shared
        self.resources = resources
        self.timeouts = timeouts
        self.connectionInfo = connectionInfo
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            timeouts.requestHeadReceived()
            let exchange = Exchange(head: head, frontend: self)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end:
            exchange?.requestEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.frontendReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.frontendWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.frontendClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            // A parser error means the byte stream can no longer be framed: answer and close.
            let httpError = HTTPError(Self.status(for: parserError), "\(parserError)", closeConnection: true)
            shared.logger.debug("bad request: \(parserError)", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
            if exchange == nil && closeAfterResponse {
                // The last response already said `Connection: close`; its close is under way.
                return
            }
            closeAfterResponse = true
            if let exchange {
                exchange.frontendFailed(httpError)
            } else {
                writeSimpleResponse(httpError, version: .http1_1, isHead: false)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                    channel.close(promise: nil)
                }
            }
            return
        }
        shared.logger.debug("client connection error: \(error)")
        context.close(promise: nil)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if readingPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: Used by Exchange

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func pauseReading() {
        readingPaused = true
    }

    func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func write(_ part: HTTPServerResponsePart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Ends the exchange's response. Must be the exchange's last call.
    func finish(_ exchange: Exchange, keepAlive: Bool) {
        guard self.exchange === exchange, let context else { return }
        self.exchange = nil
        readingPaused = false
        if keepAlive && !closeAfterResponse {
            // Before writing `.end`: the pipeline handler may hand us the next (pipelined) head
            // synchronously from inside that write.
            timeouts.exchangeFinished()
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if pendingRead {
                pendingRead = false
                context.read()
            }
        } else {
            closeAfterResponse = true
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Tears the connection down without a clean end (the client must see a truncated response).
    func abort(_ exchange: Exchange) {
        guard self.exchange === exchange, let context else { return }
        self.exchange = nil
        closeAfterResponse = true
        context.flush()
        context.close(promise: nil)
    }

    /// Head and body of a small response for an error the proxy itself decided; the caller ends it.
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, isHead: Bool) {
        guard let context else { return }
        let status = HTTPResponseStatus(statusCode: error.status)
        var body = context.channel.allocator.buffer(capacity: 96)
        body.writeString("<html><head><title>\(error.status) \(status.reasonPhrase)</title></head><body><h1>\(error.status) \(status.reasonPhrase)</h1></body></html>\n")
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "Date", value: resources.httpDate())
        headers.add(name: "Server", value: shared.configuration.server.serverSoftware)
        headers.add(name: "Content-Type", value: "text/html")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if error.closeConnection || closeAfterResponse {
            closeAfterResponse = true
            headers.add(name: "Connection", value: "close")
        }
        let responseVersion: HTTPVersion = version.major == 1 && version.minor == 0 ? .http1_0 : .http1_1
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: responseVersion, status: status, headers: headers))), promise: nil)
        if !isHead {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
    }

    /// Marks that the connection must close after the current response (set before its head).
    func closeAfterCurrentResponse() {
        closeAfterResponse = true
    }

    var willClose: Bool { closeAfterResponse }

    static func status(for error: HTTPParserError) -> Int {
        switch error {
        case .headerOverflow:
            return 431
        default:
            return 400
        }
    }
}

@available(*, unavailable)
extension HTTPFrontendHandler: Sendable {}
