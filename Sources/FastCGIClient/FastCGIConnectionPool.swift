import FastCGI
import NIOCore
import NIOPosix

/// The keep-alive connections of one backend pool on one event loop.
///
/// One instance per (pool, event loop): the front-end channel and its backend channels share a
/// thread, so nothing here needs a lock. Limits, queueing, multiplexing and failover build on this
/// in a later step; for now it reuses idle connections and opens new ones on demand.
public final class FastCGIConnectionPool {
    public struct Settings: Sendable {
        public var backends: [SocketAddress]
        /// Send FCGI_KEEP_CONN and reuse connections.
        public var keepalive: Bool
        /// Idle connections kept per backend.
        public var maxIdlePerBackend: Int
        public var connectTimeout: TimeAmount

        public init(backends: [SocketAddress], keepalive: Bool, maxIdlePerBackend: Int, connectTimeout: TimeAmount) {
            self.backends = backends
            self.keepalive = keepalive
            self.maxIdlePerBackend = maxIdlePerBackend
            self.connectTimeout = connectTimeout
        }
    }

    public let eventLoop: any EventLoop
    public let settings: Settings
    private var idle: [[FastCGIConnection]]
    private var nextBackend = 0

    public init(settings: Settings, eventLoop: any EventLoop) {
        precondition(!settings.backends.isEmpty, "a pool needs a backend")
        self.settings = settings
        self.eventLoop = eventLoop
        self.idle = Array(repeating: [], count: settings.backends.count)
    }

    /// Idle connections right now (for tests and metrics).
    public var idleCount: Int { idle.reduce(0) { $0 + $1.count } }

    /// Hands out an idle connection, or connects a new one, and calls `completion` on this loop.
    ///
    /// `reused` tells whether the connection carried earlier requests: such a one may turn out to
    /// have been closed by the backend meanwhile, which makes a retry of a body-less request safe.
    /// A callback rather than a future: the idle path then allocates nothing.
    public func lease(_ completion: @escaping (Result<(connection: FastCGIConnection, reused: Bool), BackendError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        let index = nextBackend
        nextBackend = (nextBackend + 1) % settings.backends.count
        // Most recently used first: it is the one least likely to have been closed meanwhile.
        while let connection = idle[index].popLast() {
            if connection.isReusable {
                completion(.success((connection, true)))
                return
            }
        }
        connect(backendIndex: index) { result in
            completion(result.map { ($0, false) })
        }
    }

    /// Gives a connection back after END_REQUEST. Unusable ones are closed.
    public func release(_ connection: FastCGIConnection) {
        eventLoop.preconditionInEventLoop()
        guard settings.keepalive, connection.isReusable,
            idle[connection.backendIndex].count < settings.maxIdlePerBackend
        else {
            connection.close()
            return
        }
        idle[connection.backendIndex].append(connection)
    }

    /// Closes every idle connection (shutdown).
    public func closeIdle() {
        let all = idle.flatMap { $0 }
        idle = Array(repeating: [], count: settings.backends.count)
        for connection in all { connection.close() }
    }

    private func connect(backendIndex: Int, _ completion: @escaping (Result<FastCGIConnection, BackendError>) -> Void) {
        let address = settings.backends[backendIndex]
        var bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(settings.connectTimeout)
        if case .unixDomainSocket = address {
        } else {
            // Records are small and latency-bound: never wait for Nagle.
            bootstrap = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
        }
        bootstrap = bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(
                    ByteToMessageHandler(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20),
                    FastCGIConnection(backendIndex: backendIndex)
                )
            }
        }
        bootstrap.connect(to: address).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let connection = try channel.pipeline.syncOperations.handler(type: FastCGIConnection.self)
                    connection.onClose = { [weak self] closed in
                        self?.forget(closed)
                    }
                    completion(.success(connection))
                } catch {
                    channel.close(promise: nil)
                    completion(.failure(.connectFailed("\(address): \(error)")))
                }
            case .failure(let error):
                if let channelError = error as? ChannelError, case .connectTimeout = channelError {
                    completion(.failure(.connectTimeout))
                } else {
                    completion(.failure(.connectFailed("\(address): \(error)")))
                }
            }
        }
    }

    private func forget(_ connection: FastCGIConnection) {
        idle[connection.backendIndex].removeAll { $0 === connection }
    }
}

@available(*, unavailable)
extension FastCGIConnectionPool: Sendable {}
