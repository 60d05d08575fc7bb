#if canImport(Glibc)
import Glibc
#endif
import HTTPFieldBytes
import NIOCore
import NIOHTTP1
import ProxyConfig

/// The access log: nginx's "combined" format plus the upstream address, upstream time and
/// request time (`$upstream_addr $upstream_response_time $request_time`).
///
/// Event loops format lines into their own ``AccessLogBuffer`` and hand full buffers (or every
/// 100 ms) to one writer thread, which does the `write(2)`s: no disk I/O and no lock per
/// request on the loops.
public final class AccessLog: Sendable {
    private let fd: CInt
    private let path: String?
    let writer: AccessLogWriter

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
        // The writer closes the file after its last line: a log that a reload replaced may go
        // away while lines of its last requests are still queued.
        writer = AccessLogWriter(fd: fd, wholeLinesOnly: path == nil, closesDescriptor: path != nil)
    }

    /// Opens the file again (after logrotate moved it: SIGUSR1), on the writer thread after the
    /// lines queued so far. The new file takes the same descriptor number with dup2(2).
    /// ``ProxyServer/reopenAccessLog()`` first collects the lines the loops still hold, so they
    /// go to the old file.
    public func reopen() async throws {
        guard let path else { return }
        let fd = self.fd
        let failure: AccessLogError? = await withCheckedContinuation { continuation in
            writer.enqueue(
                .run { stopped in
                    // A stopped writer closed (or is closing) the file: its number may be another
                    // descriptor's by now, so no dup2 onto it.
                    guard !stopped else {
                        continuation.resume(returning: nil)
                        return
                    }
                    let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                    guard opened >= 0 else {
                        continuation.resume(returning: AccessLogError(path: path, errno: errno))
                        return
                    }
                    defer { Glibc.close(opened) }
                    guard dup2(opened, fd) >= 0 else {
                        continuation.resume(returning: AccessLogError(path: path, errno: errno))
                        return
                    }
                    continuation.resume(returning: nil)
                })
        }
        if let failure { throw failure }
    }

    /// Waits until every line handed over so far is written.
    public func flush() async {
        await writer.barrier()
    }

    /// Writes what was handed over and stops the writer thread.
    public func close() {
        writer.stop()
    }

    /// Without waiting: the last reference may be dropped on an event loop (by the last request
    /// of a generation whose `access_log` a reload changed).
    deinit {
        writer.stop(wait: false)
    }

    /// The first part: `remote - - [time] "METHOD URI HTTP/x.y" status bytes "referer" "user-agent"`,
    /// then ` "upstream_addr" upstream_time request_time` (`-` for no upstream).
    static func format(
        into buffer: inout ByteBuffer,
        remoteAddress: String,
        timestamp: String,
        head: HTTPRequestHead,
        status: Int,
        bytesSent: Int,
        upstreamAddress: String?,
        upstreamNanoseconds: Int64?,
        requestNanoseconds: Int64
    ) {
        buffer.writeString(remoteAddress)
        buffer.writeStaticString(" - - [")
        buffer.writeString(timestamp)
        buffer.writeStaticString("] \"")
        writeEscaped(head.method.rawValue, into: &buffer)
        buffer.writeStaticString(" ")
        writeEscaped(head.uri, into: &buffer)
        buffer.writeStaticString(" HTTP/")
        buffer.writeString(String(head.version.major))
        buffer.writeStaticString(".")
        buffer.writeString(String(head.version.minor))
        buffer.writeStaticString("\" ")
        buffer.writeString(String(status))
        buffer.writeStaticString(" ")
        buffer.writeString(String(bytesSent))
        buffer.writeStaticString(" \"")
        writeEscaped(head.headers.first(name: "referer") ?? "-", into: &buffer)
        buffer.writeStaticString("\" \"")
        writeEscaped(head.headers.first(name: "user-agent") ?? "-", into: &buffer)
        buffer.writeStaticString("\" \"")
        buffer.writeString(upstreamAddress ?? "-")
        buffer.writeStaticString("\" ")
        if let upstreamNanoseconds {
            writeSeconds(upstreamNanoseconds, into: &buffer)
        } else {
            buffer.writeStaticString("-")
        }
        buffer.writeStaticString(" ")
        writeSeconds(requestNanoseconds, into: &buffer)
        buffer.writeStaticString("\n")
    }

    /// `1.234`: seconds with milliseconds, as nginx logs its times.
    static func writeSeconds(_ nanoseconds: Int64, into buffer: inout ByteBuffer) {
        let milliseconds = max(0, nanoseconds) / 1_000_000
        buffer.writeString(String(milliseconds / 1000))
        let fraction = Int(milliseconds % 1000)
        buffer.writeInteger(UInt8(ascii: ".") as UInt8)
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 100))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    /// Quotes and control characters from clients must not break the line format.
    static func writeEscaped(_ text: String, into buffer: inout ByteBuffer) {
        guard text.utf8.contains(where: Self.needsEscape) else {
            buffer.writeString(text)
            return
        }
        let hex: StaticString = "0123456789ABCDEF"
        // The bytes the client sent (``FieldBytes``), each escaped once.
        FieldBytes.withBytes(text) { bytes in
            for byte in bytes {
                if needsEscape(byte) {
                    buffer.writeStaticString("\\x")
                    buffer.writeInteger(hex.utf8Start[Int(byte >> 4)])
                    buffer.writeInteger(hex.utf8Start[Int(byte & 0xf)])
                } else {
                    buffer.writeInteger(byte)
                }
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x22 || byte == 0x5c || byte >= 0x7f
    }

    /// `26/Nov/2026:23:59:29 +0000` (local time, as nginx's `$time_local`).
    static func timestamp(_ seconds: time_t) -> String {
        var now = seconds
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
