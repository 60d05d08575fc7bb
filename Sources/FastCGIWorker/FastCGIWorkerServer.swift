#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import FastCGI
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A FastCGI application server: accepts connections from a web server and runs a ``FastCGIResponder``
/// (and/or a ``FastCGIAuthorizer``) for each request, concurrently, with requests multiplexed on a
/// connection when the web server does that.
///
/// ```swift
/// struct Hello: FastCGIResponder {
///     func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
///         try await writer.writeHead(status: 200, headers: [("Content-Type", "text/plain")])
///         try await writer.write("Hello, \(request.params["REMOTE_ADDR"] ?? "stranger")\n")
///     }
/// }
/// let server = FastCGIWorkerServer(configuration: .init(listen: .standardInput), responder: Hello())
/// try await server.run()
/// ```
public final class FastCGIWorkerServer: Sendable {
    private struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<FastCGIWorkerChannelHandler>
    }

    private enum Phase {
        case idle
        /// Binding; `stopRequested` holds the grace period of a `stop` that came meanwhile.
        case starting(stopRequested: Duration?)
        case running(any Channel)
        case stopping
        case stopped
    }

    private struct State {
        var phase: Phase = .idle
        var connections: [ObjectIdentifier: Connection] = [:]
        var localAddress: SocketAddress?
    }

    /// A connection refused at accept (full, or a peer outside `FCGI_WEB_SERVER_ADDRS`).
    private struct ConnectionRefused: Error {}

    private let configuration: FastCGIWorkerConfiguration
    private let responders: [FastCGIRole: any FastCGIResponder]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let addressFilter: WebServerAddressFilter
    private let state = NIOLockedValueBox(State())
    private let stopped: EventLoopPromise<Void>

    /// Creates a server for the Responder role.
    /// - Parameters:
    ///   - configuration: Where to listen and the limits.
    ///   - responder: Answers each request.
    ///   - group: The event loops connections run on.
    ///   - logger: Receives refused connections, protocol violations and handler errors.
    public convenience init(
        configuration: FastCGIWorkerConfiguration,
        responder: some FastCGIResponder,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "FastCGIWorker")
    ) {
        self.init(configuration: configuration, responders: [.responder: responder], group: group, logger: logger)
    }

    /// Creates a server for the Authorizer role, and for the Responder role too if `responder` is given.
    /// - Parameters:
    ///   - configuration: Where to listen and the limits.
    ///   - authorizer: Decides each Authorizer request.
    ///   - responder: Answers Responder requests; without it they get `FCGI_UNKNOWN_ROLE`.
    ///   - group: The event loops connections run on.
    ///   - logger: Receives refused connections, protocol violations and handler errors.
    public convenience init(
        configuration: FastCGIWorkerConfiguration,
        authorizer: some FastCGIAuthorizer,
        responder: (any FastCGIResponder)? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "FastCGIWorker")
    ) {
        var responders: [FastCGIRole: any FastCGIResponder] = [.authorizer: FastCGIAuthorizerResponder(authorizer: authorizer)]
        responders[.responder] = responder
        self.init(configuration: configuration, responders: responders, group: group, logger: logger)
    }

    private init(
        configuration: FastCGIWorkerConfiguration,
        responders: [FastCGIRole: any FastCGIResponder],
        group: any EventLoopGroup,
        logger: Logger
    ) {
        self.configuration = configuration
        self.responders = responders
        self.group = group
        self.logger = logger
        self.addressFilter = WebServerAddressFilter(addresses: configuration.webServerAddresses)
        self.stopped = group.any().makePromise(of: Void.self)
        if !self.addressFilter.invalidEntries.isEmpty {
            logger.warning(
                "ignoring FCGI_WEB_SERVER_ADDRS entries that are not IP addresses",
                metadata: ["entries": "\(self.addressFilter.invalidEntries)"]
            )
        }
    }

    deinit {
        // A server dropped without being started still owns an unfulfilled promise, which NIO reports as a leak.
        if case .idle = self.state.withLockedValue({ $0.phase }) {
            self.stopped.succeed()
        }
    }

    /// The address the server listens on once started (with the actual port for `.tcp(port: 0)`).
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.localAddress }
    }

    /// Starts listening and returns; connections are served in the background until ``stop(gracePeriod:)``.
    /// - Throws: ``FastCGIWorkerError/alreadyStarted``, or the error binding (or adopting) the socket.
    public func start() async throws {
        try self.state.withLockedValue { state in
            guard case .idle = state.phase else { throw FastCGIWorkerError.alreadyStarted }
            state.phase = .starting(stopRequested: nil)
        }
        let channel: any Channel
        do {
            channel = try await self.bind()
        } catch {
            self.state.withLockedValue { $0.phase = .stopped }
            self.stopped.succeed()
            throw error
        }
        let stopRequested = self.state.withLockedValue { state -> Duration? in
            state.localAddress = channel.localAddress
            guard case .starting(let stopRequested) = state.phase else { return nil }
            state.phase = stopRequested == nil ? .running(channel) : .stopping
            return stopRequested
        }
        if let gracePeriod = stopRequested {
            await self.shutDown(serverChannel: channel, gracePeriod: gracePeriod)
        }
    }

    /// Starts the server if needed and serves until ``stop(gracePeriod:)`` completes.
    ///
    /// Cancelling the calling task stops the server at once: connections close and their requests' tasks
    /// are cancelled. Use ``stop(gracePeriod:)`` to let running requests finish.
    public func run() async throws {
        let needsStart = self.state.withLockedValue { state in
            if case .idle = state.phase { return true }
            return false
        }
        if needsStart {
            try await self.start()
        }
        try await withTaskCancellationHandler {
            try await self.stopped.futureResult.get()
        } onCancel: {
            Task { await self.stop(gracePeriod: .zero) }
        }
    }

    /// Stops accepting connections, lets running requests finish for up to `gracePeriod`, then closes
    /// what is left (cancelling those requests' tasks). Returns once every connection is closed.
    ///
    /// Meanwhile connections refuse new requests with `FCGI_OVERLOADED` and close as soon as they are idle.
    public func stop(gracePeriod: Duration) async {
        let serverChannel = self.state.withLockedValue { state -> (any Channel)? in
            switch state.phase {
            case .idle:
                state.phase = .stopped
                self.stopped.succeed()
                return nil
            case .starting:
                state.phase = .starting(stopRequested: gracePeriod)
                return nil
            case .running(let channel):
                state.phase = .stopping
                return channel
            case .stopping, .stopped:
                return nil
            }
        }
        if let serverChannel {
            await self.shutDown(serverChannel: serverChannel, gracePeriod: gracePeriod)
        }
        try? await self.stopped.futureResult.get()
    }

    // MARK: - Listening

    private func bind() async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: Int32(clamping: self.configuration.backlog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Larger than NIO's 32/64 KiB default so a few full 64 KiB records fit between writability changes.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .childChannelInitializer { [self] channel in
                self.initializeConnection(channel)
            }
        switch self.configuration.listen {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        case .inheritedSocket(let descriptor):
            return try await bootstrap.withBoundSocket(descriptor).get()
        }
    }

    private func initializeConnection(_ channel: any Channel) -> EventLoopFuture<Void> {
        guard self.addressFilter.allows(channel.remoteAddress) else {
            self.logger.warning(
                "refusing connection from an address not in FCGI_WEB_SERVER_ADDRS",
                metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"]
            )
            return channel.eventLoop.makeFailedFuture(ConnectionRefused())
        }
        return channel.eventLoop.makeCompletedFuture {
            let handler = FastCGIWorkerChannelHandler(
                limits: .init(
                    maxRequests: self.configuration.maxRequestsPerConnection,
                    maxParamsBytes: self.configuration.maxParamsBytes,
                    roles: Set(self.responders.keys),
                    values: self.configuration.managementValues
                ),
                responders: self.responders,
                bodyLowWatermark: self.configuration.bodyLowWatermark,
                bodyHighWatermark: self.configuration.bodyHighWatermark,
                logger: self.logger
            )
            let connection = Connection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            let id = ObjectIdentifier(channel)
            let admission = self.state.withLockedValue { state -> (admitted: Bool, draining: Bool) in
                guard state.connections.count < self.configuration.maxConnections else { return (false, false) }
                state.connections[id] = connection
                if case .running = state.phase { return (true, false) }
                return (true, true)
            }
            guard admission.admitted else {
                self.logger.warning("refusing connection: FCGI_MAX_CONNS reached")
                throw ConnectionRefused()
            }
            channel.closeFuture.whenComplete { [self] _ in
                _ = self.state.withLockedValue { $0.connections.removeValue(forKey: id) }
            }
            // Records are at most 64 KiB, so a buffer this size only fills if the decoder is broken.
            try channel.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20),
                handler
            )
            if admission.draining {
                // Accepted just as the server began to stop: serve nothing, close once idle.
                handler.startDraining()
            }
        }
    }

    // MARK: - Stopping

    private func shutDown(serverChannel: any Channel, gracePeriod: Duration) async {
        try? await serverChannel.close()
        if case .unix(let path) = self.configuration.listen {
            // NIO leaves the socket file behind; a stale one would look like a live worker.
            unlink(path)
        }
        for connection in self.state.withLockedValue({ Array($0.connections.values) }) {
            connection.channel.eventLoop.execute {
                connection.handler.value.startDraining()
            }
        }
        let deadline = self.group.any().scheduleTask(in: TimeAmount(gracePeriod)) { [self] in
            for connection in self.state.withLockedValue({ Array($0.connections.values) }) {
                connection.channel.close(promise: nil)
            }
        }
        // Loop because a connection accepted just before the listener closed may register late.
        while true {
            let remaining = self.state.withLockedValue { $0.connections.values.map(\.channel.closeFuture) }
            if remaining.isEmpty { break }
            try? await EventLoopFuture.andAllComplete(remaining, on: self.group.any()).get()
        }
        deadline.cancel()
        self.state.withLockedValue { $0.phase = .stopped }
        self.stopped.succeed()
    }
}
