import ProxyConfig
import Testing

@Suite struct DefaultsTests {
    @Test func emptyFileGivesAllDefaults() throws {
        let config = try ConfigParser.parse("", fileName: "empty.ini")
        #expect(config == ProxyConfiguration(server: ServerConfig(), pools: [], routes: [], sourceName: "empty.ini"))
    }

    @Test func defaultServerValues() throws {
        let server = try ConfigParser.parse("[server]\n", fileName: testFile).server
        #expect(server.listen == [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080), tls: false)])
        #expect(server.threads == nil)
        #expect(server.accessLog == .stderr)
        #expect(server.logLevel == "info")
        #expect(server.headerTimeout == .seconds(10))
        #expect(server.keepaliveTimeout == .seconds(75))
        #expect(server.maxHeaderSize == 32 * 1024)
        #expect(server.maxURISize == 8 * 1024)
        #expect(server.maxBodySize == 16 * 1024 * 1024)
        #expect(server.bodyBufferSize == 1024 * 1024)
        #expect(server.tempDir == "/tmp")
        #expect(server.metrics == nil)
        #expect(server.tlsCertificate == nil)
        #expect(server.tlsKey == nil)
        #if HTTP2
        #expect(server.http2 == true, "on by default in a build with HTTP/2")
        #else
        #expect(server.http2 == false)
        #endif
        #expect(server.serverSoftware == "fcgiproxy")
    }

    @Test func listenLinesReplaceTheDefaultListener() {
        let server = parseServer("listen = 0.0.0.0:80")
        #expect(server?.listen == [ListenConfig(address: .tcp(host: "0.0.0.0", port: 80))])
    }

    @Test func defaultPoolValues() throws {
        let pool = try #require(parsePool("backend = 127.0.0.1:9000"))
        #expect(pool == PoolConfig(name: "p", backends: [.tcp(host: "127.0.0.1", port: 9000)], line: 1))
        #expect(pool.maxConns == 16)
        #expect(pool.keepalive)
        #expect(pool.multiplex == .auto)
        #expect(pool.queueSize == 256)
        #expect(pool.queueTimeout == .seconds(5))
        #expect(pool.maxFails == 3)
        #expect(pool.failTimeout == .seconds(10))
        #expect(pool.spawn == nil)
        #expect(pool.processes == 1)
        #expect(pool.env.isEmpty)
        #expect(pool.connectTimeout == .seconds(2))
        #expect(pool.readTimeout == .seconds(60))
        #expect(pool.backendWeights == [1])
        #expect(pool.balance == .roundRobin)
        #expect(pool.tries == 2)
        #expect(pool.maxRequestsPerConnection == 128)
        #expect(pool.idleTimeout == .seconds(60))
        #expect(pool.xSendfile == nil)
    }

    @Test func defaultRouteValues() throws {
        let route = try #require(parseRoute(""))
        #expect(route == RouteConfig(name: "r", pool: "php", root: "/srv", line: 3))
        #expect(route.match == .prefix("/"))
        #expect(route.hosts.isEmpty)
        #expect(route.index == ["index.php"])
        #expect(route.files && route.symlinks && !route.precompressed && !route.internal)
        #expect(route.fallback == nil)
        #expect(route.splitPath == ".php")
        #expect(route.script == nil)
        #expect(route.params.isEmpty)
    }

    @Test func noRoutesIsValid() {
        let config = parseValid(minimalPool)
        #expect(config?.routes.isEmpty == true)
        #expect(config?.pools.map(\.name) == ["php"])
    }
}
