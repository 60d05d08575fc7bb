import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private PHP-FPM (foreground master) listening on `<dir>/php.sock`.
final class PHPFPM: @unchecked Sendable {
    let dir: TempDir
    let socketPath: String
    let logPath: String
    let process: SpawnedProcess

    /// Starts PHP-FPM and waits until its socket exists.
    init(dir: TempDir, children: Int = 6) async throws {
        guard let fpm = Paths.phpFPM else {
            throw HarnessError("no /usr/sbin/php-fpm* (apt-get install php-fpm)")
        }
        self.dir = dir
        socketPath = dir.file("php.sock")
        logPath = dir.file("php-fpm.log")
        // As root, workers stay root (`-R`): the checkout may sit under a folder only root can
        // enter (CI clones into one), and workers as www-data could not read examples/php.
        let userLines = ""
        let config = """
            [global]
            pid = \(dir.file("php-fpm.pid"))
            error_log = \(logPath)
            daemonize = no

            [test]
            \(userLines)listen = \(socketPath)
            listen.mode = 0666
            pm = static
            pm.max_children = \(children)
            catch_workers_output = yes
            clear_env = no
            request_terminate_timeout = 0
            php_admin_value[upload_max_filesize] = 64M
            php_admin_value[post_max_size] = 64M
            php_admin_value[output_buffering] = 0

            """
        let configPath = try dir.write("php-fpm.conf", config)
        process = try ChildProcess.launch(
            fpm, ["--nodaemonize", "--fpm-config", configPath] + (getuid() == 0 ? ["-R"] : []), logPath: dir.file("php-fpm.out"))

        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        while !FileManager.default.fileExists(atPath: socketPath) {
            if !process.isRunning || clock.now > deadline {
                let log = dir.read("php-fpm.log") + dir.read("php-fpm.out")
                process.stop()
                throw HarnessError("php-fpm did not come up:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var isRunning: Bool { process.isRunning }

    func log() -> String { dir.read("php-fpm.log") }

    func stop() { process.stop() }

    deinit { stop() }
}
