#if HTTP2
import Foundation
import NIOCore
import NIOPosix
import ProxyHTTP2
import Testing

/// The bridge and its handler on a real socket, against nghttp2-based clients (curl, h2load)
/// speaking h2c with prior knowledge.
@Suite(.serialized) struct HTTP2RealClientTests {
    private static func withServer(_ body: (Int) throws -> Void) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTP2FixedResponseHandler(
                            headers: [("content-type", "text/plain")], body: ByteBuffer(string: "fixed\n")))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        try body(channel.localAddress!.port!)
    }

    private static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func curlGetsTheResponseOverH2cWithPriorKnowledge() throws {
        try Self.withServer { port in
            let result = try Self.run(
                "/usr/bin/curl",
                ["-sS", "--max-time", "10", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}",
                 "-d", String(repeating: "x", count: 100_000), "http://127.0.0.1:\(port)/a"])
            #expect(result.status == 0)
            #expect(result.output == "fixed\n2 200", "\(result.output)")
        }
    }

    /// Many multiplexed streams on several connections; `H2LOAD_REQUESTS=N` makes it a
    /// measurement (h2load's req/s is printed, never asserted).
    @Test func h2loadStreamsAllSucceed() throws {
        let requests = ProcessInfo.processInfo.environment["H2LOAD_REQUESTS"].flatMap { Int($0) } ?? 2_000
        try Self.withServer { port in
            let result = try Self.run(
                "/usr/bin/h2load",
                ["-n", String(requests), "-c", "4", "-m", "10", "-T", "10", "http://127.0.0.1:\(port)/"])
            #expect(result.status == 0)
            #expect(result.output.contains("\(requests) succeeded, 0 failed, 0 errored"), "\(result.output)")
            if ProcessInfo.processInfo.environment["H2LOAD_REQUESTS"] != nil { print(result.output) }
        }
    }
}
#endif
