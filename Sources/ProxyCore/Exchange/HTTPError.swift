/// An error that ends one exchange and knows the HTTP status the client gets for it.
///
/// `closeConnection` is set for errors after which the request framing can no longer be
/// trusted (smuggling-shaped input): the response is sent with `Connection: close`.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status code sent to the client (400, 404, 413, 431, 502, 504, …).
    public var status: Int
    /// A short reason for the log; never sent to the client beyond the status line's phrase.
    public var reason: String
    public var closeConnection: Bool
    /// Seconds for a `Retry-After` header (503 from a full or timed-out queue).
    public var retryAfter: Int?

    public init(_ status: Int, _ reason: String, closeConnection: Bool = false, retryAfter: Int? = nil) {
        self.status = status
        self.reason = reason
        self.closeConnection = closeConnection
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(reason)" }
}
