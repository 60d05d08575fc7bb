import FastCGI
import Logging
import NIOCore

/// The last handler of a worker connection: a shell around ``FastCGIWorkerConnectionStateMachine`` that
/// starts one task per request, streams bodies to them and writes their responses.
///
/// Backpressure, both ways:
/// - In: each request's body is a `NIOThrowingAsyncSequenceProducer`. When one request's buffer passes its
///   high watermark the handler stops reading the socket (`read()` is withheld) until that request drains to
///   its low watermark. FastCGI has no per-request flow control, so this also pauses the other requests on a
///   multiplexed connection: head-of-line blocking traded for bounded memory.
/// - Out: writers queue their parts here; the handler hands the channel one record at a time, taking
///   requests in turn, only while the channel is writable, and completes a writer's call once its part is
///   handed over. A writer thus waits while the web server is not reading, and requests share the
///   connection fairly.
///
/// Loop-bound: all methods run on the channel's event loop.
final class FastCGIWorkerChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct PendingOutput {
        enum Part {
            case stdout(ByteBuffer)
            case stderr(ByteBuffer)
            case end(appStatus: UInt32)
        }
        var part: Part
        var promise: EventLoopPromise<Void>?
    }

    private struct RequestSlot {
        var token: UInt64
        var task: Task<Void, Never>?
        var bodySource: FastCGIRequestBody.Producer.Source?
        var headWritten = false
        var endQueued = false
        var output: [PendingOutput] = []
    }

    /// Pieces smaller than this are copied next to their header; larger ones go out as slices (gathered
    /// writes), so big responses are not copied.
    private static let copyThreshold = 1024

    private var stateMachine: FastCGIWorkerConnectionStateMachine
    private let responders: [FastCGIRole: any FastCGIResponder]
    private let bodyStrategy: NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark
    private let logger: Logger
    private var context: ChannelHandlerContext?

    private var requests: [UInt16: RequestSlot] = [:]
    /// Requests whose body buffer is above its high watermark; reading waits while this is not empty.
    private var pausedBodies: Set<UInt16> = []
    private var pendingRead = false
    /// Requests with queued output, in the order they get their next turn.
    private var writeTurns: [UInt16] = []
    private var isWritingOutput = false

    init(
        limits: FastCGIWorkerConnectionStateMachine.Limits,
        responders: [FastCGIRole: any FastCGIResponder],
        bodyLowWatermark: Int,
        bodyHighWatermark: Int,
        logger: Logger
    ) {
        self.stateMachine = FastCGIWorkerConnectionStateMachine(limits: limits)
        self.responders = responders
        self.bodyStrategy = .init(lowWatermark: bodyLowWatermark, highWatermark: bodyHighWatermark)
        self.logger = logger
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = self.unwrapInboundIn(data)
        switch self.stateMachine.receivedRecord(record) {
        case .none:
            break
        case .reply(let buffer, let close):
            self.writeImmediately(buffer, thenClose: close)
        case .startRequest(let head):
            self.startRequest(head, context: context)
        case .deliverBody(let requestID, let token, let chunk):
            self.deliverBody(chunk, requestID: requestID, token: token)
        case .finishBody(let requestID, let token):
            guard var slot = self.requests[requestID], slot.token == token else { return }
            slot.bodySource?.finish()
            slot.bodySource = nil
            self.requests[requestID] = slot
            self.unpauseBody(requestID)
        case .abort(let requestID, _, let reply, let close):
            self.cancelRequest(requestID, bodyError: CancellationError())
            self.writeImmediately(reply, thenClose: close)
        case .closeConnection(let violation):
            self.logger.warning("closing FastCGI connection: protocol violation", metadata: ["violation": "\(violation)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for request in self.stateMachine.connectionClosed() {
            self.cancelRequest(request.requestID, bodyError: FastCGIWorkerError.requestClosed)
        }
        // Requests the state machine already ended may still have queued output; fail their writers too.
        for requestID in Array(self.requests.keys) {
            self.cancelRequest(requestID, bodyError: FastCGIWorkerError.requestClosed)
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.writeOutput()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Decoder errors land here: the input is malformed, so only this connection goes.
        self.logger.warning("closing FastCGI connection", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.pausedBodies.isEmpty {
            context.read()
        } else {
            self.pendingRead = true
        }
    }

    // MARK: - Calls from request tasks (via FastCGIWorkerRequestSink / FastCGIRequestBodyDelegate)

    /// Queues a writer's part; `promise` completes once it is handed to the channel.
    func enqueue(_ part: FastCGIResponsePart, requestID: UInt16, token: UInt64, promise: EventLoopPromise<Void>?) {
        guard var slot = self.requests[requestID], slot.token == token, !slot.endQueued else {
            promise?.fail(FastCGIWorkerError.requestClosed)
            return
        }
        let wasIdle = slot.output.isEmpty
        switch part {
        case .head(let head):
            guard !slot.headWritten else {
                promise?.fail(FastCGIWorkerError.headAlreadyWritten)
                return
            }
            slot.headWritten = true
            slot.output.append(PendingOutput(part: .stdout(head), promise: promise))
        case .body(let chunk):
            Self.ensureHead(&slot)
            slot.output.append(PendingOutput(part: .stdout(chunk), promise: promise))
        case .stderr(let chunk):
            slot.output.append(PendingOutput(part: .stderr(chunk), promise: promise))
        case .end(let appStatus):
            Self.ensureHead(&slot)
            slot.endQueued = true
            slot.output.append(PendingOutput(part: .end(appStatus: appStatus), promise: promise))
        }
        self.requests[requestID] = slot
        if wasIdle {
            self.writeTurns.append(requestID)
        }
        self.writeOutput()
    }

    /// The responder returned or threw: finish the response if it did not.
    func requestTaskEnded(requestID: UInt16, token: UInt64, error: (any Error)?) {
        guard let slot = self.requests[requestID], slot.token == token, !slot.endQueued else { return }
        guard let error else {
            self.enqueue(.end(appStatus: 0), requestID: requestID, token: token, promise: nil)
            return
        }
        self.logger.error("FastCGI handler failed", metadata: ["requestID": "\(requestID)", "error": "\(error)"])
        if !slot.headWritten {
            self.enqueue(.head(CGIResponseHead.internalServerError), requestID: requestID, token: token, promise: nil)
        }
        self.enqueue(.end(appStatus: 1), requestID: requestID, token: token, promise: nil)
    }

    /// A request's body consumer caught up: reading may resume.
    func bodyBelowLowWatermark(requestID: UInt16, token: UInt64) {
        guard self.requests[requestID]?.token == token else { return }
        self.unpauseBody(requestID)
    }

    /// A request's body consumer went away: the rest of its body is dropped.
    func bodyAbandoned(requestID: UInt16, token: UInt64) {
        guard self.requests[requestID]?.token == token else { return }
        self.requests[requestID]?.bodySource = nil
        self.unpauseBody(requestID)
    }

    // MARK: - Graceful stop

    /// Refuses new requests and closes the connection once the running ones have ended.
    func startDraining() {
        if self.stateMachine.startDraining() {
            self.closeAfterPendingWrites()
        }
    }

    // MARK: - Requests

    private func startRequest(_ head: FastCGIWorkerConnectionStateMachine.RequestHead, context: ChannelHandlerContext) {
        guard let responder = self.responders[head.role] else {
            // The state machine only starts roles listed in its limits, which come from `responders`.
            preconditionFailure("no responder for role \(head.role)")
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        var slot = RequestSlot(token: head.token)
        let body: FastCGIRequestBody
        if head.bodyComplete {
            body = FastCGIRequestBody()
        } else {
            let producer = FastCGIRequestBody.Producer.makeSequence(
                backPressureStrategy: self.bodyStrategy,
                finishOnDeinit: false,
                delegate: FastCGIRequestBodyDelegate(handler: loopBound, requestID: head.requestID, token: head.token)
            )
            slot.bodySource = producer.source
            body = FastCGIRequestBody(producer: producer.sequence)
        }
        let request = FastCGIRequest(requestID: head.requestID, role: head.role, params: head.params, body: body)
        let sink = FastCGIWorkerRequestSink(handler: loopBound, requestID: head.requestID, token: head.token)
        let writer = FastCGIResponseWriter(sink: sink)
        // The task reports back with `execute`, which runs after this method returns, so storing the task
        // below cannot race with its completion.
        slot.task = Task {
            do {
                try await responder.respond(to: request, writer: writer)
                sink.complete(error: nil)
            } catch {
                sink.complete(error: error)
            }
        }
        self.requests[head.requestID] = slot
    }

    private func deliverBody(_ chunk: ByteBuffer, requestID: UInt16, token: UInt64) {
        guard let slot = self.requests[requestID], slot.token == token, let source = slot.bodySource else {
            // The handler stopped reading its body (or finished): the rest is dropped.
            return
        }
        switch source.yield(chunk) {
        case .produceMore:
            break
        case .stopProducing:
            self.pausedBodies.insert(requestID)
        case .dropped:
            self.requests[requestID]?.bodySource = nil
        }
    }

    /// Ends a request without a response: cancels its task, ends its body with `bodyError`, and fails
    /// its waiting writers.
    private func cancelRequest(_ requestID: UInt16, bodyError: any Error) {
        guard let slot = self.requests.removeValue(forKey: requestID) else { return }
        slot.task?.cancel()
        slot.bodySource?.finish(bodyError)
        for output in slot.output {
            output.promise?.fail(FastCGIWorkerError.requestClosed)
        }
        self.writeTurns.removeAll { $0 == requestID }
        self.unpauseBody(requestID)
    }

    private func unpauseBody(_ requestID: UInt16) {
        self.pausedBodies.remove(requestID)
        if self.pendingRead, self.pausedBodies.isEmpty, let context = self.context {
            self.pendingRead = false
            context.read()
        }
    }

    private static func ensureHead(_ slot: inout RequestSlot) {
        if !slot.headWritten {
            slot.headWritten = true
            slot.output.append(PendingOutput(part: .stdout(CGIResponseHead.defaultHead), promise: nil))
        }
    }

    // MARK: - Output

    /// Hands queued output to the channel, one record per request per turn, while the channel is writable.
    private func writeOutput() {
        guard !self.isWritingOutput, let context = self.context else { return }
        // Writes and flushes fire writability events synchronously, which call back in here.
        self.isWritingOutput = true
        defer { self.isWritingOutput = false }
        var closeWhenWritten = false
        // A flush that drains the socket buffer makes the channel writable again from inside this method,
        // where the event is ignored; so after each flush look again.
        while context.channel.isWritable, !self.writeTurns.isEmpty, !closeWhenWritten {
            while context.channel.isWritable, !self.writeTurns.isEmpty {
                let requestID = self.writeTurns.removeFirst()
                guard var slot = self.requests[requestID], !slot.output.isEmpty else { continue }
                if self.writeNextRecord(of: &slot, requestID: requestID, context: context, close: &closeWhenWritten) {
                    self.requests[requestID] = slot
                    if !slot.output.isEmpty {
                        self.writeTurns.append(requestID)
                    }
                } else {
                    self.endRequest(requestID, slot: slot)
                }
            }
            if closeWhenWritten {
                self.closeAfterPendingWrites()
            } else {
                context.flush()
            }
        }
    }

    /// Writes one record of the slot's first queued part; returns false once the request has ended.
    private func writeNextRecord(
        of slot: inout RequestSlot,
        requestID: UInt16,
        context: ChannelHandlerContext,
        close: inout Bool
    ) -> Bool {
        var output = slot.output.removeFirst()
        switch output.part {
        case .stdout(var data):
            self.writeRecord(type: .stdout, requestID: requestID, content: &data, context: context)
            output.part = .stdout(data)
            if data.readableBytes > 0 {
                slot.output.insert(output, at: 0)
            } else {
                output.promise?.succeed()
            }
            return true
        case .stderr(var data):
            self.writeRecord(type: .stderr, requestID: requestID, content: &data, context: context)
            output.part = .stderr(data)
            if data.readableBytes > 0 {
                slot.output.insert(output, at: 0)
            } else {
                output.promise?.succeed()
            }
            return true
        case .end(let appStatus):
            var records = ByteBuffer()
            records.writeFastCGIStreamEnd(type: .stdout, requestID: requestID)
            let finish = self.stateMachine.requestFinished(requestID: requestID, token: slot.token, appStatus: appStatus)
            if case .writeEndRequest(let endRequest, let closeAfterwards) = finish {
                records.writeImmutableBuffer(endRequest)
                close = close || closeAfterwards
            }
            context.write(self.wrapOutboundOut(records), promise: nil)
            output.promise?.succeed()
            return false
        }
    }

    /// Forgets a request whose END_REQUEST was written; a task still running can no longer write.
    private func endRequest(_ requestID: UInt16, slot: RequestSlot) {
        self.requests[requestID] = nil
        // The handler may have returned without reading its whole body: the rest is dropped.
        slot.bodySource?.finish()
        self.unpauseBody(requestID)
    }

    /// Writes the next record (at most 65528 content bytes) of a stream and consumes it from `content`.
    private func writeRecord(
        type: FastCGIRecordType,
        requestID: UInt16,
        content: inout ByteBuffer,
        context: ChannelHandlerContext
    ) {
        let length = min(content.readableBytes, FastCGIConstants.maxAlignedContentLength)
        let piece = content.readSlice(length: length)!
        if length < Self.copyThreshold {
            var record = ByteBuffer()
            record.writeFastCGIStream(type: type, requestID: requestID, content: piece)
            context.write(self.wrapOutboundOut(record), promise: nil)
            return
        }
        let padding = (8 - length % 8) % 8
        var header = context.channel.allocator.buffer(capacity: FastCGIConstants.headerLength)
        header.writeFastCGIRecordHeader(type: type, requestID: requestID, contentLength: length, paddingLength: padding)
        context.write(self.wrapOutboundOut(header), promise: nil)
        context.write(self.wrapOutboundOut(piece), promise: nil)
        if padding > 0 {
            context.write(self.wrapOutboundOut(ByteBuffer(repeating: 0, count: padding)), promise: nil)
        }
    }

    /// Writes records outside the turn order (management answers, END_REQUEST of refused or aborted
    /// requests: all tiny), optionally closing once they are out.
    private func writeImmediately(_ buffer: ByteBuffer, thenClose: Bool) {
        guard let context = self.context else { return }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
        if thenClose {
            self.closeAfterPendingWrites()
        } else {
            context.flush()
        }
    }

    /// Closes once everything written so far reached the socket: `close` alone would drop it.
    private func closeAfterPendingWrites() {
        guard let context = self.context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer()), promise: promise)
        let channel = context.channel
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension FastCGIWorkerChannelHandler: Sendable {}
