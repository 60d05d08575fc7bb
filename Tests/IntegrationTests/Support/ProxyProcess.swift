import Foundation

/// fcgiproxy started from `FCGIPROXY_BIN` (or `.build/debug/fcgiproxy`) with an INI written
/// into the test's temp dir; stderr goes to a file there.
final class ProxyProcess: FrontEnd, @unchecked Sendable {
    let kind = FrontKind.fcgiproxy
    let port: Int
    let dir: TempDir
    let configPath: String
    let logPath: String
    let process: SpawnedProcess

    init(options: FrontEndOptions, dir: TempDir, port: Int, attempt: Int = 1) async throws {
        self.port = port
        self.dir = dir
        // Named by port too: several front ends share the fixture folder and must not share logs.
        configPath = try dir.write("fcgiproxy-\(port)-\(attempt).ini", Self.ini(options, port: port))
        logPath = dir.file("fcgiproxy-\(port)-\(attempt).log")
        let binary = Paths.fcgiproxyBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("fcgiproxy binary not found at \(binary) (run `swift build` or set FCGIPROXY_BIN)")
        }
        process = try ChildProcess.launch(binary, ["--config", configPath], logPath: logPath)
        let proc = process
        guard await Net.waitUntilAccepting(port: port, timeout: .seconds(15), alive: { proc.isRunning }) else {
            process.stop()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw HarnessError("fcgiproxy did not accept on 127.0.0.1:\(port); its output:\n\(log)")
        }
    }

    static func ini(_ options: FrontEndOptions, port: Int) -> String {
        """
        [server]
        listen = 127.0.0.1:\(port)\(options.tls ? " tls" : "")
        max_body_size = \(sizeText(options.maxBodySize))
        max_header_size = \(sizeText(options.maxHeaderSize))
        \(options.extraServerINI)

        [pool:php]
        backend = \(options.backendAddress ?? "unix:" + options.backendSocket)
        read_timeout = \(options.readTimeoutSeconds)s
        \(options.extraPoolINI)

        \(options.routesBeforeDefault)

        [route:php]
        match = /
        pool = php
        root = \(options.root)
        index = index.php
        split_path = .php
        \(options.extraRouteINI)

        \(options.extraSectionsINI)

        """
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() { process.stop() }

    deinit { stop() }
}
