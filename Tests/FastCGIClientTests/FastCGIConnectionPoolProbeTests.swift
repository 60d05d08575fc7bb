import FastCGI
import NIOCore
import NIOPosix
import Testing

@testable import FastCGIClient

/// Answers FCGI_GET_VALUES after `delay` and nothing else: requests sent to it never end, so the
/// slots the pool hands out stay taken for the whole test.
private final class SlowGetValuesBackend: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundOut = ByteBuffer

    let delay: TimeAmount
    let values: [(name: String, value: String)]

    init(delay: TimeAmount, values: [(name: String, value: String)]) {
        self.delay = delay
        self.values = values
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard unwrapInboundIn(data).recordType == .getValues else { return }
        var answer = context.channel.allocator.buffer(capacity: 64)
        answer.writeFastCGIGetValuesResult(values)
        context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)
        }
    }
}

private struct NotGranted: Error, CustomStringConvertible {
    var description: String
}

/// The pool against a real socket: `multiplex = auto` learns the backend's capacity on a probe
/// connection of its own, which answers after the first real connection is in use.
@Suite struct FastCGIConnectionPoolProbeTests {
    /// Leases `count` slots from a one-connection pool in front of a backend that answers
    /// GET_VALUES with `values` after 100 ms; returns (connection id, its capacity) per grant,
    /// or throws once `within` passed without all of them.
    private func leases(
        _ count: Int,
        values: [(name: String, value: String)],
        within: TimeAmount
    ) async throws -> [(id: Int, capacity: Int)] {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(FastCGIRecordDecoder()),
                        SlowGetValuesBackend(delay: .milliseconds(100), values: values)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let address = try #require(server.localAddress)
        let granted = loop.makePromise(of: [(id: Int, capacity: Int)].self)
        let pool = try await loop.submit {
            let settings = FastCGIConnectionPool.Settings(
                backends: [address],
                backendSettings: [FastCGIPoolStateMachine.BackendSettings(maxConnections: 1)],
                pool: FastCGIPoolStateMachine.PoolSettings(queueTimeout: .seconds(10)),
                connectTimeout: .seconds(2),
                multiplex: .auto(maxRequests: 16)
            )
            let pool = FastCGIConnectionPool(settings: settings, eventLoop: loop)
            var seen: [(id: Int, capacity: Int)] = []
            var done = false
            for _ in 0..<count {
                _ = pool.lease { result in
                    guard !done else { return }
                    guard case .success(let connection) = result else {
                        done = true
                        granted.fail(NotGranted(description: "lease failed: \(result)"))
                        return
                    }
                    seen.append((connection.id, connection.capacity))
                    if seen.count == count {
                        done = true
                        granted.succeed(seen)
                    }
                }
            }
            loop.assumeIsolated().scheduleTask(in: within) {
                guard !done else { return }
                done = true
                granted.fail(NotGranted(description: "\(seen.count) of \(count) leases granted within \(within)"))
            }
            return NIOLoopBound(pool, eventLoop: loop)
        }.get()
        let outcome: Result<[(id: Int, capacity: Int)], any Error>
        do {
            outcome = .success(try await granted.futureResult.get())
        } catch {
            outcome = .failure(error)
        }
        try await loop.submit { pool.value.shutdown() }.get()
        try await server.close()
        try await group.shutdownGracefully()
        return try outcome.get()
    }

    @Test func aMultiplexingAnswerRaisesTheConnectionAlreadyInUse() async throws {
        let granted = try await leases(
            3,
            values: [(FastCGIConstants.mpxsConns, "1"), (FastCGIConstants.maxReqs, "8")],
            within: .seconds(3)
        )
        // One connection (max 1) carries all three at once; its capacity is the backend's
        // FCGI_MAX_REQS (8), below our 16.
        #expect(granted.map(\.id) == [0, 0, 0])
        #expect(granted.last?.capacity == 8)
    }

    @Test func aBackendThatDoesNotMultiplexKeepsOneRequestPerConnection() async throws {
        await #expect(throws: NotGranted.self) {
            _ = try await leases(2, values: [(FastCGIConstants.mpxsConns, "0")], within: .milliseconds(500))
        }
    }
}
