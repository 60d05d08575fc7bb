import ProxyConfig
import Testing

@Suite struct PoolKeyTests {
    @Test func everyPoolKey() throws {
        let pool = try #require(
            parsePool(
                """
                backend = unix:/run/php/php8.2-fpm.sock
                backend = 10.0.0.2:9000
                backend = [fd00::2]:9000
                max_conns = 32
                keepalive = off
                multiplex = on
                queue_size = 100
                queue_timeout = 250ms
                max_fails = 5
                fail_timeout = 1m
                spawn = /usr/bin/worker --threads 2 "--name=a b"
                processes = 4
                env = APP_ENV production
                env = GREETING "hello; world"
                env = EMPTY
                connect_timeout = 500ms
                read_timeout = 1h
                """
            )
        )
        #expect(pool.name == "p")
        #expect(pool.line == 1)
        #expect(
            pool.backends == [
                .unix(path: "/run/php/php8.2-fpm.sock"), .tcp(host: "10.0.0.2", port: 9000),
                .tcp(host: "fd00::2", port: 9000),
            ]
        )
        #expect(pool.maxConns == 32)
        #expect(pool.keepalive == false)
        #expect(pool.multiplex == .on)
        #expect(pool.queueSize == 100)
        #expect(pool.queueTimeout == .milliseconds(250))
        #expect(pool.maxFails == 5)
        #expect(pool.failTimeout == .seconds(60))
        #expect(pool.spawn == ["/usr/bin/worker", "--threads", "2", "--name=a b"])
        #expect(pool.processes == 4)
        #expect(pool.env.map(\.name) == ["APP_ENV", "GREETING", "EMPTY"])
        #expect(pool.env.map(\.value) == ["production", "hello; world", ""])
        #expect(pool.connectTimeout == .milliseconds(500))
        #expect(pool.readTimeout == .seconds(3600))
    }

    @Test(arguments: [("auto", MultiplexMode.auto), ("on", .on), ("off", .off), ("yes", .on), ("0", .off)])
    func multiplexModes(text: String, expected: MultiplexMode) {
        #expect(parsePool("backend = 127.0.0.1:9000\nmultiplex = \(text)")?.multiplex == expected)
    }

    @Test func spawnMakesBackendOptional() {
        let pool = parsePool("spawn = /usr/bin/php-cgi\nprocesses = 2")
        #expect(pool?.spawn == ["/usr/bin/php-cgi"])
        #expect(pool?.backends.isEmpty == true)
    }

    @Test(arguments: [
        ("max_conns = 0", "expected a positive integer"),
        ("queue_size = -1", "expected a positive integer"),
        ("max_fails = 1.5", "expected a positive integer"),
        ("processes = +2", "expected a positive integer"),
        ("multiplex = sometimes", "expected auto, on or off"),
        ("keepalive = 2", "expected on/off, yes/no, true/false or 1/0"),
        ("queue_timeout = 0s", "expected a duration above 0"),
        ("env = 1BAD value", "expected NAME VALUE"),
        ("env = BAD-NAME value", "expected NAME VALUE"),
        ("spawn = \"\"", "expected a command line"),
        ("read_timeout = forever", "expected a duration above 0"),
    ])
    func badPoolValues(line: String, expected: String) {
        let key = String(line.prefix { $0 != " " })
        let errors = parseErrors("[pool:p]\nbackend = 127.0.0.1:9000\n\(line)\n")
        #expect(errors.count == 1)
        #expect(errors.first?.line == 3)
        #expect(errors.first?.message.contains("for \"\(key)\" in [pool:p]: \(expected)") == true, "\(errors)")
    }

    @Test func poolWithoutBackendIsAnErrorOnItsHeaderLine() {
        expectOneError(
            "[server]\n\n[pool:empty]\nmax_conns = 4\n",
            line: 3,
            startingWith: "pool \"empty\" has no \"backend\""
        )
    }

    @Test func invalidBackendIsReportedOnceNotAsMissing() {
        expectOneError(
            "[pool:p]\nbackend = nowhere\n",
            line: 2,
            startingWith: "invalid value \"nowhere\" for \"backend\" in [pool:p]: expected host:port"
        )
    }
}
