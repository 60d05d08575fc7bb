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

#if TLS
import NIOSSL
#endif

/// The daemon's network side: event loops, listeners, and per-loop pools.
public final class ProxyServer: Sendable {
    /// The configuration new requests are served with (replaced by ``reload(to:)``).
    public var context: ProxyContext { currentContext.withLockedValue { $0 } }
    let currentContext: NIOLockedValueBox<ProxyContext>
    let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    let resources: [NIOLoopBound<LoopResources>]
    /// Writes and reads spill files, so that a disk behind on writeback stalls no event loop.
    /// A few threads: a read a slow client waits for should not queue behind blocked writes.
    let spillThreads = NIOThreadPool(numberOfThreads: 4)
    /// Feeds the Prometheus registry from the loops' counters and owns the name → slot tables
    /// that keep counters apart across reloads (ProxyServer+Metrics.swift).
    let metricsExporter: MetricsExporter
    /// The `metrics` listener, closed with the others at shutdown.
    let metricsChannel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)
    /// Open listeners with the `listen` line each serves.
    let listeners: NIOLockedValueBox<[Listener]> = NIOLockedValueBox([])
    let connections = ShutdownConnectionTracker()
    /// Generation number of the last reload, and whether one is running.
    let reloadState = NIOLockedValueBox((generation: 1, running: false))

    struct Listener {
        var config: ListenConfig
        var channel: any Channel
    }

    /// Builds pools for every event loop; binds nothing yet.
    public init(context: ProxyContext, group: MultiThreadedEventLoopGroup? = nil) {
        self.currentContext = NIOLockedValueBox(context)
        let threads = context.configuration.server.threads ?? System.coreCount
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.ownsGroup = group == nil
        let metricsExporter = MetricsExporter()
        self.metricsExporter = metricsExporter
        let recording = metricsExporter.register(context)
        var resources: [NIOLoopBound<LoopResources>] = []
        let loops = Array(self.group.makeIterator())
        spillThreads.start()
        let spillThreads = self.spillThreads
        for (shard, loop) in loops.enumerated() {
            // Created on their own loop so their futures and timers stay there.
            let box = try! loop.submit {
                let resources = LoopResources(
                    context: context, eventLoop: loop, shard: shard, shardCount: loops.count, recording: recording)
                resources.spillIO = SpillBuffer.IO(threads: spillThreads, eventLoop: loop)
                return NIOLoopBound(resources, eventLoop: loop)
            }.wait()
            resources.append(box)
        }
        self.resources = resources
    }

    /// The pool counters of every shard, per pool name, read on each shard's own loop: what a
    /// metrics endpoint reports (one entry per event loop; sum them for pool totals).
    public func poolCounters() async throws -> [String: [FastCGIPoolStateMachine.Counters]] {
        var result: [String: [FastCGIPoolStateMachine.Counters]] = [:]
        for box in resources {
            // Names from the shard's own generation: a reload may run between two shards.
            let shard = try await box.eventLoop.submit {
                let generation = box.value.current
                return zip(generation.context.pools, generation.pools).map { ($0.config.name, $1.counters) }
            }.get()
            for (name, counters) in shard {
                result[name, default: []].append(counters)
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
        let context = self.context
        let listeners = context.configuration.server.listen
        #if TLS
        let tlsReady = context.tls != nil
        #else
        let tlsReady = false
        #endif
        // The parser already refuses this; a configuration built in code could still ask for it,
        // and each connection being refused in silence would be far harder to understand.
        if let listen = listeners.first(where: \.tls), !tlsReady {
            throw TLSListenerWithoutCertificate(address: listen.address)
        }
        let (inherited, unmatched) = SystemdSocketActivation.match(inheritedSockets, to: listeners)
        for socket in unmatched {
            let kind = socket.isListeningStream ? "" : ", not a listening stream socket"
            context.logger.error(
                "inherited socket \(socket)\(kind) matches no listen line in \(context.configuration.sourceName); closing it (listen lines: \(listeners.map { $0.address.description }.joined(separator: ", ")))"
            )
            close(socket.descriptor)
        }
        // First, so that it answers as soon as clients can connect.
        if let channel = try await startMetricsListener() {
            metricsChannel.withLockedValue { $0 = channel }
        }
        var bound: [SocketAddress] = []
        for (index, listen) in listeners.enumerated() {
            let channel: any Channel
            if let socket = inherited[index] {
                channel = try await bootstrap(for: listen).withBoundSocket(socket.descriptor).get()
                // NIO re-listens with its default backlog (128) when it adopts a socket: restore
                // the one bound listeners get (Linux updates the backlog of a listening socket).
                _ = Glibc.listen(socket.descriptor, Self.backlog)
                context.logger.info("listening on \(ReloadPlan.describe(listen))\(listen.tls ? " (TLS)" : "") (inherited \(socket))")
            } else {
                channel = try await bootstrap(for: listen).bind(to: listen.address)
                context.logger.info("listening on \(ReloadPlan.describe(listen))\(listen.tls ? " (TLS)" : "")")
            }
            self.listeners.withLockedValue { $0.append(Listener(config: listen, channel: channel)) }
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
        let listeners = self.listeners.withLockedValue { listeners in
            defer { listeners = [] }
            return listeners
        }
        for listener in listeners {
            try? await listener.channel.close()
        }
        if let channel = metricsChannel.withLockedValue({ $0 }) {
            try? await channel.close()
        }
        let context = self.context
        let loop = group.next()
        let drained = loop.makePromise(of: Void.self)
        connections.quiesce(whenDrained: drained)
        await drainPools()
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
        // Before the loops: file I/O the threads finish reports back on a loop.
        try? await spillThreads.shutdownGracefully()
        if ownsGroup {
            try await group.shutdownGracefully()
        }
    }

    /// Retires every loop's pools for the stop: requests in flight (and queued ones) still run,
    /// but idle backend connections close now and busy ones after their request.
    ///
    /// PHP-FPM gives each keep-alive connection a worker of its own until we close it, and the
    /// pool's stall check only frees workers held by its own shard. Without this, idle
    /// connections of one loop (or of a generation a reload retired) kept every worker while a
    /// request of another loop sat in FPM's listen queue until `shutdown_timeout` cut it off.
    func drainPools() async {
        for box in resources {
            try? await box.eventLoop.submit { box.value.drainPoolsForShutdown() }.get()
        }
    }

    /// Closes every client connection now, requests in flight or not (a second stop signal).
    public func closeAllConnections() {
        connections.closeAll()
    }

    /// Re-reads `tls_certificate` and `tls_key` (a renewed certificate) for the connections
    /// accepted from now on; open connections keep theirs and are not dropped. On an error
    /// (naming the file) the certificate in use stays. Does nothing without TLS configured.
    /// Reads files: call it from a signal handler's thread, not an event loop.
    public func reloadCertificates() throws {
        #if TLS
        try context.tls?.reload()
        #endif
    }

    static let backlog: Int32 = 1024

    func bootstrap(for listen: ListenConfig) -> ServerBootstrap {
        let address = listen.address
        let tls = listen.tls
        let context = self.context
        let resources = self.resources
        let connections = self.connections
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Self.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            // NIO's default high mark (64 KiB) is below one 64 KiB body plus its head, so every
            // such response flipped the channel unwritable and back (backend read paused and
            // resumed, send timer armed and cancelled) although the socket took it at once.
            // 128 KiB is about what nginx holds per request (fastcgi_buffers + busy buffers).
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 128 * 1024))
            // The read buffer stays with the connection between requests, so its first size is
            // what every idle keep-alive connection holds: 1 KiB (nginx's client_header_buffer_size)
            // rather than NIO's 2 KiB. It grows at once for clients that send more.
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
        if case .tcp = address {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
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
                // The loop's generation at accept time sets the connection's limits, timeouts and
                // certificate (a reload loads them anew); each request reads the generation
                // again when it starts.
                let resources = loopResources.value
                resources.metrics.connectionsAccepted += 1
                try Self.configureClientPipeline(channel, context: resources.current.context, resources: resources, tls: tls)
            }
        }
    }

    /// The handlers of one accepted client connection (also used by the handler tests).
    ///
    /// On a `tls` listener the TLS handler comes first and the timeout handler sees plaintext.
    /// `header_timeout` runs from accept, so it bounds the handshake too: a client that
    /// connects and says nothing (or stalls mid-handshake) is closed like a slow request head.
    /// A failed handshake reaches HTTPFrontendHandler.errorCaught, which logs it at debug level
    /// only (scanners must not flood the log) and closes.
    static func configureClientPipeline(
        _ channel: any Channel,
        context: ProxyContext,
        resources: LoopResources,
        tls: Bool = false
    ) throws {
        let server = context.configuration.server
        let timeouts = ConnectionTimeouts(
            headerTimeout: TimeAmount(server.headerTimeout),
            keepaliveTimeout: TimeAmount(server.keepaliveTimeout)
        )
        let sync = channel.pipeline.syncOperations
        if tls {
            #if TLS
            // The parser guarantees a certificate for every tls listener.
            guard let box = context.tls else { throw ChannelError.ioOnClosedChannel }
            try sync.addHandler(NIOSSLServerHandler(context: box.context))
            #else
            // The parser rejects `tls` listeners in a build without TLS.
            throw ChannelError.ioOnClosedChannel
            #endif
        }
        // No handler of its own: the front end reports the bytes it reads (see ConnectionTimeouts).
        timeouts.start(on: channel)
        let connectionInfo = ConnectionInfo(channel: channel, isTLS: tls)
        #if HTTP2
        if server.http2 {
            // The first bytes decide (see HTTP2PrefaceDetector): h2c with prior knowledge on a
            // cleartext listener, h2 after ALPN on a TLS one, HTTP/1.1 otherwise.
            try sync.addHandler(
                HTTP2PrefaceDetector(timeouts: timeouts) { choice, sync in
                    switch choice {
                    case .http1:
                        try sync.addHandler(
                            HTTPFrontendHandler(
                                shared: context, resources: resources, timeouts: timeouts, connectionInfo: connectionInfo))
                    case .http2:
                        try sync.addHandler(
                            HTTP2FrontendHandler(
                                shared: context, resources: resources, timeouts: timeouts, connectionInfo: connectionInfo))
                    }
                })
            return
        }
        #endif
        // One handler: it parses requests (HTTP1RequestParser), orders pipelined ones, and
        // encodes responses itself; backend header values were validated by
        // CGIResponseHeadParser (CR, LF, NUL → 502).
        try sync.addHandler(
            HTTPFrontendHandler(shared: context, resources: resources, timeouts: timeouts, connectionInfo: connectionInfo))
    }
}

/// A `tls` listener in a configuration without a loaded certificate (or in a build without TLS).
struct TLSListenerWithoutCertificate: Error, CustomStringConvertible {
    var address: SocketAddressSpec

    var description: String {
        "listen = \(address) tls: no certificate loaded (tls_certificate/tls_key unset, or a build without TLS)"
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
    /// PHP code expects an IP in REMOTE_ADDR. SERVER_PORT is the listener's port.
    init(channel: any Channel, isTLS: Bool) {
        let remote = channel.remoteAddress
        let local = channel.localAddress
        self.init(
            remoteAddress: remote?.ipAddress ?? "127.0.0.1",
            remotePort: remote?.port ?? 0,
            localAddress: local?.ipAddress ?? "127.0.0.1",
            // A unix socket has no port: 443 with TLS so that https URLs built from it are
            // right; plain ones keep 0 as before.
            localPort: local?.port ?? (isTLS ? 443 : 0),
            isTLS: isTLS
        )
    }
}
