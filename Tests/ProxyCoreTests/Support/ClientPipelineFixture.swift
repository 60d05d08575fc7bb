import Foundation
import Logging
import NIOCore
import NIOEmbedded
import ProxyConfig

@testable import ProxyCore

/// A temporary document root (with `app/`, removed with the fixture) and the proxy's client
/// pipeline over it on a connected EmbeddedChannel. Pool `php` points at a socket nobody
/// listens on: these tests cover answers the proxy decides itself.
final class ClientPipelineFixture {
    let root: String

    init(name: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("fcgiproxy-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/app", withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// `routes` default: route `app` for `/app/`. `readTimeout`: pool `php`'s.
    func makeChannel(
        server: ServerConfig, routes: [RouteConfig]? = nil, readTimeout: Duration = .seconds(60)
    ) throws -> (EmbeddedChannel, LoopResources) {
        let configuration = ProxyConfiguration(
            server: server,
            pools: [PoolConfig(name: "php", backends: [.unix(path: root + "/nobody.sock")], readTimeout: readTimeout)],
            routes: routes ?? [RouteConfig(name: "app", match: .prefix("/app/"), pool: "php", root: root)],
            sourceName: "test"
        )
        let context = try ProxyContext(configuration: configuration, logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        let resources = LoopResources(context: context, eventLoop: channel.embeddedEventLoop)
        try ProxyServer.configureClientPipeline(channel, context: context, resources: resources)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, resources)
    }
}
