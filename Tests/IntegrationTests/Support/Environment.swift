import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Which HTTP front end the integration tests run against: `FRONT=nginx` selects nginx (to
/// validate the tests themselves against a known-good FastCGI front end), anything else fcgiproxy.
enum FrontKind: String, Sendable {
    case fcgiproxy
    case nginx

    static let current: FrontKind = {
        ProcessInfo.processInfo.environment["FRONT"]?.lowercased() == "nginx" ? .nginx : .fcgiproxy
    }()
}

/// Paths of the package, located from this source file.
enum Paths {
    /// `<package root>`: this file is `<root>/Tests/IntegrationTests/Support/Environment.swift`.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The PHP example app served by every front end.
    static let phpRoot = packageRoot + "/examples/php"

    /// `FCGIPROXY_BIN`, or `<root>/.build/debug/fcgiproxy`.
    static var fcgiproxyBinary: String {
        if let bin = ProcessInfo.processInfo.environment["FCGIPROXY_BIN"], !bin.isEmpty {
            return bin
        }
        return packageRoot + "/.build/debug/fcgiproxy"
    }

    static let curl = "/usr/bin/curl"
    static let nginx = "/usr/sbin/nginx"

    /// The newest `/usr/sbin/php-fpm*`.
    static var phpFPM: String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/sbin")) ?? []
        return names.filter { $0.hasPrefix("php-fpm") }
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
            .last
            .map { "/usr/sbin/" + $0 }
    }
}

/// An error of the test harness itself (a process that did not start, a timeout, …).
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh private folder (mode 0755, so that PHP-FPM workers running as www-data can traverse
/// it), removed when the test process exits.
final class TempDir: Sendable {
    let path: String

    init(_ prefix: String = "fcgiproxy-it") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let result = mkdtemp(buffer.baseAddress!) else { return nil }
            return String(cString: result)
        }
        guard let made else { throw HarnessError("mkdtemp failed: errno \(errno)") }
        path = URL(fileURLWithPath: made).standardizedFileURL.path
        chmod(path, 0o755)
        ExitCleanup.shared.removeAtExit(path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? ""
    }
}

/// Ends the child processes and removes the temp folders that are still around when the test
/// process exits (the shared fixtures live until then).
final class ExitCleanup: @unchecked Sendable {
    static let shared = ExitCleanup()

    private let lock = NSLock()
    private var pids: Set<pid_t> = []
    private var dirs: [String] = []

    private init() {
        atexit { ExitCleanup.shared.runAll() }
    }

    func track(_ pid: pid_t) { lock.withLock { _ = pids.insert(pid) } }
    func untrack(_ pid: pid_t) { lock.withLock { _ = pids.remove(pid) } }
    func removeAtExit(_ dir: String) { lock.withLock { dirs.append(dir) } }

    private func runAll() {
        let (pids, dirs) = lock.withLock { (self.pids, self.dirs) }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        // Reaps the ones that ended (a zombie still answers kill(pid, 0)).
        var left = pids
        while Date() < deadline, !left.isEmpty {
            left = left.filter { waitpid($0, nil, WNOHANG) == 0 }
            if !left.isEmpty { usleep(20_000) }
        }
        for pid in left { kill(pid, SIGKILL) }
        if ProcessInfo.processInfo.environment["KEEP_TEMP"] == nil {
            for dir in dirs { try? FileManager.default.removeItem(atPath: dir) }
        }
    }
}
