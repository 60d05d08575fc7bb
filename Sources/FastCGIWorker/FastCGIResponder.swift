/// The application code behind a worker in the Responder role: one call per request.
///
/// Calls run concurrently, one task per request, also for requests multiplexed on one connection.
/// The task is cancelled when the web server aborts the request (`FCGI_ABORT_REQUEST`) or the connection
/// closes; writes then throw.
public protocol FastCGIResponder: Sendable {
    /// Answers `request` through `writer`.
    ///
    /// Returning finishes the response if the responder did not (with a bare `200` head if nothing was
    /// written). Throwing before the head was written sends a `500`; after it, the response is cut short.
    /// Either way the request gets exactly one `FCGI_END_REQUEST`.
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws
}
