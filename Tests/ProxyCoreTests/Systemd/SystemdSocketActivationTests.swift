#if canImport(Glibc)
import Glibc
#endif
import ProxyConfig
import Testing

@testable import ProxyCore

@Suite struct SystemdSocketActivationTests {
    /// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
    static func listeningSocket() throws -> (fd: CInt, port: Int) {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0 && listen(fd, 4) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func namesMatchFirstWhateverTheAddressThenAddresses() throws {
        let (web, webPort) = try Self.listeningSocket()
        let (admin, adminPort) = try Self.listeningSocket()
        let (stray, _) = try Self.listeningSocket()
        defer { for fd in [web, admin, stray] { close(fd) } }
        let sockets = [
            SystemdListenSocket(descriptor: web, name: "web"),
            SystemdListenSocket(descriptor: admin, name: "admin"),
            SystemdListenSocket(descriptor: stray, name: "stray"),
        ]
        let listeners = [
            // By address: the socket named "web" would fit, but names come first below.
            ListenConfig(address: .tcp(host: "127.0.0.1", port: adminPort)),
            // By name, on an address no socket has.
            ListenConfig(address: .tcp(host: "127.0.0.1", port: 1), name: "web"),
            // A name no socket has and an address no socket has: bound as usual.
            ListenConfig(address: .tcp(host: "127.0.0.1", port: 2), name: "missing"),
        ]
        let (matched, unmatched) = SystemdSocketActivation.match(sockets, to: listeners)
        #expect(matched[0]?.descriptor == admin)
        #expect(matched[1]?.descriptor == web)
        #expect(matched[2] == nil)
        #expect(unmatched.map(\.descriptor) == [stray])
        _ = webPort
    }
}
