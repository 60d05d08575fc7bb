import Foundation
import Testing

/// A document root with assets next to its scripts, served by fcgiproxy alone: static files
/// with validators and ranges, index lists, the fallback script, deny rules for dot-files and
/// PHP source, internal routes reached by X-Accel-Redirect, X-Sendfile, precompressed siblings,
/// over HTTP/1 (sendfile) and HTTP/2 (chunks).
extension Integration {
    @Suite(.fcgiproxyOnly("static-file routes are fcgiproxy INI sections"), .serialized)
    struct StaticFiles {
        /// One site for the whole suite: files are written once, one front end serves them.
        final class Site: Sendable {
            let dir: TempDir
            let www: String
            let front: any FrontEnd
            let big: Data

            init() async throws {
                dir = try TempDir("fcgiproxy-static")
                www = dir.file("www")
                let fm = FileManager.default
                for folder in ["www/docs", "www/empty", "www/.git", "www/.well-known", "www/assets", "www/nolinks", "private/protected", "downloads"] {
                    try fm.createDirectory(atPath: dir.file(folder), withIntermediateDirectories: true)
                }
                let files: [String: String] = [
                    "www/style.css": "body { color: red }\n",
                    "www/.hidden": "secret\n",
                    "www/.git/config": "[core]\n",
                    "www/.well-known/acme": "token\n",
                    "www/index.php~": "<?php echo 'backup source';\n",
                    "www/notes.php.txt": "<?php echo 'source';\n",
                    "www/docs/index.html": "<h1>docs</h1>\n",
                    "www/assets/app.js": "console.log('plain')\n",
                    "www/assets/app.js.gz": "GZIPPED-STAND-IN\n",
                    "www/nolinks/real.txt": "real\n",
                    "private/protected/secret.txt": "the secret\n",
                    "downloads/report.txt": "report body\n",
                    "www/index.php": """
                        <?php
                        header('Content-Type: text/plain');
                        echo "SCRIPT_NAME=", $_SERVER['SCRIPT_NAME'], "\\n";
                        echo "REQUEST_URI=", $_SERVER['REQUEST_URI'], "\\n";
                        echo "PATH_INFO=", $_SERVER['PATH_INFO'] ?? '', "\\n";
                        """,
                    "www/accel.php": """
                        <?php
                        header('X-Accel-Redirect: ' . ($_GET['to'] ?? '/protected/secret.txt'));
                        header('Content-Disposition: attachment; filename="secret.txt"');
                        header('X-Dropped: yes');
                        echo 'backend body that must not be sent';
                        """,
                    "www/sendfile.php": """
                        <?php
                        header('X-Sendfile: ' . $_GET['f']);
                        header('Content-Type: application/x-report');
                        echo 'backend body that must not be sent';
                        """,
                ]
                for (name, text) in files {
                    try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
                }
                try fm.createSymbolicLink(atPath: dir.file("www/nolinks/link.txt"), withDestinationPath: dir.file("www/style.css"))
                var bytes = [UInt8](repeating: 0, count: 6 * 1024 * 1024 + 123)
                for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
                big = Data(bytes)
                try big.write(to: URL(fileURLWithPath: dir.file("www/big.bin")))
                let www = self.www
                let dir = self.dir
                front = try await Fixture.extraFrontEnd { options in
                    options.root = www
                    options.extraPoolINI = "x_sendfile = \(dir.file("downloads"))"
                    options.routesBeforeDefault = """
                        [route:protected]
                        match = /protected/
                        root = \(dir.file("private"))
                        internal = on

                        [route:nolinks]
                        match = /nolinks/
                        root = \(www)
                        symlinks = off

                        [route:assets]
                        match = /assets/
                        root = \(www)
                        precompressed = on
                        header = Cache-Control public, max-age=60

                        [route:site]
                        match = /
                        pool = php
                        root = \(www)
                        index = index.php index.html
                        fallback = /index.php

                        """
                }
            }
        }

        private static let site = SiteHolder()

        private actor SiteHolder {
            private var site: Site?
            func get() async throws -> Site {
                if let site { return site }
                let made = try await Site()
                site = made
                return made
            }
        }

        private func get(_ path: String, _ extra: [String] = []) async throws -> (CurlResponse, Site) {
            let site = try await Self.site.get()
            let response = try await Curl.run(["--max-time", "20", "--path-as-is"] + extra + [site.front.url(path)])
            return (response, site)
        }

        @Test func aFileComesWithTypeValidatorsAndLength() async throws {
            let (response, _) = try await get("/style.css")
            #expect(response.status == 200)
            #expect(response.text == "body { color: red }\n")
            #expect(response.header("Content-Type") == "text/css")
            #expect(response.header("Content-Length") == "20")
            #expect(response.header("Accept-Ranges") == "bytes")
            let etag = try #require(response.header("ETag"))
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
            #expect(response.header("Last-Modified")?.hasSuffix(" GMT") == true)

            let head = try await get("/style.css", ["-I"]).0
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "20")
            // curl -I writes the head where the body would go: no file bytes may follow it.
            #expect(!head.text.contains("color"))
        }

        @Test func validatorsAnswer304AndIfRangeDecides() async throws {
            let (first, _) = try await get("/style.css")
            let etag = try #require(first.header("ETag"))
            let lastModified = try #require(first.header("Last-Modified"))
            let byTag = try await get("/style.css", ["-H", "If-None-Match: \"other\", \(etag)"]).0
            #expect(byTag.status == 304)
            #expect(byTag.body.isEmpty)
            #expect(byTag.header("ETag") == etag)
            let byDate = try await get("/style.css", ["-H", "If-Modified-Since: \(lastModified)"]).0
            #expect(byDate.status == 304)
            let stale = try await get("/style.css", ["-H", "If-None-Match: \"other\""]).0
            #expect(stale.status == 200)
            let failed = try await get("/style.css", ["-H", "If-Match: \"other\""]).0
            #expect(failed.status == 412)

            let rangeOK = try await get("/style.css", ["-H", "Range: bytes=0-3", "-H", "If-Range: \(etag)"]).0
            #expect(rangeOK.status == 206)
            #expect(rangeOK.text == "body")
            let rangeStale = try await get("/style.css", ["-H", "Range: bytes=0-3", "-H", "If-Range: \"old\""]).0
            #expect(rangeStale.status == 200)
            #expect(rangeStale.text == "body { color: red }\n")
        }

        @Test func rangesSingleSeveralAndUnsatisfiable() async throws {
            let single = try await get("/style.css", ["-H", "Range: bytes=5-9"]).0
            #expect(single.status == 206)
            #expect(single.text == "{ col")
            #expect(single.header("Content-Range") == "bytes 5-9/20")
            let suffix = try await get("/style.css", ["-H", "Range: bytes=-4"]).0
            #expect(suffix.text == "d }\n")

            let several = try await get("/style.css", ["-H", "Range: bytes=0-3,10-12"]).0
            #expect(several.status == 206)
            let type = try #require(several.header("Content-Type"))
            #expect(type.hasPrefix("multipart/byteranges; boundary="))
            let boundary = String(type.split(separator: "=").last ?? "")
            #expect(several.text.contains("--\(boundary)\r\nContent-Type: text/css\r\nContent-Range: bytes 0-3/20\r\n\r\nbody\r\n"))
            #expect(several.text.contains("Content-Range: bytes 10-12/20\r\n\r\nor:\r\n--\(boundary)--"))
            #expect(Int(several.header("Content-Length") ?? "") == several.body.count)

            let beyond = try await get("/style.css", ["-H", "Range: bytes=100-"]).0
            #expect(beyond.status == 416)
            #expect(beyond.header("Content-Range") == "bytes */20")
        }

        @Test func aLargeFileArrivesWholeOverHTTP1AndHTTP2() async throws {
            let (http1, site) = try await get("/big.bin")
            #expect(http1.status == 200)
            #expect(http1.body == site.big)
            let http2 = try await get("/big.bin", ["--http2-prior-knowledge"]).0
            #expect(http2.status == 200)
            #expect(http2.body == site.big)
            let range = try await get("/big.bin", ["--http2-prior-knowledge", "-H", "Range: bytes=1000000-1999999"]).0
            #expect(range.status == 206)
            #expect(range.body == site.big.subdata(in: 1_000_000..<2_000_000))
        }

        @Test func dotFilesAndScriptSourceAreNeverSent() async throws {
            for path in ["/.hidden", "/.git/config", "/.well-known/../.hidden", "/%2egit/config"] {
                let response = try await get(path).0
                #expect(response.status == 404, "\(path): \(response.status)")
                #expect(!response.text.contains("secret") && !response.text.contains("[core]"), "\(path): \(response.text)")
            }
            // Names that contain ".php" are never bytes: nothing fits, so the fallback script runs.
            for path in ["/index.php~", "/notes.php.txt", "/INDEX.PHP~"] {
                let response = try await get(path).0
                #expect(!response.text.contains("source"), "\(path): \(response.text)")
                #expect(response.status == 404 || response.text.hasPrefix("SCRIPT_NAME=/index.php\n"), "\(path): \(response.status)")
            }
            let wellKnown = try await get("/.well-known/acme").0
            #expect(wellKnown.status == 200)
            #expect(wellKnown.text == "token\n")
            for path in ["/../private/protected/secret.txt", "/%2e%2e/private/protected/secret.txt", "/docs/..%2f..%2fprivate/protected/secret.txt"] {
                let response = try await get(path).0
                #expect(!response.text.contains("the secret"), "\(path): \(response.status)")
            }
        }

        @Test func directoriesRedirectThenServeTheirIndexList() async throws {
            let bare = try await get("/docs?x=1").0
            #expect(bare.status == 301)
            #expect(bare.header("Location") == "/docs/?x=1")
            let index = try await get("/docs/").0
            #expect(index.status == 200)
            #expect(index.text == "<h1>docs</h1>\n")
            #expect(index.header("Content-Type") == "text/html")
            let root = try await get("/").0
            #expect(root.status == 200)
            #expect(root.text.contains("SCRIPT_NAME=/index.php"))
        }

        @Test func theFallbackRunsForPathsThatNameNothing() async throws {
            let pretty = try await get("/blog/2026/hello-world?p=2").0
            #expect(pretty.status == 200)
            #expect(pretty.text == "SCRIPT_NAME=/index.php\nREQUEST_URI=/blog/2026/hello-world?p=2\nPATH_INFO=\n")
            let empty = try await get("/empty/").0
            #expect(empty.text.contains("SCRIPT_NAME=/index.php"))
        }

        @Test func otherMethodsOnAFileGet405() async throws {
            let response = try await get("/style.css", ["-X", "POST", "-d", "a=1"]).0
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD")
        }

        @Test func internalRoutesOnlyThroughXAccelRedirect() async throws {
            let direct = try await get("/protected/secret.txt").0
            #expect(direct.status == 404)
            for extra in [[], ["--http2-prior-knowledge"]] {
                let accel = try await get("/accel.php", extra).0
                #expect(accel.status == 200)
                #expect(accel.text == "the secret\n")
                #expect(accel.header("Content-Disposition") == "attachment; filename=\"secret.txt\"")
                #expect(accel.header("X-Dropped") == nil)
                let ranged = try await get("/accel.php", extra + ["-H", "Range: bytes=4-9"]).0
                #expect(ranged.status == 206)
                #expect(ranged.text == "secret")
            }
            let missing = try await get("/accel.php?to=/protected/none.txt").0
            #expect(missing.status == 404)
        }

        @Test func xSendfileOnlyUnderItsDirectory() async throws {
            let site = try await Self.site.get()
            let inside = site.dir.file("downloads/report.txt")
            let ok = try await get("/sendfile.php?f=\(inside)").0
            #expect(ok.status == 200)
            #expect(ok.text == "report body\n")
            #expect(ok.header("Content-Type") == "application/x-report")
            for outside in [site.dir.file("private/protected/secret.txt"), site.dir.file("downloads/../private/protected/secret.txt"), "/etc/passwd"] {
                let refused = try await get("/sendfile.php?f=\(outside)").0
                #expect(refused.status == 500, "\(outside)")
                #expect(!refused.text.contains("the secret") && !refused.text.contains("root:"))
            }
        }

        @Test func precompressedSiblingsWhenTheClientTakesThem() async throws {
            let gz = try await get("/assets/app.js", ["-H", "Accept-Encoding: gzip"]).0
            #expect(gz.status == 200)
            #expect(gz.text == "GZIPPED-STAND-IN\n")
            #expect(gz.header("Content-Encoding") == "gzip")
            #expect(gz.header("Content-Type") == "text/javascript")
            #expect(gz.header("Vary") == "Accept-Encoding")
            #expect(gz.header("Cache-Control") == "public, max-age=60")
            let plain = try await get("/assets/app.js").0
            #expect(plain.text == "console.log('plain')\n")
            #expect(plain.header("Content-Encoding") == nil)
            #expect(plain.header("Vary") == "Accept-Encoding")
        }

        /// The loop's small-file cache answers from memory only while the file is unchanged.
        @Test func aFileChangedOnDiskIsSentAsItIsNow() async throws {
            let site = try await Self.site.get()
            let path = site.dir.file("www/changing.txt")
            try "version one\n".write(toFile: path, atomically: false, encoding: .utf8)
            // Past the second of the write, so the file is kept in memory (the cache's rule).
            try await Task.sleep(for: .milliseconds(1100))
            // Several connections, so every event loop has the file in its cache.
            let first = try await get("/changing.txt").0
            #expect(first.text == "version one\n")
            for _ in 0..<4 {
                let cached = try await get("/changing.txt").0
                #expect(cached.text == "version one\n")
                #expect(cached.header("ETag") == first.header("ETag"))
            }

            // Same size, same inode, new bytes.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.write(contentsOf: Data("version two\n".utf8))
            try handle.close()
            var second = first
            for _ in 0..<4 {
                second = try await get("/changing.txt").0
                #expect(second.text == "version two\n")
                #expect(second.header("Content-Length") == "12")
                #expect(second.header("ETag") != first.header("ETag"))
            }

            try await Task.sleep(for: .milliseconds(1100))
            for _ in 0..<4 { _ = try await get("/changing.txt") }
            try "version three, longer\n".write(toFile: path, atomically: false, encoding: .utf8)
            for _ in 0..<4 {
                let third = try await get("/changing.txt").0
                #expect(third.text == "version three, longer\n")
                #expect(third.header("Content-Length") == "22")
                #expect(third.header("ETag") != second.header("ETag"))
            }
        }

        @Test func symlinksOffRefusesLinks() async throws {
            let real = try await get("/nolinks/real.txt").0
            #expect(real.status == 200)
            let link = try await get("/nolinks/link.txt").0
            #expect(link.status == 403)
        }
    }
}
