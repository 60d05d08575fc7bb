import NIOCore

/// What a response writer asks its connection to do.
enum FastCGIResponsePart: Sendable {
    case head(ByteBuffer)
    case body(ByteBuffer)
    case stderr(ByteBuffer)
    case end(appStatus: UInt32)
}

/// The Sendable handle through which a request's task reaches its connection handler: every call hops to
/// the channel's event loop, where the handler lives.
struct FastCGIWorkerRequestSink: Sendable {
    let handler: NIOLoopBound<FastCGIWorkerChannelHandler>
    let requestID: UInt16
    let token: UInt64

    /// Queues `part` and waits until it was handed to the channel (see ``FastCGIResponseWriter``).
    func send(_ part: FastCGIResponsePart) async throws {
        let promise = self.handler.eventLoop.makePromise(of: Void.self)
        // Always `execute`, never inline: the handler must not be re-entered from a callback it triggered.
        self.handler.eventLoop.execute { [handler, requestID, token] in
            handler.value.enqueue(part, requestID: requestID, token: token, promise: promise)
        }
        try await promise.futureResult.get()
    }

    /// The request's task ended, with `error` if the responder threw.
    func complete(error: (any Error)?) {
        self.handler.eventLoop.execute { [handler, requestID, token] in
            handler.value.requestTaskEnded(requestID: requestID, token: token, error: error)
        }
    }
}

/// Connects a request's body sequence to the handler's read gating.
struct FastCGIRequestBodyDelegate: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<FastCGIWorkerChannelHandler>
    let requestID: UInt16
    let token: UInt64

    func produceMore() {
        self.handler.eventLoop.execute { [handler, requestID, token] in
            handler.value.bodyBelowLowWatermark(requestID: requestID, token: token)
        }
    }

    func didTerminate() {
        self.handler.eventLoop.execute { [handler, requestID, token] in
            handler.value.bodyAbandoned(requestID: requestID, token: token)
        }
    }
}
