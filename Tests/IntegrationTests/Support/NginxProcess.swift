import Foundation

/// nginx with a private config (`daemon off; master_process off`), doing for examples/php what
/// fcgiproxy does: same root, index and split path, keep-alive FastCGI connections to the same
/// PHP-FPM socket. `FRONT=nginx` runs the integration tests against it.
final class NginxProcess: FrontEnd, @unchecked Sendable {
    let kind = FrontKind.nginx
    let port: Int
    let dir: TempDir
    let configPath: String
    let logPath: String
    let errorLogPath: String
    let process: SpawnedProcess

    init(options: FrontEndOptions, dir: TempDir, port: Int, attempt: Int = 1) async throws {
        self.port = port
        self.dir = dir
        let prefix = dir.file("nginx-\(port)-\(attempt)")
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        errorLogPath = prefix + "/error.log"
        logPath = prefix + "/stderr.log"
        configPath = prefix + "/nginx.conf"
        try Self.config(options, port: port, prefix: prefix).write(toFile: configPath, atomically: true, encoding: .utf8)
        process = try ChildProcess.launch(Paths.nginx, ["-p", prefix, "-c", configPath], logPath: logPath)
        let proc = process
        guard await Net.waitUntilAccepting(port: port, timeout: .seconds(10), alive: { proc.isRunning }) else {
            process.stop()
            let log = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: errorLogPath, encoding: .utf8)) ?? "")
            throw HarnessError("nginx did not accept on 127.0.0.1:\(port):\n\(log)")
        }
    }

    /// The start of a private nginx.conf, up to and inside `http {`: one process in the
    /// foreground, every file (log, pid, temp paths) under `prefix`.
    static func preamble(prefix: String, connections: Int = 1024) -> String {
        """
        daemon off;
        master_process off;
        worker_processes 1;
        error_log \(prefix)/error.log info;
        pid \(prefix)/nginx.pid;

        events { worker_connections \(connections); }

        http {
            access_log off;
            client_body_temp_path \(prefix)/client_body;
            fastcgi_temp_path \(prefix)/fastcgi;
            proxy_temp_path \(prefix)/proxy;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
        """
    }

    static func config(_ options: FrontEndOptions, port: Int, prefix: String) -> String {
        preamble(prefix: prefix) + """

            client_max_body_size \(sizeText(options.maxBodySize));
            default_type application/octet-stream;

            upstream php {
                server unix:\(options.backendSocket);
                keepalive 8;
            }

            server {
                listen 127.0.0.1:\(port);
                server_name localhost;
                root \(options.root);
                index index.php;

                location ~ [^/]\\.php(/|$) {
                    fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
                    try_files $fastcgi_script_name =404;
                    set $path_info $fastcgi_path_info;
                    include /etc/nginx/fastcgi_params;
                    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
                    fastcgi_param PATH_INFO $path_info;
                    fastcgi_param PATH_TRANSLATED $document_root$path_info if_not_empty;
                    fastcgi_param HTTP_PROXY "" if_not_empty;
                    fastcgi_pass php;
                    fastcgi_keep_conn on;
                    fastcgi_buffering off;
                    fastcgi_read_timeout \(options.readTimeoutSeconds)s;
                }
            }
        }

        """
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }

    func log() -> String {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: errorLogPath, encoding: .utf8)) ?? "")
    }

    func stop() { process.stop() }

    deinit { stop() }
}
