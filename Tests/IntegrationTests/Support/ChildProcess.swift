import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a finished command left behind.
struct ProcessResult: Sendable {
    var exitCode: Int32
    var stdout: Data
    var stderr: Data
    var timedOut: Bool

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Short-lived commands (curl, sha1sum, `fcgiproxy --check-config`) and long-running children.
enum ChildProcess {
    /// Runs `executable args` to its end (or kills it after `timeout`), with stdout and stderr
    /// captured through files (no pipe can fill up and stall it).
    static func run(
        _ executable: String,
        _ arguments: [String],
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessResult {
        let dir = try TempDir("fcgiproxy-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let outPath = dir.file("stdout")
        let errPath = dir.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err

        let timedOut = Flag()
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { p in continuation.resume(returning: p.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            Task.detached {
                try? await Task.sleep(for: timeout)
                if process.isRunning {
                    timedOut.set()
                    kill(pid, SIGKILL)
                }
            }
        }
        try? out.close()
        try? err.close()
        return ProcessResult(
            exitCode: status,
            stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
            stderr: FileManager.default.contents(atPath: errPath) ?? Data(),
            timedOut: timedOut.isSet
        )
    }

    /// Starts a long-running child with stdout and stderr appended to `logPath`. It is ended at
    /// the latest when the test process exits.
    static func launch(_ executable: String, _ arguments: [String], logPath: String) throws -> SpawnedProcess {
        try SpawnedProcess(executable, arguments, logPath: logPath)
    }
}

/// A long-running child started with posix_spawn: unlike Foundation's Process (which hands the
/// test runner's blocked signal mask down to the child, so SIGTERM would never arrive), the child
/// starts with an empty signal mask and default signal actions, as a daemon under systemd would.
final class SpawnedProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var exited = false

    init(_ executable: String, _ arguments: [String], logPath: String) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw HarnessError("not an executable: \(executable)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, environ)
        guard rc == 0 else { throw HarnessError("posix_spawn \(executable): error \(rc)") }
        pid = child
        ExitCleanup.shared.track(child)
    }

    /// False once the child has exited (and was reaped here).
    var isRunning: Bool {
        lock.withLock {
            if exited { return false }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) {
                exited = true
                ExitCleanup.shared.untrack(pid)
                return false
            }
            return true
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; waits for its end.
    func stop(grace: Duration = .seconds(3)) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while isRunning, clock.now < deadline {
            usleep(5_000)
        }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { usleep(5_000) }
        }
    }

    /// Sends a signal (e.g. SIGHUP for a reload test).
    func signal(_ sig: Int32) { kill(pid, sig) }
}

/// A thread-safe boolean that only goes from false to true.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Small utilities shared by the tests.
enum Util {
    /// A file of `size` random bytes in `dir`.
    static func randomFile(in dir: TempDir, name: String, size: Int) throws -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        var i = 0
        while i < size {
            var word = generator.next()
            for _ in 0..<8 where i < size {
                bytes[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        let path = dir.file(name)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw HarnessError("cannot write \(path)")
        }
        return path
    }

    /// `sha1sum FILE` (the test target has no crypto dependency).
    static func sha1(ofFile path: String) async throws -> String {
        let result = try await ChildProcess.run("/usr/bin/sha1sum", [path])
        guard result.exitCode == 0, let hex = result.stdoutText.split(separator: " ").first else {
            throw HarnessError("sha1sum failed: \(result.stderrText)")
        }
        return String(hex)
    }

    /// `md5sum FILE`.
    static func md5(ofFile path: String) async throws -> String {
        let result = try await ChildProcess.run("/usr/bin/md5sum", [path])
        guard result.exitCode == 0, let hex = result.stdoutText.split(separator: " ").first else {
            throw HarnessError("md5sum failed: \(result.stderrText)")
        }
        return String(hex)
    }

    /// A JSON object from `data` (the PHP scripts answer with JSON objects).
    static func json(_ data: Data) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw HarnessError("not a JSON object: \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        return object
    }
}
