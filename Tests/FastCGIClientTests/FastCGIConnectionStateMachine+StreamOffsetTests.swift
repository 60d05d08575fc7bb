import FastCGI
import NIOCore
import Testing

@testable import FastCGIClient

/// Records are placed in the connection's byte stream: one that began before its request
/// started was sent before the backend could know of that request.
@Suite struct FastCGIConnectionStateMachineStreamOffsetTests {
    private func stdout(id: UInt16) -> FastCGIRecord {
        FastCGIRecord(type: .stdout, requestID: id, content: ByteBuffer(bytes: [65]))
    }

    @Test func aRecordThatBeganBeforeItsRequestStartedClosesTheConnection() {
        var machine = FastCGIConnectionStateMachine(capacity: 4)
        _ = machine.startRequest(receivedBytes: 0)
        // 100 bytes had arrived (still being decoded) when the second request took the next id.
        let second = machine.startRequest(receivedBytes: 100)
        guard case .failAndClose(.protocolViolation(let message)) = machine.received(stdout(id: second), at: 40) else {
            Issue.record("a record sent before its request existed was credited to it")
            return
        }
        #expect(message.contains("before that request was sent"))
        #expect(machine.state == .closed)
    }

    @Test func aRecordFromTheBytesAfterTheStartIsTheRequests() {
        var machine = FastCGIConnectionStateMachine(capacity: 4)
        let first = machine.startRequest(receivedBytes: 0)
        let second = machine.startRequest(receivedBytes: 100)
        #expect(machine.received(stdout(id: first), at: 40) == .forwardStdout(requestID: first))
        #expect(machine.received(stdout(id: second), at: 100) == .forwardStdout(requestID: second))
        #expect(machine.received(stdout(id: second), at: 180) == .forwardStdout(requestID: second))
    }

    @Test func aRecordWithoutAnOffsetCountsAsLate() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest(receivedBytes: 1_000)
        #expect(machine.received(stdout(id: id)) == .forwardStdout(requestID: id))
    }
}

@Suite struct FastCGIConnectionStateMachineRequestIDTests {
    @Test func idsRunThroughEveryValueBeforeOneRepeats() {
        var machine = FastCGIConnectionStateMachine()
        var seen = Set<UInt16>()
        for _ in 0..<Int(UInt16.max) {
            let id = machine.startRequest()
            #expect(id != 0)
            seen.insert(id)
            var end = ByteBuffer()
            end.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
            end.moveReaderIndex(forwardBy: 8)
            _ = machine.received(FastCGIRecord(type: .endRequest, requestID: id, content: end))
        }
        #expect(seen.count == Int(UInt16.max))
        #expect(machine.startRequest() == 1)
    }

    @Test func idsRunningTogetherAreNeverNeighbours() {
        var machine = FastCGIConnectionStateMachine(capacity: 32)
        let ids = (0..<32).map { _ in Int(machine.startRequest()) }
        #expect(ids.first == 1)
        for a in ids {
            for b in ids where a != b {
                #expect(abs(a - b) > 1, "ids \(a) and \(b) run together")
            }
        }
    }
}

@Suite struct FastCGIConnectionStateMachinePartialRecordTests {
    @Test func bytesBehindTheLastEndRequestCloseTheConnection() {
        var machine = FastCGIConnectionStateMachine()
        let id = machine.startRequest(receivedBytes: 0)
        var end = ByteBuffer()
        end.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        end.moveReaderIndex(forwardBy: 8)
        _ = machine.received(FastCGIRecord(type: .endRequest, requestID: id, content: end), at: 0)
        guard case .failAndClose(.protocolViolation)? = machine.partialRecordPending(at: 16) else {
            Issue.record("half a record for nobody was left to swallow the next answer")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func aRunningRequestsPartialRecordWaitsForItsRest() {
        var machine = FastCGIConnectionStateMachine(capacity: 2)
        _ = machine.startRequest(receivedBytes: 0)
        #expect(machine.partialRecordPending(at: 50) == nil)
        // A request that started after those bytes arrived does not make them its own.
        var other = FastCGIConnectionStateMachine(capacity: 2)
        _ = other.startRequest(receivedBytes: 60)
        #expect(other.partialRecordPending(at: 50) != nil)
    }
}
