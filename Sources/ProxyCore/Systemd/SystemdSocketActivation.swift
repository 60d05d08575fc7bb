#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ProxyConfig

/// One listening socket handed over by systemd (`sd_listen_fds(3)`).
public struct SystemdListenSocket: Sendable, CustomStringConvertible {
    /// The descriptor (3, 4, …).
    public let descriptor: CInt
    /// Its `FileDescriptorName=` (systemd's default is the socket unit's name), or "unknown".
    public let name: String
    /// Where it is bound (`getsockname`), nil when that could not be read.
    public let address: SocketAddress?
    /// True for a listening stream socket, the only kind a `listen` line can use.
    public let isListeningStream: Bool

    /// Describes a descriptor; `address` and `isListeningStream` are read from the socket.
    public init(descriptor: CInt, name: String) {
        self.descriptor = descriptor
        self.name = name
        self.address = Self.localAddress(of: descriptor)
        var type: CInt = 0
        var accepting: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        let typeRead = getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0
        length = socklen_t(MemoryLayout<CInt>.size)
        let acceptRead = getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0
        self.isListeningStream = typeRead && acceptRead && type == CInt(SOCK_STREAM.rawValue) && accepting != 0
    }

    /// `fd 3 "http" (127.0.0.1:8080)`.
    public var description: String {
        let location: String
        switch address {
        case .v4?: location = "\(address?.ipAddress ?? "?"):\(address?.port ?? 0)"
        case .v6?: location = "[\(address?.ipAddress ?? "?")]:\(address?.port ?? 0)"
        case .unixDomainSocket?: location = "unix:\(address?.pathname ?? "?")"
        case nil: location = "address unknown"
        }
        return "fd \(descriptor) \"\(name)\" (\(location))"
    }

    /// Whether this socket is the one a `listen` line asks for: same unix path, or same IP and
    /// port (a wildcard address, `0.0.0.0` or `::`, matches either wildcard on that port).
    public func matches(_ spec: SocketAddressSpec) -> Bool {
        guard isListeningStream, let address else { return false }
        switch spec {
        case .unix(let path):
            guard case .unixDomainSocket = address else { return false }
            return address.pathname == path
        case .tcp(let host, let port):
            guard address.port == port else { return false }
            guard let wanted = try? SocketAddress.makeAddressResolvingHost(host, port: port) else { return false }
            if wanted == address { return true }
            return Self.isWildcard(wanted) && Self.isWildcard(address)
        }
    }

    private static func isWildcard(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let a): return a.address.sin_addr.s_addr == 0
        case .v6: return address.ipAddress == "::"
        case .unixDomainSocket: return false
        }
    }

    private static func localAddress(of descriptor: CInt) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
        case AF_UNIX:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_un.self)) }
        default:
            return nil
        }
    }
}

/// Socket activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`) without libsystemd.
public enum SystemdSocketActivation {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: CInt = 3

    /// The sockets passed to this process, or none when `LISTEN_PID` is not our pid. The
    /// variables are unset (so that spawned workers never take them for theirs) and the
    /// descriptors marked close-on-exec.
    public static func takeFromEnvironment() -> [SystemdListenSocket] {
        let pidText = getenv("LISTEN_PID").map { String(cString: $0) }
        let countText = getenv("LISTEN_FDS").map { String(cString: $0) }
        let namesText = getenv("LISTEN_FDNAMES").map { String(cString: $0) }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        guard let pidText, let pid = pid_t(pidText), pid == getpid(),
            let countText, let count = Int(countText), count > 0, count < 65_536
        else { return [] }
        let names = namesText.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { index in
            let fd = firstDescriptor + CInt(index)
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 {
                _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC)
            }
            let name = index < names.count && !names[index].isEmpty ? names[index] : "unknown"
            return SystemdListenSocket(descriptor: fd, name: name)
        }
    }

    /// Pairs `listen` lines with inherited sockets: for each line (by index) the socket that
    /// serves it, and the sockets no line asked for. A socket serves at most one line. Names
    /// first (a line's `name=` equal to the socket's `FileDescriptorName=`, whatever the
    /// address), then addresses for the lines still without one.
    public static func match(
        _ sockets: [SystemdListenSocket],
        to listeners: [ListenConfig]
    ) -> (byListener: [Int: SystemdListenSocket], unmatched: [SystemdListenSocket]) {
        var left = sockets
        var byListener: [Int: SystemdListenSocket] = [:]
        for (index, listener) in listeners.enumerated() {
            guard let name = listener.name else { continue }
            if let found = left.firstIndex(where: { $0.isListeningStream && $0.name == name }) {
                byListener[index] = left.remove(at: found)
            }
        }
        for (index, listener) in listeners.enumerated() where byListener[index] == nil {
            if let found = left.firstIndex(where: { $0.matches(listener.address) }) {
                byListener[index] = left.remove(at: found)
            }
        }
        return (byListener, left)
    }
}
