import FastCGIClient
import Logging
import NIOCore
import NIOHTTP1

/// The HTTP/1.1 side of one client connection.
///
/// NIO's decoder sits in front of it. Each request becomes an ``Exchange``; this handler routes
/// events to it, keeps pipelined requests in order, maps parser errors to statuses, and gates
/// reads for backpressure.
///
/// Pipelining is handled here rather than by NIO's `HTTPServerPipelineHandler`: that one stops
/// reading the socket for the length of every response, which costs two `epoll_ctl` calls per
/// request even for clients that never pipeline. Here reads stop only when pipelined requests
/// pile up beyond a small bound.
final class HTTPFrontendHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let shared: ProxyContext
    let resources: LoopResources
    let timeouts: ConnectionTimeoutHandler
    let connectionInfo: ConnectionInfo
    private(set) var context: ChannelHandlerContext?
    /// The exchange whose response is being produced: at most one, so responses stay in order.
    private var exchange: Exchange?
    /// True between a processed head and its `.end`: body parts then belong to `exchange` (or
    /// are dropped, when that exchange already answered).
    private var inRequestBody = false
    /// Set once the connection is known to end after the current response.
    private var closeAfterResponse = false

    /// Pipelined requests (and a parser error behind them) waiting for the current response.
    private var queue = CircularBuffer<QueuedEvent>()
    private var queuedBytes = 0
    private var draining = false
    private static let maxQueuedBytes = 64 * 1024
    private static let maxQueuedEvents = 64

    private enum QueuedEvent {
        case part(HTTPServerRequestPart)
        case parserError(HTTPParserError)
    }

    /// The exchange asks us to stop reading (request body faster than the backend takes it).
    private var exchangePausedReading = false
    /// Too many pipelined requests are queued.
    private var queuePausedReading = false
    private var pendingRead = false
    private var sendTimer: Scheduled<Void>?

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
        let part = unwrapInboundIn(data)
        if queue.isEmpty {
            if case .head = part, exchange != nil {
                enqueue(.part(part))
            } else {
                process(part)
            }
        } else {
            enqueue(.part(part))
        }
    }

    private func process(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            inRequestBody = true
            timeouts.requestHeadReceived()
            let exchange = Exchange(head: head, frontend: self)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end:
            inRequestBody = false
            exchange?.requestEnd()
        }
    }

    private func enqueue(_ event: QueuedEvent) {
        if case .part(.body(let body)) = event {
            queuedBytes += body.readableBytes
        }
        queue.append(event)
        if queuedBytes > Self.maxQueuedBytes || queue.count > Self.maxQueuedEvents {
            queuePausedReading = true
        }
    }

    /// Runs queued requests after a response ended, until one of them is still responding.
    private func drainQueue() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while let event = queue.first {
            if case .part(.head) = event, exchange != nil { break }
            if case .parserError = event, exchange != nil { break }
            queue.removeFirst()
            switch event {
            case .part(let part):
                if case .body(let body) = part { queuedBytes -= body.readableBytes }
                process(part)
            case .parserError(let error):
                respondToParserError(error)
            }
            if closeAfterResponse {
                queue.removeAll()
                queuedBytes = 0
            }
        }
        if queuedBytes <= Self.maxQueuedBytes / 2, queue.count <= Self.maxQueuedEvents / 2 {
            queuePausedReading = false
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.frontendReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
        } else if sendTimer == nil {
            // nginx's send_timeout: a client that stops reading would otherwise pin this
            // connection and, through backpressure, a backend request, for ever.
            let channel = context.channel
            sendTimer = context.eventLoop.scheduleTask(in: TimeAmount(shared.configuration.server.sendTimeout)) {
                channel.close(promise: nil)
            }
        }
        exchange?.frontendWritabilityChanged(isWritable: writable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sendTimer?.cancel()
        sendTimer = nil
        let exchange = self.exchange
        self.exchange = nil
        exchange?.frontendClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiesce(context: context)
    }

    /// Graceful stop: an idle connection closes now, a busy one after its current response
    /// (``Exchange`` sees ``willClose`` and answers with `Connection: close`); pipelined requests
    /// behind it are not started.
    private func quiesce(context: ChannelHandlerContext) {
        let wasClosing = closeAfterResponse
        closeAfterResponse = true
        guard exchange == nil, queue.isEmpty, !wasClosing else { return }
        // Idle, but the last response may still sit in the channel's outbound buffer (a slow
        // reader): an empty write from the pipeline's start completes after it, then close.
        let channel = context.channel
        let flushed: EventLoopFuture<Void>
        if let first = try? context.pipeline.syncOperations.context(handlerType: ConnectionTimeoutHandler.self) {
            flushed = first.writeAndFlush(NIOAny(channel.allocator.buffer(capacity: 0)))
        } else {
            flushed = context.eventLoop.makeSucceededVoidFuture()
        }
        flushed.whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            shared.logger.debug("client connection error: \(error)")
            context.close(promise: nil)
            return
        }
        shared.logger.debug("bad request: \(parserError)", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
        if queue.isEmpty && (inRequestBody || exchange == nil) {
            respondToParserError(parserError)
        } else {
            // The broken bytes belong to a request behind the current response: answer in order.
            enqueue(.parserError(parserError))
        }
    }

    /// A parser error means the byte stream can no longer be framed: answer and close.
    private func respondToParserError(_ parserError: HTTPParserError) {
        guard let context else { return }
        if exchange == nil && closeAfterResponse {
            // The last response already said `Connection: close`; its close is under way.
            return
        }
        let httpError = HTTPError(Self.status(for: parserError), "\(parserError)", closeConnection: true)
        closeAfterResponse = true
        if let exchange {
            // Mid-body of the current request (a bad chunk): that request fails.
            exchange.frontendFailed(httpError)
        } else {
            let bytes = writeSimpleResponse(httpError, version: .http1_1, isHead: false)
            // No head was parsed: log what nginx logs for such lines, a placeholder request.
            resources.requestRejected(remoteAddress: connectionInfo.remoteAddress, status: httpError.status, bytesSent: bytes)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if exchangePausedReading || queuePausedReading {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: Used by Exchange

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func pauseReading() {
        exchangePausedReading = true
    }

    func resumeReading() {
        exchangePausedReading = false
        readIfPending()
    }

    private func readIfPending() {
        guard pendingRead, !exchangePausedReading, !queuePausedReading, let context else { return }
        pendingRead = false
        context.read()
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
        exchangePausedReading = false
        if keepAlive && !closeAfterResponse {
            // Before the queue runs: a queued head puts the clock back to "busy".
            timeouts.exchangeFinished()
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            drainQueue()
            context.flush()
            readIfPending()
        } else {
            closeAfterResponse = true
            queue.removeAll()
            queuedBytes = 0
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
        queue.removeAll()
        queuedBytes = 0
        context.flush()
        context.close(promise: nil)
    }

    /// Head and body of a small response for an error the proxy itself decided; the caller ends it.
    /// Returns the body bytes written (for the access log).
    @discardableResult
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, isHead: Bool) -> Int {
        guard let context else { return 0 }
        let status = HTTPResponseStatus(statusCode: error.status)
        var body = context.channel.allocator.buffer(capacity: 96)
        body.writeString("<html><head><title>\(error.status) \(status.reasonPhrase)</title></head><body><h1>\(error.status) \(status.reasonPhrase)</h1></body></html>\n")
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "Date", value: resources.httpDate())
        headers.add(name: "Server", value: shared.configuration.server.serverSoftware)
        headers.add(name: "Content-Type", value: "text/html")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if let retryAfter = error.retryAfter {
            headers.add(name: "Retry-After", value: String(retryAfter))
        }
        if error.closeConnection || closeAfterResponse {
            closeAfterResponse = true
            headers.add(name: "Connection", value: "close")
        }
        let responseVersion: HTTPVersion = version.major == 1 && version.minor == 0 ? .http1_0 : .http1_1
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: responseVersion, status: status, headers: headers))), promise: nil)
        if isHead { return 0 }
        let length = body.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        return length
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
