import FastCGI
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A well-behaved FastCGI responder on a Unix socket that records when each connection was
/// accepted and when the other side closed it: what ``ScriptedFastCGIBackend`` does not tell.
/// Every request is answered at once with `X-Backend: <name>` and the body "ok".
///
/// With `resetReusedConnections` (TCP only) it aborts a connection (SO_LINGER 0: RST, so the
/// proxy's read fails with ECONNRESET instead of seeing EOF) when a second request arrives on
/// it, before answering: PHP-FPM's worker-exit race as it looks when the request bytes were
/// already in the dying worker's socket.
final class PoolWatchedBackend: Sendable {
    struct Connection: Sendable {
        var accepted: ContinuousClock.Instant
        /// When the channel went inactive (the proxy closed it), nil while open.
        var closed: ContinuousClock.Instant?
        var requests = 0
        /// When the last response was written.
        var lastAnswered: ContinuousClock.Instant?
        /// Aborted with RST instead of answering a second request.
        var reset = false
    }

    let name: String
    let socketPath: String
    let tcp: Bool
    let resetReusedConnections: Bool
    private let port = Mutex<Int?>(nil)
    private let dir: TempDir
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let state = Mutex<[Connection]>([])
    private let channel = Mutex<(any Channel)?>(nil)

    private init(name: String, tcp: Bool, resetReusedConnections: Bool) throws {
        self.name = name
        self.tcp = tcp
        self.resetReusedConnections = resetReusedConnections
        dir = try TempDir("fcgiproxy-watched")
        socketPath = dir.file("backend.sock")
    }

    static func start(
        name: String = "watched",
        tcp: Bool = false,
        resetReusedConnections: Bool = false
    ) async throws -> PoolWatchedBackend {
        let backend = try PoolWatchedBackend(name: name, tcp: tcp, resetReusedConnections: resetReusedConnections)
        do {
            let bootstrap = ServerBootstrap(group: backend.group)
                .childChannelInitializer { [backend] channel in
                    let index = backend.state.withLock { connections in
                        connections.append(Connection(accepted: .now))
                        return connections.count - 1
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20),
                            WatchedConnectionHandler(backend: backend, index: index)
                        )
                    }
                }
            let server: any Channel
            if tcp {
                server = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
                backend.port.withLock { $0 = server.localAddress?.port }
            } else {
                server = try await bootstrap.bind(unixDomainSocketPath: backend.socketPath, cleanupExistingSocketFile: true)
                    .get()
            }
            backend.channel.withLock { $0 = server }
        } catch {
            try? await backend.group.shutdownGracefully()
            throw error
        }
        return backend
    }

    var backendAddress: String {
        tcp ? "127.0.0.1:\(port.withLock { $0 } ?? 0)" : "unix:" + socketPath
    }

    /// Connections aborted with RST (`resetReusedConnections`).
    var resets: Int { state.withLock { $0.filter(\.reset).count } }

    var connections: [Connection] { state.withLock { $0 } }

    fileprivate func update(_ index: Int, _ change: (inout Connection) -> Void) {
        state.withLock { change(&$0[index]) }
    }

    func stop() async {
        let server = channel.withLock { $0 }
        try? await server?.close()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: dir.path)
    }
}

private final class WatchedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundOut = ByteBuffer

    private let backend: PoolWatchedBackend
    private let index: Int
    private var answered = 0

    init(backend: PoolWatchedBackend, index: Int) {
        self.backend = backend
        self.index = index
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if record.recordType == .beginRequest, answered > 0, backend.resetReusedConnections {
            backend.update(index) { $0.reset = true }
            let channel = context.channel
            if let options = channel as? any SocketOptionProvider {
                options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
            return
        }
        guard record.recordType == .stdin, record.content.readableBytes == 0 else { return }
        let id = record.requestID
        var buffer = context.channel.allocator.buffer(capacity: 128)
        let text = "Content-Type: text/plain\r\nX-Backend: \(backend.name)\r\n\r\nok"
        buffer.writeFastCGIStream(type: .stdout, requestID: id, content: ByteBuffer(string: text))
        buffer.writeFastCGIStreamEnd(type: .stdout, requestID: id)
        buffer.writeFastCGIEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        answered += 1
        backend.update(index) {
            $0.requests += 1
            $0.lastAnswered = .now
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        backend.update(index) { $0.closed = .now }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
