import ProxyConfig
import Testing

/// `host:port`, `[v6]:port` and `unix:/path`, through `listen` and `backend`.
@Suite struct AddressTests {
    @Test(arguments: [
        ("127.0.0.1:8080", SocketAddressSpec.tcp(host: "127.0.0.1", port: 8080)),
        ("localhost:1", .tcp(host: "localhost", port: 1)),
        ("backend-1.internal:65535", .tcp(host: "backend-1.internal", port: 65535)),
        ("[::1]:8080", .tcp(host: "::1", port: 8080)),
        ("[::]:80", .tcp(host: "::", port: 80)),
        ("[2001:db8::42]:443", .tcp(host: "2001:db8::42", port: 443)),
        ("[fe80::1%eth0]:9000", .tcp(host: "fe80::1%eth0", port: 9000)),
        ("unix:/run/php/php8.2-fpm.sock", .unix(path: "/run/php/php8.2-fpm.sock")),
    ])
    func validAddresses(text: String, expected: SocketAddressSpec) {
        #expect(parsePool("backend = \(text)")?.backends == [expected])
        #expect(parseServer("listen = \(text)")?.listen == [ListenConfig(address: expected)])
    }

    @Test func descriptionRoundTrips() {
        let text = "[2001:db8::42]:443"
        #expect(parsePool("backend = \(text)")?.backends.first?.description == text)
    }

    @Test(arguments: [
        ("127.0.0.1", "expected host:port, [v6]:port or unix:/path"),
        (":8080", "expected host:port, [v6]:port or unix:/path"),
        ("127.0.0.1:0", "expected a port from 1 to 65535"),
        ("127.0.0.1:65536", "expected a port from 1 to 65535"),
        ("127.0.0.1:http", "expected a port from 1 to 65535"),
        ("127.0.0.1:-1", "expected a port from 1 to 65535"),
        ("::1:8080", "expected an IPv6 address in brackets"),
        ("[::1]", "expected host:port, [v6]:port or unix:/path"),
        ("[::1:8080", "expected host:port, [v6]:port or unix:/path"),
        ("[example.com]:80", "expected host:port, [v6]:port or unix:/path"),
        ("[::1]:0", "expected a port from 1 to 65535"),
        ("unix:run/php.sock", "expected unix: followed by an absolute socket path"),
        ("unix:", "expected unix: followed by an absolute socket path"),
        ("bad host:80", "expected host:port, [v6]:port or unix:/path"),
    ])
    func invalidAddresses(text: String, expected: String) {
        let errors = parseErrors("[pool:p]\nbackend = \(text)\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.contains(": \(expected)") == true, "\(errors)")
    }
}
