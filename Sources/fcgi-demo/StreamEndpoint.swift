import FastCGIWorker
import Logging

/// `GET /stream?n=N`: Server-Sent Events, one per second, N of them.
///
/// Each `write` is flushed to the web server before it returns; `X-Accel-Buffering: no` asks nginx not to
/// hold the events back either. When the client goes away the web server aborts the request: the
/// task is cancelled, so the sleep (or the next write) throws and the loop ends.
struct StreamEndpoint: FastCGIResponder {
    static let range = 1...3600
    let logger: Logger

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        guard let count = request.integerQuery("n", default: 5, in: Self.range) else {
            try await writer.badParameter("n", Self.range)
            return
        }
        try await writer.writeHead(
            status: 200,
            headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]
        )
        var sent = 0
        do {
            for event in 1...count {
                if event > 1 {
                    try await Task.sleep(for: .seconds(1))
                }
                try await writer.write("id: \(event)\ndata: event \(event) of \(count)\n\n")
                sent = event
            }
        } catch is CancellationError {
            self.logger.info("stream cancelled after \(sent) events")
        } catch FastCGIWorkerError.requestClosed {
            self.logger.info("stream cancelled after \(sent) events")
        }
    }
}
