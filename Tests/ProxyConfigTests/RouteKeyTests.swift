import ProxyConfig
import Testing

@Suite struct RouteKeyTests {
    @Test func everyRouteKey() throws {
        let config = try #require(
            parseValid(
                minimalPool + """

                    [route:app]
                    match = /app/
                    host = Example.COM:8080
                    host = www.example.com api.example.com
                    pool = php
                    root = /var/www/app/
                    index = start.php  home.html
                    split_path = .php5
                    script = /var/www/app/front.php
                    param = APP_ENV production
                    param = APP_NAME "a;b"
                    param = EMPTY
                    param = SPACED  two  words
                    """
            )
        )
        let route = try #require(config.routes.first)
        #expect(route.name == "app")
        #expect(route.line == 3)
        #expect(route.match == .prefix("/app/"))
        #expect(route.hosts == ["example.com", "www.example.com", "api.example.com"])
        #expect(route.pool == "php")
        #expect(route.root == "/var/www/app")
        #expect(route.index == ["start.php", "home.html"])
        #expect(route.splitPath == ".php5")
        #expect(route.script == "/var/www/app/front.php")
        #expect(route.params.map(\.name) == ["APP_ENV", "APP_NAME", "EMPTY", "SPACED"])
        #expect(route.params.map(\.value) == ["production", "a;b", "", "two  words"])
    }

    @Test(arguments: [
        ("/", RouteMatch.prefix("/")),
        ("/static/", .prefix("/static/")),
        ("= /health", .exact("/health")),
        ("=/health", .exact("/health")),
        ("~ \\.php$", .regex("\\.php$")),
        ("~ ^/(a|b)/[0-9]+$", .regex("^/(a|b)/[0-9]+$")),
        ("\"~ ^/x #y\"", .regex("^/x #y")),
        ("~ (?i)^/(?<v>a|b)\\d{1,3}$", .regex("(?i)^/(?<v>a|b)\\d{1,3}$")),
    ])
    func matchForms(text: String, expected: RouteMatch) {
        #expect(parseRoute("match = \(text)")?.match == expected)
    }

    @Test(arguments: [
        ("match = static/", "expected /prefix, \"= /exact\" or \"~ REGEX\""),
        ("match = = health", "expected a path starting with \"/\" after \"=\""),
        ("match = ~ (unclosed", "expected a valid regular expression after \"~\""),
        ("match = ~ a(?=b)", "expected a valid regular expression after \"~\" (lookahead (?= is not supported"),
        ("match = ~", "expected a regular expression after \"~\""),
        ("script = index.php", "expected an absolute path"),
        ("split_path = php", "expected an extension starting with \".\""),
        ("split_path = .", "expected an extension starting with \".\""),
        ("index = /index.php", "expected file names in the directory, without \"/\""),
        ("index = index.php sub/index.html", "expected file names in the directory, without \"/\""),
        ("index = .index.html", "expected file names in the directory, without \"/\" and not starting with \".\""),
        ("index = ", "expected file names in the directory"),
        ("files = maybe", "expected on/off"),
        ("symlinks = 2", "expected on/off"),
        ("precompressed = gz", "expected on/off"),
        ("internal = yes please", "expected on/off"),
        ("fallback = index.php", "expected a URL path starting with \"/\", without a query"),
        ("fallback = /index.php?$args", "expected a URL path starting with \"/\", without a query"),
        ("fallback = /", "expected a URL path starting with \"/\""),
        ("fallback = /../index.php", "expected a URL path starting with \"/\""),
        ("param = BAD-NAME x", "expected NAME VALUE, NAME made of letters, digits and \"_\""),
        ("param = ", "expected NAME VALUE"),
        ("host = exa mple.com/x", "expected host names"),
        ("host = example.com:http", "expected host names"),
    ])
    func badRouteValues(line: String, expected: String) {
        let key = String(line.prefix { $0 != " " })
        let errors = parseErrors(minimalPool + "\n[route:r]\npool = php\nroot = /srv\n\(line)\n")
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.line == 6)
        #expect(errors.first?.message.contains("for \"\(key)\" in [route:r]: \(expected)") == true, "\(errors)")
    }

    @Test func backreferenceIsRefusedWithFileAndLine() {
        expectOneError(
            minimalPool + "\n[route:r]\npool = php\nroot = /srv\nmatch = ~ (a)\\1\n",
            line: 6,
            startingWith: "invalid value \"~ (a)\\1\" for \"match\" in [route:r]: expected a valid regular "
                + "expression after \"~\" (backreference \\1 is not supported: route regexes run in linear time)"
        )
    }

    @Test func relativeRootIsABadValueNotAMissingRoot() {
        expectOneError(
            minimalPool + "\n[route:r]\npool = php\nroot = var/www\n",
            line: 5,
            startingWith: "invalid value \"var/www\" for \"root\" in [route:r]: expected an absolute path"
        )
    }

    @Test func rootKeepsASingleSlash() {
        #expect(parseRoute("")?.root == "/srv")
        let config = parseValid(minimalPool + "\n[route:r]\npool = php\nroot = /\n")
        #expect(config?.routes.first?.root == "/")
        let trailing = parseValid(minimalPool + "\n[route:r]\npool = php\nroot = /var/www//\n")
        #expect(trailing?.routes.first?.root == "/var/www")
    }

    @Test func hostsAreLowercasedWithoutPort() {
        #expect(parseRoute("host = WWW.Example.org:443")?.hosts == ["www.example.org"])
        #expect(parseRoute("host = [::1]:8080\nhost = [FE80::1]")?.hosts == ["[::1]", "[fe80::1]"])
    }

    @Test func routesKeepFileOrder() {
        let names = ["zeta", "alpha", "mid.dle", "b-2", "a_1"]
        let text = minimalPool + names.map { "\n[route:\($0)]\npool = php\nroot = /srv\n" }.joined()
        let routes = parseValid(text)?.routes
        #expect(routes?.map(\.name) == names)
        #expect(routes?.map(\.line) == [3, 7, 11, 15, 19])
    }

    @Test func scriptStillNeedsRoot() {
        expectOneError(
            minimalPool + "\n[route:front]\npool = php\nscript = /srv/index.php\n",
            line: 5,
            startingWith: "route \"front\" has \"script\" but no \"root\""
        )
    }

    /// Without a root the route fronts an application server; keys only a script tree uses are
    /// refused on their own line.
    @Test func applicationRouteNeedsNoRoot() {
        let route = parseValid(minimalPool + "\n[route:app]\nmatch = /api/\npool = php\n")?.routes.first
        #expect(route?.root == "")
        expectOneError(
            minimalPool + "\n[route:app]\npool = php\nsplit_path = .py\n",
            line: 5,
            startingWith: "route \"app\" has \"split_path\" but no \"root\""
        )
        expectOneError(
            minimalPool + "\n[route:app]\npool = php\nindex = app.py\n",
            line: 5,
            startingWith: "route \"app\" has \"index\" but no \"root\""
        )
    }

    /// A deny rule: the route answers itself, with no pool; keys a backend or a script tree
    /// would use are refused on their own line.
    @Test func statusRouteAnswersItself() {
        let route = parseValid(minimalPool + "\n[route:deny]\nmatch = /vendor/\nstatus = 403\n")?.routes.first
        #expect(route?.status == 403 && route?.pool == "")
        #expect(parseValid(minimalPool + "\n[route:health]\nmatch = = /health\nstatus = 200\n")?.routes.first?.status == 200)
        for bad in ["301", "100", "600", "forbidden", "-403"] {
            expectOneError(
                minimalPool + "\n[route:deny]\nstatus = \(bad)\n", line: 4,
                startingWith: "invalid value \"\(bad)\" for \"status\"")
        }
        expectOneError(
            minimalPool + "\n[route:deny]\nstatus = 403\npool = php\n", line: 5,
            startingWith: "route \"deny\" answers with \"status\": \"pool\" has no use there")
        expectOneError(
            minimalPool + "\n[route:deny]\nroot = /srv\nstatus = 404\n", line: 4,
            startingWith: "route \"deny\" answers with \"status\": \"root\" has no use there")
    }

    @Test func headerLinesAreKeptInOrder() {
        let route = parseRoute("header = Cache-Control public, max-age=3600\nheader = X-Frame-Options DENY\nheader = X-Empty")
        #expect(route?.headers.map(\.name) == ["Cache-Control", "X-Frame-Options", "X-Empty"])
        #expect(route?.headers.map(\.value) == ["public, max-age=3600", "DENY", ""])
        for bad in ["Content-Length 5", "transfer-encoding chunked", "Bad:Name x", "Status 200"] {
            let errors = parseErrors(minimalPool + "\n[route:r]\npool = php\nroot = /srv\nheader = \(bad)\n")
            #expect(errors.map(\.line) == [6], "\(bad)")
            #expect(errors.first?.message.hasPrefix("invalid value \"\(bad)\" for \"header\"") == true, "\(errors)")
        }
    }

    @Test func routeWithoutPoolNorRoot() {
        expectOneError(
            minimalPool + "\n[route:lost]\nmatch = /x/\n",
            line: 3,
            startingWith: "route \"lost\" has no \"pool\" (nor a \"root\" to serve files from, nor a \"status\" to answer with)"
        )
    }

    @Test func routeNamingAMissingPool() {
        expectOneError(
            minimalPool + "\n[route:r]\nroot = /srv\npool = python\n",
            line: 5,
            startingWith: "pool \"python\" used by [route:r] is not defined"
        )
    }

    @Test func poolMayBeDefinedAfterTheRoute() {
        let config = parseValid("[route:r]\npool = php\nroot = /srv\n" + minimalPool)
        #expect(config?.routes.first?.pool == "php")
    }

    @Test func fileServingKeys() throws {
        let route = try #require(
            parseRoute("files = off\nfallback = /index.php\nsymlinks = off\nprecompressed = on\nindex = index.html"))
        #expect(!route.files && !route.symlinks && route.precompressed && !route.internal)
        #expect(route.fallback == "/index.php")
        #expect(route.index == ["index.html"])
        let files = try #require(parseValid(minimalPool + "\n[route:files]\nroot = /srv/static\ninternal = on\n")?.routes.first)
        #expect(files.internal && files.pool.isEmpty && files.files && files.root == "/srv/static")
    }

    /// A route with a root and no pool serves files only; what runs a script needs a pool.
    @Test func rootWithoutPoolServesFiles() {
        let route = parseValid(minimalPool + "\n[route:static]\nmatch = /assets/\nroot = /srv/assets\n")?.routes.first
        #expect(route?.pool == "" && route?.root == "/srv/assets")
        expectOneError(
            minimalPool + "\n[route:s]\nroot = /srv\nfallback = /index.php\n", line: 5,
            startingWith: "route \"s\" has \"fallback\" but no \"pool\" to run it")
        expectOneError(
            minimalPool + "\n[route:s]\nroot = /srv\nscript = /srv/index.php\n", line: 5,
            startingWith: "route \"s\" has \"script\" but no \"pool\" to run it")
        expectOneError(
            minimalPool + "\n[route:s]\nroot = /srv\nfiles = off\n", line: 5,
            startingWith: "route \"s\" has \"files = off\" and no \"pool\": it serves nothing")
    }

    @Test(arguments: ["files = on", "symlinks = off", "precompressed = on", "fallback = /index.php", "index = a.php"])
    func fileKeysNeedRoot(line: String) {
        let key = line.prefix { $0 != " " }
        expectOneError(
            minimalPool + "\n[route:app]\npool = php\n\(line)\n", line: 5,
            startingWith: "route \"app\" has \"\(key)\" but no \"root\": without one every path goes to the pool as PATH_INFO")
    }

    @Test(arguments: [
        "files = on", "symlinks = off", "precompressed = on", "fallback = /index.php", "index = a.php", "internal = on",
        "internal = off",
    ])
    func fileKeysHaveNoUseWithStatus(line: String) {
        let key = line.prefix { $0 != " " }
        expectOneError(
            minimalPool + "\n[route:deny]\nstatus = 403\n\(line)\n", line: 5,
            startingWith: "route \"deny\" answers with \"status\": \"\(key)\" has no use there")
    }

    @Test func internalRouteServesFilesOnly() {
        expectOneError(
            minimalPool + "\n[route:i]\nroot = /srv\npool = php\ninternal = on\n", line: 6,
            startingWith: "route \"i\" is \"internal\" and has a \"pool\": an internal route serves files only")
        #expect(parseRoute("internal = off")?.internal == false)
    }

    @Test func scriptAndFallbackExcludeEachOther() {
        expectOneError(
            minimalPool + "\n[route:r]\npool = php\nroot = /srv\nscript = /srv/index.php\nfallback = /index.php\n",
            line: 7,
            startingWith: "route \"r\" has both \"script\" and \"fallback\": both say what runs when no file fits")
    }
}
