import FastCGI
import NIOCore
import NIOEmbedded
import Testing

@testable import FastCGIWorker

/// Echoes the params it is asked for and the body.
private struct EchoResponder: FastCGIResponder {
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let body = try await request.body.collect(upTo: 1 << 20)
        try await writer.writeHead(status: 201, headers: [("X-Method", request.params["REQUEST_METHOD"] ?? "-")])
        try await writer.write(body)
        try await writer.finish(appStatus: 3)
    }
}

private struct ClosureResponder: FastCGIResponder {
    let body: @Sendable (FastCGIRequest, FastCGIResponseWriter) async throws -> Void
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        try await self.body(request, writer)
    }
}

/// Sees the reads that reach the socket end of the pipeline.
private final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    // Only touched on the testing event loop.
    var reads = 0
    func read(context: ChannelHandlerContext) {
        self.reads += 1
        context.read()
    }
}

@Suite struct FastCGIWorkerChannelHandlerTests {
    private func makeChannel(
        _ responder: some FastCGIResponder,
        readCounter: ReadCounter? = nil,
        authorizer: (any FastCGIAuthorizer)? = nil
    ) async throws -> NIOAsyncTestingChannel {
        var responders: [FastCGIRole: any FastCGIResponder] = [.responder: responder]
        if let authorizer {
            responders[.authorizer] = FastCGIAuthorizerResponder(authorizer: authorizer)
        }
        let roles = responders
        let channel = try await NIOAsyncTestingChannel { channel in
            if let readCounter {
                try channel.pipeline.syncOperations.addHandler(readCounter)
            }
            try channel.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(FastCGIRecordDecoder()),
                FastCGIWorkerChannelHandler(
                    limits: .init(maxRequests: 8, maxParamsBytes: 1 << 16, roles: Set(roles.keys), values: [:]),
                    responders: roles,
                    bodyLowWatermark: 1,
                    bodyHighWatermark: 2,
                    logger: .init(label: "test")
                )
            )
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000))
        return channel
    }

    /// Reads records until request `id` got its END_REQUEST.
    private func response(_ id: UInt16, from channel: NIOAsyncTestingChannel) async throws -> CollectedResponse {
        var decoder = FastCGIRecordDecoder()
        var pending = ByteBuffer()
        var response = CollectedResponse()
        while response.end == nil {
            var written = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            pending.writeBuffer(&written)
            while let record = try decoder.decode(buffer: &pending) {
                #expect(record.requestID == id)
                try response.add(record)
            }
        }
        return response
    }

    @Test func echoesParamsAndBody() async throws {
        let channel = try await self.makeChannel(EchoResponder())
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1, params: [("REQUEST_METHOD", "POST")], body: "hello body")
        try await channel.writeInbound(request)
        let response = try await self.response(1, from: channel)
        #expect(response.text == "Status: 201 Created\r\nX-Method: POST\r\n\r\nhello body")
        #expect(response.stdoutEnded)
        #expect(response.end == FastCGIEndRequestBody(appStatus: 3, protocolStatus: 0))
        #expect(channel.isActive)
    }

    @Test func aThrowingResponderGets500() async throws {
        struct Boom: Error {}
        let channel = try await self.makeChannel(ClosureResponder { _, _ in throw Boom() })
        var request = ByteBuffer()
        request.writeWholeRequest(id: 4)
        try await channel.writeInbound(request)
        let response = try await self.response(4, from: channel)
        #expect(response.text.hasPrefix("Status: 500 Internal Server Error\r\n"))
        #expect(response.end?.appStatus == 1)
    }

    @Test func aResponderThatWritesNothingGetsABare200() async throws {
        let channel = try await self.makeChannel(ClosureResponder { _, _ in })
        var request = ByteBuffer()
        request.writeWholeRequest(id: 2)
        try await channel.writeInbound(request)
        let response = try await self.response(2, from: channel)
        #expect(response.text == "Status: 200 OK\r\n\r\n")
        #expect(response.end?.appStatus == 0)
    }

    @Test func headerInjectionIsRejected() async throws {
        let outcome = Counter()
        let channel = try await self.makeChannel(
            ClosureResponder { _, writer in
                do {
                    try await writer.writeHead(headers: [("X", "a\r\nSet-Cookie: evil")])
                } catch FastCGIWorkerError.invalidHeader {
                    await outcome.add(1)
                }
            }
        )
        var request = ByteBuffer()
        request.writeWholeRequest(id: 2)
        try await channel.writeInbound(request)
        let response = try await self.response(2, from: channel)
        #expect(response.text == "Status: 200 OK\r\n\r\n")
        #expect(await outcome.value == 1)
    }

    @Test func writerWaitsWhileTheChannelIsNotWritable() async throws {
        let written = Counter()
        let channel = try await self.makeChannel(
            ClosureResponder { _, writer in
                try await writer.writeHead()
                await written.add(1)
                // Three records' worth: the writer must wait after the first record.
                try await writer.write(ByteBuffer(repeating: 0x61, count: 3 * 65528))
                await written.add(1)
            }
        )
        channel.isWritable = false
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1)
        try await channel.writeInbound(request)
        try await Task.sleep(for: .milliseconds(100))
        // Not even the head went out: the channel was never writable.
        #expect(await written.value == 0)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        try await Task.sleep(for: .milliseconds(50))
        #expect(await written.value >= 1)
        let response = try await self.response(1, from: channel)
        #expect(response.body.utf8.count == 3 * 65528)
        #expect(await written.value == 2)
    }

    @Test func largeWritesAreSplitIntoAlignedRecords() async throws {
        let channel = try await self.makeChannel(
            ClosureResponder { _, writer in
                try await writer.writeHead()
                try await writer.write(ByteBuffer(repeating: 0x62, count: 65528 * 2 + 5))
            }
        )
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1)
        try await channel.writeInbound(request)
        var decoder = FastCGIRecordDecoder()
        var pending = ByteBuffer()
        var stdoutSizes: [Int] = []
        var ended = false
        while !ended {
            var written = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            pending.writeBuffer(&written)
            while let record = try decoder.decode(buffer: &pending) {
                if record.recordType == .stdout { stdoutSizes.append(record.content.readableBytes) }
                if record.recordType == .endRequest { ended = true }
            }
        }
        // Head record, two full records, the 5-byte tail, the empty end-of-stream record.
        #expect(stdoutSizes == [18, 65528, 65528, 5, 0])
    }

    @Test func abortCancelsTheHandlerTask() async throws {
        let started = Signal()
        let cancelled = Signal()
        let channel = try await self.makeChannel(
            ClosureResponder { _, writer in
                await started.fire()
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch is CancellationError {
                    await cancelled.fire()
                }
                // Writing after the abort must fail rather than reach the wire.
                await #expect(throws: FastCGIWorkerError.requestClosed) { try await writer.write("late") }
            }
        )
        var request = ByteBuffer()
        request.writeWholeRequest(id: 7)
        try await channel.writeInbound(request)
        await started.wait()
        var abort = ByteBuffer()
        abort.writeFastCGIAbortRequest(requestID: 7)
        try await channel.writeInbound(abort)
        let response = try await self.response(7, from: channel)
        #expect(response.stdout.readableBytes == 0)
        #expect(response.end == FastCGIEndRequestBody(appStatus: 0, protocolStatus: 0))
        await cancelled.wait()
    }

    @Test func closingTheConnectionCancelsHandlers() async throws {
        let started = Signal()
        let cancelled = Signal()
        let channel = try await self.makeChannel(
            ClosureResponder { request, _ in
                await started.fire()
                do {
                    for try await _ in request.body {}
                } catch {
                    #expect(Task.isCancelled)
                    await cancelled.fire()
                }
            }
        )
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1, body: nil)
        try await channel.writeInbound(request)
        await started.wait()
        try await channel.close()
        await cancelled.wait()
    }

    @Test func slowBodyConsumerStopsReading() async throws {
        let counter = ReadCounter()
        let gate = Signal()
        let received = Counter()
        let channel = try await self.makeChannel(
            ClosureResponder { request, writer in
                await gate.wait()
                for try await chunk in request.body {
                    await received.add(chunk.readableBytes)
                }
                try await writer.finish()
            },
            readCounter: counter
        )
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1, body: nil)
        for _ in 0..<4 {
            request.writeFastCGIStream(type: .stdin, requestID: 1, content: ByteBuffer(string: "0123456789"))
        }
        try await channel.writeInbound(request)
        let readsBefore = try await channel.testingEventLoop.submit { counter.reads }.get()
        channel.read()
        // Four records buffered against a high watermark of two: the read is held back.
        let readsWhilePaused = try await channel.testingEventLoop.submit { counter.reads }.get()
        #expect(readsWhilePaused == readsBefore)
        await gate.fire()
        var end = ByteBuffer()
        end.writeFastCGIStreamEnd(type: .stdin, requestID: 1)
        let resumed = try await Self.eventually {
            try await channel.testingEventLoop.submit { counter.reads }.get() > readsBefore
        }
        #expect(resumed)
        try await channel.writeInbound(end)
        _ = try await self.response(1, from: channel)
        #expect(await received.value == 40)
    }

    @Test func authorizerAllowsWithVariables() async throws {
        struct Allow: FastCGIAuthorizer {
            func authorize(_ request: FastCGIRequest) async throws -> FastCGIAuthorization {
                request.params["REMOTE_USER"] == "alice" ? .allow(variables: [("USER_ID", "42")]) : .deny()
            }
        }
        let channel = try await self.makeChannel(EchoResponder(), authorizer: Allow())
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1, params: [("REMOTE_USER", "alice")], body: nil, role: .authorizer)
        request.writeWholeRequest(id: 2, params: [("REMOTE_USER", "mallory")], body: nil, role: .authorizer)
        try await channel.writeInbound(request)
        var decoder = FastCGIRecordDecoder()
        var pending = ByteBuffer()
        var responses: [UInt16: CollectedResponse] = [:]
        while responses.values.filter({ $0.end != nil }).count < 2 {
            var written = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            pending.writeBuffer(&written)
            while let record = try decoder.decode(buffer: &pending) {
                try responses[record.requestID, default: CollectedResponse()].add(record)
            }
        }
        #expect(responses[1]?.text == "Status: 200 OK\r\nVariable-USER_ID: 42\r\n\r\n")
        #expect(responses[2]?.text == "Status: 403 Forbidden\r\n\r\n")
    }

    @Test func malformedInputClosesTheConnection() async throws {
        let channel = try await self.makeChannel(EchoResponder())
        try await channel.writeInbound(ByteBuffer(bytes: [9, 9, 9, 9, 9, 9, 9, 9]))
        try await channel.closeFuture.get()
    }

    /// Polls `condition` for up to a second.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<100 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
