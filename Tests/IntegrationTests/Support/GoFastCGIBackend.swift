import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The backend of `Support/gofcgi/main.go`: Go's `net/http/fcgi`, which multiplexes (FCGI_GET_VALUES
/// answers FCGI_MPXS_CONNS=1, a connection's requests run concurrently). Built with `go build`
/// once per test process, served on a Unix socket in a temp dir.
final class GoFastCGIBackend: @unchecked Sendable {
    static let go = "/usr/bin/go"
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: go) }

    let dir: TempDir
    let socketPath: String
    let logPath: String
    private let process: SpawnedProcess

    init() async throws {
        let binary = try await Self.build()
        dir = try TempDir("fcgiproxy-gofcgi")
        socketPath = dir.file("go.sock")
        logPath = dir.file("gofcgi.log")
        process = try ChildProcess.launch(binary, ["unix:" + socketPath], logPath: logPath)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            guard process.isRunning, clock.now < deadline else {
                process.stop()
                throw HarnessError("gofcgi did not listen on \(socketPath); its output:\n\(log())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var address: String { "unix:" + socketPath }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Connections the backend accepted so far (the GET_VALUES probe's included).
    var acceptedConnections: Int {
        log().split(separator: "\n").filter { $0.hasPrefix("accepted ") }.count
    }

    func stop() { process.stop() }

    deinit { stop() }

    // MARK: Build

    private static let builder = Builder()

    /// The binary, built on first use (a few seconds; later calls reuse it).
    static func build() async throws -> String { try await builder.binary() }

    private actor Builder {
        private var built: String?

        func binary() async throws -> String {
            if let built { return built }
            guard GoFastCGIBackend.isAvailable else { throw HarnessError("no \(GoFastCGIBackend.go) (apt-get install golang-go)") }
            let dir = try TempDir("fcgiproxy-gobuild")
            let output = dir.file("gofcgi")
            let source = Paths.packageRoot + "/Tests/IntegrationTests/Support/gofcgi/main.go"
            // Caches in the temp dir: HOME may be read-only, and nothing is downloaded (the
            // program uses the standard library only).
            let result = try await ChildProcess.run(
                "/usr/bin/env",
                [
                    "GOCACHE=" + dir.file("cache"), "GOPATH=" + dir.file("gopath"), "GOFLAGS=", "GO111MODULE=off",
                    "CGO_ENABLED=0", GoFastCGIBackend.go, "build", "-o", output, source,
                ],
                timeout: .seconds(240)
            )
            guard result.exitCode == 0, FileManager.default.isExecutableFile(atPath: output) else {
                throw HarnessError("go build of \(source) failed (exit \(result.exitCode)):\n\(result.stderrText.prefix(3000))")
            }
            built = output
            return output
        }
    }
}
