import Logging
import NIOEmbedded
import ProxyConfig

@testable import ProxyCore

extension LoopResources {
    /// Resources of an embedded loop with an empty configuration, for the recycling tests.
    static func forTests() throws -> LoopResources {
        let configuration = ProxyConfiguration(server: ServerConfig(accessLog: .off), pools: [], routes: [], sourceName: "test")
        let context = try ProxyContext(configuration: configuration, logger: Logger(label: "test"))
        return LoopResources(context: context, eventLoop: EmbeddedEventLoop())
    }
}
