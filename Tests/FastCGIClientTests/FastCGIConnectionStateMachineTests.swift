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
        machine.start(requestID: 7)
        #expect(machine.received(record(.stdout, id: 7, [65])) == .forwardStdout)
        #expect(machine.received(record(.stderr, id: 7, [66])) == .forwardStderr)
        #expect(machine.received(record(.stdout, id: 7)) == .ignore)
        #expect(machine.received(endRequest(id: 7, appStatus: 3)) == .requestEnded(appStatus: 3))
        #expect(machine.isIdle)
        // Reusable: a second request on the same connection.
        machine.start(requestID: 8)
        #expect(machine.received(endRequest(id: 8)) == .requestEnded(appStatus: 0))
    }

    @Test func aRecordForAnotherRequestIDClosesTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        machine.start(requestID: 1)
        guard case .failAndClose(.protocolViolation) = machine.received(record(.stdout, id: 2, [1])) else {
            Issue.record("wrong id was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func bytesBetweenRequestsAreAViolation() {
        var machine = FastCGIConnectionStateMachine()
        guard case .failAndClose(.protocolViolation) = machine.received(record(.stdout, id: 0, [1])) else {
            Issue.record("idle record was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func unexpectedRecordTypesAndBadEndRequestsAreViolations() {
        var machine = FastCGIConnectionStateMachine()
        machine.start(requestID: 1)
        guard case .failAndClose(.protocolViolation) = machine.received(record(.params, id: 1, [1])) else {
            Issue.record("PARAMS from a backend was accepted")
            return
        }
        var second = FastCGIConnectionStateMachine()
        second.start(requestID: 1)
        guard case .failAndClose(.protocolViolation) = second.received(record(.endRequest, id: 1, [0, 0])) else {
            Issue.record("short END_REQUEST was accepted")
            return
        }
    }

    /// PHP bug #72185: the empty STDOUT record ends the body; what follows is dropped and the
    /// connection, whose stream discipline is now in doubt, is not reused.
    @Test func stdoutAfterTheEmptyRecordIsDiscardedAndTaintsTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        machine.start(requestID: 1)
        #expect(machine.received(record(.stdout, id: 1, [65])) == .forwardStdout)
        #expect(machine.received(record(.stdout, id: 1)) == .ignore)
        #expect(machine.received(record(.stdout, id: 1, [66])) == .discardLateStdout)
        #expect(machine.received(endRequest(id: 1)) == .requestEnded(appStatus: 0))
        #expect(!machine.isIdle)
        #expect(machine.state == .closed)
    }

    @Test func endRequestWithOverloadedIsARejection() {
        var machine = FastCGIConnectionStateMachine()
        machine.start(requestID: 1)
        #expect(machine.received(endRequest(id: 1, protocolStatus: 2)) == .failAndClose(.rejected(protocolStatus: 2)))
    }

    @Test func closeWhileRunningReportsClosedEarlyButNotWhenIdle() {
        var idle = FastCGIConnectionStateMachine()
        #expect(idle.closed() == nil)
        var running = FastCGIConnectionStateMachine()
        running.start(requestID: 1)
        #expect(running.closed() == .closedEarly)
    }

    @Test func readTimeoutOnlyAppliesToARunningRequest() {
        var machine = FastCGIConnectionStateMachine()
        #expect(machine.readTimedOut() == nil)
        machine.start(requestID: 1)
        #expect(machine.readTimedOut() == .failAndClose(.readTimeout))
        #expect(machine.state == .closed)
    }
}
