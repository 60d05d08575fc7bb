import FastCGI
import NIOCore
import Testing

@testable import FastCGIClient

@Suite struct FastCGIConnectionStateMachineTests {
    private func record(_ type: FastCGIRecordType, id: UInt16, _ bytes: [UInt8] = []) -> FastCGIRecord {
        FastCGIRecord(type: type, requestID: id, content: ByteBuffer(bytes: bytes))
    }

    private func endRequest(id: UInt16, appStatus: UInt32 = 0, protocolStatus: UInt8 = 0) -> FastCGIRecord {
        var buffer = ByteBuffer()
        buffer.writeInteger(appStatus)
        buffer.writeInteger(protocolStatus)
        buffer.writeBytes([0, 0, 0])
        return FastCGIRecord(type: .endRequest, requestID: id, content: buffer)
    }

    @Test func aRequestRunsToItsEndAndLeavesTheConnectionIdle() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        #expect(!machine.hasFreeSlot)
        #expect(machine.received(record(.stdout, id: id, [65])) == .forwardStdout(requestID: id))
        #expect(machine.received(record(.stderr, id: id, [66])) == .forwardStderr(requestID: id))
        #expect(machine.received(record(.stdout, id: id)) == .ignore)
        #expect(machine.received(endRequest(id: id, appStatus: 3)) == .requestEnded(requestID: id, appStatus: 3, aborted: false))
        #expect(machine.isIdle)
        // Reusable, with a new id: a late record for the old one cannot land on the new request.
        let next = machine.startRequest()
        #expect(next != id)
        #expect(machine.received(endRequest(id: next)) == .requestEnded(requestID: next, appStatus: 0, aborted: false))
    }

    @Test func aRecordForAnotherRequestIDClosesTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        guard case .failAndClose(.protocolViolation) = machine.received(record(.stdout, id: id &+ 1, [1])) else {
            Issue.record("wrong id was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func bytesBetweenRequestsAreAViolation() {
        var machine = FastCGIConnectionStateMachine()
        guard case .failAndClose(.protocolViolation) = machine.received(record(.stdout, id: 1, [1])) else {
            Issue.record("idle record was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func endRequestTwiceIsAViolation() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        _ = machine.received(endRequest(id: id))
        // A stray for the request that just ended: the connection goes, the requests still on it
        // are innocent (so the error is not a plain protocol violation).
        guard case .failAndClose(.staleRecord) = machine.received(endRequest(id: id)) else {
            Issue.record("second END_REQUEST was accepted")
            return
        }
    }

    @Test func unexpectedRecordTypesAndBadEndRequestsAreViolations() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        guard case .failAndClose(.protocolViolation) = machine.received(record(.params, id: id, [1])) else {
            Issue.record("PARAMS from a backend was accepted")
            return
        }
        var second = FastCGIConnectionStateMachine()
        let other = second.startRequest()
        guard case .failAndClose(.protocolViolation) = second.received(record(.endRequest, id: other, [0, 0])) else {
            Issue.record("short END_REQUEST was accepted")
            return
        }
    }

    @Test func rejectionsEndTheRequestButKeepTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        #expect(machine.received(endRequest(id: id, protocolStatus: 2)) == .requestRejected(requestID: id, protocolStatus: 2))
        #expect(machine.isIdle)
    }

    /// PHP bug #72185: the empty STDOUT record ends the body; what follows is dropped and the
    /// connection, whose stream discipline is now in doubt, is not reused.
    @Test func stdoutAfterTheEmptyRecordIsDiscardedAndTaintsTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest()
        #expect(machine.received(record(.stdout, id: id, [65])) == .forwardStdout(requestID: id))
        #expect(machine.received(record(.stdout, id: id)) == .ignore)
        #expect(machine.received(record(.stdout, id: id, [66])) == .discardLateStdout(requestID: id))
        #expect(machine.received(endRequest(id: id)) == .requestEnded(requestID: id, appStatus: 0, aborted: false))
        #expect(!machine.isIdle)
        #expect(!machine.hasFreeSlot)
    }

    @Test func multiplexedRequestsInterleaveUpToCapacity() {
        var machine = FastCGIConnectionStateMachine(capacity: 3)
        let a = machine.startRequest()
        let b = machine.startRequest()
        let c = machine.startRequest()
        #expect(Set([a, b, c]).count == 3)
        #expect(!machine.hasFreeSlot)
        #expect(machine.received(record(.stdout, id: b, [1])) == .forwardStdout(requestID: b))
        #expect(machine.received(record(.stdout, id: a, [1])) == .forwardStdout(requestID: a))
        #expect(machine.received(endRequest(id: b)) == .requestEnded(requestID: b, appStatus: 0, aborted: false))
        #expect(machine.hasFreeSlot)
        #expect(machine.activeCount == 2)
    }

    @Test func abortedRequestsKeepTheirIDUntilEndRequest() {
        var machine = FastCGIConnectionStateMachine(capacity: 2)
        let a = machine.startRequest()
        let first = machine.abort(requestID: a)
        let second = machine.abort(requestID: a)
        #expect(first)
        #expect(!second, "a second abort sends nothing")
        #expect(machine.received(record(.stdout, id: a, [1])) == .ignore)
        #expect(machine.activeCount == 1)
        #expect(machine.received(endRequest(id: a)) == .requestEnded(requestID: a, appStatus: 0, aborted: true))
        #expect(machine.isIdle)
    }

    @Test func managementRecordsAreHandedUp() {
        var machine = FastCGIConnectionStateMachine()
        #expect(machine.received(record(.getValuesResult, id: 0, [])) == .management)
        guard case .failAndClose = machine.received(record(.stdout, id: 0, [1])) else {
            Issue.record("STDOUT on the management id was accepted")
            return
        }
    }

    @Test func closeReportsTheRequestsStillWaiting() {
        var idle = FastCGIConnectionStateMachine()
        #expect(idle.closed().isEmpty)
        var running = FastCGIConnectionStateMachine(capacity: 2)
        let a = running.startRequest()
        let b = running.startRequest()
        _ = running.abort(requestID: a)
        #expect(running.closed() == [b])
    }

    @Test func readTimeoutClosesOnlyAConnectionOfItsOwn() {
        var single = FastCGIConnectionStateMachine()
        #expect(single.readTimedOut(requestID: 1) == nil)
        let id = single.startRequest()
        #expect(single.readTimedOut(requestID: id) == .failAndClose(.readTimeout))
        #expect(single.state == .closed)
        var shared = FastCGIConnectionStateMachine(capacity: 4)
        let other = shared.startRequest()
        #expect(shared.readTimedOut(requestID: other) == nil, "a shared connection aborts the request instead")
        #expect(shared.state == .open)
    }
}
