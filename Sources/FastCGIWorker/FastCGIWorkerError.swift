/// Errors the worker library reports to application code.
public enum FastCGIWorkerError: Error, Sendable, Equatable {
    /// ``FastCGIRequestBody/collect(upTo:)`` saw more bytes than allowed.
    case bodyTooLarge(limit: Int)
    /// The response head was already written; CGI allows one.
    case headAlreadyWritten
    /// The response was already finished, or the request is gone: aborted by the web server or its
    /// connection closed. The handler's task is cancelled in those cases too.
    case requestClosed
    /// A header name or value contains CR, LF or NUL (which would split the response), or a name is empty
    /// or contains a colon.
    case invalidHeader(name: String)
    /// The status is outside 100...999.
    case invalidStatus(Int)
    /// The server was started twice or after it stopped.
    case alreadyStarted
}
