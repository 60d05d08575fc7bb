import ProxyConfig
import Testing

/// The error kinds not tied to one value type, and collecting them all.
@Suite struct ErrorReportingTests {
    @Test func keyOutsideASection() {
        expectOneError(
            "; header comment\nlisten = 127.0.0.1:80\n",
            line: 2,
            startingWith: "key \"listen\" outside of any section"
        )
    }

    @Test func unknownSectionType() {
        expectOneError(
            "[server]\n[upstream:php]\nbackend = x\n",
            line: 2,
            startingWith: "unknown section type [upstream:php] (expected [server], [pool:NAME] or [route:NAME])"
        )
    }

    @Test func sectionNeedsAName() {
        expectOneError("[pool]\n", line: 1, startingWith: "section [pool] needs a name: [pool:NAME]")
        expectOneError("[route:]\n", line: 1, startingWith: "section [route] needs a name: [route:NAME]")
    }

    @Test func invalidSectionName() {
        expectOneError("\n\n[pool:my pool]\n", line: 3, startingWith: "invalid pool name \"my pool\"")
        expectOneError("[route:a/b]\n", line: 1, startingWith: "invalid route name \"a/b\"")
    }

    @Test func serverTakesNoName() {
        expectOneError("[server:main]\n", line: 1, startingWith: "section [server] takes no name")
    }

    @Test func unknownKeyNamesKeyAndSection() {
        expectOneError(
            "[server]\nthreads = 2\nworkers = 4\n",
            line: 3,
            startingWith: "unknown key \"workers\" in [server]"
        )
        expectOneError(
            "[pool:php]\nbackend = unix:/s\nroot = /x\n",
            line: 3,
            startingWith: "unknown key \"root\" in [pool:php]"
        )
        expectOneError(
            minimalPool + "\n[route:r]\npool = php\nroot = /srv\nbackend = unix:/s\n",
            line: 6,
            startingWith: "unknown key \"backend\" in [route:r]"
        )
    }

    @Test(arguments: [
        ("[server]\nthreads = 2\nthreads = 3\n", 3),
        ("[pool:p]\nbackend = unix:/s\nmax_conns = 2\nmax_conns = 3\n", 4),
        ("[route:r]\npool = p\nroot = /srv\npool = p\n[pool:p]\nbackend = unix:/s\n", 4),
    ])
    func duplicateKey(text: String, line: Int) {
        let errors = parseErrors(text)
        #expect(errors.map(\.line) == [line])
        #expect(errors.first?.message.hasPrefix("duplicate key \"") == true, "\(errors)")
        #expect(errors.first?.message.contains("(first set on line ") == true)
    }

    @Test func duplicateKeyMessage() {
        expectOneError(
            "[server]\nlog_level = info\n\nlog_level = debug\n",
            line: 4,
            startingWith: "duplicate key \"log_level\" in [server] (first set on line 2)"
        )
    }

    @Test func repeatableKeysAreNotDuplicates() {
        let config = parseValid(
            """
            [server]
            listen = 127.0.0.1:1
            listen = 127.0.0.1:2
            [pool:php]
            backend = unix:/a
            backend = unix:/b
            env = A 1
            env = A 2
            [route:r]
            pool = php
            root = /srv
            host = a.example
            host = b.example
            param = P 1
            param = P 2
            """
        )
        #expect(config?.server.listen.count == 2)
        #expect(config?.pools.first?.backends.count == 2)
        #expect(config?.pools.first?.env.count == 2)
        #expect(config?.routes.first?.hosts.count == 2)
        #expect(config?.routes.first?.params.count == 2)
    }

    @Test func duplicatePoolName() {
        expectOneError(
            minimalPool + "\n" + minimalPool + "\n",
            line: 3,
            startingWith: "duplicate pool \"php\" (first defined on line 1)"
        )
    }

    @Test func duplicateRouteName() {
        let route = "[route:r]\npool = php\nroot = /srv\n"
        expectOneError(
            minimalPool + "\n" + route + route,
            line: 6,
            startingWith: "duplicate route \"r\" (first defined on line 3)"
        )
    }

    @Test func duplicateServerSection() {
        expectOneError(
            "[server]\nthreads = 2\n[server]\n",
            line: 3,
            startingWith: "duplicate section [server] (first on line 1)"
        )
    }

    @Test func duplicateKeyAcrossRepeatedServerSections() {
        let errors = parseErrors("[server]\nthreads = 2\n[server]\nthreads = 3\n")
        #expect(errors.map(\.line) == [3, 4])
    }

    @Test func poolAndRouteMayShareAName() {
        let config = parseValid(minimalPool + "\n[route:php]\npool = php\nroot = /srv\n")
        #expect(config?.routes.first?.name == "php")
    }

    @Test func allErrorsAreCollectedInLineOrder() {
        let text = """
            [server]
            threads = none
            bogus = 1
            listen = 0.0.0.0:80 tls
            [pool:php]
            max_conns = 0
            [route:a]
            pool = missing
            root = relative
            [route:b]
            stray
            [what]
            """
        let errors = parseErrors(text)
        // Route b: no pool (without a root it would front an application, so no second error).
        #expect(errors.map(\.line) == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12])
        #expect(errors.allSatisfy { $0.file == testFile })
        let printed = ConfigErrors(errors).description.split(separator: "\n")
        #expect(printed.count == 10)
        #expect(printed.first?.hasPrefix("test.ini:2: invalid value \"none\" for \"threads\"") == true)
        #expect(printed.last?.hasPrefix("test.ini:12: unknown section type [what]") == true)
    }

    @Test func keysUnderAnUnknownSectionAreNotReportedOneByOne() {
        let errors = parseErrors("[nginx]\nworker_processes = 4\nevents = 1\n")
        #expect(errors.map(\.line) == [1])
    }

    @Test func keysOfADuplicatePoolAreStillChecked() {
        let errors = parseErrors(minimalPool + "\n[pool:php]\nbackend = unix:/s\nmax_conns = lots\n")
        #expect(errors.map(\.line) == [3, 5])
    }

    /// The checks between a route's file keys, each on its own line, printed as `file:line: message`.
    @Test func fileServingMistakesNameTheirLines() {
        let text = """
            [pool:php]
            backend = unix:/run/php/php8.2-fpm.sock
            [route:lost]
            match = /lost/
            [route:static]
            root = /srv/static
            fallback = /index.php
            internal = on
            [route:both]
            pool = php
            root = /srv/www
            script = /srv/www/index.php
            fallback = /index.php
            [route:app]
            pool = php
            symlinks = off
            [route:internal]
            pool = php
            root = /srv/private
            internal = on
            [route:deny]
            status = 404
            files = off
            """
        #expect(
            ConfigErrors(parseErrors(text)).description.split(separator: "\n") == [
                "test.ini:3: route \"lost\" has no \"pool\" (nor a \"root\" to serve files from, nor a \"status\" to answer with)",
                "test.ini:7: route \"static\" has \"fallback\" but no \"pool\" to run it",
                "test.ini:13: route \"both\" has both \"script\" and \"fallback\": both say what runs when no file fits",
                "test.ini:16: route \"app\" has \"symlinks\" but no \"root\": without one every path goes to the pool as PATH_INFO",
                "test.ini:20: route \"internal\" is \"internal\" and has a \"pool\": an internal route serves files only",
                "test.ini:23: route \"deny\" answers with \"status\": \"files\" has no use there",
            ])
    }
}
