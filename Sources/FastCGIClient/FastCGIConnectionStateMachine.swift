import FastCGI

/// The life of one keep-alive (non-multiplexed) FastCGI connection, without I/O.
///
/// The handler feeds it events and performs the actions it returns; that keeps every
/// protocol decision (what is a violation, when the connection may be reused) testable alone.
public struct FastCGIConnectionStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        /// Connected, no request: any byte from the backend now is a violation.
        case idle
        /// `stdoutEnded`: the empty STDOUT record came; `tainted`: the backend broke the stream
        /// rules in a way that does not hurt this response but forbids reusing the connection.
        case running(requestID: UInt16, stdoutEnded: Bool, tainted: Bool)
        case closed
    }

    public enum RecordAction: Sendable, Equatable {
        case forwardStdout
        /// STDOUT after the empty record that ended the stream (PHP bug #72185): dropped, logged,
        /// and the connection is not reused.
        case discardLateStdout
        case forwardStderr
        /// An empty STDOUT/STDERR record (end of that stream): nothing to do.
        case ignore
        /// END_REQUEST with REQUEST_COMPLETE: the request is over, the connection is idle.
        case requestEnded(appStatus: UInt32)
        /// Fail the running request (if any) and close the connection.
        case failAndClose(BackendError)
    }

    public private(set) var state: State = .idle

    public init() {}

    public var isIdle: Bool { state == .idle }

    /// A new request takes the connection. Only valid when idle.
    public mutating func start(requestID: UInt16) {
        precondition(state == .idle, "request started on a busy or closed FastCGI connection")
        state = .running(requestID: requestID, stdoutEnded: false, tainted: false)
    }

    /// A record arrived from the backend.
    public mutating func received(_ record: FastCGIRecord) -> RecordAction {
        guard case .running(let id, let stdoutEnded, let tainted) = state else {
            // Bytes between requests mean the backend and we disagree on framing: never reuse.
            return fail(.protocolViolation("record type \(record.type) while idle"))
        }
        guard record.requestID == id else {
            return fail(.protocolViolation("record for request id \(record.requestID), expected \(id)"))
        }
        switch record.recordType {
        case .stdout:
            if stdoutEnded {
                if record.content.readableBytes == 0 { return .ignore }
                state = .running(requestID: id, stdoutEnded: true, tainted: true)
                return .discardLateStdout
            }
            if record.content.readableBytes == 0 {
                state = .running(requestID: id, stdoutEnded: true, tainted: tainted)
                return .ignore
            }
            return .forwardStdout
        case .stderr:
            return record.content.readableBytes == 0 ? .ignore : .forwardStderr
        case .endRequest:
            guard let body = try? FastCGIEndRequestBody(parsing: record.content) else {
                return fail(.protocolViolation("malformed END_REQUEST"))
            }
            guard body.protocolStatus == FastCGIProtocolStatus.requestComplete.rawValue else {
                return fail(.rejected(protocolStatus: body.protocolStatus))
            }
            state = tainted ? .closed : .idle
            return .requestEnded(appStatus: body.appStatus)
        default:
            return fail(.protocolViolation("unexpected record type \(record.type)"))
        }
    }

    /// The read timer fired: only a running request can time out.
    public mutating func readTimedOut() -> RecordAction? {
        guard case .running = state else { return nil }
        return fail(.readTimeout)
    }

    /// The channel went inactive. Returns the error to report if a request was running.
    public mutating func closed() -> BackendError? {
        defer { state = .closed }
        if case .running = state { return .closedEarly }
        return nil
    }

    /// The decoder threw (bad version, oversized record).
    public mutating func decodingFailed(_ error: any Error) -> RecordAction {
        fail(.protocolViolation("\(error)"))
    }

    private mutating func fail(_ error: BackendError) -> RecordAction {
        state = .closed
        return .failAndClose(error)
    }
}
