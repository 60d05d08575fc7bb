import Foundation
import Testing

extension Integration {
    /// `[route:*]` selection (exact, regex, prefix, host, file order), `param`, `index`, and
    /// front controllers (`script`). Routes mark themselves with `param = ROUTE name`, which
    /// env.php?k=ROUTE prints.
    @Suite(.fcgiproxyOnly("routes are fcgiproxy INI sections")) struct Routing {
        private static let root = Paths.phpRoot

        /// The catch-all `[route:php]` only serves `Host: default.test`, so a request for another
        /// host that no other route fits has no route at all.
        private static let routes = """
            [route:exact]
            match = = /exact.php
            pool = php
            root = \(root)
            script = \(root)/env.php
            param = ROUTE exact

            [route:api]
            match = ~ ^/api/
            pool = php
            root = \(root)
            script = \(root)/env.php
            param = ROUTE api
            param = APP_ENV production
            param = APP_NAME "Example; API"

            [route:json]
            match = ~ \\.json$
            pool = php
            root = \(root)
            script = \(root)/env.php
            param = ROUTE json

            [route:first]
            match = /first/
            pool = php
            root = \(root)
            script = \(root)/env.php
            param = ROUTE first

            [route:first-deeper]
            match = /first/deeper/
            pool = php
            root = \(root)
            script = \(root)/env.php
            param = ROUTE deeper

            [route:dir]
            match = /dir/
            pool = php
            root = \(root)
            index = other.php
            param = ROUTE dir

            [route:hosted]
            match = /
            host = example.test
            pool = php
            root = \(root)
            param = ROUTE hosted

            """

        private func routingFront() async throws -> any FrontEnd {
            try await Fixture.extraFrontEnd {
                $0.routesBeforeDefault = Self.routes
                $0.extraRouteINI = "host = default.test"
            }
        }

        /// GET through curl; `host` replaces the Host header.
        private func get(_ front: any FrontEnd, _ path: String, host: String? = nil) async throws -> CurlResponse {
            var args = ["--path-as-is"]
            if let host { args += ["-H", "Host: \(host)"] }
            return try await Curl.run(args + [front.url(path)])
        }

        /// `value` of env.php's answer (nil when PHP has no such variable).
        private func envValue(_ r: CurlResponse) throws -> String? {
            try r.json()["value"] as? String
        }

        /// Deny rules and fixed answers (`status`): the proxy answers, no backend is asked, and
        /// routes after them still serve.
        @Test func statusRoutesAnswerWithoutABackend() async throws {
            let front = try await Fixture.extraFrontEnd {
                $0.routesBeforeDefault = """
                    [route:private]
                    match = ~ ^/(vendor|storage)/
                    status = 403

                    [route:health]
                    match = = /health
                    status = 200

                    """
            }
            defer { front.stop() }
            // The path is normalized before routing: the dot-dot spelling is denied too.
            let denied = try await get(front, "/vendor/../vendor/env.php")
            #expect(denied.status == 403, "\(denied.text)")
            #expect(denied.text.contains("<h1>403 Forbidden</h1>"), "\(denied.text)")
            let upload = try await Curl.run(["--max-time", "10", "--data-binary", "x=1", front.url("/storage/upload.php")])
            #expect(upload.status == 403)
            let head = try await Curl.run(["--max-time", "10", "--head", front.url("/storage/")])
            #expect(head.status == 403)
            let health = try await get(front, "/health")
            #expect(health.status == 200 && health.text.contains("<h1>200 OK</h1>"), "\(health.text)")
            let served = try await get(front, "/env.php?k=ROUTE")
            #expect(served.status == 200, "\(served.text)")
            #expect(try served.json()["key"] as? String == "ROUTE")
        }

        /// `header` lines go on the backend's responses below 400, after its own fields, not on
        /// the proxy's own error pages.
        @Test func routeHeadersAreAddedToBackendResponses() async throws {
            let front = try await Fixture.extraFrontEnd {
                $0.routesBeforeDefault = """
                    [route:cached]
                    match = /
                    host = cached.test
                    pool = php
                    root = \(Self.root)
                    header = Cache-Control public, max-age=3600
                    header = X-Frame-Options DENY

                    """
            }
            defer { front.stop() }
            let ok = try await get(front, "/env.php?k=ROUTE", host: "cached.test")
            #expect(ok.status == 200, "\(ok.text)")
            #expect(ok.headers("Cache-Control").contains("public, max-age=3600"), "\(ok.headers)")
            #expect(ok.header("X-Frame-Options") == "DENY")
            // A backend error keeps its own fields only (nginx's add_header without `always`).
            let failing = try await get(front, "/status.php?code=500", host: "cached.test")
            #expect(failing.status == 500 && failing.header("X-Frame-Options") == nil, "\(failing.headers)")
            let missing = try await get(front, "/missing.php", host: "cached.test")
            #expect(missing.status == 404)
            #expect(missing.header("X-Frame-Options") == nil)
            let otherHost = try await get(front, "/env.php?k=ROUTE")
            #expect(otherHost.header("X-Frame-Options") == nil)
        }

        @Test func exactMatchOnlyForThatPath() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let hit = try await get(front, "/exact.php?k=ROUTE")
            #expect(hit.status == 200, "\(hit.text)")
            #expect(try envValue(hit) == "exact")
            #expect(try hit.json()["SCRIPT_FILENAME"] as? String == Self.root + "/env.php")
            // Not a prefix: /exact.php/x is left to the catch-all route, where no exact.php exists.
            let longer = try await get(front, "/exact.php/x?k=ROUTE", host: "default.test")
            #expect(longer.status == 404, "\(longer.text)")
            let notExact = try await get(front, "/exact.phpx?k=ROUTE")
            #expect(notExact.status == 404)
        }

        @Test func regexRouteToFrontController() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let r = try await get(front, "/api/users/42?k=ROUTE")
            #expect(r.status == 200, "\(r.text)")
            let json = try r.json()
            #expect(json["value"] as? String == "api")
            #expect(json["SCRIPT_FILENAME"] as? String == Self.root + "/env.php")
            #expect(json["SCRIPT_NAME"] as? String == "/env.php")
            #expect(json["PATH_INFO"] as? String == "/api/users/42")
            // Anchored at the start: /v1/api/ does not match, and nothing else does.
            let notAnchored = try await get(front, "/v1/api/x?k=ROUTE")
            #expect(notAnchored.status == 404, "\(notAnchored.text)")
        }

        @Test func unanchoredRegexIsSearchedInThePath() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let r = try await get(front, "/some/where/data.json?k=ROUTE")
            #expect(r.status == 200, "\(r.text)")
            #expect(try envValue(r) == "json")
            let notAtEnd = try await get(front, "/data.json/more?k=ROUTE")
            #expect(notAtEnd.status == 404, "\(notAtEnd.text)")
        }

        @Test func hostRouteOnlyForThatHost() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let hosted = try await get(front, "/env.php?k=ROUTE", host: "example.test")
            #expect(hosted.status == 200, "\(hosted.text)")
            #expect(try envValue(hosted) == "hosted")
            // Case and port do not matter.
            let spelled = try await get(front, "/env.php?k=ROUTE", host: "Example.TEST:8080")
            #expect(try envValue(spelled) == "hosted", "\(spelled.text)")
            // Another host goes to the catch-all route, which sets no ROUTE.
            let other = try await get(front, "/env.php?k=ROUTE", host: "default.test")
            #expect(other.status == 200, "\(other.text)")
            #expect(try envValue(other) == nil)
            #expect(try other.json()["key"] as? String == "ROUTE")
        }

        @Test func pathMatchingNoRouteIs404() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            // Host 127.0.0.1:PORT: neither the host route nor the catch-all fits.
            let r = try await get(front, "/env.php?k=ROUTE")
            #expect(r.status == 404, "\(r.text)")
            #expect(!r.text.contains("\"key\""))
            let index = try await get(front, "/")
            #expect(index.status == 404)
        }

        @Test func firstMatchInFileOrderWinsOverLongerPrefix() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let r = try await get(front, "/first/deeper/x?k=ROUTE")
            #expect(r.status == 200, "\(r.text)")
            #expect(try envValue(r) == "first")
            // A path under both /api/ (regex, earlier) and /first/ style prefixes: the earlier wins.
            let api = try await get(front, "/api/x.json?k=ROUTE")
            #expect(try envValue(api) == "api")
        }

        @Test func routeParamsReachPHP() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let env = try await get(front, "/api/x?k=APP_ENV")
            #expect(env.status == 200, "\(env.text)")
            #expect(try envValue(env) == "production")
            let name = try await get(front, "/api/x?k=APP_NAME")
            #expect(try envValue(name) == "Example; API")
            // Only on that route.
            let elsewhere = try await get(front, "/exact.php?k=APP_ENV")
            #expect(elsewhere.status == 200)
            #expect(try envValue(elsewhere) == nil)
            // A client header cannot set it (it would only become HTTP_APP_ENV, and is dropped
            // anyway for its underscore).
            let header = try await Curl.run(["-H", "App-Env: evil", front.url("/exact.php?k=APP_ENV")])
            #expect(try envValue(header) == nil)
        }

        @Test func indexOfRouteForDirectory() async throws {
            let front = try await routingFront()
            defer { front.stop() }
            let r = try await get(front, "/dir/")
            #expect(r.status == 200, "\(r.text)")
            #expect(r.text.contains("dir other"))
            #expect(r.text.contains("SCRIPT_NAME=/dir/other.php"))
            // The /dir/ route has no host list: any Host gets it.
            let otherHost = try await get(front, "/dir/", host: "default.test")
            #expect(otherHost.text.contains("dir other"))
            let explicit = try await get(front, "/dir/index.php")
            #expect(explicit.status == 200)
            #expect(explicit.text.contains("dir index"))
        }
    }

    /// `script = ABSOLUTE PATH`: every path under the route runs that one script.
    @Suite(.fcgiproxyOnly("front controllers are an fcgiproxy route key")) struct FrontController {
        private static let root = Paths.phpRoot

        private func front(outsideScript: String? = nil) async throws -> any FrontEnd {
            var sections = """
                [route:app]
                match = /app/
                pool = php
                root = \(Self.root)
                script = \(Self.root)/info.php

                """
            if let outsideScript {
                sections += """

                    [route:outside]
                    match = /outside/
                    pool = php
                    root = \(Self.root)
                    script = \(outsideScript)

                    """
            }
            return try await Fixture.extraFrontEnd { $0.routesBeforeDefault = sections }
        }

        @Test(arguments: ["/app/", "/app/users/42", "/app/a/b.c/d"])
        func everyPathRunsTheScript(path: String) async throws {
            let front = try await front()
            defer { front.stop() }
            let r = try await Curl.run([front.url(path + "?x=1")])
            #expect(r.status == 200, "\(r.text)")
            let info = try r.json()
            #expect(info["SCRIPT_FILENAME"] as? String == Self.root + "/info.php")
            #expect(info["SCRIPT_NAME"] as? String == "/info.php")
            #expect(info["PATH_INFO"] as? String == path)
            #expect(info["DOCUMENT_ROOT"] as? String == Self.root)
            #expect(info["REQUEST_URI"] as? String == path + "?x=1")
            #expect(info["QUERY_STRING"] as? String == "x=1")
        }

        /// Paths naming other scripts (existing ones too) still run the front controller.
        @Test(arguments: [
            "/app/status.php?code=500", "/app/env.php?k=SCRIPT_FILENAME", "/app/dir/index.php",
            "/app/info.php/../status.php?code=500", "/app/uploads/a.jpg/x.php", "/app/status.php/x.php",
        ])
        func clientCannotChooseAnotherScript(target: String) async throws {
            let front = try await front()
            defer { front.stop() }
            let r = try await Curl.run(["--path-as-is", front.url(target)])
            #expect(r.status == 200, "\(target) → \(r.status) \(r.text)")
            let info = try r.json()
            #expect(info["SCRIPT_FILENAME"] as? String == Self.root + "/info.php", "\(target)")
            #expect(info["SCRIPT_NAME"] as? String == "/info.php", "\(target)")
            #expect((info["PATH_INFO"] as? String)?.hasPrefix("/app/") == true, "\(target)")
            #expect(info["key"] == nil)
        }

        /// Outside the root, SCRIPT_NAME is `/` + the base name.
        @Test func scriptOutsideRoot() async throws {
            let dir = try TempDir("fcgiproxy-front")
            let script = try dir.write(
                "front.php",
                """
                <?php
                header('Content-Type: application/json');
                echo json_encode(['front' => true, 'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? null,
                    'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'] ?? null,
                    'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null]), "\\n";

                """)
            chmod(script, 0o644)
            let front = try await front(outsideScript: script)
            defer { front.stop() }
            let r = try await Curl.run([front.url("/outside/x/y")])
            #expect(r.status == 200, "\(r.text)")
            let json = try r.json()
            #expect(json["front"] as? Bool == true)
            #expect(json["SCRIPT_FILENAME"] as? String == script)
            #expect(json["SCRIPT_NAME"] as? String == "/front.php")
            #expect(json["PATH_INFO"] as? String == "/outside/x/y")
        }
    }
}
