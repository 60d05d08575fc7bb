import Foundation
import NIOCore
import NIOHTTP1
import ProxyConfig
import Testing

@testable import ProxyCore

@Suite struct AccessLogFormatTests {
    private func line(
        head: HTTPRequestHead, upstream: String?, upstreamNanoseconds: Int64?, requestNanoseconds: Int64
    ) -> String {
        var buffer = ByteBuffer()
        AccessLog.format(
            into: &buffer, remoteAddress: "10.0.0.1", timestamp: "27/Nov/2026:10:00:00 +0000", head: head,
            status: 200, bytesSent: 512, upstreamAddress: upstream, upstreamNanoseconds: upstreamNanoseconds,
            requestNanoseconds: requestNanoseconds)
        return String(buffer: buffer)
    }

    @Test func combinedThenUpstreamAndTimes() {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a.php?x=1")
        head.headers.add(name: "Referer", value: "http://r/")
        head.headers.add(name: "User-Agent", value: "ua/1")
        let text = line(head: head, upstream: "unix:/run/php.sock", upstreamNanoseconds: 12_345_678, requestNanoseconds: 1_234_567_890)
        #expect(
            text
                == #"10.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /a.php?x=1 HTTP/1.1" 200 512 "http://r/" "ua/1" "unix:/run/php.sock" 0.012 1.234"#
                + "\n")
    }

    @Test func noUpstreamIsDashes() {
        let head = HTTPRequestHead(version: .http1_0, method: .POST, uri: "/")
        let text = line(head: head, upstream: nil, upstreamNanoseconds: nil, requestNanoseconds: 999_999)
        #expect(text.hasSuffix(#""POST / HTTP/1.0" 200 512 "-" "-" "-" - 0.000"# + "\n"), "\(text)")
    }

    @Test(arguments: [
        (Int64(0), "0.000"), (999_999, "0.000"), (1_000_000, "0.001"), (1_050_000_000, "1.050"),
        (61_999_000_000, "61.999"), (-5, "0.000"),
    ])
    func seconds(nanoseconds: Int64, text: String) {
        var buffer = ByteBuffer()
        AccessLog.writeSeconds(nanoseconds, into: &buffer)
        #expect(String(buffer: buffer) == text)
    }

    @Test func clientTextIsEscaped() {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/\u{7f}")
        head.headers.add(name: "User-Agent", value: #"a"b\c"#)
        let text = line(head: head, upstream: nil, upstreamNanoseconds: nil, requestNanoseconds: 0)
        #expect(text.contains(#""GET /\x7F HTTP/1.1""#), "\(text)")
        #expect(text.contains(#""a\x22b\x5Cc""#), "\(text)")
    }
}

/// Lines go through the writer thread, in order; reopen puts later lines in a new file.
@Suite struct AccessLogWriterTests {
    @Test func writesInOrderAndReopens() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fcgiproxy-alog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/access.log"
        let log = try #require(try AccessLog(target: .file(path)))
        for index in 0..<1000 {
            log.writer.enqueue(.write(ByteBuffer(string: "line \(index)\n")))
        }
        await log.flush()
        let first = try String(contentsOfFile: path, encoding: .utf8)
        #expect(first == (0..<1000).map { "line \($0)\n" }.joined())

        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try await log.reopen()
        log.writer.enqueue(.write(ByteBuffer(string: "after\n")))
        log.close()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "after\n")
        #expect(try String(contentsOfFile: path + ".1", encoding: .utf8) == first)
    }

    /// On stderr (shared with the error log), every write(2) is whole lines of at most
    /// PIPE_BUF bytes. A SOCK_SEQPACKET pair shows each write as one message.
    @Test func stderrWritesAreWholeLinesWithinPipeBuf() throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_SEQPACKET.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let writer = AccessLogWriter(fd: fds[0], wholeLinesOnly: true)
        let lines = (0..<200).map { "line \($0) " + String(repeating: "x", count: $0 % 150) + "\n" }
        writer.enqueue(.write(ByteBuffer(string: lines.joined())))
        writer.stop()
        var received = ""
        var messages = 0
        var message = [UInt8](repeating: 0, count: 65536)
        while received.utf8.count < lines.joined().utf8.count {
            let count = recv(fds[1], &message, message.count, 0)
            try #require(count > 0)
            let text = String(decoding: message[..<count], as: UTF8.self)
            #expect(count <= AccessLogWriter.atomicWriteSize)
            #expect(text.hasSuffix("\n"), "write cut a line: \(text.suffix(20))")
            received += text
            messages += 1
        }
        #expect(received == lines.joined())
        #expect(messages > 1)
    }

    @Test func offIsNil() throws {
        #expect(try AccessLog(target: .off) == nil)
    }
}
