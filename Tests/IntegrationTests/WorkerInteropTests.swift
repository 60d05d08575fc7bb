import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Integration {
    /// fcgi-demo (built on FastCGIWorker) talking to FastCGI clients we did not write: nginx and libfcgi's
    /// `cgi-fcgi`, over a Unix socket it binds itself and over one it inherits as descriptor 0.
    /// Independent of FRONT: fcgiproxy is not involved.
    @Suite struct WorkerInterop {
        // MARK: nginx → fcgi-demo --unix

        @Test func paramsPageThroughNginx() async throws {
            let stack = try await DemoStack.shared.get()
            let r = try await Curl.run([stack.nginx.url("/?probe=1")])
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            #expect(r.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(r.text.contains("<th>REQUEST_METHOD</th><td>GET</td>"), "\(r.text.prefix(2000))")
            #expect(r.text.contains("<th>QUERY_STRING</th><td>probe=1</td>"))
            #expect(r.text.contains("<th>REQUEST_URI</th><td>/?probe=1</td>"))
        }

        @Test func fiveMegabyteEchoThroughNginx() async throws {
            let stack = try await DemoStack.shared.get()
            let size = 5 * 1024 * 1024
            let upload = try Util.randomFile(in: stack.dir, name: "upload.bin", size: size)
            let expected = try await sha256(ofFile: upload)
            let r = try await Curl.run([
                "--data-binary", "@\(upload)", "-H", "Content-Type: application/octet-stream", stack.nginx.url("/echo"),
            ])
            #expect(r.status == 200, "\(r.stderr) \(stack.nginx.log().suffix(2000))")
            #expect(r.header("X-Echo-Length") == String(size))
            #expect(r.header("X-Echo-SHA256") == expected)
            #expect(r.body.count == size)
            let echoed = stack.dir.file("echoed.bin")
            try r.body.write(to: URL(fileURLWithPath: echoed))
            #expect(try await sha256(ofFile: echoed) == expected)
        }

        @Test(arguments: SHA256Vector.known)
        func sha256KnownVectorsThroughEcho(_ vector: SHA256Vector) async throws {
            let stack = try await DemoStack.shared.get()
            let input = stack.dir.file("vector.bin")
            try Data(vector.input).write(to: URL(fileURLWithPath: input))
            let r = try await Curl.run(["--data-binary", "@\(input)", stack.nginx.url("/echo")])
            #expect(r.status == 200)
            #expect(r.header("X-Echo-Length") == String(vector.input.count))
            #expect(r.header("X-Echo-SHA256") == vector.digest)
        }

        /// Lengths around the 55/56/64-byte padding edges, against `sha256sum`.
        @Test func sha256AtBlockBoundariesMatchesSha256sum() async throws {
            let stack = try await DemoStack.shared.get()
            for length in [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
                let input = try Util.randomFile(in: stack.dir, name: "edge-\(length).bin", size: length)
                let r = try await Curl.run(["--data-binary", "@\(input)", stack.nginx.url("/echo")])
                #expect(r.header("X-Echo-SHA256") == (try await sha256(ofFile: input)), "length \(length)")
            }
        }

        @Test func bytesThroughNginx() async throws {
            let stack = try await DemoStack.shared.get()
            let count = 3_000_000
            let r = try await Curl.run([stack.nginx.url("/bytes?n=\(count)")])
            #expect(r.status == 200)
            #expect(r.header("Content-Length") == String(count))
            #expect(r.sizeDownload == count)
            #expect(r.body.count == count)
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz".utf8)
            for index in [0, 25, 26, 65_519, 65_520, 65_521, 1_234_567, count - 1] where index < r.body.count {
                #expect(r.body[index] == alphabet[index % 26], "byte \(index)")
            }
        }

        @Test func slowThroughNginx() async throws {
            let stack = try await DemoStack.shared.get()
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await Curl.run([stack.nginx.url("/slow?ms=300")])
            #expect(clock.now - start >= .milliseconds(300))
            #expect(r.status == 200)
            #expect(r.text == "slept 300 ms\n")
        }

        /// The events arrive one by one (the first long before the last), not in one piece at the end.
        @Test func streamThroughNginxArrivesOneEventPerSecond() async throws {
            let stack = try await DemoStack.shared.get()
            let output = stack.dir.file("stream-\(UUID().uuidString).txt")
            let clock = ContinuousClock()
            let start = clock.now
            let curl = try ChildProcess.launch(Paths.curl, ["-sSN", "--max-time", "20", stack.nginx.url("/stream?n=3")], logPath: output)
            defer { curl.stop() }
            var firstEventAt: Duration?
            while curl.isRunning, clock.now - start < .seconds(20) {
                if firstEventAt == nil, read(output).contains("data: event 1 of 3") {
                    firstEventAt = clock.now - start
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = clock.now - start
            let text = read(output)
            #expect(text.components(separatedBy: "data: ").count - 1 == 3, "\(text)")
            #expect(text.contains("id: 3\ndata: event 3 of 3\n\n"))
            #expect(elapsed >= .seconds(2), "3 events in \(elapsed)")
            let first = try #require(firstEventAt, "no event seen while curl ran: \(text)")
            #expect(first < .milliseconds(1500), "first event after \(first)")
            #expect(elapsed - first >= .milliseconds(1500), "first event at \(first), end at \(elapsed)")
        }

        /// A client that goes away mid-stream: nginx closes its FastCGI connection, the handler's task is
        /// cancelled and the worker logs how far it got.
        @Test func abortedStreamStopsTheHandler() async throws {
            let stack = try await DemoStack.shared.get()
            let logBefore = stack.worker.log().count
            let output = stack.dir.file("aborted-\(UUID().uuidString).txt")
            let curl = try ChildProcess.launch(Paths.curl, ["-sSN", stack.nginx.url("/stream?n=30")], logPath: output)
            defer { curl.stop() }
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            while !read(output).contains("data: event 2 of 30"), clock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(read(output).contains("data: event 2 of 30"))
            curl.stop()
            let cancelled = await waitFor(timeout: .seconds(5)) {
                stack.worker.log().dropFirst(logBefore).contains("stream cancelled after ")
            }
            #expect(cancelled, "\(stack.worker.log().suffix(2000))")
            let line = stack.worker.log().dropFirst(logBefore).components(separatedBy: "\n").first { $0.contains("stream cancelled after ") } ?? ""
            let events = line.components(separatedBy: "stream cancelled after ").last?.split(separator: " ").first.flatMap { Int($0) }
            #expect(events.map { (2...4).contains($0) } == true, "\(line)")
            #expect(stack.worker.isRunning)
        }

        // MARK: cgi-fcgi (libfcgi) → fcgi-demo

        @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: Paths.cgiFCGI), "needs /usr/bin/cgi-fcgi: apt-get install libfcgi-bin"))
        func cgiFCGIGetsParamsPage() async throws {
            let stack = try await DemoStack.shared.get()
            let r = try await cgiFCGI(socket: stack.worker.socketPath, ["REQUEST_METHOD=GET", "SCRIPT_FILENAME=/x", "REQUEST_URI=/"])
            #expect(r.exitCode == 0, "\(r.stderrText)")
            #expect(r.stdoutText.hasPrefix("Status: 200 OK\r\n"), "\(r.stdoutText.prefix(500))")
            #expect(r.stdoutText.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"))
            #expect(r.stdoutText.contains("\r\n\r\n<!doctype html>"))
            #expect(r.stdoutText.contains("<th>REQUEST_METHOD</th><td>GET</td>"))
            #expect(r.stdoutText.contains("<th>SCRIPT_FILENAME</th><td>/x</td>"))
        }

        @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: Paths.cgiFCGI), "needs /usr/bin/cgi-fcgi: apt-get install libfcgi-bin"))
        func cgiFCGIPostsToEcho() async throws {
            let stack = try await DemoStack.shared.get()
            let size = 1_000_003
            let upload = try Util.randomFile(in: stack.dir, name: "cgi-fcgi-upload.bin", size: size)
            let r = try await cgiFCGI(
                socket: stack.worker.socketPath,
                ["REQUEST_METHOD=POST", "REQUEST_URI=/echo", "CONTENT_LENGTH=\(size)"],
                standardInput: upload
            )
            #expect(r.exitCode == 0, "\(r.stderrText)")
            let head = String(decoding: r.stdout.prefix(400), as: UTF8.self)
            #expect(head.hasPrefix("Status: 200 OK\r\n"), "\(head)")
            #expect(head.contains("\r\nX-Echo-Length: \(size)\r\n"))
            #expect(head.contains("\r\nX-Echo-SHA256: \(try await sha256(ofFile: upload))\r\n"), "\(head)")
            let separator = Data("\r\n\r\n".utf8)
            let bodyStart = try #require(r.stdout.range(of: separator)).upperBound
            #expect(r.stdout.count - bodyStart == size)
        }

        // MARK: fcgi-demo on an inherited socket (fd 0)

        @Test func inheritedListeningSocketAtDescriptorZero() async throws {
            let dir = try TempDir("fcgi-demo-fd0")
            let worker = try DemoWorker(inheritedSocketIn: dir)
            defer { worker.stop() }
            let fd0 = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(worker.pid)/fd/0")
            #expect(fd0.hasPrefix("socket:"), "fd 0 is \(fd0)")
            let nginx = try await DemoNginx(workerSocket: worker.socketPath, dir: dir)
            defer { nginx.stop() }

            let page = try await Curl.run([nginx.url("/")])
            #expect(page.status == 200, "\(nginx.log().suffix(2000)) \(worker.log())")
            #expect(page.text.contains("<th>REQUEST_METHOD</th><td>GET</td>"))
            let echo = try await Curl.run(["--data-binary", "abc", nginx.url("/echo")])
            #expect(echo.header("X-Echo-SHA256") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(echo.text == "abc")

            if FileManager.default.isExecutableFile(atPath: Paths.cgiFCGI) {
                let r = try await cgiFCGI(socket: worker.socketPath, ["REQUEST_METHOD=GET", "REQUEST_URI=/bytes?n=52"])
                #expect(r.exitCode == 0, "\(r.stderrText)")
                #expect(r.stdoutText.hasSuffix("\r\n\r\n" + String(repeating: "abcdefghijklmnopqrstuvwxyz", count: 2)), "\(r.stdoutText)")
            }
            #expect(worker.isRunning, "\(worker.log())")
        }
    }
}

/// One fcgi-demo on a Unix socket with nginx in front, shared by the WorkerInterop tests; restarted if
/// either died.
private actor DemoStack {
    struct Running: Sendable {
        let dir: TempDir
        let worker: DemoWorker
        let nginx: DemoNginx
    }

    static let shared = DemoStack()
    private var running: Running?

    func get() async throws -> Running {
        if let running {
            if running.worker.isRunning, running.nginx.process.isRunning { return running }
            Issue.record("fcgi-demo or nginx died; worker log:\n\(running.worker.log().suffix(3000))\nnginx:\n\(running.nginx.log().suffix(3000))")
            running.worker.stop()
            running.nginx.stop()
        }
        let dir = try TempDir("fcgi-demo-it")
        let worker = try await DemoWorker(unixSocketIn: dir)
        let nginx = try await DemoNginx(workerSocket: worker.socketPath, dir: dir)
        let made = Running(dir: dir, worker: worker, nginx: nginx)
        self.running = made
        return made
    }
}

/// A SHA-256 test vector (FIPS 180-2 examples).
struct SHA256Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let input: [UInt8]
    let digest: String

    var testDescription: String { self.name }

    static let known: [SHA256Vector] = [
        .init(name: "empty", input: [], digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        .init(name: "abc", input: Array("abc".utf8), digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        .init(
            name: "448 bits",
            input: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
            digest: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        .init(
            name: "896 bits",
            input: Array(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8
            ),
            digest: "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
        .init(
            name: "one million a",
            input: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000),
            digest: "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        ),
    ]
}

/// `sha256sum FILE`.
private func sha256(ofFile path: String) async throws -> String {
    let result = try await ChildProcess.run("/usr/bin/sha256sum", [path])
    guard result.exitCode == 0, let hex = result.stdoutText.split(separator: " ").first else {
        throw HarnessError("sha256sum failed: \(result.stderrText)")
    }
    return String(hex)
}

/// `cgi-fcgi -bind -connect SOCKET` with `variables` as its environment (which it sends as the params)
/// and `standardInput` as the body.
private func cgiFCGI(socket: String, _ variables: [String], standardInput: String = "/dev/null") async throws -> ProcessResult {
    try await ChildProcess.run(
        "/usr/bin/env",
        ["-i"] + variables + ["/bin/sh", "-c", "exec \"$0\" -bind -connect \"$1\" < \"$2\"", Paths.cgiFCGI, socket, standardInput]
    )
}

private func read(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

private func waitFor(timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return condition()
}
