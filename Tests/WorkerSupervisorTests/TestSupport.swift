#if os(Linux)
// Linux only: the checks read /proc and rely on PR_SET_PDEATHSIG.
import Foundation
import Logging
import NIOConcurrencyHelpers
import ProxyConfig

/// Keeps every log record so tests can look for worker output and lifecycle events.
final class LogRecorder: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let box = NIOLockedValueBox<[Record]>([])

    var records: [Record] {
        box.withLockedValue { $0 }
    }

    func logger() -> Logger {
        Logger(label: "worker-supervisor-test") { _ in RecordingHandler(recorder: self) }
    }

    func append(_ record: Record) {
        box.withLockedValue { $0.append(record) }
    }

    func messages(containing text: String) -> [Record] {
        records.filter { $0.message.contains(text) }
    }
}

struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        recorder.append(
            .init(level: event.level, message: event.message.description, metadata: merged.mapValues(\.description))
        )
    }
}

/// A fresh folder per test; short, because Unix socket paths are limited to 107 bytes.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/wsup-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        path = String(cString: result)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes the Python test worker and returns its path.
    func writeWorkerScript() throws -> String {
        let file = "\(path)/worker.py"
        try TestWorker.script.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

enum TestWorker {
    /// Accepts on fd 0 like a FastCGI worker and answers every connection with a JSON report
    /// about itself: pid, the environment it was started with, its parent-death signal.
    static let script = #"""
        import ctypes, json, os, signal, socket, sys

        if len(sys.argv) > 1 and sys.argv[1] == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

        PR_GET_PDEATHSIG = 2
        deathsig = ctypes.c_int(-1)
        ctypes.CDLL(None, use_errno=True).prctl(PR_GET_PDEATHSIG, ctypes.byref(deathsig), 0, 0, 0)

        with open("/proc/self/environ", "rb") as f:
            environ = [entry.decode() for entry in f.read().split(b"\0") if entry]

        sys.stderr.write("hello from %d \x1b[31mred\n" % os.getpid())
        sys.stderr.flush()

        listener = socket.socket(fileno=0)
        while True:
            conn, _ = listener.accept()
            reply = {"pid": os.getpid(), "environ": environ, "deathsig": deathsig.value}
            conn.sendall(json.dumps(reply).encode())
            conn.close()
        """#

    struct Reply: Decodable {
        var pid: Int32
        var environ: [String]
        var deathsig: Int32
    }

    /// Connects to the workers' socket and decodes one reply.
    static func request(_ address: SocketAddressSpec) throws -> Reply {
        let descriptor: CInt
        switch address {
        case .unix(let path):
            descriptor = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
            var sockaddr = sockaddr_un()
            sockaddr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &sockaddr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            try connect(descriptor, &sockaddr)
        case .tcp(let host, let port):
            descriptor = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            var sockaddr = sockaddr_in()
            sockaddr.sin_family = sa_family_t(AF_INET)
            sockaddr.sin_port = UInt16(port).bigEndian
            inet_pton(AF_INET, host, &sockaddr.sin_addr)
            try connect(descriptor, &sockaddr)
        }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            data.append(contentsOf: chunk[0..<count])
        }
        return try JSONDecoder().decode(Reply.self, from: data)
    }

    private static func connect<Address>(_ descriptor: CInt, _ address: inout Address) throws {
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
        if result != 0 {
            let code = errno
            close(descriptor)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
    }
}

enum Processes {
    /// Gone means no /proc entry, or a zombie: dead, and waiting for a parent (possibly pid 1
    /// of a container that never reaps) to collect it.
    static func isGone(_ pid: pid_t) -> Bool {
        guard let state = field(pid, 0) else { return true }
        return state == "Z" || state == "X"
    }

    static func parent(of pid: pid_t) -> pid_t? {
        field(pid, 1).flatMap { pid_t($0) }
    }

    /// Fields of /proc/PID/stat after the command name (which may contain spaces): 0 is the
    /// state, 1 the parent pid.
    private static func field(_ pid: pid_t, _ index: Int) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        return index < fields.count ? String(fields[index]) : nil
    }
}

/// Polls until the condition holds or the time is up; returns whether it held.
func eventually(within timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

extension PoolConfig {
    static func spawning(
        _ command: [String],
        processes: Int = 1,
        env: [(name: String, value: String)] = [],
        backends: [SocketAddressSpec] = [],
        name: String = "app"
    ) -> PoolConfig {
        PoolConfig(name: name, backends: backends, spawn: command, processes: processes, env: env)
    }
}
#endif
