import ProxyConfig
import Testing

@testable import ProxyCore

@Suite struct ReloadPlanTests {
    static func config(
        listen: [ListenConfig] = [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080))],
        pools: [PoolConfig] = [PoolConfig(name: "php", backends: [.unix(path: "/run/php.sock")], line: 5)],
        routeParam: String = "1",
        threads: Int? = 2
    ) -> ProxyConfiguration {
        ProxyConfiguration(
            server: ServerConfig(listen: listen, threads: threads),
            pools: pools,
            routes: [
                RouteConfig(name: "php", match: .prefix("/"), pool: "php", root: "/srv", params: [(name: "GEN", value: routeParam)], line: 9)
            ],
            sourceName: "test.ini"
        )
    }

    @Test func identicalConfigurationsChangeNothingAndReuseEveryPool() {
        let plan = ReloadPlan(from: Self.config(), to: Self.config())
        #expect(plan.isEmpty)
        #expect(plan.summary == "no change")
        #expect(plan.reusedPools == [0: 0])
        #expect(plan.keptListeners.count == 1)
    }

    @Test func listenersAreDiffedAndKeptOnesStayOpen() {
        let a = ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080))
        let b = ListenConfig(address: .tcp(host: "127.0.0.1", port: 8081))
        let c = ListenConfig(address: .unix(path: "/run/x.sock"), name: "x")
        let plan = ReloadPlan(from: Self.config(listen: [a, b]), to: Self.config(listen: [b, c]))
        #expect(plan.keptListeners == [b])
        #expect(plan.addedListeners == [c])
        #expect(plan.removedListeners == [a])
        #expect(plan.summary == "listen +unix:/run/x.sock name=x -127.0.0.1:8080")
        // Another option on the same address is another listener.
        let tls = ListenConfig(address: a.address, tls: true)
        #expect(ReloadPlan(from: Self.config(listen: [a]), to: Self.config(listen: [tls])).addedListeners == [tls])
    }

    @Test func poolsAreReusedChangedAddedOrRemoved() {
        let php = PoolConfig(name: "php", backends: [.unix(path: "/run/php.sock")], line: 5)
        var moved = php
        moved.line = 40  // same settings elsewhere in the file: still the same pool
        var bigger = php
        bigger.maxConns = 32
        let other = PoolConfig(name: "other", backends: [.tcp(host: "127.0.0.1", port: 9000)])
        let old = Self.config(pools: [php, other])

        let reordered = ReloadPlan(from: old, to: Self.config(pools: [other, moved]))
        #expect(reordered.reusedPools == [0: 1, 1: 0])
        #expect(reordered.changedPools.isEmpty && reordered.addedPools.isEmpty && reordered.removedPools.isEmpty)

        let changed = ReloadPlan(from: old, to: Self.config(pools: [bigger, PoolConfig(name: "new", backends: [.unix(path: "/n")])]))
        #expect(changed.reusedPools.isEmpty)
        #expect(changed.changedPools == ["php"])
        #expect(changed.addedPools == ["new"])
        #expect(changed.removedPools == ["other"])
        #expect(changed.summary == "pools +new ~php -other")
    }

    @Test func routesAndServerKeys() {
        let plan = ReloadPlan(from: Self.config(), to: Self.config(routeParam: "2", threads: 4))
        #expect(plan.routesChanged)
        #expect(plan.restartOnlyKeys == ["threads"])
        #expect(plan.summary == "routes changed; need a restart (kept as they were): threads")
        var server = Self.config()
        server.server.sendTimeout = .seconds(5)
        server.server.user = "nobody"
        let keys = ReloadPlan(from: Self.config(), to: server)
        #expect(keys.changedServerKeys == ["send_timeout"])
        #expect(keys.restartOnlyKeys == ["user"])
    }

    /// The limits on slow clients and held bytes take effect on reload, and the summary says so.
    @Test func bufferAndRateKeysAreReported() {
        var server = Self.config()
        server.server.minSendRate = 1
        server.server.bodyTimeout = .seconds(1)
        server.server.minBodyRate = 1
        server.server.connectionBuffer = 1
        server.server.connectionSpill = 1
        server.server.maxBufferMemory = 1
        server.server.maxSpill = 1
        #expect(
            ReloadPlan(from: Self.config(), to: server).changedServerKeys == [
                "min_send_rate", "body_timeout", "min_body_rate", "connection_buffer", "connection_spill",
                "max_buffer_memory", "max_spill",
            ])
    }
}
