import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Debian's `dokuwiki` package served by fcgiproxy with `config/examples/dokuwiki.ini` and by
/// nginx with DokuWiki's own nginx guide, both in front of one private PHP-FPM, asked the same
/// requests: pages, the CSS and JS that css.php and js.php build (handed back through
/// X-Accel-Redirect), static files with validators and ranges, the deny rules, PHP source
/// probes, traversal, and a login.
///
/// Both serve a private copy of the wiki (the package's files are never touched): the code of
/// /usr/share/dokuwiki with conf/ (from /etc/dokuwiki) and data/ (from /var/lib/dokuwiki/data)
/// inside the root, as the upstream tarball lays them out, so the deny rules guard real files.
/// The copy runs with `userewrite = 2` (ids in PATH_INFO, what fcgiproxy serves without a rewrite
/// engine), `xsendfile = 3` (X-Accel-Redirect into data/) and a user `tester`.
///
/// nginx's config is the guide's with one change: its PHP location also takes `.php/PATH_INFO`
/// and comes before the lib/ location (under userewrite = 2, /lib/exe/fetch.php/wiki:x.png ends
/// in .png and would be looked up as a file otherwise).
extension Integration {
    @Suite(.serialized) struct DokuWiki {
        static let package = "/usr/share/dokuwiki"
        static let password = "correct horse battery"

        final class Site: Sendable {
            let dir: TempDir
            /// The copy both servers serve.
            let wiki: String
            let php: PHPFPM
            let proxy: SpawnedProcess
            let proxyPort: Int
            let nginx: SpawnedProcess
            let nginxPort: Int

            init() async throws {
                guard FileManager.default.fileExists(atPath: DokuWiki.package + "/doku.php") else {
                    throw HarnessError("no \(DokuWiki.package) (apt-get install --no-install-recommends dokuwiki; `make test` does)")
                }
                dir = try TempDir("fcgiproxy-dokuwiki")
                wiki = dir.file("dokuwiki")
                try await Self.makeCopy(wiki)
                php = try await PHPFPM(dir: dir, children: 4)
                let proxyStarted = try await Self.startProxy(dir: dir, wiki: wiki, socket: php.socketPath)
                proxy = proxyStarted.0
                proxyPort = proxyStarted.1
                let nginxStarted = try await Self.startNginx(dir: dir, wiki: wiki, socket: php.socketPath)
                nginx = nginxStarted.0
                nginxPort = nginxStarted.1
            }

            /// The package's code, configuration and data copied into `wiki`; configured there.
            static func makeCopy(_ wiki: String) async throws {
                for (args, what) in [
                    (["-a", DokuWiki.package, wiki], "code"),
                    (["-aL", "/etc/dokuwiki", wiki + "/conf"], "configuration"),
                    (["-a", "/var/lib/dokuwiki/data", wiki + "/data"], "data"),
                ] {
                    let copied = try await ChildProcess.run("/bin/cp", args, timeout: .seconds(60))
                    guard copied.exitCode == 0 else { throw HarnessError("copying the \(what): \(copied.stderrText)") }
                }
                let fm = FileManager.default
                // Debian's preload.php points DokuWiki at /etc/dokuwiki: without it, the copy
                // uses its own conf/ (DOKU_INC/conf/, the upstream default).
                try fm.removeItem(atPath: wiki + "/inc/preload.php")
                let local = try String(contentsOfFile: wiki + "/conf/local.php", encoding: .utf8)
                try (local + """

                    $conf['savedir'] = '\(wiki)/data';
                    $conf['userewrite'] = 2;
                    $conf['xsendfile'] = 3;
                    $conf['useacl'] = 1;
                    $conf['authtype'] = 'authplain';
                    $conf['superuser'] = '@admin';

                    """).write(toFile: wiki + "/conf/local.php", atomically: true, encoding: .utf8)
                // A known user (DokuWiki takes a plain MD5 hash as "md5").
                let hash = try await ChildProcess.run(
                    "/usr/bin/php", ["-r", "echo md5('\(DokuWiki.password)');"], timeout: .seconds(30)).stdoutText
                guard hash.count == 32 else { throw HarnessError("php -r md5: \(hash)") }
                try "tester:\(hash):Test User:tester@localhost:admin,user\n"
                    .write(toFile: wiki + "/conf/users.auth.php", atomically: true, encoding: .utf8)
                // Backups an editor or an admin leaves behind: their source must never be sent.
                try fm.copyItem(atPath: wiki + "/doku.php", toPath: wiki + "/doku.php~")
                try "<?php $conf['title'] = 'BACKUP-OF-LOCAL-CONF';\n"
                    .write(toFile: wiki + "/conf/local.php.bak", atomically: true, encoding: .utf8)
            }

            /// fcgiproxy with the example file, its paths and address replaced.
            static func startProxy(dir: TempDir, wiki: String, socket: String) async throws -> (SpawnedProcess, Int) {
                let example = try String(contentsOfFile: Paths.packageRoot + "/config/examples/dokuwiki.ini", encoding: .utf8)
                guard example.contains("listen = 127.0.0.1:8080"), example.contains("unix:/run/php/php8.2-fpm.sock") else {
                    throw HarnessError("config/examples/dokuwiki.ini lost its listen or backend line")
                }
                let binary = Paths.fcgiproxyBinary
                guard FileManager.default.isExecutableFile(atPath: binary) else {
                    throw HarnessError("fcgiproxy binary not found at \(binary) (run `swift build` or set FCGIPROXY_BIN)")
                }
                var lastLog = ""
                for attempt in 1...3 {
                    let port = try Net.freePort()
                    let ini = example
                        .replacingOccurrences(of: "listen = 127.0.0.1:8080", with: "listen = 127.0.0.1:\(port)")
                        .replacingOccurrences(of: "unix:/run/php/php8.2-fpm.sock", with: "unix:" + socket)
                        .replacingOccurrences(of: DokuWiki.package, with: wiki)
                    let config = try dir.write("fcgiproxy-\(attempt).ini", ini)
                    let log = dir.file("fcgiproxy-\(attempt).log")
                    let process = try ChildProcess.launch(binary, ["--config", config], logPath: log)
                    if await Net.waitUntilAccepting(port: port, timeout: .seconds(15), alive: { process.isRunning }) {
                        return (process, port)
                    }
                    process.stop()
                    lastLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                }
                throw HarnessError("fcgiproxy did not start with the DokuWiki example:\n\(lastLog)")
            }

            /// nginx with DokuWiki's guide (see the suite's comment for the one change).
            static func startNginx(dir: TempDir, wiki: String, socket: String) async throws -> (SpawnedProcess, Int) {
                var lastLog = ""
                for attempt in 1...3 {
                    let port = try Net.freePort()
                    let prefix = dir.file("nginx-\(attempt)")
                    try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
                    let config = try dir.write("nginx-\(attempt)/nginx.conf", NginxProcess.preamble(prefix: prefix, connections: 256) + """

                            include /etc/nginx/mime.types;
                            default_type application/octet-stream;

                            server {
                                listen 127.0.0.1:\(port);
                                client_max_body_size 4M;
                                client_body_buffer_size 128k;
                                root \(wiki);
                                index doku.php;

                                location ~ /(conf/|bin/|inc/|vendor/|install.php) { deny all; }

                                location ~ ^/data/ { internal ; }

                                location / { try_files $uri $uri/ @dokuwiki; }

                                location @dokuwiki {
                                    rewrite ^/_media/(.*) /lib/exe/fetch.php?media=$1 last;
                                    rewrite ^/_detail/(.*) /lib/exe/detail.php?media=$1 last;
                                    rewrite ^/_export/([^/]+)/(.*) /doku.php?do=export_$1&id=$2 last;
                                    rewrite ^/(.*) /doku.php?id=$1&$args last;
                                }

                                location ~ \\.php(/|$) {
                                    fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
                                    set $path_info $fastcgi_path_info;
                                    try_files $fastcgi_script_name /doku.php;
                                    include /etc/nginx/fastcgi_params;
                                    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
                                    fastcgi_param PATH_INFO $path_info;
                                    fastcgi_param REDIRECT_STATUS 200;
                                    fastcgi_pass unix:\(socket);
                                }

                                location ~ ^/lib.*\\.(js|css|gif|png|ico|jpg|jpeg)$ {
                                    expires 365d;
                                }
                            }
                        }

                        """)
                    let log = prefix + "/stderr.log"
                    let process = try ChildProcess.launch(Paths.nginx, ["-p", prefix, "-c", config], logPath: log)
                    if await Net.waitUntilAccepting(port: port, timeout: .seconds(10), alive: { process.isRunning }) {
                        return (process, port)
                    }
                    process.stop()
                    lastLog = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
                        + ((try? String(contentsOfFile: prefix + "/error.log", encoding: .utf8)) ?? "")
                }
                throw HarnessError("nginx did not start with the DokuWiki guide's config:\n\(lastLog)")
            }

            func file(_ path: String) -> Data? { FileManager.default.contents(atPath: wiki + path) }
        }

        private static let site = SiteHolder()

        private actor SiteHolder {
            private var site: Site?
            private var failure: (any Error)?
            func get() async throws -> Site {
                if let failure { throw failure }
                if let site { return site }
                do {
                    let made = try await Site()
                    site = made
                    return made
                } catch {
                    failure = error
                    throw error
                }
            }
        }

        /// One request to both servers: (fcgiproxy, nginx). Each curl is bounded by --max-time.
        private func both(_ path: String, _ extra: [String] = []) async throws -> (proxy: CurlResponse, nginx: CurlResponse) {
            let site = try await Self.site.get()
            let args = ["--max-time", "20", "--path-as-is", "-g"] + extra
            async let proxy = Curl.run(args + ["http://127.0.0.1:\(site.proxyPort)\(path)"], timeout: .seconds(30))
            async let nginx = Curl.run(args + ["http://127.0.0.1:\(site.nginxPort)\(path)"], timeout: .seconds(30))
            let answers = try await (proxy: proxy, nginx: nginx)
            #expect(site.proxy.isRunning, "fcgiproxy died on \(path)")
            return answers
        }

        /// The media type without parameters; Debian's mime.types and nginx's table spell a few
        /// types differently, and those count as the same.
        private static func mediaType(_ value: String?) -> String {
            let type = (value ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            let same = ["text/javascript": "application/javascript", "image/vnd.microsoft.icon": "image/x-icon"]
            return same[type] ?? type
        }

        /// The asset URLs (under /lib/) a page links, in order, without duplicates.
        private static func assets(_ html: String) -> [String] {
            var seen = Set<String>()
            var out: [String] = []
            for attribute in ["href=\"", "src=\""] {
                var rest = html[...]
                while let start = rest.range(of: attribute) {
                    rest = rest[start.upperBound...]
                    guard let end = rest.firstIndex(of: "\"") else { break }
                    let url = rest[..<end].replacingOccurrences(of: "&amp;", with: "&")
                    if url.hasPrefix("/lib/"), seen.insert(url).inserted { out.append(url) }
                }
            }
            return out
        }

        @Test func startPageAndEveryAssetItLinks() async throws {
            let (proxy, nginx) = try await both("/")
            #expect(proxy.status == 200 && nginx.status == 200, "GET /: fcgiproxy \(proxy.status), nginx \(nginx.status)")
            #expect(Self.mediaType(proxy.header("Content-Type")) == "text/html")
            for marker in ["<title>start [Debian DokuWiki]</title>", "id=\"dokuwiki__content\"", "/lib/exe/css.php?t=dokuwiki", "/lib/exe/js.php?t=dokuwiki", "/doku.php/start?do=login"] {
                #expect(proxy.text.contains(marker), "fcgiproxy's start page lacks \(marker)")
                #expect(nginx.text.contains(marker), "nginx's start page lacks \(marker)")
            }
            let site = try await Self.site.get()
            let links = Self.assets(proxy.text)
            #expect(links == Self.assets(nginx.text), "the two start pages link different assets")
            #expect(links.count >= 10, "\(links)")
            // Every asset, twice: css.php and js.php build the file on a cache miss and hand the
            // cached copy over with X-Accel-Redirect (into data/cache/) on a hit.
            for round in 1...2 {
                for link in links {
                    let (p, n) = try await both(link)
                    #expect(p.status == 200, "round \(round): fcgiproxy \(p.status) for \(link), nginx \(n.status)")
                    #expect(p.status == n.status, "round \(round): \(link): fcgiproxy \(p.status), nginx \(n.status)")
                    #expect(Self.mediaType(p.header("Content-Type")) == Self.mediaType(n.header("Content-Type")),
                            "\(link): fcgiproxy \(p.header("Content-Type") ?? "-"), nginx \(n.header("Content-Type") ?? "-")")
                    #expect(!p.body.isEmpty, "\(link): fcgiproxy sent no body")
                    if !link.hasPrefix("/lib/exe/taskrunner.php") {
                        // Debian's /etc/nginx/fastcgi_params sends HTTP_HOST as $host (no port),
                        // fcgiproxy the client's Host: manifest.php and opensearch.php print it.
                        let proxyBody = Data(p.text.replacingOccurrences(of: "127.0.0.1:\(site.proxyPort)", with: "127.0.0.1").utf8)
                        #expect(p.text.contains("\u{FFFD}") ? p.body == n.body : proxyBody == n.body, "round \(round): \(link): bodies differ (\(p.body.count) vs \(n.body.count) bytes)")
                    }
                }
            }
            let css = try await both("/lib/exe/css.php?t=dokuwiki")
            #expect(css.proxy.text.contains(".dokuwiki"), "css.php: \(css.proxy.text.prefix(200))")
            #expect(css.proxy.header("X-Accel-Redirect") == nil, "the X-Accel-Redirect field went to the client")
        }

        @Test func prettyURLPages() async throws {
            // userewrite = 2: the id is PATH_INFO; the old mode-1 form /wiki:syntax runs doku.php
            // with it as PATH_INFO (fcgiproxy's front controller) or ?id= (nginx's rewrite).
            for path in ["/doku.php/wiki:syntax", "/wiki:syntax", "/doku.php/wiki:dokuwiki", "/doku.php?id=wiki:syntax"] {
                let (proxy, nginx) = try await both(path)
                #expect(proxy.status == 200 && nginx.status == 200, "\(path): fcgiproxy \(proxy.status), nginx \(nginx.status)")
                let title = path.hasSuffix("dokuwiki") ? "wiki:dokuwiki" : "Formatting Syntax"
                #expect(proxy.text.contains(title), "fcgiproxy \(path) lacks \(title)")
                #expect(nginx.text.contains(title), "nginx \(path) lacks \(title)")
            }
            // A page that does not exist: DokuWiki's "does not exist yet" page on both.
            let (proxy, nginx) = try await both("/doku.php/no:such:page")
            #expect(proxy.status == nginx.status, "missing page: fcgiproxy \(proxy.status), nginx \(nginx.status)")
            #expect(proxy.text.contains("This topic does not exist yet") && nginx.text.contains("This topic does not exist yet"))
            // Raw export: the wiki text, through DokuWiki, not data/ read as a file.
            let raw = try await both("/doku.php/wiki:syntax?do=export_raw")
            #expect(raw.proxy.status == 200 && raw.proxy.body == raw.nginx.body && raw.proxy.text.contains("====== Formatting Syntax ======"))
            // Media by PATH_INFO (fetch.php/ID) and by query, via X-Accel-Redirect into data/media.
            let mediaFile = try await Self.siteFile("/data/media/wiki/dokuwiki-128.png")
            let media = try #require(mediaFile)
            for path in ["/lib/exe/fetch.php/wiki:dokuwiki-128.png", "/lib/exe/fetch.php?media=wiki:dokuwiki-128.png"] {
                let (p, n) = try await both(path)
                #expect(p.status == 200 && n.status == 200, "\(path): fcgiproxy \(p.status), nginx \(n.status)")
                #expect(p.body == media && n.body == media, "\(path): \(p.body.count) / \(n.body.count) bytes, file \(media.count)")
                #expect(p.header("Content-Type") == "image/png" && n.header("Content-Type") == "image/png")
            }
        }

        private static func siteFile(_ path: String) async throws -> Data? {
            try await site.get().file(path)
        }

        @Test func staticFilesAreByteEqualWithTheSameValidators() async throws {
            let files = [
                "/lib/tpl/dokuwiki/images/logo.png",
                "/lib/tpl/dokuwiki/images/favicon.ico",
                "/lib/tpl/dokuwiki/images/button-php.gif",
                "/lib/images/license/button/cc-by-sa.png",
                "/lib/images/email.svg",
                "/lib/scripts/behaviour.js",
                "/lib/tpl/dokuwiki/css/basic.less",
                "/lib/index.html",
                "/VERSION",
            ]
            for path in files {
                let file = try await Self.siteFile(path)
                let bytes = try #require(file, "\(path) missing in the copy")
                let (p, n) = try await both(path)
                #expect(p.status == 200 && n.status == 200, "\(path): fcgiproxy \(p.status), nginx \(n.status)")
                #expect(p.body == bytes, "\(path): fcgiproxy sent \(p.body.count) bytes, the file has \(bytes.count)")
                #expect(n.body == bytes, "\(path): nginx sent \(n.body.count) bytes, the file has \(bytes.count)")
                #expect(Self.mediaType(p.header("Content-Type")) == Self.mediaType(n.header("Content-Type")),
                        "\(path): fcgiproxy \(p.header("Content-Type") ?? "-"), nginx \(n.header("Content-Type") ?? "-")")
                #expect(p.header("ETag") == n.header("ETag"), "\(path): ETag \(p.header("ETag") ?? "-") vs \(n.header("ETag") ?? "-")")
                #expect(p.header("Last-Modified") == n.header("Last-Modified"))
                // The guide's `expires 365d` on lib/ images, styles and scripts.
                #expect(p.header("Cache-Control") == n.header("Cache-Control"),
                        "\(path): Cache-Control \(p.header("Cache-Control") ?? "-") vs \(n.header("Cache-Control") ?? "-")")
            }
        }

        @Test func conditionalRangeAndHead() async throws {
            let path = "/lib/tpl/dokuwiki/images/logo.png"
            let file = try await Self.siteFile(path)
            let bytes = try #require(file)
            let first = try await both(path)
            let etag = try #require(first.proxy.header("ETag"))
            let lastModified = try #require(first.proxy.header("Last-Modified"))

            for (name, extra) in [("If-None-Match", ["-H", "If-None-Match: \(etag)"]),
                                  ("If-Modified-Since", ["-H", "If-Modified-Since: \(lastModified)"])] {
                let (p, n) = try await both(path, extra)
                #expect(p.status == 304 && n.status == 304, "\(name): fcgiproxy \(p.status), nginx \(n.status)")
                #expect(p.body.isEmpty && p.header("ETag") == etag)
            }
            let stale = try await both(path, ["-H", "If-None-Match: \"0-0\""])
            #expect(stale.proxy.status == 200 && stale.nginx.status == 200 && stale.proxy.body == bytes)

            let range = try await both(path, ["-H", "Range: bytes=100-199"])
            #expect(range.proxy.status == 206 && range.nginx.status == 206, "Range: fcgiproxy \(range.proxy.status), nginx \(range.nginx.status)")
            #expect(range.proxy.header("Content-Range") == range.nginx.header("Content-Range"))
            #expect(range.proxy.body == bytes.subdata(in: 100..<200) && range.nginx.body == range.proxy.body)
            let tail = try await both(path, ["-H", "Range: bytes=-10"])
            #expect(tail.proxy.status == 206 && tail.proxy.body == bytes.suffix(10) && tail.nginx.body == tail.proxy.body)
            let beyond = try await both(path, ["-H", "Range: bytes=999999-"])
            #expect(beyond.proxy.status == 416 && beyond.nginx.status == 416, "unsatisfiable: fcgiproxy \(beyond.proxy.status), nginx \(beyond.nginx.status)")

            // HEAD: the head of a GET, no body; a file's length, a page's status.
            let head = try await both(path, ["-I"])
            #expect(head.proxy.status == 200 && head.nginx.status == 200)
            #expect(head.proxy.header("Content-Length") == String(bytes.count) && head.nginx.header("Content-Length") == String(bytes.count))
            #expect(!head.proxy.text.contains("PNG"), "HEAD sent file bytes")
            let page = try await both("/doku.php/wiki:syntax", ["-I"])
            #expect(page.proxy.status == 200 && page.nginx.status == 200, "HEAD page: fcgiproxy \(page.proxy.status), nginx \(page.nginx.status)")
            #expect(!page.proxy.text.contains("<html"), "HEAD sent a page body")
        }

        /// Paths whose content must never leave the server, with a string of that content.
        static let secrets: [(path: String, marker: String)] = [
            ("/data/pages/wiki/syntax.txt", "====== Formatting Syntax"),
            ("/data/pages/wiki/dokuwiki.txt", "====== DokuWiki ======"),
            ("/data/media/wiki/dokuwiki-128.png", "PNG"),
            ("/data/", "Index of"),
            ("/conf/local.php", "savedir"),
            ("/conf/users.auth.php", "tester:"),
            ("/conf/acl.auth.php", "@ALL"),
            ("/conf/dokuwiki.php", "$conf["),
            ("/conf/.htaccess", "Require"),
            ("/conf/local.php.bak", "BACKUP-OF-LOCAL-CONF"),
            ("/inc/init.php", "<?php"),
            ("/inc/", "Index of"),
            ("/bin/dwpage.php", "<?php"),
            ("/vendor/autoload.php", "<?php"),
            ("/vendor/composer/installed.json", "\"packages\""),
            ("/install.php", "<?php"),
            ("/.htaccess", "Files ~"),
            ("/.htaccess.dist", "Files ~"),
            ("/doku.php~", "DokuWiki mainscript"),
            // Case, encoding, dot segments and slashes around the deny rules.
            ("/%63onf/local.php", "savedir"),
            ("/conf%2flocal.php", "savedir"),
            ("//conf/local.php", "savedir"),
            ("/./conf/local.php", "savedir"),
            ("/lib/../conf/local.php", "savedir"),
            ("/lib/%2e%2e/conf/local.php", "savedir"),
            ("/lib/..%2fconf/local.php", "savedir"),
            ("/data//pages/wiki/syntax.txt", "====== Formatting Syntax"),
            ("/conf/local.php/", "savedir"),
            ("/conf/local.php%00.txt", "savedir"),
            ("/lib/images/../../conf/users.auth.php", "tester:"),
            ("/../../../../etc/passwd", "root:x:0:0"),
            ("/lib/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "root:x:0:0"),
            ("/lib/..%2f..%2f..%2f..%2fetc/passwd", "root:x:0:0"),
            ("/lib/exe/fetch.php?media=../../conf/users.auth.php", "tester:"),
            ("/lib/exe/fetch.php/..%2f..%2fconf%2fusers.auth.php", "tester:"),
            ("/doku.php?id=../../conf/users.auth.php&do=export_raw", "tester:"),
            ("/lib/exe/css.php?t=../../../conf", "savedir"),
        ]

        /// Where nginx with the guide's config sends what fcgiproxy keeps: the guide protects
        /// neither dot-files nor editor backups (they are plain files under location /).
        static let nginxLeaks: Set<String> = ["/.htaccess", "/.htaccess.dist", "/doku.php~"]

        @Test func denyRulesSourceAndTraversalProbes() async throws {
            var table: [String] = []
            for (path, marker) in Self.secrets {
                let (p, n) = try await both(path)
                table.append("\(path): fcgiproxy \(p.status), nginx \(n.status)")
                #expect(!p.text.contains(marker), "fcgiproxy sent the content of \(path) (status \(p.status))")
                #expect(!(p.status == 200 && p.text.contains("<?php")), "fcgiproxy sent PHP source for \(path)")
                if Self.nginxLeaks.contains(path) {
                    // Recorded, so a change in either is noticed. fcgiproxy: a dot-file is a 404;
                    // doku.php~ runs doku.php (a page "doku.php", DokuWiki's 200 "does not exist").
                    #expect(n.status == 200 && n.text.contains(marker), "nginx no longer sends \(path): \(n.status)")
                    #expect(p.status == (path.hasPrefix("/.") ? 404 : 200), "\(path): fcgiproxy \(p.status)")
                } else {
                    #expect(!n.text.contains(marker), "nginx sent the content of \(path) (status \(n.status))")
                }
            }
            // The plain deny paths: the guide's status on both (403 for its deny rule, 404 for
            // data/, which is internal).
            for (path, status) in [("/conf/local.php", 403), ("/inc/init.php", 403), ("/bin/dwpage.php", 403),
                                   ("/vendor/autoload.php", 403), ("/install.php", 403), ("/conf/.htaccess", 403),
                                   ("/data/pages/wiki/syntax.txt", 404), ("/data/media/wiki/dokuwiki-128.png", 404),
                                   ("/lib/plugins/authldap/conf/default.php", 403)] {
                let (p, n) = try await both(path)
                #expect(p.status == status && n.status == status, "\(path): fcgiproxy \(p.status), nginx \(n.status), expected \(status)")
            }
            print("DokuWiki probes:\n  " + table.joined(separator: "\n  "))
        }

        /// A POST of the login form, with the form's sectok, in a session of its own.
        private func login(port: Int, jar: String, password: String) async throws -> (form: CurlResponse, answer: CurlResponse) {
            let base = "http://127.0.0.1:\(port)"
            let common = ["--max-time", "20", "-c", jar, "-b", jar]
            let form = try await Curl.run(common + [base + "/doku.php/start?do=login"], timeout: .seconds(30))
            let text = form.text
            guard let range = text.range(of: "name=\"sectok\" value=\"") else {
                throw HarnessError("no sectok in the login form (\(form.status)):\n\(text.prefix(2000))")
            }
            let sectok = String(text[range.upperBound...].prefix { $0 != "\"" })
            let answer = try await Curl.run(common + [
                "--data-urlencode", "sectok=\(sectok)", "--data-urlencode", "id=start", "--data-urlencode", "do=login",
                "--data-urlencode", "u=tester", "--data-urlencode", "p=\(password)",
                base + "/doku.php/start?do=login",
            ], timeout: .seconds(30))
            return (form, answer)
        }

        private static func authCookie(_ response: CurlResponse) -> String? {
            response.headers("Set-Cookie").first { $0.hasPrefix("DW") && !$0.contains("=deleted") }
        }

        @Test func loginWrongAndRightPassword() async throws {
            let site = try await Self.site.get()
            let jars = try TempDir("fcgiproxy-dokuwiki-jars")
            let wrongProxy = try await login(port: site.proxyPort, jar: jars.file("p1"), password: "not it")
            let wrongNginx = try await login(port: site.nginxPort, jar: jars.file("n1"), password: "not it")
            #expect(wrongProxy.form.status == 200 && wrongNginx.form.status == 200)
            #expect(wrongProxy.answer.status == wrongNginx.answer.status,
                    "wrong password: fcgiproxy \(wrongProxy.answer.status), nginx \(wrongNginx.answer.status)")
            for (name, answer) in [("fcgiproxy", wrongProxy.answer), ("nginx", wrongNginx.answer)] {
                #expect(answer.text.contains("Sorry, username or password was wrong"), "\(name): \(answer.status)\n\(answer.text.prefix(500))")
                #expect(answer.text.contains("name=\"sectok\""), "\(name) lost the login form")
                #expect(Self.authCookie(answer) == nil, "\(name) set a login cookie for a wrong password")
            }

            let rightProxy = try await login(port: site.proxyPort, jar: jars.file("p2"), password: Self.password)
            let rightNginx = try await login(port: site.nginxPort, jar: jars.file("n2"), password: Self.password)
            #expect(rightProxy.answer.status == rightNginx.answer.status,
                    "login: fcgiproxy \(rightProxy.answer.status), nginx \(rightNginx.answer.status)")
            let proxyCookie = Self.authCookie(rightProxy.answer)
            let nginxCookie = Self.authCookie(rightNginx.answer)
            #expect(proxyCookie != nil, "fcgiproxy: no DokuWiki login cookie; fields \(rightProxy.answer.headers)")
            #expect(nginxCookie != nil, "nginx: no DokuWiki login cookie; fields \(rightNginx.answer.headers)")
            // The name is "DW" + md5(base path + SERVER_PORT): each server has its own port.
            #expect(proxyCookie?.hasPrefix("DW") == true && nginxCookie?.hasPrefix("DW") == true)
            // Location names the same page on both (the host part carries each server's port).
            // (nginx's HTTP_HOST has no port, see above.)
            let strip = { (value: String?) in value.map { $0.replacingOccurrences(of: "127.0.0.1:\(site.proxyPort)", with: "127.0.0.1") } }
            #expect(strip(rightProxy.answer.header("Location")) == strip(rightNginx.answer.header("Location")))
            // Logged in: the next page shows the user.
            for (port, jar) in [(site.proxyPort, jars.file("p2")), (site.nginxPort, jars.file("n2"))] {
                let page = try await Curl.run(["--max-time", "20", "-b", jar, "http://127.0.0.1:\(port)/doku.php/start"], timeout: .seconds(30))
                #expect(page.status == 200)
                #expect(page.text.contains("Test User") && page.text.contains("do=logout"), "port \(port): not logged in")
            }
        }

        /// Where the two differ by design (checked so that a change is noticed).
        @Test func knownDifferences() async throws {
            // A missing script: the guide's `try_files ... /doku.php` shows the start page, the
            // example's scripts route answers 404.
            let script = try await both("/no-such-script.php")
            #expect(script.proxy.status == 404, "fcgiproxy \(script.proxy.status)")
            #expect(script.nginx.status == 200, "nginx \(script.nginx.status)")
            // A directory without doku.php: nginx refuses the listing (403); fcgiproxy runs
            // doku.php for it, which shows DokuWiki's "does not exist yet" page "lib:" (200).
            let lib = try await both("/lib/")
            #expect(lib.nginx.status == 403, "nginx \(lib.nginx.status)")
            #expect(lib.proxy.status == 200 && lib.proxy.text.contains("This topic does not exist yet"), "fcgiproxy \(lib.proxy.status)")
            // A directory without its slash: a 301 to it on both.
            let redirect = try await both("/lib")
            #expect(redirect.proxy.status == 301 && redirect.nginx.status == 301)
        }
    }
}
