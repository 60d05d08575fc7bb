import FastCGIWorker

/// `GET /slow?ms=N`: answers after N milliseconds. If the request is aborted meanwhile, the sleep throws
/// `CancellationError` and no answer is written.
struct SlowEndpoint: FastCGIResponder {
    static let range = 0...600_000

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        guard let milliseconds = request.integerQuery("ms", default: 1000, in: Self.range) else {
            try await writer.badParameter("ms", Self.range)
            return
        }
        try await Task.sleep(for: .milliseconds(milliseconds))
        try await writer.writeText(status: 200, "slept \(milliseconds) ms\n")
    }
}
