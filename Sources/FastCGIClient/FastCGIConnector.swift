import NIOCore
import NIOPosix

/// How a pool opens a channel to a backend: the seam between the pool and the network, so that
/// pool and exchange tests can hand out `EmbeddedChannel`s instead of sockets.
public protocol FastCGIConnector: Sendable {
    /// Opens a channel to `address` on `eventLoop`, with `initializer` run on it before it is
    /// active.
    func connect(
        to address: SocketAddress,
        on eventLoop: any EventLoop,
        timeout: TimeAmount,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel>
}

/// TCP and Unix sockets through NIO's `ClientBootstrap`: what every pool uses unless a test
/// says otherwise.
public struct SocketConnector: FastCGIConnector {
    public init() {}

    public func connect(
        to address: SocketAddress,
        on eventLoop: any EventLoop,
        timeout: TimeAmount,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        var bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(timeout)
        if case .unixDomainSocket = address {
        } else {
            // Records are small and latency-bound: never wait for Nagle.
            bootstrap = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        return bootstrap.channelInitializer(initializer).connect(to: address)
    }
}
