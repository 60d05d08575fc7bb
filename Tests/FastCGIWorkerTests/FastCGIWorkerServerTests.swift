import FastCGI
import Glibc
import NIOCore
import NIOPosix
import Testing

@testable import FastCGIWorker

/// A raw FastCGI client: our codec on a plain NIO channel.
private typealias ClientChannel = NIOAsyncChannel<FastCGIRecord, ByteBuffer>

private func connect(to address: SocketAddress) async throws -> ClientChannel {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address) { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FastCGIRecordDecoder()))
            return try ClientChannel(wrappingChannelSynchronously: channel)
        }
    }
}

/// A fresh socket path in a private temporary directory.
private func temporarySocketPath() -> String {
    var template = Array("/tmp/fcgiworker-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return directory + "/worker.sock"
}

/// Waits until `count` tasks arrived, so a test can prove requests run at the same time.
private actor Barrier {
    private let count: Int
    private var arrived = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arriveAndWait() async {
        self.arrived += 1
        if self.arrived >= self.count {
            for waiter in self.waiters { waiter.resume() }
            self.waiters = []
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }
}

@Suite(.timeLimit(.minutes(1))) struct FastCGIWorkerServerTests {
    @Test func multiplexesFiftyRequestsAndAbortsOne() async throws {
        let path = temporarySocketPath()
        let barrier = Barrier(count: 50)
        let victimStarted = Signal()
        let victimCancelled = Signal()
        let responder = EchoingResponder(barrier: barrier, victimStarted: victimStarted, victimCancelled: victimCancelled)
        let server = FastCGIWorkerServer(
            configuration: .init(listen: .unix(path: path), webServerAddresses: nil),
            responder: responder
        )
        try await server.start()

        let client = try await connect(to: SocketAddress(unixDomainSocketPath: path))
        try await client.executeThenClose { inbound, outbound in
            // Open all requests first, then send the bodies round-robin: the worker sees them interleaved.
            var opening = ByteBuffer()
            for id in UInt16(1)...50 {
                opening.writeWholeRequest(id: id, params: [("REQUEST_ID", "\(id)")], body: nil)
            }
            opening.writeWholeRequest(id: 99, params: [("REQUEST_ID", "victim")], body: nil)
            opening.writeFastCGIStream(type: .stdin, requestID: 99, content: ByteBuffer(string: "partial"))
            try await outbound.write(opening)
            for part in 0..<3 {
                var bodies = ByteBuffer()
                for id in UInt16(1)...50 {
                    bodies.writeFastCGIStream(type: .stdin, requestID: id, content: ByteBuffer(string: "<\(id)-\(part)>"))
                }
                try await outbound.write(bodies)
            }
            var ends = ByteBuffer()
            for id in UInt16(1)...50 {
                ends.writeFastCGIStreamEnd(type: .stdin, requestID: id)
            }
            try await outbound.write(ends)
            await victimStarted.wait()
            var abort = ByteBuffer()
            abort.writeFastCGIAbortRequest(requestID: 99)
            try await outbound.write(abort)

            var responses: [UInt16: CollectedResponse] = [:]
            var ended = 0
            for try await record in inbound {
                try responses[record.requestID, default: CollectedResponse()].add(record)
                if record.recordType == .endRequest {
                    ended += 1
                    if ended == 51 { break }
                }
            }
            for id in UInt16(1)...50 {
                let response = try #require(responses[id])
                #expect(response.body == "id=\(id) body=<\(id)-0><\(id)-1><\(id)-2>")
                #expect(response.end == FastCGIEndRequestBody(appStatus: 0, protocolStatus: 0))
            }
            #expect(responses[99]?.stdout.readableBytes == 0)
            #expect(responses[99]?.end == FastCGIEndRequestBody(appStatus: 0, protocolStatus: 0))
        }
        await victimCancelled.wait()
        await server.stop(gracePeriod: .seconds(1))
    }

    @Test func slowReaderKeepsTheWriterSuspended() async throws {
        let path = temporarySocketPath()
        let written = Counter()
        let total = 50 * 1024 * 1024
        let server = FastCGIWorkerServer(
            configuration: .init(listen: .unix(path: path), webServerAddresses: nil),
            responder: BulkResponder(total: total, written: written)
        )
        try await server.start()
        let client = try await connect(to: SocketAddress(unixDomainSocketPath: path))
        try await client.executeThenClose { inbound, outbound in
            var request = ByteBuffer()
            request.writeWholeRequest(id: 1)
            try await outbound.write(request)
            // Read nothing for a while: the responder must stall after a bounded amount.
            try await Task.sleep(for: .milliseconds(500))
            let stalledAt = await written.value
            try await Task.sleep(for: .milliseconds(200))
            #expect(await written.value == stalledAt)
            // One 1 MiB chunk is in the worker; the rest waits. Generous for socket buffers of other kernels.
            #expect(stalledAt < 4 * 1024 * 1024, "responder got \(stalledAt) bytes out with nobody reading")

            var received = 0
            for try await record in inbound {
                if record.recordType == .stdout { received += record.content.readableBytes }
                if record.recordType == .endRequest { break }
            }
            #expect(received == total + CGIResponseHead.defaultHead.readableBytes)
        }
        #expect(await written.value == total)
        await server.stop(gracePeriod: .seconds(1))
    }

    @Test func gracefulStopLetsRunningRequestsFinish() async throws {
        let path = temporarySocketPath()
        let started = Signal()
        let server = FastCGIWorkerServer(
            configuration: .init(listen: .unix(path: path), webServerAddresses: nil),
            responder: SlowResponder(started: started)
        )
        try await server.start()
        let client = try await connect(to: SocketAddress(unixDomainSocketPath: path))
        try await client.executeThenClose { inbound, outbound in
            var request = ByteBuffer()
            request.writeWholeRequest(id: 1)
            try await outbound.write(request)
            await started.wait()
            async let stopped: Void = server.stop(gracePeriod: .seconds(10))
            var response = CollectedResponse()
            for try await record in inbound {
                try response.add(record)
            }
            // The request completed, then the idle connection was closed (the loop above ended).
            #expect(response.body == "done")
            #expect(response.end?.protocolStatus == 0)
            await stopped
        }
        await #expect(throws: (any Error).self) { _ = try await connect(to: SocketAddress(unixDomainSocketPath: path)) }
    }

    @Test func stopDeadlineCancelsStragglers() async throws {
        let path = temporarySocketPath()
        let started = Signal()
        let server = FastCGIWorkerServer(
            configuration: .init(listen: .unix(path: path), webServerAddresses: nil),
            responder: SlowResponder(started: started, delay: .seconds(60))
        )
        try await server.start()
        let client = try await connect(to: SocketAddress(unixDomainSocketPath: path))
        var request = ByteBuffer()
        request.writeWholeRequest(id: 1)
        try await client.channel.writeAndFlush(request)
        await started.wait()
        let clock = ContinuousClock()
        let elapsed = await clock.measure { await server.stop(gracePeriod: .milliseconds(200)) }
        #expect(elapsed < .seconds(5))
        try await client.channel.closeFuture.get()
    }

    @Test func cancellingRunStopsTheServer() async throws {
        let server = FastCGIWorkerServer(
            configuration: .init(listen: .tcp(host: "127.0.0.1", port: 0), webServerAddresses: nil),
            responder: SlowResponder(started: Signal())
        )
        let running = Task { try await server.run() }
        #expect(try await FastCGIWorkerChannelHandlerTests.eventually { server.localAddress != nil })
        running.cancel()
        try await running.value
        await #expect(throws: (any Error).self) { _ = try await connect(to: try #require(server.localAddress)) }
    }

    @Test func tcpAllowListAndGetValues() async throws {
        let allowed = FastCGIWorkerServer(
            configuration: .init(listen: .tcp(host: "127.0.0.1", port: 0), maxConnections: 3, webServerAddresses: ["127.0.0.1"]),
            responder: SlowResponder(started: Signal())
        )
        try await allowed.start()
        let client = try await connect(to: try #require(allowed.localAddress))
        try await client.executeThenClose { inbound, outbound in
            var query = ByteBuffer()
            query.writeFastCGIGetValues(names: [FastCGIConstants.maxConns, FastCGIConstants.maxReqs, FastCGIConstants.mpxsConns])
            try await outbound.write(query)
            var iterator = inbound.makeAsyncIterator()
            let answer = try #require(try await iterator.next())
            #expect(answer.recordType == .getValuesResult)
            let pairs = try FastCGINameValuePairs.parse(answer.content).map { "\(String(buffer: $0.name))=\(String(buffer: $0.value))" }
            #expect(pairs == ["FCGI_MAX_CONNS=3", "FCGI_MAX_REQS=384", "FCGI_MPXS_CONNS=1"])
        }
        await allowed.stop(gracePeriod: .zero)

        let refusing = FastCGIWorkerServer(
            configuration: .init(listen: .tcp(host: "127.0.0.1", port: 0), webServerAddresses: ["10.9.8.7"]),
            responder: SlowResponder(started: Signal())
        )
        try await refusing.start()
        let refused = try await connect(to: try #require(refusing.localAddress))
        // The worker closes the connection without reading from it.
        try await refused.channel.closeFuture.get()
        await refusing.stop(gracePeriod: .zero)
    }
}

/// Echoes its REQUEST_ID and body once all 50 echo requests are running; the "victim" waits for a body
/// that never ends.
private struct EchoingResponder: FastCGIResponder {
    let barrier: Barrier
    let victimStarted: Signal
    let victimCancelled: Signal

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let id = request.params["REQUEST_ID"] ?? "?"
        if id == "victim" {
            await self.victimStarted.fire()
            do {
                _ = try await request.body.collect(upTo: 1 << 20)
            } catch {
                if Task.isCancelled { await self.victimCancelled.fire() }
                throw error
            }
            return
        }
        let body = try await request.body.collect(upTo: 1 << 20)
        await self.barrier.arriveAndWait()
        try await writer.writeHead(headers: [("Content-Type", "text/plain")])
        try await writer.write("id=\(id) body=")
        try await writer.write(body)
    }
}

/// Writes `total` bytes in 1 MiB chunks, counting what the writer accepted.
private struct BulkResponder: FastCGIResponder {
    let total: Int
    let written: Counter

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let chunk = ByteBuffer(repeating: 0x7a, count: 1 << 20)
        var sent = 0
        while sent < self.total {
            let piece = chunk.getSlice(at: 0, length: min(chunk.readableBytes, self.total - sent))!
            try await writer.write(piece)
            sent += piece.readableBytes
            await self.written.add(piece.readableBytes)
        }
    }
}

/// Takes `delay` before answering "done".
private struct SlowResponder: FastCGIResponder {
    let started: Signal
    var delay: Duration = .milliseconds(300)

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        await self.started.fire()
        try await Task.sleep(for: self.delay)
        try await writer.write("done")
    }
}
