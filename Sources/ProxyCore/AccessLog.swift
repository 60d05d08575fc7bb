#if canImport(Glibc)
import Glibc
#endif
import NIOHTTP1
import ProxyConfig

/// The access log in nginx's "combined" format, one `write(2)` per request.
///
/// Lines are short and the descriptor is opened with O_APPEND, so writes from several event
/// loops never interleave and need no lock (the same choice as nginx without `buffer=`).
public final class AccessLog: Sendable {
    private let fd: CInt
    private let path: String?

    /// Opens the target; nil for `off`.
    public init?(target: AccessLogTarget) throws {
        switch target {
        case .off:
            return nil
        case .stderr:
            fd = STDERR_FILENO
            path = nil
        case .file(let path):
            let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard opened >= 0 else {
                throw AccessLogError(path: path, errno: errno)
            }
            fd = opened
            self.path = path
        }
    }

    /// Opens the file again (after logrotate moved it: SIGUSR1). The new file takes over the
    /// same descriptor number with dup2(2), atomically, so the event loops that write to it need
    /// no lock: a line goes either to the old file or to the new one, never half to each.
    public func reopen() throws {
        guard let path else { return }
        let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard opened >= 0 else { throw AccessLogError(path: path, errno: errno) }
        defer { close(opened) }
        guard dup2(opened, fd) >= 0 else { throw AccessLogError(path: path, errno: errno) }
    }

    deinit {
        if fd != STDERR_FILENO { close(fd) }
    }

    /// `remote - - [time] "METHOD URI HTTP/x.y" status bytes "referer" "user-agent"`
    func log(remoteAddress: String, head: HTTPRequestHead, status: Int, bytesSent: Int) {
        var line = remoteAddress
        line.reserveCapacity(160)
        line += " - - ["
        line += Self.timestamp()
        line += "] \""
        line += Self.escaped(head.method.rawValue)
        line += " "
        line += Self.escaped(head.uri)
        line += " HTTP/\(head.version.major).\(head.version.minor)\" \(status) \(bytesSent) \""
        line += Self.escaped(head.headers.first(name: "referer") ?? "-")
        line += "\" \""
        line += Self.escaped(head.headers.first(name: "user-agent") ?? "-")
        line += "\"\n"
        line.withUTF8 { bytes in
            _ = write(fd, bytes.baseAddress, bytes.count)
        }
    }

    /// Quotes and control characters from clients must not break the line format.
    private static func escaped(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c || $0 >= 0x7f }) else {
            return text
        }
        var out = ""
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x22 || byte == 0x5c || byte >= 0x7f {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "\\x"
                out.append(Character(Unicode.Scalar(hex[Int(byte >> 4)])))
                out.append(Character(Unicode.Scalar(hex[Int(byte & 0xf)])))
            } else {
                out.append(Character(Unicode.Scalar(byte)))
            }
        }
        return out
    }

    /// `26/Nov/2026:23:59:29 +0000`
    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 40)
        let count = strftime(&buffer, buffer.count, "%d/%b/%Y:%H:%M:%S %z", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The access log file could not be opened.
public struct AccessLogError: Error, CustomStringConvertible {
    public var path: String
    public var errno: CInt
    public var description: String { "cannot open access log \(path): \(String(cString: strerror(errno)))" }
}
