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
        /// Where in the connection's byte stream this request's records may begin: the bytes
        /// received before the request started. A record that began earlier was sent before the
        /// backend could know of this request, whatever id it carries (see ``received(_:at:)``).
        public var firstByte = 0
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

    /// Coprime to 65535, so the ids run through all of 1...65535 before one repeats; its first
    /// multiples are far from ±1 and from each other, so the ids running together on one
    /// connection are never neighbours.
    public static let idStride = 40_499

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
    /// The first id is 1; each next one is ``idStride`` further on (modulo the 65535 ids),
    /// skipping those in use. Every id comes round again only after all the others: a late
    /// record for a finished request cannot land on the next one with the same id (what reusing
    /// id 1, as nginx does, would allow). And the next id is not the last one plus one: a
    /// backend that writes records for "its id + 1" (an off-by-one, or a guess) hits an id that
    /// is not running, which closes the connection, rather than another client's request.
    ///
    /// `receivedBytes`: how many bytes of the backend's stream had arrived when the request
    /// started, decoded or not. Records that began before that offset are not this request's.
    public mutating func startRequest(receivedBytes: Int = 0) -> UInt16 {
        precondition(hasFreeSlot, "request started on a full or closed FastCGI connection")
        var id = lastRequestID
        repeat {
            id = id == 0 ? 1 : UInt16((Int(id) - 1 + Self.idStride) % Int(UInt16.max) + 1)
        } while slots.contains(where: { $0.requestID == id })
        lastRequestID = id
        slots.append(RequestSlot(requestID: id, firstByte: receivedBytes))
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

    /// A record arrived from the backend. `offset`: where its first byte sits in the connection's
    /// byte stream (the default, "late", takes it as arrived after every running request began).
    ///
    /// On a multiplexed connection a request can start while a read is still being decoded (an
    /// END_REQUEST frees a slot, the next client takes the other free one): records for the new
    /// id that were already in that read were sent before the backend knew of the request, by a
    /// broken or hostile backend. Crediting them would hand one client another's response, so
    /// such a record is a violation and the connection closes.
    public mutating func received(_ record: FastCGIRecord, at offset: Int = .max) -> RecordAction {
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
        if offset < slot.firstByte {
            return fail(
                .protocolViolation(
                    "record type \(record.type) for request id \(record.requestID) arrived before that request was sent"
                )
            )
        }
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

    /// A read was decoded and `offset` is where the bytes still waiting to complete a record
    /// begin. They can only be a record of a request that was running when they began to
    /// arrive; with none (bytes behind the last END_REQUEST, or before every running request
    /// started) they are garbage, and waiting for the rest of that "record" would swallow the
    /// next answer: the connection closes.
    public mutating func partialRecordPending(at offset: Int) -> RecordAction? {
        guard state == .open, !slots.contains(where: { $0.firstByte <= offset }) else { return nil }
        return fail(.protocolViolation("bytes for no running request after the last record"))
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
