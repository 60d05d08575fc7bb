import FastCGIWorker
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An in-process ``FastCGIWorkerServer`` on a Unix socket in a temp folder: the FastCGIWorker
/// library as the backend of an fcgiproxy started by the test.
final class WorkerBackend: Sendable {
    let dir: TempDir
    let socketPath: String
    private let server: FastCGIWorkerServer

    private init(dir: TempDir, socketPath: String, server: FastCGIWorkerServer) {
        self.dir = dir
        self.socketPath = socketPath
        self.server = server
    }

    /// Starts serving `responder` on `<temp>/worker.sock`.
    static func start(responder: some FastCGIResponder, maxRequestsPerConnection: Int = 256) async throws -> WorkerBackend {
        let dir = try TempDir("fcgiproxy-worker")
        let socketPath = dir.file("worker.sock")
        let server = FastCGIWorkerServer(
            configuration: .init(
                listen: .unix(path: socketPath),
                maxRequestsPerConnection: maxRequestsPerConnection,
                webServerAddresses: nil
            ),
            responder: responder
        )
        try await server.start()
        return WorkerBackend(dir: dir, socketPath: socketPath, server: server)
    }

    /// Closes every connection at once (cancelling running handlers).
    func stop() async {
        await server.stop(gracePeriod: .zero)
    }

    /// Connections the worker has accepted and not yet closed, from `/proc/net/unix`: an accepted
    /// socket carries the listener's path, the proxy's end carries none. Nil when unreadable.
    func acceptedConnections() -> Int? {
        guard let table = WorkerProcs.readFile("/proc/net/unix") else { return nil }
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // Num RefCount Protocol Flags Type St Inode Path
            guard fields.count >= 8, fields[7] == socketPath else { continue }
            // Flags 00010000 (__SO_ACCEPTCON) marks the listening socket itself.
            if fields[3] == "00010000" { continue }
            count += 1
        }
        return count
    }
}

/// What the test responders saw, shared between their tasks and the test.
final class WorkerProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var arrived = 0
    private var inFlight = 0
    private var maxInFlight = 0
    private var requestIDs: [UInt16] = []
    private var connectionsAtBarrier: Int?
    private var started: [String: ContinuousClock.Instant] = [:]
    private var cancelled: [String: ContinuousClock.Instant] = [:]
    private var bytes: [String: Int] = [:]

    /// A request arrived; returns how many have arrived so far.
    func arrive(requestID: UInt16) -> Int {
        lock.withLock {
            arrived += 1
            inFlight += 1
            maxInFlight = max(maxInFlight, inFlight)
            requestIDs.append(requestID)
            return arrived
        }
    }

    func leave() { lock.withLock { inFlight -= 1 } }

    var arrivedCount: Int { lock.withLock { arrived } }
    var maxConcurrent: Int { lock.withLock { maxInFlight } }
    var seenRequestIDs: [UInt16] { lock.withLock { requestIDs } }

    /// Records the worker's connection count the first time the barrier opens.
    func noteBarrier(connections: Int?) {
        lock.withLock { if connectionsAtBarrier == nil { connectionsAtBarrier = connections ?? -1 } }
    }

    var connectionsWhenBarrierOpened: Int? { lock.withLock { connectionsAtBarrier } }

    func markStarted(_ key: String) { lock.withLock { started[key] = ContinuousClock.now } }
    func markCancelled(_ key: String) { lock.withLock { if cancelled[key] == nil { cancelled[key] = ContinuousClock.now } } }
    func startedAt(_ key: String) -> ContinuousClock.Instant? { lock.withLock { started[key] } }
    func cancelledAt(_ key: String) -> ContinuousClock.Instant? { lock.withLock { cancelled[key] } }

    func addBytes(_ key: String, _ count: Int) { lock.withLock { bytes[key, default: 0] += count } }
    func bytesWritten(_ key: String) -> Int { lock.withLock { bytes[key] ?? 0 } }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    func wait(timeout: Duration, _ condition: (WorkerProbe) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition(self) {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

/// fcgiproxy started by the worker tests with their own INI and extra arguments (`--run-dir`),
/// which ``ProxyProcess`` does not pass.
final class WorkerProxy: @unchecked Sendable {
    let dir: TempDir
    let port: Int
    let configPath: String
    let logPath: String
    let process: SpawnedProcess

    private init(dir: TempDir, port: Int, configPath: String, logPath: String, process: SpawnedProcess) {
        self.dir = dir
        self.port = port
        self.configPath = configPath
        self.logPath = logPath
        self.process = process
    }

    /// Writes `ini(port)` and starts fcgiproxy with it and `arguments`, on a free port (retrying
    /// with another port if it lost a race for the first one).
    static func start(
        in dir: TempDir,
        arguments: [String] = [],
        ini: (Int) -> String
    ) async throws -> WorkerProxy {
        let binary = Paths.fcgiproxyBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("fcgiproxy binary not found at \(binary) (run `swift build` or set FCGIPROXY_BIN)")
        }
        var lastError: (any Error)?
        for attempt in 1...3 {
            let port = try Net.freePort()
            let configPath = try dir.write("fcgiproxy-\(attempt).ini", ini(port))
            let logPath = dir.file("fcgiproxy-\(attempt).log")
            let process = try ChildProcess.launch(binary, ["--config", configPath] + arguments, logPath: logPath)
            if await Net.waitUntilAccepting(port: port, timeout: .seconds(15), alive: { process.isRunning }) {
                return WorkerProxy(dir: dir, port: port, configPath: configPath, logPath: logPath, process: process)
            }
            process.stop()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            lastError = HarnessError("fcgiproxy did not accept on 127.0.0.1:\(port); its output:\n\(log)")
        }
        throw lastError ?? HarnessError("fcgiproxy did not start")
    }

    /// fcgiproxy whose only pool is `backend`'s socket, behind a front-controller route (every
    /// path goes to the worker), on one event loop so that `max_conns` is the whole pool's.
    static func start(in dir: TempDir, backend: WorkerBackend, poolINI: String) async throws -> WorkerProxy {
        try await start(in: dir) { port in
            """
            [server]
            listen = 127.0.0.1:\(port)
            threads = 1

            [pool:worker]
            backend = unix:\(backend.socketPath)
            read_timeout = 30s
            \(poolINI)

            [route:worker]
            match = /
            pool = worker
            root = \(dir.path)
            script = \(dir.path)/app

            """
        }
    }

    var pid: pid_t { process.pid }
    var isRunning: Bool { process.isRunning }
    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    func stop() { process.stop() }
    func signal(_ sig: Int32) { process.signal(sig) }

    /// The proxy's child processes now (its spawned workers).
    func children() -> [pid_t] { WorkerProcs.children(of: pid) }

    deinit { stop() }
}

/// Process lookups in /proc.
enum WorkerProcs {
    /// Processes whose parent is `parent` and that are not zombies.
    static func children(of parent: pid_t) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { Int32($0) }.filter { pid in
            guard let stat = self.stat(pid) else { return false }
            return stat.ppid == parent && stat.state != "Z"
        }.sorted()
    }

    /// True while `pid` exists and is not a zombie (an orphan reparented to a PID 1 that does
    /// not reap stays a zombie, but it is dead all the same).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = self.stat(pid) else { return false }
        return stat.state != "Z" && stat.state != "X"
    }

    /// State and parent from /proc/PID/stat (the fields after the parenthesized command name).
    private static func stat(_ pid: pid_t) -> (state: Character, ppid: pid_t)? {
        guard let text = readFile("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 2, let state = fields[0].first, let ppid = Int32(fields[1]) else { return nil }
        return (state, ppid)
    }

    /// The whole of a /proc file, read until EOF. (Foundation may stop at the first short read,
    /// and procfs tables arrive a page at a time: /proc/net/unix of a busy host is cut short.)
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                return String(decoding: bytes, as: UTF8.self)
            } else if errno != EINTR {
                return nil
            }
        }
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    static func wait(timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
