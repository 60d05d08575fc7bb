import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Paths {
    /// `fcgi-demo`, built next to the fcgiproxy binary under test.
    static var fcgiDemoBinary: String {
        URL(fileURLWithPath: fcgiproxyBinary).deletingLastPathComponent().appendingPathComponent("fcgi-demo").path
    }

    static let cgiFCGI = "/usr/bin/cgi-fcgi"
}

/// Unix stream sockets for the worker interop tests.
enum DemoUnixSocket {
    /// A bound, listening, close-on-exec socket at `path` (the caller closes it).
    static func listen(path: String) throws -> Int32 {
        let fd = try make()
        var address = try self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let error = errno
            close(fd)
            throw HarnessError("bind/listen \(path): errno \(error)")
        }
        return fd
    }

    /// Whether something accepts connections at `path`.
    static func accepts(path: String) -> Bool {
        guard let fd = try? make(), var address = try? self.address(path) else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    private static func make() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        // Not inherited by the commands other tests spawn meanwhile; dup2 onto fd 0 clears the flag.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    private static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw HarnessError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}

/// A running `fcgi-demo`: either listening on its own Unix socket (`--unix`) or serving a listening
/// socket it inherited as descriptor 0, the way spawn-fcgi starts FastCGI applications.
final class DemoWorker: @unchecked Sendable {
    let socketPath: String
    let logPath: String
    let pid: pid_t
    private let lock = NSLock()
    private var reaped = false

    /// `fcgi-demo --unix <dir>/<name>`, once it accepts connections.
    convenience init(unixSocketIn dir: TempDir, name: String = "demo.sock") async throws {
        let path = dir.file(name)
        try self.init(arguments: ["--unix", path], standardInput: nil, socketPath: path, logPath: dir.file("\(name).log"))
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !DemoUnixSocket.accepts(path: path) {
            guard self.isRunning, clock.now < deadline else {
                self.stop()
                throw HarnessError("fcgi-demo did not listen on \(path); its log:\n\(self.log())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `fcgi-demo` without arguments, with a socket bound here at `<dir>/<name>` as its descriptor 0.
    /// The socket accepts (into its backlog) at once; the worker serves it once it is up.
    convenience init(inheritedSocketIn dir: TempDir, name: String = "inherited.sock") throws {
        let path = dir.file(name)
        let listener = try DemoUnixSocket.listen(path: path)
        // The child has its own copy from here on.
        defer { close(listener) }
        try self.init(arguments: [], standardInput: listener, socketPath: path, logPath: dir.file("\(name).log"))
    }

    /// posix_spawn with `standardInput` (or /dev/null) as fd 0 and stdout+stderr appended to `logPath`;
    /// an empty signal mask and default dispositions, so SIGTERM reaches it.
    private init(arguments: [String], standardInput: Int32?, socketPath: String, logPath: String) throws {
        let executable = Paths.fcgiDemoBinary
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw HarnessError("fcgi-demo not found at \(executable) (run `swift build`)")
        }
        self.socketPath = socketPath
        self.logPath = logPath

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardInput {
            posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var catchable = sigset_t()
        sigfillset(&catchable)
        sigdelset(&catchable, SIGKILL)
        sigdelset(&catchable, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &catchable)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw HarnessError("posix_spawn \(executable): error \(rc)") }
        self.pid = child
        ExitCleanup.shared.track(child)
    }

    /// False once the worker has exited (it is reaped here).
    var isRunning: Bool {
        self.lock.withLock {
            guard !self.reaped else { return false }
            let result = waitpid(self.pid, nil, WNOHANG)
            if result == self.pid || (result < 0 && errno == ECHILD) {
                self.reaped = true
                ExitCleanup.shared.untrack(self.pid)
            }
            return !self.reaped
        }
    }

    func log() -> String {
        (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? ""
    }

    /// Waits up to `timeout` for `text` to appear in the log.
    func waitForLog(containing text: String, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if self.log().contains(text) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return self.log().contains(text)
    }

    /// SIGTERM, SIGKILL after 3 s; returns once it is gone.
    func stop() {
        guard self.isRunning else { return }
        kill(self.pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(3)
        while self.isRunning, clock.now < deadline {
            usleep(5_000)
        }
        if self.isRunning {
            kill(self.pid, SIGKILL)
            while self.isRunning { usleep(5_000) }
        }
    }

    deinit { self.stop() }
}

/// nginx with a private prefix and config, passing every request to a FastCGI worker's Unix socket with
/// the stock `fastcgi_params` (no SCRIPT_FILENAME: the worker routes by REQUEST_URI).
final class DemoNginx: @unchecked Sendable {
    let port: Int
    let prefix: String
    let process: SpawnedProcess

    init(workerSocket: String, dir: TempDir) async throws {
        var lastError: (any Error)?
        for attempt in 1...3 {
            let port = try Net.freePort()
            let prefix = dir.file("demo-nginx-\(attempt)")
            do {
                self.process = try await Self.start(workerSocket: workerSocket, port: port, prefix: prefix)
                self.port = port
                self.prefix = prefix
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? HarnessError("nginx did not start")
    }

    private static func start(workerSocket: String, port: Int, prefix: String) async throws -> SpawnedProcess {
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        let configPath = prefix + "/nginx.conf"
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            error_log \(prefix)/error.log info;
            pid \(prefix)/nginx.pid;

            events { worker_connections 256; }

            http {
                access_log off;
                client_body_temp_path \(prefix)/client_body;
                fastcgi_temp_path \(prefix)/fastcgi;
                proxy_temp_path \(prefix)/proxy;
                uwsgi_temp_path \(prefix)/uwsgi;
                scgi_temp_path \(prefix)/scgi;
                client_max_body_size 16m;

                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        include /etc/nginx/fastcgi_params;
                        fastcgi_pass unix:\(workerSocket);
                    }
                }
            }

            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = try ChildProcess.launch(Paths.nginx, ["-p", prefix, "-c", configPath], logPath: prefix + "/stderr.log")
        guard await Net.waitUntilAccepting(port: port, timeout: .seconds(10), alive: { process.isRunning }) else {
            process.stop()
            let log = ((try? String(contentsOfFile: prefix + "/stderr.log", encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: prefix + "/error.log", encoding: .utf8)) ?? "")
            throw HarnessError("nginx did not accept on 127.0.0.1:\(port):\n\(log)")
        }
        return process
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(self.port)\(path)" }

    func log() -> String {
        (try? String(contentsOfFile: self.prefix + "/error.log", encoding: .utf8)) ?? ""
    }

    func stop() { self.process.stop() }

    deinit { self.stop() }
}
