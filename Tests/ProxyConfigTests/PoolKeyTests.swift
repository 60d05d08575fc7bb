import ProxyConfig
import Testing

@Suite struct PoolKeyTests {
    @Test func everyPoolKey() throws {
        let pool = try #require(
            parsePool(
                """
                backend = unix:/run/php/php8.2-fpm.sock
                backend = 10.0.0.2:9000
                backend = [fd00::2]:9000 weight=3
                balance = least_conn
                tries = 4
                max_reqs = 16
                idle_timeout = 90s
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
                x_sendfile = /srv/downloads/
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
        #expect(pool.backendWeights == [1, 1, 3])
        #expect(pool.balance == .leastConn)
        #expect(pool.tries == 4)
        #expect(pool.maxRequestsPerConnection == 16)
        #expect(pool.idleTimeout == .seconds(90))
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
        #expect(pool.xSendfile == "/srv/downloads")
    }

    @Test(arguments: [("auto", MultiplexMode.auto), ("on", .on), ("off", .off), ("yes", .on), ("0", .off)])
    func multiplexModes(text: String, expected: MultiplexMode) {
        #expect(parsePool("backend = 127.0.0.1:9000\nmultiplex = \(text)")?.multiplex == expected)
    }

    @Test(arguments: [("round_robin", BalanceMode.roundRobin), ("least_conn", .leastConn), ("LEAST_CONN", .leastConn)])
    func balanceModes(text: String, expected: BalanceMode) {
        #expect(parsePool("backend = 127.0.0.1:9000\nbalance = \(text)")?.balance == expected)
    }

    @Test func backendWeightsFollowTheBackends() {
        let pool = parsePool(
            """
            backend = unix:/run/a.sock weight=5
            backend = "unix:/run/b c.sock"
            backend = [::1]:9000 WEIGHT=2
            """
        )
        #expect(
            pool?.backends == [.unix(path: "/run/a.sock"), .unix(path: "/run/b c.sock"), .tcp(host: "::1", port: 9000)]
        )
        #expect(pool?.backendWeights == [5, 1, 2])
    }

    @Test func backendWeightsKeepTheBackendsCount() {
        var pool = PoolConfig(name: "p", backends: [.unix(path: "/a"), .unix(path: "/b")])
        #expect(pool.backendWeights == [1, 1])
        pool.backends.append(.unix(path: "/c"))
        #expect(pool.backendWeights == [1, 1, 1])
        pool.backendWeights[2] = 4
        pool.backends.removeFirst()
        #expect(pool.backendWeights == [1, 1])
        let two: [SocketAddressSpec] = [.unix(path: "/a"), .unix(path: "/b")]
        #expect(PoolConfig(name: "p", backends: [two[0]], backendWeights: [2, 3]).backendWeights == [2])
        #expect(PoolConfig(name: "p", backends: two, backendWeights: [2]).backendWeights == [2, 1])
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
        ("idle_timeout = 0", "expected a duration above 0"),
        ("idle_timeout = soon", "expected a duration above 0"),
        ("balance = random", "expected round_robin or least_conn"),
        ("balance = ", "expected round_robin or least_conn"),
        ("tries = 0", "expected a positive integer"),
        ("tries = two", "expected a positive integer"),
        ("max_reqs = 0", "expected a positive integer"),
        ("max_reqs = -4", "expected a positive integer"),
        ("backend = 10.0.0.3:9000 weight=0", "expected weight=N with N a positive integer"),
        ("backend = 10.0.0.3:9000 weight=-1", "expected weight=N with N a positive integer"),
        ("backend = 10.0.0.3:9000 weight=", "expected weight=N with N a positive integer"),
        ("backend = 10.0.0.3:9000 weight=1.5", "expected weight=N with N a positive integer"),
        ("backend = 10.0.0.3:9000 tls", "expected nothing but weight=N after the address"),
        (
            "backend = 10.0.0.3:9000 weight = 2",
            "expected host:port, [v6]:port or unix:/path, optionally followed by weight=N"
        ),
        ("backend = nowhere weight=2", "expected host:port, [v6]:port or unix:/path"),
        ("x_sendfile = srv/downloads", "expected an absolute path"),
    ])
    func badPoolValues(line: String, expected: String) {
        let key = String(line.prefix { $0 != " " })
        let errors = parseErrors("[pool:p]\nbackend = 127.0.0.1:9000\n\(line)\n")
        #expect(errors.count == 1)
        #expect(errors.first?.line == 3)
        #expect(errors.first?.message.contains("for \"\(key)\" in [pool:p]: \(expected)") == true, "\(errors)")
    }

    @Test(arguments: ["balance = least_conn", "tries = 3", "max_reqs = 8", "idle_timeout = 5s"])
    func newKeysMayNotRepeat(line: String) {
        expectOneError(
            "[pool:p]\nbackend = unix:/s\n\(line)\n\(line)\n",
            line: 4,
            startingWith: "duplicate key \"\(line.prefix { $0 != " " })\" in [pool:p] (first set on line 3)"
        )
    }

    @Test func badBackendWeightIsReportedOnceNotAsMissing() {
        expectOneError(
            "[pool:p]\nbackend = unix:/s weight=none\n",
            line: 2,
            startingWith: "invalid value \"unix:/s weight=none\" for \"backend\" in [pool:p]: expected weight=N"
        )
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
