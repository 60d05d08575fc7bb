#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSpawn
import NIOCore
import ProxyConfig

/// The socket the workers accept on: created, bound and listening in the proxy, handed to each
/// worker as fd 0.
///
/// The descriptor stays blocking: the file status flags are shared with every worker, and
/// classic FastCGI libraries expect a blocking `accept` on fd 0.
struct ListeningSocket: Sendable {
    let descriptor: CInt
    /// Where the proxy connects; for TCP port 0 this is the port the kernel picked.
    let address: SocketAddressSpec
    /// The Unix socket file to remove when the workers are gone.
    let unixPath: String?

    static func make(_ spec: SocketAddressSpec) throws -> ListeningSocket {
        switch spec {
        case .unix(let path):
            return try bindUnix(path: path)
        case .tcp(let host, let port):
            return try bindTCP(host: host, port: port, spec: spec)
        }
    }

    /// Closes the descriptor and removes the socket file.
    func release() {
        _ = close(descriptor)
        if let unixPath {
            _ = unlink(unixPath)
        }
    }

    private static func bindUnix(path: String) throws -> ListeningSocket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // One byte stays zero: Linux accepts an unterminated full-length path, other tools do not.
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw WorkerSupervisorError.socketPathTooLong(path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }

        try removeStaleSocket(path: path, address: address)

        let descriptor = cspawn_socket_cloexec(AF_UNIX)
        guard descriptor >= 0 else {
            throw WorkerSupervisorError.socketFailed(operation: "socket", address: path, errno: errno)
        }
        do {
            try withSockaddr(address) { pointer, length in
                try check(bind(descriptor, pointer, length), "bind", path)
            }
            // Only the proxy (same user) connects: other local users must not be able to speak
            // FastCGI to the workers directly and set SCRIPT_FILENAME themselves. Before listen,
            // nobody can connect yet, so there is no window with wider permissions.
            try check(chmod(path, 0o600), "chmod", path)
            try check(listen(descriptor, SOMAXCONN), "listen", path)
        } catch {
            _ = close(descriptor)
            _ = unlink(path)
            throw error
        }
        return ListeningSocket(descriptor: descriptor, address: .unix(path: path), unixPath: path)
    }

    /// A socket file left by a proxy that was killed is removed; a live one, or anything that is
    /// not a socket, is an error rather than something to delete.
    private static func removeStaleSocket(path: String, address: sockaddr_un) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw WorkerSupervisorError.notASocket(path)
        }
        let probe = cspawn_socket_cloexec(AF_UNIX)
        guard probe >= 0 else {
            throw WorkerSupervisorError.socketFailed(operation: "socket", address: path, errno: errno)
        }
        defer { _ = close(probe) }
        let connected = withSockaddr(address) { pointer, length in connect(probe, pointer, length) }
        if connected == 0 {
            throw WorkerSupervisorError.addressInUse("unix:\(path)")
        }
        try check(unlink(path), "unlink", path)
    }

    private static func bindTCP(host: String, port: Int, spec: SocketAddressSpec) throws -> ListeningSocket {
        let name = spec.description
        let resolved: SocketAddress
        do {
            resolved = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw WorkerSupervisorError.socketFailed(operation: "resolve", address: name, errno: EINVAL)
        }
        let descriptor = cspawn_socket_cloexec(resolved.protocol.rawValue)
        guard descriptor >= 0 else {
            throw WorkerSupervisorError.socketFailed(operation: "socket", address: name, errno: errno)
        }
        do {
            // A restarted proxy must not wait out TIME_WAIT of its previous workers' connections.
            var on: CInt = 1
            try check(
                setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<CInt>.size)),
                "setsockopt", name
            )
            let bound = resolved.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
            if bound != 0 && errno == EADDRINUSE {
                throw WorkerSupervisorError.addressInUse(name)
            }
            try check(bound, "bind", name)
            try check(listen(descriptor, SOMAXCONN), "listen", name)
            let actualPort = try boundPort(descriptor, name)
            return ListeningSocket(descriptor: descriptor, address: .tcp(host: host, port: actualPort), unixPath: nil)
        } catch {
            _ = close(descriptor)
            throw error
        }
    }

    private static func boundPort(_ descriptor: CInt, _ name: String) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try check(getsockname(descriptor, address, &length), "getsockname", name)
            }
        }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    private static func withSockaddr<T>(
        _ address: sockaddr_un,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T
    ) rethrows -> T {
        var copy = address
        return try withUnsafePointer(to: &copy) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    private static func check(_ result: CInt, _ operation: String, _ address: String) throws {
        if result != 0 {
            throw WorkerSupervisorError.socketFailed(operation: operation, address: address, errno: errno)
        }
    }
}
