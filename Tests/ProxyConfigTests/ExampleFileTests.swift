import Foundation
import ProxyConfig
import Testing

/// The shipped `config/fcgiproxy.ini` must stay valid and mean what its comments say.
@Suite struct ExampleFileTests {
    /// `<package>/config/fcgiproxy.ini`, found from this file's path: Tests/ProxyConfigTests/<file>.
    static let examplePath: String = {
        var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)
        return (components + ["config", "fcgiproxy.ini"]).joined(separator: "/")
    }()

    @Test func exampleFileLoads() throws {
        let config = try ConfigParser.load(path: Self.examplePath)
        #expect(config.sourceName == Self.examplePath)
        #expect(config.server.listen == [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080))])
        #expect(config.server.http2 == ServerConfig.builtWithHTTP2)
        #expect(config.pools.map(\.name) == ["php"])
        #expect(config.pool(named: "php")?.backends == [.unix(path: "/run/php/php8.2-fpm.sock")])
        #expect(config.routes.map(\.name) == ["private", "api", "protected", "php"])
        let denied = try #require(config.routes.first)
        #expect(denied.status == 403 && denied.pool.isEmpty && denied.match == .regex("^/(app|vendor|storage|\\.git)/"))
        let api = try #require(config.routes.dropFirst().first)
        #expect(api.script == "/var/www/app/public/index.php")
        #expect(api.root == "/var/www/app/public")
        #expect(api.params.map(\.value) == ["production", "Example; API"])
        #expect(api.hosts == ["example.com", "www.example.com"])
        #expect(api.headers.map(\.name) == ["X-Frame-Options"] && api.headers.map(\.value) == ["SAMEORIGIN"])
        #expect(api.match == .prefix("/api/"))
        let php = try #require(config.routes.last)
        #expect(php.match == .prefix("/"))
        #expect(php.root == "/var/www/html")
        #expect(php.script == nil)
        #expect(php.index == ["index.php", "index.html"])
        #expect(php.files && php.symlinks && !php.precompressed && php.fallback == nil)
        let protected = try #require(config.routes.first { $0.name == "protected" })
        #expect(protected.internal && protected.pool.isEmpty && protected.root == "/var/www/private")
    }

    @Test func exampleDefaultsMatchTheTypes() throws {
        // The example spells out every default; they must be the ones the types really use.
        let config = try ConfigParser.load(path: Self.examplePath)
        #expect(config.server == ServerConfig())
        var expectedPool = PoolConfig(name: "php", backends: [.unix(path: "/run/php/php8.2-fpm.sock")])
        expectedPool.line = try #require(config.pools.first).line
        #expect(config.pools.first == expectedPool)
    }

    /// `<package>/config/examples`, next to the annotated reference.
    static let examplesDirectory: String = {
        var components = examplePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast()
        return (components + ["examples"]).joined(separator: "/")
    }()

    /// Every ready-made configuration in config/examples loads without an error.
    @Test func everyExampleConfigurationLoads() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.examplesDirectory)
            .filter { $0.hasSuffix(".ini") }.sorted()
        #expect(names == ["dokuwiki.ini", "laravel.ini", "mediawiki.ini", "symfony.ini", "wordpress.ini"])
        for name in names {
            let path = Self.examplesDirectory + "/" + name
            do {
                let config = try ConfigParser.load(path: path)
                #expect(config.pools.map(\.name) == ["php"], "\(name)")
                #expect(config.pools.first?.backends == [.unix(path: "/run/php/php8.2-fpm.sock")], "\(name)")
                // Deny rules come before the route that serves the site.
                let lastStatus = config.routes.lastIndex { $0.status != nil } ?? -1
                let firstSite = config.routes.firstIndex { !$0.pool.isEmpty } ?? config.routes.count
                #expect(lastStatus < firstSite, "\(name)")
            } catch {
                Issue.record("\(name):\n\(error)")
            }
        }
    }

    @Test func wordPressExampleSaysWhatItsGuideSays() throws {
        let config = try ConfigParser.load(path: Self.examplesDirectory + "/wordpress.ini")
        let site = try #require(config.routes.last)
        #expect(site.match == .prefix("/") && site.fallback == "/index.php" && site.files)
        #expect(site.index == ["index.php", "index.html"])
        #expect(config.routes.first?.match == .exact("/wp-config.php"))
    }

    @Test func dokuWikiExampleSaysWhatItsGuideSays() throws {
        let config = try ConfigParser.load(path: Self.examplesDirectory + "/dokuwiki.ini")
        #expect(config.routes.map(\.name) == ["private", "data", "scripts", "lib-assets", "pages"])
        let denied = try #require(config.routes.first)
        #expect(denied.status == 403 && denied.match == .regex("/(conf/|bin/|inc/|vendor/|install\\.php)"))
        let data = try #require(config.routes.first { $0.name == "data" })
        #expect(data.internal && data.pool.isEmpty && data.match == .prefix("/data/"))
        // Scripts by name (PATH_INFO for userewrite = 2) come before the lib/ files route.
        let scripts = try #require(config.routes.first { $0.name == "scripts" })
        #expect(scripts.pool == "php" && scripts.script == nil && scripts.fallback == nil)
        let assets = try #require(config.routes.first { $0.name == "lib-assets" })
        #expect(assets.pool.isEmpty && assets.headers.map(\.value) == ["max-age=31536000"])
        let pages = try #require(config.routes.last)
        #expect(pages.match == .prefix("/") && pages.script == "/usr/share/dokuwiki/doku.php" && pages.index == ["doku.php"])
        // Debian links lib/plugins and lib/tpl into /var/lib/dokuwiki.
        #expect(config.routes.allSatisfy { $0.symlinks })
    }

    @Test func missingFileIsALineZeroError() {
        let path = "/nonexistent/fcgiproxy-\(UInt64.random(in: 0...UInt64.max)).ini"
        do {
            _ = try ConfigParser.load(path: path)
            Issue.record("loading a missing file succeeded")
        } catch {
            #expect(error.errors.count == 1)
            #expect(error.errors.first?.line == 0)
            #expect(error.errors.first?.file == path)
            #expect(error.description.hasPrefix("\(path): cannot open: "), "\(error)")
        }
    }

    @Test func directoryIsALineZeroError() {
        do {
            _ = try ConfigParser.load(path: "/")
            Issue.record("loading a directory succeeded")
        } catch {
            #expect(error.errors.map(\.line) == [0])
            #expect(error.description.hasPrefix("/: cannot read: "), "\(error)")
        }
    }
}
