#if HTTP2
import Logging
import NIOCore
import NIOHTTP1
import ProxyHTTP2

/// The HTTP/2 side of one client connection (h2c with prior knowledge, or h2 after TLS).
///
/// A thin shell over ``HTTP2ServerSession``: bytes read go into the session, its events become
/// calls on one ``HTTP2StreamFrontend`` per stream, each driving one ``Exchange``. Output is
/// gathered: during a read burst every stream's frames wait for `channelReadComplete`, and
/// outside one (backend output) a stream's `flush()` writes what the session has.
///
/// The session is only drained into the socket while the channel is writable: beyond that,
/// response bytes stay in the streams' buffers, which makes the streams unwritable and so
/// pauses their backends.
final class HTTP2FrontendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let internalError = HTTP2ErrorCode.internalError
    static let enhanceYourCalm = HTTP2ErrorCode.enhanceYourCalm
    static let refusedStream = HTTP2ErrorCode.refusedStream

    let shared: ProxyContext
    let resources: LoopResources
    let timeouts: ConnectionTimeouts
    let connectionInfo: ConnectionInfo
    let session: HTTP2ServerSession
    private var context: ChannelHandlerContext?
    private var streams: [Int32: HTTP2StreamFrontend] = [:]
    /// Exchanges not yet ended: the connection's timeout clock stops while there are any.
    private var runningExchanges = 0
    /// Streams that got body bytes in this read burst: their backend writes are flushed at its end.
    private var bodyTouched: [HTTP2StreamFrontend] = []
    private var reading = false
    private var flushing = false
    private var flushAgain = false
    private var closing = false
    private var closed = false
    private var goAwayTimer: Scheduled<Void>?
    /// Streams the client reset while their exchange ran, less exchanges that ended normally.
    /// The backend may go on with the work of a reset stream (PHP-FPM runs the script to its
    /// end after the abort) while the stream limit no longer counts it: rapid reset
    /// (CVE-2023-44487). Beyond `maxConcurrentStreams`, GOAWAY(ENHANCE_YOUR_CALM) and close.
    private var abandonedExchanges = 0
    private let sendTimer: ConnectionSendTimer

    /// The delay between the shutdown notice (GOAWAY with the largest stream id) and the final
    /// GOAWAY, so that streams the client opened meanwhile are still served (RFC 9113 §6.8).
    static let goAwayDelay = TimeAmount.milliseconds(500)

    /// An HTTP/1.1 request that asked for `Upgrade: h2c`: it becomes stream 1 once this handler
    /// is in the pipeline (the 101 went out before).
    private var upgrade: (head: HTTPRequestHead, settings: [UInt8])?

    init(
        shared: ProxyContext, resources: LoopResources, timeouts: ConnectionTimeouts, connectionInfo: ConnectionInfo,
        upgrade: (head: HTTPRequestHead, settings: [UInt8])? = nil
    ) {
        self.upgrade = upgrade
        self.shared = shared
        self.sendTimer = ConnectionSendTimer(timeout: TimeAmount(shared.configuration.server.sendTimeout))
        self.resources = resources
        self.timeouts = timeouts
        self.connectionInfo = connectionInfo
        var configuration = HTTP2SessionConfiguration()
        configuration.maxHeaderListSize = shared.configuration.server.maxHeaderSize
        self.session = HTTP2ServerSession(configuration: configuration)
    }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    /// A stream was told it may not write because the streams together held too much: when
    /// the session drained below half of it, every stream is told it may write again.
    private var sessionWasFull = false

    func sessionHasRoom() -> Bool {
        if session.totalResponseBytes <= shared.configuration.server.connectionBuffer { return true }
        sessionWasFull = true
        return false
    }

    /// One allowance for held bytes over all streams, made when a stream first needs it.
    private var connectionBudget: BufferBudget?

    var bufferBudget: BufferBudget { resources.connectionBudget(cached: &connectionBudget) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let upgrade {
            self.upgrade = nil
            if session.upgrade(settings: upgrade.settings, headRequest: upgrade.head.method == .HEAD) {
                startStream(1, requestHead: upgrade.head, bodyWithoutLength: false)
                streams[1]?.receiveEnd()
            } else {
                shared.logger.debug("h2c upgrade refused by nghttp2", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
                closing = true
            }
        }
        // The server preface (SETTINGS) goes out at once, not only after the client spoke.
        if context.channel.isActive { flushOutput() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        goAwayTimer?.cancel()
        goAwayTimer = nil
        sendTimer.stop()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        flushOutput()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timeouts.bytesArrived()
        defer { timeouts.readHandled() }
        reading = true
        session.receive(unwrapInboundIn(data))
        processEvents()
        reading = false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !bodyTouched.isEmpty {
            for stream in bodyTouched { stream.exchange?.frontendReadComplete() }
            bodyTouched.removeAll(keepingCapacity: true)
        }
        flushOutput()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        sendTimer.writabilityChanged(isWritable: writable, channel: context.channel)
        if writable { flushOutput() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeouts.stop()
        closed = true
        goAwayTimer?.cancel()
        goAwayTimer = nil
        sendTimer.stop()
        let streams = self.streams
        self.streams = [:]
        for stream in streams.values { stream.clientWentAway() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        shared.logger.debug("client connection error: \(error)", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiesce(context: context)
    }

    /// Graceful stop: a shutdown notice now, the final GOAWAY (last stream processed) a moment
    /// later; streams in flight finish and the connection closes when none is left
    /// (`isFinished`). Idle, the final GOAWAY goes at once.
    private func quiesce(context: ChannelHandlerContext) {
        guard goAwayTimer == nil, !closing else { return }
        if streams.isEmpty && runningExchanges == 0 {
            session.goAway()
            flushOutput()
            return
        }
        session.sendShutdownNotice()
        flushOutput()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        goAwayTimer = context.eventLoop.scheduleTask(in: Self.goAwayDelay) {
            let handler = loopBound.value
            handler.session.goAway()
            handler.flushOutput()
        }
    }

    // MARK: Events

    private func processEvents() {
        while let event = session.nextEvent() {
            switch event {
            case .requestHead(let streamID, let head):
                startStream(streamID, head)
            case .requestBody(let streamID, let bytes):
                if let stream = streams[streamID] {
                    stream.receiveBody(bytes)
                    if reading, !stream.exchangeEnded { bodyTouched.append(stream) }
                } else {
                    session.consume(streamID: streamID, count: bytes.readableBytes)
                }
            case .requestEnd(let streamID):
                streams[streamID]?.receiveEnd()
            case .responseDrained(let streamID):
                streams[streamID]?.exchange?.frontendWritabilityChanged(isWritable: true)
            case .streamReset(let streamID, _):
                if let stream = streams[streamID], !stream.exchangeEnded {
                    abandonedExchanges += 1
                    if abandonedExchanges > Int(session.configuration.maxConcurrentStreams), !closing {
                        shared.logger.debug(
                            "HTTP/2 client reset too many running streams", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
                        session.goAway(errorCode: Self.enhanceYourCalm)
                        closing = true
                    }
                }
                streams[streamID]?.clientWentAway()
            case .streamClosed(let streamID, _, _):
                streams.removeValue(forKey: streamID)?.clientWentAway()
            case .connectionError(let error):
                shared.logger.debug("HTTP/2 connection error: \(error)", metadata: ["peer": "\(connectionInfo.remoteAddress)"])
                closing = true
            case .requestRejected, .goAway:
                // The session answered the first itself; after the second, the connection ends
                // once its streams are done (`isFinished`).
                break
            }
        }
    }

    private func startStream(_ streamID: Int32, _ head: HTTP2RequestHead) {
        // Requests read in the burst that ended the connection: refused, no backend work.
        if closing {
            session.resetStream(streamID, errorCode: Self.refusedStream)
            session.releaseStream(streamID)
            return
        }
        startStream(streamID, requestHead: Self.requestHead(head), bodyWithoutLength: !head.endStream && head.contentLength == nil)
    }

    private func startStream(_ streamID: Int32, requestHead: HTTPRequestHead, bodyWithoutLength: Bool) {
        let stream = HTTP2StreamFrontend(connection: self, streamID: streamID)
        streams[streamID] = stream
        if runningExchanges == 0 { timeouts.requestHeadReceived() }
        runningExchanges += 1
        let exchange = Exchange(head: requestHead, frontend: stream, bodyWithoutLength: bodyWithoutLength)
        stream.exchange = exchange
        exchange.start()
    }

    /// The HTTP/1-shaped head the exchange reads: `:authority` becomes `host` (HTTP_HOST), in
    /// place of any `host` field; cookie crumbs were joined by the session.
    static func requestHead(_ head: HTTP2RequestHead) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 1)
        if let authority = head.authority {
            headers.add(name: "host", value: authority)
        }
        for field in head.headers where !(head.authority != nil && field.name == "host") {
            headers.add(name: field.name, value: field.value)
        }
        return HTTPRequestHead(
            version: HTTPVersion(major: 2, minor: 0), method: HTTPMethod(rawValue: head.method), uri: head.path,
            headers: headers)
    }

    /// Called by a stream whose exchange ended (finished, aborted, or abandoned).
    func exchangeEnded(clientReset: Bool) {
        runningExchanges -= 1
        if !clientReset, abandonedExchanges > 0 { abandonedExchanges -= 1 }
        // The idle (keep-alive) clock runs only while no exchange does.
        if runningExchanges == 0, !closed { timeouts.exchangeFinished() }
    }

    // MARK: Output

    /// Writes what the session has to send, handling the events that draining causes. Inside a
    /// read burst it waits for `channelReadComplete`.
    func flushOutput() {
        guard let context, !closed else { return }
        if reading { return }
        if flushing {
            flushAgain = true
            return
        }
        flushing = true
        var wrote = false
        repeat {
            flushAgain = false
            if context.channel.isWritable {
                var buffer = context.channel.allocator.buffer(capacity: 0)
                session.flush(into: &buffer)
                if buffer.readableBytes > 0 {
                    context.write(wrapOutboundOut(buffer), promise: nil)
                    wrote = true
                }
            }
            processEvents()
        } while flushAgain
        flushing = false
        if wrote { context.flush() }
        if sessionWasFull, session.totalResponseBytes <= shared.configuration.server.connectionBuffer / 2 {
            sessionWasFull = false
            for stream in streams.values where stream.isWritable {
                stream.exchange?.frontendWritabilityChanged(isWritable: true)
            }
        }
        if closing || session.isFinished {
            closing = true
            closed = true
            // After what was written: a write of nothing completes behind it.
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete {
                [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension HTTP2FrontendHandler: Sendable {}
#endif
