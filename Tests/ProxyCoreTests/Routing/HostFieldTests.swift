import Testing

@testable import ProxyCore

@Suite struct HostFieldTests {
    @Test(arguments: [
        "", "example.com", "Example.COM:8080", "example.com.", "a-b_c~d.test", "127.0.0.1", "127.0.0.1:80",
        "[::1]", "[::1]:8443", "a:65535", "[2001:db8::ffff:10.0.0.1]", "localhost:", "xn--bcher-kva.example",
    ])
    func accepted(host: String) {
        #expect(HostField.isValid(host), "\(host)")
    }

    @Test(arguments: [
        "../..", "a/b", "a b", "a\\b", "%61", "a, b", "a,b", "a;b", "a@b", "a..b", ".a", "a:b", "a:123456", "a:99999", "a:65536",
        "[::1", "[]", "[::1]x", "[::1]:x", "[g::1]", "ex\u{e9}.test", "a\tb", ":80", "a:80:80", "a?b", "a#b",
    ])
    func refused(host: String) {
        #expect(!HostField.isValid(host), "\(host)")
    }
}
