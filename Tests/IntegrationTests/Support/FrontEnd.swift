import Foundation

/// What a front end is configured with; each front end writes its own config from it.
struct FrontEndOptions: Sendable {
    /// PHP-FPM socket path.
    var backendSocket: String
    var root: String = Paths.phpRoot
    /// Seconds without backend data before 504.
    var readTimeoutSeconds: Int = 60
    var maxBodySize: Int = 16 * 1024 * 1024
    var maxHeaderSize: Int = 32 * 1024
    /// fcgiproxy only: the pool's backend address instead of `unix:backendSocket`
    /// (e.g. `127.0.0.1:9001` for a TCP backend).
    var backendAddress: String? = nil
    /// fcgiproxy only: `listen = 127.0.0.1:PORT tls` (put tls_certificate / tls_key in
    /// `extraServerINI`).
    var tls = false
    /// fcgiproxy only: extra `key = value` lines for [server], [pool:php] and [route:php].
    var extraServerINI: String = ""
    var extraPoolINI: String = ""
    var extraRouteINI: String = ""
    /// fcgiproxy only: more sections (pools, routes) appended after [route:php]; routes here
    /// come after the catch-all `/` route, so put specific routes in `routesBeforeDefault`.
    var extraSectionsINI: String = ""
    /// fcgiproxy only: sections placed before [route:php] (routes matched first).
    var routesBeforeDefault: String = ""
}

/// A running HTTP front end (fcgiproxy or nginx) in front of PHP-FPM.
protocol FrontEnd: AnyObject, Sendable {
    var kind: FrontKind { get }
    var port: Int { get }
    var pid: Int32 { get }
    var isRunning: Bool { get }
    /// Everything the front end wrote to stdout/stderr (and its error log).
    func log() -> String
    func stop()
}

extension FrontEnd {
    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Resident memory in KiB (VmRSS of /proc/PID/status), nil when the process is gone.
    func rssKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}

/// Starts the front end that `FRONT` selects, on a free port (retrying with another port if
/// it lost a race for the first one).
func startFrontEnd(_ options: FrontEndOptions, in dir: TempDir) async throws -> any FrontEnd {
    var lastError: (any Error)?
    for attempt in 1...3 {
        let port = try Net.freePort()
        do {
            switch FrontKind.current {
            case .fcgiproxy:
                return try await ProxyProcess(options: options, dir: dir, port: port, attempt: attempt)
            case .nginx:
                return try await NginxProcess(options: options, dir: dir, port: port, attempt: attempt)
            }
        } catch {
            lastError = error
        }
    }
    throw lastError ?? HarnessError("front end did not start")
}

/// `16m`-style size for configs (whole MiB / KiB when possible).
func sizeText(_ bytes: Int) -> String {
    if bytes % (1024 * 1024) == 0 { return "\(bytes / (1024 * 1024))m" }
    if bytes % 1024 == 0 { return "\(bytes / 1024)k" }
    return "\(bytes)"
}
