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
    /// Fields the status needs besides the page's own: `Location` of a 301, `Allow` of a 405.
    public var fields: [Field]

    /// One response field.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(
        _ status: Int, _ reason: String, closeConnection: Bool = false, retryAfter: Int? = nil, fields: [Field] = []
    ) {
        self.status = status
        self.reason = reason
        self.closeConnection = closeConnection
        self.retryAfter = retryAfter
        self.fields = fields
    }

    public var description: String { "\(status) \(reason)" }
}
