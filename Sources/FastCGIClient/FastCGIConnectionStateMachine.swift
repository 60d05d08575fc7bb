import FastCGI
import NIOCore

/// The life of one FastCGI connection and the requests on it, without I/O.
///
/// A connection has a capacity: 1 for a plain keep-alive connection, N for a multiplexed one
/// (FCGI_MPXS_CONNS). The handler feeds it events and performs the actions it returns; every
/// protocol decision (what is a violation, when a request id is free again, when the connection
/// may be reused) is made here and tested alone.
public struct FastCGIConnectionStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        case open
        case closed
    }

    /// One request id in use on this connection.
    public struct RequestSlot: Sendable, Equatable {
        public var requestID: UInt16
        /// The empty STDOUT record came: more STDOUT is a backend bug (PHP #72185).
        public var stdoutEnded = false
        /// ABORT_REQUEST was sent: its records are dropped, its id stays reserved until
        /// END_REQUEST (FastCGI 1.0 §5.4).
        public var aborted = false
    }

    public enum RecordAction: Sendable, Equatable {
        case forwardStdout(requestID: UInt16)
        case forwardStderr(requestID: UInt16)
        /// Nothing to do (an empty stream record, or a record of an aborted request).
        case ignore
        /// STDOUT after the empty record that ended the stream: dropped, logged, and the
        /// connection is not reused afterwards.
        case discardLateStdout(requestID: UInt16)
        /// END_REQUEST with REQUEST_COMPLETE; the id is free again. `aborted` tells that nobody
        /// waits for it any more.
        case requestEnded(requestID: UInt16, appStatus: UInt32, aborted: Bool)
        /// END_REQUEST with CANT_MPX_CONN, OVERLOADED or UNKNOWN_ROLE: the request was not
        /// served, the connection stays usable.
        case requestRejected(requestID: UInt16, protocolStatus: UInt8)
        /// A management record (request id 0): GET_VALUES_RESULT or UNKNOWN_TYPE.
        case management
        /// Fail every request on the connection and close it.
        case failAndClose(BackendError)
    }

    public private(set) var state: State = .open
    /// Requests in flight, in start order. An array, not a dictionary: capacity is 1 for most
    /// connections and small for the rest, and its storage is reused from request to request.
    public private(set) var slots: [RequestSlot] = []
    /// How many requests may run at once.
    public private(set) var capacity: Int
    /// Set when the backend broke a rule that spares the current response but makes the
    /// connection unfit for another request.
    public private(set) var tainted = false
    private var lastRequestID: UInt16 = 0
    /// The last request that ended here: a record for it now is a stray, not a framing mix-up.
    private var lastEndedRequestID: UInt16?

    public init(capacity: Int = 1) {
        precondition(capacity >= 1)
        self.capacity = capacity
        slots.reserveCapacity(capacity)
    }

    /// True when a new request may start now.
    public var hasFreeSlot: Bool { state == .open && !tainted && slots.count < capacity }
    /// True when nothing runs and the connection may be reused.
    public var isIdle: Bool { state == .open && !tainted && slots.isEmpty }
    public var activeCount: Int { slots.count }

    /// No new requests from now on (the caller closes the connection once it is empty).
    public mutating func retire() {
        tainted = true
    }

    /// The backend told us (GET_VALUES, CANT_MPX_CONN) how many requests it takes at once.
    public mutating func setCapacity(_ capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Takes a free request id and marks it in use. Only valid with a free slot.
    ///
    /// Ids count up and skip those in use, so a late record for a finished request cannot land
    /// on the next one with the same id (what reusing id 1, as nginx does, would allow).
    public mutating func startRequest() -> UInt16 {
        precondition(hasFreeSlot, "request started on a full or closed FastCGI connection")
        var id = lastRequestID
        repeat {
            id = id == UInt16.max ? 1 : id + 1
        } while slots.contains(where: { $0.requestID == id })
        lastRequestID = id
        slots.append(RequestSlot(requestID: id))
        return id
    }

    /// The client went away or timed out. Returns true when an ABORT_REQUEST should be sent
    /// (the id stays reserved until END_REQUEST); false when the request is unknown.
    public mutating func abort(requestID: UInt16) -> Bool {
        guard let index = slots.firstIndex(where: { $0.requestID == requestID }), !slots[index].aborted else {
            return false
        }
        slots[index].aborted = true
        return true
    }

    /// A record arrived from the backend.
    public mutating func received(_ record: FastCGIRecord) -> RecordAction {
        guard state == .open else { return .ignore }
        if record.requestID == FastCGIConstants.managementRequestID {
            switch record.recordType {
            case .getValuesResult, .unknownType:
                return .management
            default:
                return fail(.protocolViolation("record type \(record.type) on the management id"))
            }
        }
        guard let index = slots.firstIndex(where: { $0.requestID == record.requestID }) else {
            if record.requestID == lastEndedRequestID {
                return fail(.staleRecord("record type \(record.type) for request id \(record.requestID), which had ended"))
            }
            // Bytes for no running request: the backend and we disagree on framing.
            return fail(.protocolViolation("record type \(record.type) for request id \(record.requestID), which is not running"))
        }
        let slot = slots[index]
        switch record.recordType {
        case .stdout:
            if slot.aborted { return .ignore }
            if slot.stdoutEnded {
                if record.content.readableBytes == 0 { return .ignore }
                tainted = true
                return .discardLateStdout(requestID: slot.requestID)
            }
            if record.content.readableBytes == 0 {
                slots[index].stdoutEnded = true
                return .ignore
            }
            return .forwardStdout(requestID: slot.requestID)
        case .stderr:
            if slot.aborted || record.content.readableBytes == 0 { return .ignore }
            return .forwardStderr(requestID: slot.requestID)
        case .endRequest:
            guard let body = try? FastCGIEndRequestBody(parsing: record.content) else {
                return fail(.protocolViolation("malformed END_REQUEST"))
            }
            slots.remove(at: index)
            lastEndedRequestID = slot.requestID
            if body.protocolStatus != FastCGIProtocolStatus.requestComplete.rawValue, !slot.aborted {
                return .requestRejected(requestID: slot.requestID, protocolStatus: body.protocolStatus)
            }
            return .requestEnded(requestID: slot.requestID, appStatus: body.appStatus, aborted: slot.aborted)
        default:
            return fail(.protocolViolation("unexpected record type \(record.type)"))
        }
    }

    /// The request's read timer fired: on a connection of its own the connection closes (PHP-FPM
    /// only notices a closed socket); on a shared one the request is aborted.
    public mutating func readTimedOut(requestID: UInt16) -> RecordAction? {
        guard state == .open, slots.contains(where: { $0.requestID == requestID }) else { return nil }
        if capacity == 1 {
            return fail(.readTimeout)
        }
        return nil
    }

    /// The channel went inactive. Returns the ids of requests that were still waiting.
    public mutating func closed() -> [UInt16] {
        state = .closed
        let waiting = slots.filter { !$0.aborted }.map(\.requestID)
        slots.removeAll()
        return waiting
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
