import FastCGI
import NIOCore
import Testing

@testable import FastCGIWorker

/// Builders for the records a web server sends.
enum WebServer {
    static func begin(_ id: UInt16, role: UInt16 = FastCGIRole.responder.rawValue, keepConn: Bool = true) -> FastCGIRecord {
        var content = ByteBuffer()
        content.writeMultipleIntegers(role, UInt8(keepConn ? 1 : 0), UInt8(0), UInt32(0), endianness: .big)
        return FastCGIRecord(type: .beginRequest, requestID: id, content: content)
    }

    static func params(_ id: UInt16, _ pairs: [(String, String)]) -> FastCGIRecord {
        var content = ByteBuffer()
        for (name, value) in pairs {
            FastCGINameValuePairs.write(name: name, value: value, to: &content)
        }
        return FastCGIRecord(type: .params, requestID: id, content: content)
    }

    static func paramsEnd(_ id: UInt16) -> FastCGIRecord {
        FastCGIRecord(type: .params, requestID: id, content: ByteBuffer())
    }

    static func stdin(_ id: UInt16, _ text: String) -> FastCGIRecord {
        FastCGIRecord(type: .stdin, requestID: id, content: ByteBuffer(string: text))
    }

    static func abort(_ id: UInt16) -> FastCGIRecord {
        FastCGIRecord(type: .abortRequest, requestID: id, content: ByteBuffer())
    }

    static func endRequest(_ id: UInt16, status: FastCGIProtocolStatus, appStatus: UInt32 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFastCGIEndRequest(requestID: id, appStatus: appStatus, protocolStatus: status)
        return buffer
    }
}

@Suite struct FastCGIWorkerConnectionStateMachineTests {
    typealias Machine = FastCGIWorkerConnectionStateMachine

    static let limits = Machine.Limits(
        maxRequests: 4,
        maxParamsBytes: 4096,
        roles: [.responder, .authorizer],
        values: ["FCGI_MAX_CONNS": "8", "FCGI_MAX_REQS": "32", "FCGI_MPXS_CONNS": "1"]
    )

    /// Opens request `id` through its PARAMS and returns the token it got.
    private func open(_ machine: inout Machine, _ id: UInt16, keepConn: Bool = true) -> UInt64 {
        #expect(machine.receivedRecord(WebServer.begin(id, keepConn: keepConn)) == .none)
        #expect(machine.receivedRecord(WebServer.params(id, [("REQUEST_METHOD", "GET")])) == .none)
        guard case .startRequest(let head) = machine.receivedRecord(WebServer.paramsEnd(id)) else {
            Issue.record("request \(id) did not start")
            return 0
        }
        #expect(head.requestID == id)
        #expect(head.params["REQUEST_METHOD"] == "GET")
        #expect(!head.bodyComplete)
        return head.token
    }

    @Test func unknownRoleIsRefused() {
        var machine = Machine(limits: Self.limits)
        let action = machine.receivedRecord(WebServer.begin(1, role: FastCGIRole.filter.rawValue))
        #expect(action == .reply(WebServer.endRequest(1, status: .unknownRole), close: false))
        #expect(machine.activeRequestIDs.isEmpty)
        let undefined = machine.receivedRecord(WebServer.begin(2, role: 77, keepConn: false))
        #expect(undefined == .reply(WebServer.endRequest(2, status: .unknownRole), close: true))
    }

    @Test func getValuesAnswersTheKnownNames() throws {
        var machine = Machine(limits: Self.limits)
        var query = ByteBuffer()
        query.writeFastCGIGetValues(names: ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "NOT_A_VARIABLE"])
        var decoder = FastCGIRecordDecoder()
        let record = try #require(try decoder.decode(buffer: &query))
        guard case .reply(var reply, close: false) = machine.receivedRecord(record) else {
            Issue.record("no reply")
            return
        }
        let answer = try #require(try decoder.decode(buffer: &reply))
        #expect(answer.recordType == .getValuesResult)
        #expect(answer.requestID == 0)
        let pairs = try FastCGINameValuePairs.parse(answer.content).map { (String(buffer: $0.name), String(buffer: $0.value)) }
        #expect(pairs.map(\.0) == ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
        #expect(pairs.map(\.1) == ["8", "32", "1"])
    }

    @Test func unknownTypeIsAnswered() {
        var machine = Machine(limits: Self.limits)
        let action = machine.receivedRecord(FastCGIRecord(type: 42, requestID: 0, content: ByteBuffer()))
        var expected = ByteBuffer()
        expected.writeFastCGIUnknownType(42)
        #expect(action == .reply(expected, close: false))
    }

    @Test func interleavedRequestsKeepTheirBodiesApart() {
        var machine = Machine(limits: Self.limits)
        #expect(machine.receivedRecord(WebServer.begin(1)) == .none)
        #expect(machine.receivedRecord(WebServer.begin(2)) == .none)
        #expect(machine.receivedRecord(WebServer.params(2, [("A", "2")])) == .none)
        #expect(machine.receivedRecord(WebServer.params(1, [("A", "1")])) == .none)
        guard case .startRequest(let two) = machine.receivedRecord(WebServer.paramsEnd(2)),
            case .startRequest(let one) = machine.receivedRecord(WebServer.paramsEnd(1))
        else {
            Issue.record("requests did not start")
            return
        }
        #expect(one.params["A"] == "1")
        #expect(two.params["A"] == "2")
        #expect(one.token != two.token)
        #expect(
            machine.receivedRecord(WebServer.stdin(1, "one"))
                == .deliverBody(requestID: 1, token: one.token, ByteBuffer(string: "one"))
        )
        #expect(
            machine.receivedRecord(WebServer.stdin(2, "two"))
                == .deliverBody(requestID: 2, token: two.token, ByteBuffer(string: "two"))
        )
        #expect(machine.receivedRecord(WebServer.stdin(2, "")) == .finishBody(requestID: 2, token: two.token))
        #expect(
            machine.requestFinished(requestID: 2, token: two.token, appStatus: 0)
                == .writeEndRequest(WebServer.endRequest(2, status: .requestComplete), close: false)
        )
        #expect(machine.activeRequestIDs == [1])
        // Request 1 is unaffected by 2 ending, and id 2 may be reused with a fresh token.
        #expect(machine.receivedRecord(WebServer.stdin(1, "")) == .finishBody(requestID: 1, token: one.token))
        let reused = self.open(&machine, 2)
        #expect(reused != two.token)
        #expect(machine.requestFinished(requestID: 2, token: two.token, appStatus: 0) == .none)
    }

    @Test func abortCancelsARunningRequestAndAnswersEndRequest() {
        var machine = Machine(limits: Self.limits)
        let token = self.open(&machine, 3)
        #expect(
            machine.receivedRecord(WebServer.abort(3))
                == .abort(requestID: 3, token: token, reply: WebServer.endRequest(3, status: .requestComplete), close: false)
        )
        // The handler finishing later must not produce a second END_REQUEST.
        #expect(machine.requestFinished(requestID: 3, token: token, appStatus: 0) == .none)
        // Its late body records are for an inactive id and ignored.
        #expect(machine.receivedRecord(WebServer.stdin(3, "late")) == .none)
        #expect(machine.receivedRecord(WebServer.abort(3)) == .none)
    }

    @Test func abortBeforeParamsEndedNeedsNoCancellation() {
        var machine = Machine(limits: Self.limits)
        #expect(machine.receivedRecord(WebServer.begin(5)) == .none)
        #expect(machine.receivedRecord(WebServer.abort(5)) == .reply(WebServer.endRequest(5, status: .requestComplete), close: false))
        #expect(machine.activeRequestIDs.isEmpty)
    }

    @Test func withoutKeepConnTheConnectionClosesAfterEndRequest() {
        var machine = Machine(limits: Self.limits)
        let token = self.open(&machine, 1, keepConn: false)
        #expect(machine.receivedRecord(WebServer.stdin(1, "")) == .finishBody(requestID: 1, token: token))
        #expect(
            machine.requestFinished(requestID: 1, token: token, appStatus: 7)
                == .writeEndRequest(WebServer.endRequest(1, status: .requestComplete, appStatus: 7), close: true)
        )
        // Closed: further input is ignored.
        #expect(machine.receivedRecord(WebServer.begin(2)) == .none)
    }

    @Test func withoutKeepConnOtherRequestsFinishFirst() {
        var machine = Machine(limits: Self.limits)
        let first = self.open(&machine, 1, keepConn: false)
        let second = self.open(&machine, 2)
        guard case .writeEndRequest(_, close: false) = machine.requestFinished(requestID: 1, token: first, appStatus: 0),
            case .writeEndRequest(_, close: true) = machine.requestFinished(requestID: 2, token: second, appStatus: 0)
        else {
            Issue.record("expected the close after the last request")
            return
        }
    }

    @Test func duplicateBeginClosesTheConnection() {
        var machine = Machine(limits: Self.limits)
        _ = self.open(&machine, 1)
        #expect(machine.receivedRecord(WebServer.begin(1)) == .closeConnection(.beginForActiveRequest(1)))
    }

    @Test func malformedInputClosesTheConnection() {
        var short = Machine(limits: Self.limits)
        let badBegin = FastCGIRecord(type: .beginRequest, requestID: 1, content: ByteBuffer(bytes: [0, 1]))
        #expect(short.receivedRecord(badBegin) == .closeConnection(.malformedRecord(.malformedBody(type: 1))))

        var truncated = Machine(limits: Self.limits)
        #expect(truncated.receivedRecord(WebServer.begin(1)) == .none)
        let halfPair = FastCGIRecord(type: .params, requestID: 1, content: ByteBuffer(bytes: [4, 4, 65]))
        #expect(truncated.receivedRecord(halfPair) == .none)
        #expect(truncated.receivedRecord(WebServer.paramsEnd(1)) == .closeConnection(.malformedRecord(.malformedNameValuePair)))

        var early = Machine(limits: Self.limits)
        #expect(early.receivedRecord(WebServer.begin(1)) == .none)
        #expect(early.receivedRecord(WebServer.stdin(1, "x")) == .closeConnection(.stdinBeforeParamsEnded(1)))

        var backwards = Machine(limits: Self.limits)
        let stdout = FastCGIRecord(type: .stdout, requestID: 1, content: ByteBuffer())
        #expect(backwards.receivedRecord(stdout) == .closeConnection(.unexpectedRecordType(FastCGIRecordType.stdout.rawValue)))

        var huge = Machine(limits: Self.limits)
        #expect(huge.receivedRecord(WebServer.begin(1)) == .none)
        let big = WebServer.params(1, [("X", String(repeating: "y", count: 5000))])
        #expect(huge.receivedRecord(big) == .closeConnection(.paramsTooLarge(1)))
    }

    @Test func requestsBeyondTheLimitAreRefused() {
        var machine = Machine(limits: Self.limits)
        for id in 1...4 {
            _ = self.open(&machine, UInt16(id))
        }
        #expect(machine.receivedRecord(WebServer.begin(5)) == .reply(WebServer.endRequest(5, status: .overloaded), close: false))

        var single = Machine(limits: .init(maxRequests: 1, maxParamsBytes: 4096, roles: [.responder], values: [:]))
        _ = self.open(&single, 1)
        #expect(
            single.receivedRecord(WebServer.begin(2)) == .reply(WebServer.endRequest(2, status: .cantMultiplexConnection), close: false)
        )
    }

    @Test func authorizerGetsNoBody() {
        var machine = Machine(limits: Self.limits)
        #expect(machine.receivedRecord(WebServer.begin(1, role: FastCGIRole.authorizer.rawValue)) == .none)
        guard case .startRequest(let head) = machine.receivedRecord(WebServer.paramsEnd(1)) else {
            Issue.record("authorizer did not start")
            return
        }
        #expect(head.role == .authorizer)
        #expect(head.bodyComplete)
        #expect(machine.receivedRecord(WebServer.stdin(1, "")) == .none)
    }

    @Test func drainingRefusesNewRequestsAndClosesWhenIdle() {
        var machine = Machine(limits: Self.limits)
        let token = self.open(&machine, 1)
        #expect(machine.startDraining() == false)
        #expect(machine.receivedRecord(WebServer.begin(2)) == .reply(WebServer.endRequest(2, status: .overloaded), close: false))
        #expect(
            machine.requestFinished(requestID: 1, token: token, appStatus: 0)
                == .writeEndRequest(WebServer.endRequest(1, status: .requestComplete), close: true)
        )
    }

    @Test func closingReportsRunningRequests() {
        var machine = Machine(limits: Self.limits)
        let token = self.open(&machine, 9)
        #expect(machine.receivedRecord(WebServer.begin(10)) == .none)
        let running = machine.connectionClosed()
        #expect(running.map(\.requestID) == [9])
        #expect(running.map(\.token) == [token])
    }
}
