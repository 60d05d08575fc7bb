/// Why a backend request failed. The front end maps these to 502 or 504.
public enum BackendError: Error, Sendable, Equatable, CustomStringConvertible {
    /// connect(2) failed (refused, no such socket, …).
    case connectFailed(String)
    /// No connection within `connect_timeout`.
    case connectTimeout
    /// No data from the backend for `read_timeout`.
    case readTimeout
    /// The backend closed the connection before END_REQUEST.
    case closedEarly
    /// Bytes that break the protocol: wrong request id, unexpected record, bad version.
    case protocolViolation(String)
    /// A stray record for a request that had already ended on this connection (END_REQUEST twice,
    /// output after the end): the connection is dropped, but the requests still on it had no part
    /// in it and may be retried like after an early close.
    case staleRecord(String)
    /// END_REQUEST with a protocol status other than REQUEST_COMPLETE.
    case rejected(protocolStatus: UInt8)

    /// True when the client should see 504 rather than 502.
    public var isTimeout: Bool {
        self == .readTimeout || self == .connectTimeout
    }

    /// The status the client gets: 504 for timeouts, 503 when the backend said it is
    /// overloaded (FCGI_OVERLOADED), 502 for everything else.
    public var httpStatus: Int {
        if isTimeout { return 504 }
        if self == .rejected(protocolStatus: 2) { return 503 }
        return 502
    }

    public var description: String {
        switch self {
        case .connectFailed(let why): return "connect failed: \(why)"
        case .connectTimeout: return "connect timed out"
        case .readTimeout: return "read timed out"
        case .closedEarly: return "backend closed the connection before END_REQUEST"
        case .protocolViolation(let why): return "protocol violation: \(why)"
        case .staleRecord(let why): return "stray record after its request ended: \(why)"
        case .rejected(let status): return "backend rejected the request (protocol status \(status))"
        }
    }
}
