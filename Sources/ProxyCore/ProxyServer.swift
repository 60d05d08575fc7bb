#if canImport(Glibc)
import Glibc
#endif
import FastCGIClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ProxyConfig

/// The daemon's network side: event loops, listeners, and per-loop pools.
public final class ProxyServer: Sendable {
    public let context: ProxyContext
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    let resources: [NIOLoopBound<LoopResources>]
    /// Feeds the Prometheus registry from the loops' counters (ProxyServer+Metrics.swift).
    let metricsExporter: MetricsExporter
    private let channels: NIOLockedValueBox<[any Channel]> = NIOLockedValueBox([])
    private let connections = ShutdownConnectionTracker()

    /// Builds pools for every event loop; binds nothing yet.
    public init(context: ProxyContext, group: MultiThreadedEventLoopGroup? = nil) {
        self.context = context
        let threads = context.configuration.server.threads ?? System.coreCount
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.ownsGroup = group == nil
        var resources: [NIOLoopBound<LoopResources>] = []
        let loops = Array(self.group.makeIterator())
        for (shard, loop) in loops.enumerated() {
            // Created on their own loop so their futures and timers stay there.
            let box = try! loop.submit {
                NIOLoopBound(LoopResources(context: context, eventLoop: loop, shard: shard, shardCount: loops.count), eventLoop: loop)
            }.wait()
            resources.append(box)
        }
        self.resources = resources
        self.metricsExporter = MetricsExporter(
            routeNames: context.configuration.routes.map(\.name),
            poolNames: context.pools.map(\.config.name)
        )
    }

    /// The pool counters of every shard, per pool name, read on each shard's own loop: what a
    /// metrics endpoint reports (one entry per event loop; sum them for pool totals).
    public func poolCounters() async throws -> [String: [FastCGIPoolStateMachine.Counters]] {
        var result: [String: [FastCGIPoolStateMachine.Counters]] = [:]
        for box in resources {
            let shard = try await box.eventLoop.submit { box.value.pools.map(\.counters) }.get()
            for (index, counters) in shard.enumerated() {
                result[context.pools[index].config.name, default: []].append(counters)
            }
        }
        return result
    }

    /// The event loops (for timers that must notice a stuck loop, such as the systemd watchdog).
    public var eventLoopGroup: any EventLoopGroup { group }

    /// Client connections open right now (a lock and a count: cheap enough for status lines).
    public var connectionCount: Int { connections.count }

    /// Binds the `metrics` listener, if any, then every `listen` address. Returns the bound
    /// `listen` addresses (port 0 becomes the real port).
    ///
    /// `inheritedSockets` (systemd socket activation) are used instead of binding for the
    /// `listen` lines whose address they carry; the others are bound as usual. An inherited
    /// socket that no line asks for is logged as an error and closed.
    @discardableResult
    public func start(inheritedSockets: [SystemdListenSocket] = []) async throws -> [SocketAddress] {
        let listeners = context.configuration.server.listen
        let (inherited, unmatched) = SystemdSocketActivation.match(inheritedSockets, to: listeners)
        for socket in unmatched {
            let kind = socket.isListeningStream ? "" : ", not a listening stream socket"
            context.logger.error(
                "inherited socket \(socket)\(kind) matches no listen line in \(context.configuration.sourceName); closing it (listen lines: \(listeners.map { $0.address.description }.joined(separator: ", ")))"
            )
            close(socket.descriptor)
        }
        // First, so that it answers as soon as clients can connect.
        if let metricsChannel = try await startMetricsListener() {
            channels.withLockedValue { $0.append(metricsChannel) }
        }
        var bound: [SocketAddress] = []
        for (index, listen) in listeners.enumerated() {
            let channel: any Channel
            if let socket = inherited[index] {
                channel = try await bootstrap(for: listen.address).withBoundSocket(socket.descriptor).get()
                // NIO re-listens with its default backlog (128) when it adopts a socket: restore
                // the one bound listeners get (Linux updates the backlog of a listening socket).
                _ = Glibc.listen(socket.descriptor, Self.backlog)
                context.logger.info("listening on \(listen.address) (inherited \(socket))")
            } else {
                channel = try await bootstrap(for: listen.address).bind(to: listen.address)
                context.logger.info("listening on \(listen.address)")
            }
            channels.withLockedValue { $0.append(channel) }
            if let address = channel.localAddress { bound.append(address) }
        }
        return bound
    }

    /// Stops at once: closes the listeners and every connection, and shuts the loops down if we
    /// own them.
    public func shutdown() async throws {
        try await shutdown(gracePeriod: .zero)
    }

    /// Graceful stop: closes the listeners, closes idle connections at once, lets requests in
    /// flight finish (each connection closes after its response) for up to `gracePeriod`, then
    /// closes whatever is left and shuts the loops down if we own them.
    /// ``closeAllConnections()`` cuts the wait short.
    public func shutdown(gracePeriod: Duration) async throws {
        let channels = self.channels.withLockedValue { channels in
            defer { channels = [] }
            return channels
        }
        for channel in channels {
            try? await channel.close()
        }
        let loop = group.next()
        let drained = loop.makePromise(of: Void.self)
        connections.quiesce(whenDrained: drained)
        let deadline = loop.scheduleTask(in: TimeAmount(gracePeriod)) { [connections, context] in
            let left = connections.count
            if left > 0 {
                context.logger.warning("shutdown_timeout reached: closing \(left) connection(s) with requests in flight")
            }
            connections.closeAll()
        }
        try? await drained.futureResult.get()
        deadline.cancel()
        // Every response has ended: no line of theirs may stay in a loop's buffer.
        await flushAccessLog()
        if ownsGroup {
            try await group.shutdownGracefully()
        }
    }

    /// Closes every client connection now, requests in flight or not (a second stop signal).
    public func closeAllConnections() {
        connections.closeAll()
    }

    private static let backlog: Int32 = 1024

    private func bootstrap(for address: SocketAddressSpec) -> ServerBootstrap {
        let context = self.context
        let resources = self.resources
        let connections = self.connections
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Self.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        if case .tcp = address {
            bootstrap = bootstrap.childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        }
        let logger = context.logger
        bootstrap = bootstrap.serverChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                // Out of descriptors (EMFILE/ENFILE), accept fails while the connection waits in
                // the backlog, so a level-triggered loop would spin on it: pause accepting a
                // moment instead, keep serving the connections we have, and say so now and then.
                try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(logger: logger))
            }
        }
        return bootstrap.childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                guard let loopResources = resources.first(where: { $0.eventLoop.inEventLoop }) else {
                    throw ChannelError.ioOnClosedChannel
                }
                // Accepted while the listeners were closing: not served.
                guard connections.add(channel) else {
                    throw ChannelError.ioOnClosedChannel
                }
                loopResources.value.metrics.connectionsAccepted += 1
                try Self.configureClientPipeline(channel, context: context, resources: loopResources.value)
            }
        }
    }

    /// The handlers of one accepted client connection (also used by the handler tests).
    static func configureClientPipeline(_ channel: any Channel, context: ProxyContext, resources: LoopResources) throws {
        let server = context.configuration.server
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = server.maxHeaderSize
        limits.maxHeaderFieldSize = server.maxHeaderSize
        limits.maxHeaderFieldCount = 1000
        let timeouts = ConnectionTimeoutHandler(
            headerTimeout: TimeAmount(server.headerTimeout),
            keepaliveTimeout: TimeAmount(server.keepaliveTimeout)
        )
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(timeouts)
        try sync.configureHTTPServerPipeline(
            // HTTPFrontendHandler orders pipelined requests itself (see there why).
            withPipeliningAssistance: false,
            withErrorHandling: false,
            // Backend header values are validated by CGIResponseHeadParser (CR, LF, NUL → 502)
            // and ours are constants: a second scan per response is pure cost.
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits
        )
        try sync.addHandler(
            HTTPFrontendHandler(
                shared: context,
                resources: resources,
                timeouts: timeouts,
                connectionInfo: ConnectionInfo(channel: channel)
            )
        )
    }
}

extension ServerBootstrap {
    func bind(to address: SocketAddressSpec) async throws -> any Channel {
        switch address {
        case .tcp(let host, let port):
            return try await bind(host: host, port: port).get()
        case .unix(let path):
            return try await bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }
}

extension ConnectionInfo {
    /// Addresses of an accepted channel. Unix-socket clients show as 127.0.0.1, port 0:
    /// PHP code expects an IP in REMOTE_ADDR.
    init(channel: any Channel) {
        let remote = channel.remoteAddress
        let local = channel.localAddress
        self.init(
            remoteAddress: remote?.ipAddress ?? "127.0.0.1",
            remotePort: remote?.port ?? 0,
            localAddress: local?.ipAddress ?? "127.0.0.1",
            localPort: local?.port ?? 0,
            isTLS: false
        )
    }
}
