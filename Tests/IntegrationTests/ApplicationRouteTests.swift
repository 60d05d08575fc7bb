import FastCGIWorker
import Foundation
import NIOCore
import Testing

/// Answers with the CGI variables that say where the script is, one per line.
private struct ScriptParamsResponder: FastCGIResponder {
    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        let names = ["SCRIPT_NAME", "PATH_INFO", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "PATH_TRANSLATED"]
        let lines = names.map { "\($0)=\(request.params[$0] ?? "<none>")" }
        let body = ByteBuffer(string: lines.joined(separator: "\n") + "\n")
        try await writer.writeHead(
            status: 200, headers: [("Content-Type", "text/plain"), ("Content-Length", "\(body.readableBytes)")])
        try await writer.write(body)
    }
}

extension Integration {
    /// A route without `root` fronts an application server: no file is looked up, SCRIPT_NAME is
    /// the route's prefix and PATH_INFO the rest of the path.
    @Suite(.fcgiproxyOnly("routes without root are fcgiproxy's"))
    struct ApplicationRoutes {
        @Test func scriptNameIsThePrefixAndPathInfoTheRest() async throws {
            let backend = try await WorkerBackend.start(responder: ScriptParamsResponder())
            do {
                try await check(backend)
            } catch {
                await backend.stop()
                throw error
            }
            await backend.stop()
        }

        private func check(_ backend: WorkerBackend) async throws {
            let proxy = try await WorkerProxy.start(in: backend.dir) { port in
                """
                [server]
                listen = 127.0.0.1:\(port)

                [pool:app]
                backend = unix:\(backend.socketPath)

                [route:api]
                match = /api/
                pool = app

                [route:rpc]
                match = = /rpc
                pool = app

                [route:rest]
                match = /
                pool = app

                """
            }
            defer { proxy.stop() }
            let cases: [(path: String, scriptName: String, pathInfo: String)] = [
                ("/api/v1/items?x=1", "/api", "/v1/items"),
                ("/api/", "/api", "/"),
                ("/rpc", "/rpc", ""),
                ("/no/such/file.php", "", "/no/such/file.php"),
            ]
            for test in cases {
                let response = try await Curl.run(["--max-time", "10", proxy.url(test.path)])
                #expect(response.status == 200, "\(test.path): \(response.status)")
                let body = String(decoding: response.body, as: UTF8.self)
                #expect(
                    body
                        == "SCRIPT_NAME=\(test.scriptName)\nPATH_INFO=\(test.pathInfo)\nSCRIPT_FILENAME=\(test.scriptName)\n"
                        + "DOCUMENT_ROOT=\nPATH_TRANSLATED=<none>\n",
                    "\(test.path): \(body)")
            }
            #expect(proxy.isRunning, "fcgiproxy died; its log:\n\(proxy.log().suffix(3000))")
        }
    }
}
