#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd about the daemon's state (`sd_notify(3)`) without linking libsystemd: each
/// message is one datagram of `KEY=VALUE` lines sent to the AF_UNIX socket named by
/// `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
///
/// Sending never blocks for long (a 1 s send timeout) and failures are ignored, as `sd_notify`
/// callers do: notifications are advisory. Safe to use from any thread.
public final class SystemdNotifier: Sendable {
    /// The socket as given in `$NOTIFY_SOCKET`.
    public let socketPath: String
    private let descriptor: CInt
    /// The encoded `sockaddr_un` (kept as bytes: the C struct is not `Sendable`).
    private let address: [UInt8]

    /// The notifier for `$NOTIFY_SOCKET`, or nil when it is unset, empty or unusable. With
    /// `unsetEnvironment` (the default) the variable is removed, so that spawned workers do not
    /// inherit it and talk to systemd in our name.
    public static func fromEnvironment(unsetEnvironment: Bool = true) -> SystemdNotifier? {
        guard let raw = getenv("NOTIFY_SOCKET") else { return nil }
        let path = String(cString: raw)
        if unsetEnvironment {
            unsetenv("NOTIFY_SOCKET")
        }
        return try? SystemdNotifier(socketPath: path)
    }

    /// A notifier for `socketPath`: an absolute path, or `@name` for an abstract socket.
    public init(socketPath: String) throws(SystemdNotifierError) {
        let bytes = Array(socketPath.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else {
            throw SystemdNotifierError("NOTIFY_SOCKET must be an absolute path or start with @: \(socketPath)")
        }
        var addr = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        // A path needs room for its NUL; an abstract name is counted by the address length.
        guard bytes.count < capacity else {
            throw SystemdNotifierError("NOTIFY_SOCKET is too long: \(socketPath)")
        }
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { path in
            for (index, byte) in bytes.enumerated() {
                path[index] = byte
            }
            if first == UInt8(ascii: "@") {
                path[0] = 0
            }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        let length = first == UInt8(ascii: "@") ? pathOffset + bytes.count : pathOffset + bytes.count + 1
        address = withUnsafeBytes(of: &addr) { Array($0.prefix(length)) }

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw SystemdNotifierError("cannot create the notification socket: errno \(errno)")
        }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        descriptor = fd
        self.socketPath = socketPath
    }

    deinit {
        close(descriptor)
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments) as one datagram.
    /// Returns false when it could not be delivered.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        var message = Array(state.utf8)
        let sent = message.withUnsafeMutableBytes { payload in
            address.withUnsafeBytes { addr in
                addr.withMemoryRebound(to: sockaddr.self) { sockaddrPointer in
                    sendto(
                        descriptor,
                        payload.baseAddress,
                        payload.count,
                        Int32(MSG_NOSIGNAL),
                        sockaddrPointer.baseAddress,
                        socklen_t(addr.count)
                    )
                }
            }
        }
        return sent == message.count
    }

    /// `READY=1`: start-up is complete (or a reload finished), with an optional status line.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        notify(Self.join("READY=1", status: status))
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` that `Type=notify-reload` expects; send
    /// ``ready(status:)`` when the reload is done.
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        return notify(Self.join("RELOADING=1\nMONOTONIC_USEC=\(microseconds)", status: status))
    }

    /// `STOPPING=1`: shutdown has begun.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        notify(Self.join("STOPPING=1", status: status))
    }

    /// `STATUS=…`: a one-line, human-readable state shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool {
        notify("STATUS=" + Self.oneLine(text))
    }

    /// `WATCHDOG=1`: the daemon is alive.
    @discardableResult
    public func watchdog() -> Bool {
        notify("WATCHDOG=1")
    }

    private static func join(_ state: String, status: String?) -> String {
        guard let status else { return state }
        return state + "\nSTATUS=" + oneLine(status)
    }

    /// A newline would start a new assignment.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}

/// Why a ``SystemdNotifier`` could not be made.
public struct SystemdNotifierError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
