import FastCGI
import NIOCore

/// The protocol logic of one worker connection, free of I/O: which request IDs are active and in which
/// phase, whether the connection stays open, and what to answer management records with. The channel
/// handler feeds it events and carries out the actions it returns.
struct FastCGIWorkerConnectionStateMachine {
    /// What the web server may do on this connection.
    struct Limits: Sendable, Equatable {
        /// Concurrent requests on this connection; more are refused with `FCGI_OVERLOADED`
        /// (or `FCGI_CANT_MPX_CONN` when this is 1).
        var maxRequests: Int
        /// Upper bound on one request's PARAMS stream, which is buffered whole before the handler starts.
        var maxParamsBytes: Int
        /// Roles the application implements; others get `FCGI_UNKNOWN_ROLE`.
        var roles: Set<FastCGIRole>
        /// The answers to `FCGI_GET_VALUES`, by variable name.
        var values: [String: String]
    }

    /// A request whose PARAMS are complete: the handler starts one task for it.
    struct RequestHead: Equatable {
        var requestID: UInt16
        /// Distinguishes this request from a later one that reuses its ID, so late calls from a finished
        /// task cannot touch the new request.
        var token: UInt64
        var role: FastCGIRole
        var params: FastCGIParams
        /// True when no body will follow (the Authorizer role has none).
        var bodyComplete: Bool
    }

    /// Why a connection is closed because of what the web server sent.
    enum ProtocolViolation: Error, Equatable {
        case malformedRecord(FastCGIProtocolError)
        case beginForActiveRequest(UInt16)
        case recordForManagementID(UInt8)
        case paramsAfterParamsEnded(UInt16)
        case stdinBeforeParamsEnded(UInt16)
        case stdinAfterStdinEnded(UInt16)
        case paramsTooLarge(UInt16)
        case unexpectedRecordType(UInt8)
    }

    /// What to do after a record.
    enum RecordAction: Equatable {
        case none
        /// Write these records (management answers, immediate END_REQUEST); then close if asked.
        case reply(ByteBuffer, close: Bool)
        case startRequest(RequestHead)
        case deliverBody(requestID: UInt16, token: UInt64, ByteBuffer)
        case finishBody(requestID: UInt16, token: UInt64)
        /// Cancel the request's task, drop its pending output, write `reply` (its END_REQUEST).
        case abort(requestID: UInt16, token: UInt64, reply: ByteBuffer, close: Bool)
        case closeConnection(ProtocolViolation)
    }

    /// What to do once a request's handler completed.
    enum FinishAction: Equatable {
        /// The request was no longer active (aborted meanwhile): write nothing.
        case none
        case writeEndRequest(ByteBuffer, close: Bool)
    }

    private enum Phase {
        /// Buffering PARAMS content: pairs may straddle records.
        case params(ByteBuffer)
        /// The handler runs; `inputOpen` while STDIN has not ended.
        case running(inputOpen: Bool)
    }

    private struct Request {
        var token: UInt64
        var role: FastCGIRole
        var keepConnection: Bool
        var phase: Phase
    }

    private let limits: Limits
    private var requests: [UInt16: Request] = [:]
    private var nextToken: UInt64 = 0
    /// Set by a request without `FCGI_KEEP_CONN` and by graceful stop: the connection closes once idle.
    private var closeWhenIdle = false
    /// Graceful stop: new requests are refused.
    private var draining = false
    private var isClosed = false

    init(limits: Limits) {
        self.limits = limits
    }

    /// IDs of the active requests (those that have not been sent END_REQUEST).
    var activeRequestIDs: Set<UInt16> { Set(self.requests.keys) }

    mutating func receivedRecord(_ record: FastCGIRecord) -> RecordAction {
        guard !self.isClosed else { return .none }
        guard let type = record.recordType else {
            return .reply(Self.unknownType(record.type), close: false)
        }
        switch type {
        case .getValues:
            return self.receivedGetValues(record)
        case .beginRequest:
            return self.receivedBeginRequest(record)
        case .abortRequest:
            return self.receivedAbortRequest(record)
        case .params:
            return self.receivedParams(record)
        case .stdin:
            return self.receivedStdin(record)
        case .data:
            // Only the Filter role reads FCGI_DATA, and this worker does not implement it.
            return .none
        case .endRequest, .stdout, .stderr, .getValuesResult, .unknownType:
            // Only applications send these; a web server sending one is confused about the protocol.
            return self.close(.unexpectedRecordType(record.type))
        }
    }

    /// The handler of request `requestID` finished writing (or failed): END_REQUEST it.
    mutating func requestFinished(requestID: UInt16, token: UInt64, appStatus: UInt32) -> FinishAction {
        guard !self.isClosed, let request = self.requests[requestID], request.token == token else {
            return .none
        }
        self.requests[requestID] = nil
        var buffer = ByteBuffer()
        buffer.writeFastCGIEndRequest(requestID: requestID, appStatus: appStatus, protocolStatus: .requestComplete)
        return .writeEndRequest(buffer, close: self.noteRequestEnded(keepConnection: request.keepConnection))
    }

    /// Graceful stop: refuse new requests and close once the running ones ended. Returns whether to close now.
    mutating func startDraining() -> Bool {
        guard !self.isClosed else { return false }
        self.draining = true
        self.closeWhenIdle = true
        return self.closeIfIdle()
    }

    /// The connection closed: the running requests' handlers must be cancelled.
    mutating func connectionClosed() -> [(requestID: UInt16, token: UInt64)] {
        self.isClosed = true
        let running = self.requests.compactMap { id, request -> (requestID: UInt16, token: UInt64)? in
            if case .running = request.phase { return (id, request.token) }
            return nil
        }
        self.requests = [:]
        return running
    }

    // MARK: - Records

    private mutating func receivedGetValues(_ record: FastCGIRecord) -> RecordAction {
        guard record.requestID == FastCGIConstants.managementRequestID else {
            return self.close(.unexpectedRecordType(record.type))
        }
        let names: [(name: ByteBuffer, value: ByteBuffer)]
        do {
            names = try FastCGINameValuePairs.parse(record.content)
        } catch {
            return self.close(.malformedRecord(error))
        }
        // The spec has the application answer only the variables it knows and drop the rest.
        let answers = names.compactMap { pair -> (name: String, value: String)? in
            let name = String(buffer: pair.name)
            return self.limits.values[name].map { (name, $0) }
        }
        var buffer = ByteBuffer()
        buffer.writeFastCGIGetValuesResult(answers)
        return .reply(buffer, close: false)
    }

    private mutating func receivedBeginRequest(_ record: FastCGIRecord) -> RecordAction {
        let id = record.requestID
        guard id != FastCGIConstants.managementRequestID else {
            return self.close(.recordForManagementID(record.type))
        }
        let body: FastCGIBeginRequestBody
        do {
            body = try FastCGIBeginRequestBody(parsing: record.content)
        } catch {
            return self.close(.malformedRecord(error))
        }
        guard self.requests[id] == nil else {
            return self.close(.beginForActiveRequest(id))
        }
        guard let role = FastCGIRole(rawValue: body.role), self.limits.roles.contains(role) else {
            return self.refuse(id, status: .unknownRole, keepConnection: body.keepConnection)
        }
        guard !self.draining else {
            return self.refuse(id, status: .overloaded, keepConnection: body.keepConnection)
        }
        guard self.requests.count < self.limits.maxRequests else {
            let status: FastCGIProtocolStatus = self.limits.maxRequests == 1 ? .cantMultiplexConnection : .overloaded
            return self.refuse(id, status: status, keepConnection: body.keepConnection)
        }
        self.nextToken += 1
        self.requests[id] = Request(
            token: self.nextToken,
            role: role,
            keepConnection: body.keepConnection,
            phase: .params(ByteBuffer())
        )
        return .none
    }

    private mutating func receivedAbortRequest(_ record: FastCGIRecord) -> RecordAction {
        let id = record.requestID
        guard let request = self.requests.removeValue(forKey: id) else {
            // The spec has records for inactive IDs ignored; the request may just have ended.
            return .none
        }
        var reply = ByteBuffer()
        reply.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        let close = self.noteRequestEnded(keepConnection: request.keepConnection)
        switch request.phase {
        case .params:
            return .reply(reply, close: close)
        case .running:
            return .abort(requestID: id, token: request.token, reply: reply, close: close)
        }
    }

    private mutating func receivedParams(_ record: FastCGIRecord) -> RecordAction {
        let id = record.requestID
        guard var request = self.requests[id] else {
            return id == FastCGIConstants.managementRequestID ? self.close(.recordForManagementID(record.type)) : .none
        }
        guard case .params(var buffer) = request.phase else {
            return self.close(.paramsAfterParamsEnded(id))
        }
        if record.content.readableBytes > 0 {
            guard buffer.readableBytes + record.content.readableBytes <= self.limits.maxParamsBytes else {
                return self.close(.paramsTooLarge(id))
            }
            // Drop the stored copy first so the append below does not copy the buffer.
            request.phase = .running(inputOpen: true)
            buffer.writeImmutableBuffer(record.content)
            request.phase = .params(buffer)
            self.requests[id] = request
            return .none
        }
        let pairs: [(name: ByteBuffer, value: ByteBuffer)]
        do {
            pairs = try FastCGINameValuePairs.parse(buffer)
        } catch {
            return self.close(.malformedRecord(error))
        }
        let params = FastCGIParams(pairs.map { (String(buffer: $0.name), String(buffer: $0.value)) })
        // The Authorizer role gets no FCGI_STDIN, so its handler must not wait for one.
        let bodyComplete = request.role == .authorizer
        request.phase = .running(inputOpen: !bodyComplete)
        self.requests[id] = request
        return .startRequest(
            RequestHead(requestID: id, token: request.token, role: request.role, params: params, bodyComplete: bodyComplete)
        )
    }

    private mutating func receivedStdin(_ record: FastCGIRecord) -> RecordAction {
        let id = record.requestID
        guard var request = self.requests[id] else {
            return id == FastCGIConstants.managementRequestID ? self.close(.recordForManagementID(record.type)) : .none
        }
        switch request.phase {
        case .params:
            return self.close(.stdinBeforeParamsEnded(id))
        case .running(inputOpen: false):
            // Some web servers send an empty STDIN to authorizers anyway; that is harmless.
            return request.role == .authorizer ? .none : self.close(.stdinAfterStdinEnded(id))
        case .running(inputOpen: true):
            if record.content.readableBytes > 0 {
                return .deliverBody(requestID: id, token: request.token, record.content)
            }
            request.phase = .running(inputOpen: false)
            self.requests[id] = request
            return .finishBody(requestID: id, token: request.token)
        }
    }

    // MARK: - Helpers

    /// Answers a BEGIN_REQUEST with an END_REQUEST carrying `status`, without starting the request.
    private mutating func refuse(_ id: UInt16, status: FastCGIProtocolStatus, keepConnection: Bool) -> RecordAction {
        var reply = ByteBuffer()
        reply.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: status)
        return .reply(reply, close: self.noteRequestEnded(keepConnection: keepConnection))
    }

    /// Without FCGI_KEEP_CONN the spec has the application close after the request; other requests
    /// multiplexed on the connection are let finish first. Returns whether to close now.
    private mutating func noteRequestEnded(keepConnection: Bool) -> Bool {
        if !keepConnection {
            self.closeWhenIdle = true
        }
        return self.closeIfIdle()
    }

    private mutating func closeIfIdle() -> Bool {
        guard self.closeWhenIdle, self.requests.isEmpty else { return false }
        self.isClosed = true
        return true
    }

    private mutating func close(_ violation: ProtocolViolation) -> RecordAction {
        self.isClosed = true
        return .closeConnection(violation)
    }

    private static func unknownType(_ type: UInt8) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFastCGIUnknownType(type)
        return buffer
    }
}
