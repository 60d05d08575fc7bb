import Testing

@testable import ProxyCore

@Suite struct StaticPathPolicyTests {
    @Test(arguments: [
        "/.git/config", "/.env", "/a/.htpasswd", "/a/b/.DS_Store", "/.well-known/.secret", "/.well-knownx/a",
        "/.Well-Known/a", "/a/.well-known/x", "/..", "/...", "/a/.", "/.well-known/a/.b/c", "/.well-known.bak",
        "//.env",
    ])
    func hidden(path: String) {
        #expect(StaticPathPolicy.isHidden(path[...]))
    }

    @Test(arguments: [
        "/", "/index.html", "/a/b/c.txt", "/a.b/c", "/a./b", "/.well-known", "/.well-known/",
        "/.well-known/acme-challenge/abc", "/.well-known/security.txt", "/a..b", "/a/b.", "",
    ])
    func notHidden(path: String) {
        #expect(!StaticPathPolicy.isHidden(path[...]))
    }

    @Test(arguments: [
        "/index.php", "/a/x.PHP", "/a.phps", "/a.php5", "/index.php~", "/a.php.bak", "/config.php.save",
        "/.php", "/a/.index.php.swp", "/a.PhP7", "/dir.php/a.php",
    ])
    func scripts(path: String) {
        #expect(StaticPathPolicy.mayBeScript(path[...], splitPath: ".php"))
        #expect(StaticPathPolicy.mayBeScript(path[...], splitPath: ""))
        #expect(StaticPathPolicy.mayBeScript(path[...], splitPath: ".cgi"))
    }

    @Test(arguments: [
        "/", "/index.html", "/php/index.html", "/a.ph", "/a.p-hp", "/phpinfo.txt", "/dir.php/a.html",
        "/a.php/", "",
    ])
    func notScripts(path: String) {
        #expect(!StaticPathPolicy.mayBeScript(path[...], splitPath: ".php"))
        #expect(!StaticPathPolicy.mayBeScript(path[...], splitPath: ""))
    }

    @Test func otherSplitPath() {
        #expect(StaticPathPolicy.mayBeScript("/run.cgi", splitPath: ".cgi"))
        #expect(StaticPathPolicy.mayBeScript("/RUN.CGI.old", splitPath: ".cgi"))
        #expect(StaticPathPolicy.mayBeScript("/run.CGI", splitPath: ".Cgi"))
        #expect(!StaticPathPolicy.mayBeScript("/run.cgi", splitPath: ".php"))
        #expect(!StaticPathPolicy.mayBeScript("/run.cgi", splitPath: ""))
        #expect(!StaticPathPolicy.mayBeScript("/x.cgi/run.txt", splitPath: ".cgi"))
        #expect(StaticPathPolicy.mayBeScript("/index.php", splitPath: ".cgi"))
    }
}
