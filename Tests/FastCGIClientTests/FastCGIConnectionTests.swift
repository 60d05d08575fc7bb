import FastCGI
import Glibc
import NIOCore
import NIOEmbedded
import Testing

@testable import FastCGIClient

/// Records what a connection reports, in order.
private final class RecordingReceiver: FastCGIResponseReceiver {
    var events: [String] = []
    var stdout = ByteBuffer()
    func backendStdout(_ data: ByteBuffer) {
        var data = data
        stdout.writeBuffer(&data)
        events.append("stdout")
    }
    func backendStderr(_ data: ByteBuffer) { events.append("stderr:\(String(buffer: data))") }
    func backendReadComplete() { events.append("readComplete") }
    var onEnded: (() -> Void)?
    func backendEnded(appStatus: UInt32) {
        events.append("ended:\(appStatus)")
        onEnded?()
    }
    func backendFailed(_ error: BackendError) { events.append("failed:\(error)") }
    func backendWritabilityChanged(isWritable: Bool) {}
}

@Suite struct FastCGIConnectionTests {
    private func makeChannel(capacity: Int = 1) throws -> (EmbeddedChannel, FastCGIConnection) {
        let connection = FastCGIConnection(backendIndex: 0, capacity: capacity)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return (channel, connection)
    }

    @Test func forwardsStdoutSplitAcrossReadsAndEndsCleanly() throws {
        let (channel, connection) = try makeChannel()
        let receiver = RecordingReceiver()
        let id = connection.startRequest(receiver: receiver, readTimeout: .seconds(30))
        var begin = ByteBuffer()
        begin.writeFastCGIBeginRequest(requestID: id, role: .responder, flags: FastCGIConstants.keepConnectionFlag)
        connection.write(begin)
        connection.flush()
        let written = try channel.readOutbound(as: ByteBuffer.self)
        #expect(written == begin)

        var response = ByteBuffer()
        response.writeFastCGIStream(type: .stdout, requestID: id, content: ByteBuffer(string: "Status: 200\r\n\r\nhello"))
        response.writeFastCGIStreamEnd(type: .stdout, requestID: id)
        response.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        // Split mid-header: the decoder must reassemble.
        let first = response.getSlice(at: 0, length: 3)!
        let rest = response.getSlice(at: 3, length: response.readableBytes - 3)!
        try channel.writeInbound(first)
        try channel.writeInbound(rest)
        #expect(String(buffer: receiver.stdout) == "Status: 200\r\n\r\nhello")
        #expect(receiver.events.contains("ended:0"))
        #expect(connection.isReusable)
        #expect(connection.requestCount == 1)
    }

    @Test func earlyCloseFailsTheRequest() throws {
        let (channel, connection) = try makeChannel()
        let receiver = RecordingReceiver()
        _ = connection.startRequest(receiver: receiver, readTimeout: .seconds(30))
        try channel.close().wait()
        #expect(receiver.events.last == "failed:\(BackendError.closedEarly)")
    }

    @Test func wrongRequestIDClosesTheChannel() throws {
        let (channel, connection) = try makeChannel()
        let receiver = RecordingReceiver()
        let id = connection.startRequest(receiver: receiver, readTimeout: .seconds(30))
        var bad = ByteBuffer()
        bad.writeFastCGIStream(type: .stdout, requestID: id &+ 1, content: ByteBuffer(string: "x"))
        try channel.writeInbound(bad)
        #expect(!channel.isActive)
        #expect(receiver.events.last?.hasPrefix("failed:protocol violation") == true)
        #expect(!connection.isReusable)
    }

    /// A multiplexing backend that writes a finished response and, in the same write, records
    /// for the next request id before that request exists: the next client, which takes that id
    /// while the read is still being decoded, must not get those bytes.
    @Test func recordsSentBeforeARequestStartedNeverReachIt() throws {
        let (channel, connection) = try makeChannel(capacity: 4)
        let first = RecordingReceiver()
        let next = RecordingReceiver()
        let id = connection.startRequest(receiver: first, readTimeout: .seconds(30))
        var nextID: UInt16 = 0
        // The next client gets the connection's other free slot as soon as the first response ends.
        first.onEnded = { nextID = connection.startRequest(receiver: next, readTimeout: .seconds(30)) }

        // A backend that guessed the id the connection hands out next.
        let guessed = UInt16((Int(id) - 1 + FastCGIConnectionStateMachine.idStride) % 65535 + 1)
        var burst = ByteBuffer()
        burst.writeFastCGIStream(type: .stdout, requestID: id, content: ByteBuffer(string: "Status: 200\r\n\r\nmine"))
        burst.writeFastCGIStreamEnd(type: .stdout, requestID: id)
        burst.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        burst.writeFastCGIStream(type: .stdout, requestID: guessed, content: ByteBuffer(string: "Status: 200\r\n\r\nsomeone else's"))
        burst.writeFastCGIStreamEnd(type: .stdout, requestID: guessed)
        burst.writeFastCGIEndRequest(requestID: guessed, appStatus: 0, protocolStatus: .requestComplete)
        try channel.writeInbound(burst)

        #expect(nextID == guessed)
        #expect(String(buffer: first.stdout) == "Status: 200\r\n\r\nmine")
        #expect(first.events.contains("ended:0"))
        #expect(next.stdout.readableBytes == 0)
        // Not to blame and heard nothing: failed as closed early, which the pool may send again.
        #expect(next.events == ["failed:\(BackendError.closedEarly)"])
        #expect(!channel.isActive)
    }

    @Test func garbageBehindEndRequestDoesNotFailTheNextRequest() throws {
        let (channel, connection) = try makeChannel(capacity: 4)
        let first = RecordingReceiver()
        let next = RecordingReceiver()
        let id = connection.startRequest(receiver: first, readTimeout: .seconds(30))
        first.onEnded = { _ = connection.startRequest(receiver: next, readTimeout: .seconds(30)) }
        var burst = ByteBuffer()
        burst.writeFastCGIStreamEnd(type: .stdout, requestID: id)
        burst.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        burst.writeFastCGIStream(type: .stdout, requestID: 999, content: ByteBuffer(string: "garbage"))
        try channel.writeInbound(burst)
        #expect(first.events.contains("ended:0"))
        #expect(next.events == ["failed:\(BackendError.closedEarly)"])
    }

    @Test func readTimeoutFiresWithoutBackendData() throws {
        let (channel, connection) = try makeChannel()
        let receiver = RecordingReceiver()
        _ = connection.startRequest(receiver: receiver, readTimeout: .milliseconds(50))
        // EmbeddedEventLoop runs timers only when told; real time must also pass for the
        // deadline check (it uses NIODeadline.now()).
        usleep(60_000)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        #expect(receiver.events.last == "failed:\(BackendError.readTimeout)")
        #expect(!channel.isActive)
    }

    @Test func pausedReadsAreHeldUntilResumed() throws {
        let (channel, connection) = try makeChannel()
        let receiver = RecordingReceiver()
        _ = connection.startRequest(receiver: receiver, readTimeout: .seconds(30))
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        connection.pauseReading()
        channel.read()
        #expect(counter.reads == 0)
        connection.resumeReading()
        #expect(counter.reads == 1)
    }
}

extension FastCGIConnectionTests {
    /// A pause set in the read burst that also carried END_REQUEST must not outlive the request:
    /// the next request on the reused connection would never be read.
    @Test func endOfRequestLiftsAPauseLeftByItsClient() throws {
        let (channel, connection) = try makeChannel()
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        let receiver = RecordingReceiver()
        let id = connection.startRequest(receiver: receiver, readTimeout: .seconds(30))
        connection.pauseReading()
        channel.read()
        #expect(counter.reads == 0)
        var end = ByteBuffer()
        end.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        try channel.writeInbound(end)
        #expect(receiver.events.contains("ended:0"))
        #expect(counter.reads == 1)
        channel.read()
        #expect(counter.reads == 2)
    }
}

/// Counts `read()` calls that reach the head of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite struct FastCGIConnectionFlushTests {
    private func makeChannel(capacity: Int) throws -> (EmbeddedChannel, FastCGIConnection) {
        let connection = FastCGIConnection(backendIndex: 0, capacity: capacity)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return (channel, connection)
    }

    private func beginRequest(_ id: UInt16) -> ByteBuffer {
        var begin = ByteBuffer()
        begin.writeFastCGIBeginRequest(requestID: id, role: .responder, flags: FastCGIConstants.keepConnectionFlag)
        return begin
    }

    /// Starts a request, writes its BEGIN_REQUEST and flushes; returns what was written.
    private func send(on connection: FastCGIConnection, receiver: RecordingReceiver = RecordingReceiver()) -> ByteBuffer {
        let begin = beginRequest(connection.startRequest(receiver: receiver, readTimeout: .seconds(30)))
        connection.write(begin)
        connection.flush()
        return begin
    }

    @Test func multiplexedRequestsOfOneLoopIterationLeaveInOneFlush() throws {
        let (channel, connection) = try makeChannel(capacity: 8)
        let receiver = RecordingReceiver()
        let sent = (0..<3).map { _ in send(on: connection, receiver: receiver) }
        // Nothing reaches the socket until the loop has handled the rest of its events.
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        for expected in sent {
            #expect(try channel.readOutbound(as: ByteBuffer.self) == expected)
        }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        // The next iteration flushes again.
        let next = send(on: connection, receiver: receiver)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == next)
    }

    @Test func aConnectionOfItsOwnFlushesAtOnce() throws {
        let (channel, connection) = try makeChannel(capacity: 1)
        let begin = send(on: connection)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == begin)
    }

    @Test func aDeferredFlushOfAClosedConnectionIsDropped() throws {
        let (channel, connection) = try makeChannel(capacity: 8)
        _ = send(on: connection)
        try channel.close().wait()
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
    }
}
