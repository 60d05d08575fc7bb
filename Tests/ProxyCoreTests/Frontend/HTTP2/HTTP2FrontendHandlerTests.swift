#if HTTP2
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import ProxyConfig
import Testing

@testable import ProxyCore

/// The HTTP/2 side of the client pipeline on an EmbeddedChannel: protocol choice by the first
/// bytes, and the stream ↔ exchange glue for answers the proxy decides itself (no backend).
@Suite final class HTTP2FrontendHandlerTests {
    private let fixture: ClientPipelineFixture

    init() throws {
        fixture = try ClientPipelineFixture(name: "h2")
    }

    private func makeChannel(http2: Bool = true, _ adjust: (inout ServerConfig) -> Void = { _ in }) throws -> EmbeddedChannel {
        var server = ServerConfig(accessLog: .off)
        server.http2 = http2
        server.maxBodySize = 1000
        adjust(&server)
        return try fixture.makeChannel(server: server).0
    }

    // MARK: Frames

    private struct Frame {
        var type: UInt8
        var flags: UInt8
        var streamID: UInt32
        var payload: [UInt8]
    }

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private static func frame(type: UInt8, flags: UInt8, streamID: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
                UInt8(streamID >> 24 & 0x7F), UInt8(streamID >> 16 & 0xFF), UInt8(streamID >> 8 & 0xFF), UInt8(streamID & 0xFF)]
            + payload
    }

    /// HEADERS with HPACK literals (no indexing, no Huffman).
    private static func headers(streamID: UInt32, _ fields: [(String, String)], endStream: Bool) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in fields {
            block += [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        return frame(type: 1, flags: 0x4 | (endStream ? 0x1 : 0), streamID: streamID, block)
    }

    private static func request(_ method: String, _ path: String, _ extra: [(String, String)] = []) -> [(String, String)] {
        [(":method", method), (":scheme", "http"), (":path", path), (":authority", "example.test")] + extra
    }

    private func output(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var out: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let bytes) = data { out += Array(bytes.readableBytesView) }
        }
        return out
    }

    private static func frames(_ bytes: [UInt8]) -> [Frame] {
        var frames: [Frame] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard i + 9 + length <= bytes.count else { break }
            let stream = UInt32(bytes[i + 5] & 0x7F) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
            frames.append(Frame(type: bytes[i + 3], flags: bytes[i + 4], streamID: stream, payload: Array(bytes[(i + 9)..<(i + 9 + length)])))
            i += 9 + length
        }
        return frames
    }

    private func send(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    // MARK: Tests

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n", HTTP2PrefaceDetector.Choice?.some(.http1)),
        ("PRI * HTTP/1.1\r\n", .some(.http1)),
        ("PRI * HTTP/2.0\r\n", nil),
        ("P", nil),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .some(.http2)),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u{0}\u{0}", .some(.http2)),
    ])
    func prefaceDecides(_ bytes: String, _ expected: HTTP2PrefaceDetector.Choice?) {
        #expect(HTTP2PrefaceDetector.choice(for: ByteBuffer(string: bytes)) == expected)
    }

    @Test func aPrefaceSplitOverReadsStartsHTTP2AndAStreamGetsTheProxysOwnAnswer() throws {
        let channel = try makeChannel()
        try send(channel, Array(Self.preface[0..<7]))
        #expect(try output(channel).isEmpty, "nothing before the protocol is known")
        try send(
            channel,
            Array(Self.preface[7...]) + Self.frame(type: 4, flags: 0, streamID: 0)
                + Self.headers(streamID: 1, Self.request("GET", "/nowhere"), endStream: true))
        let frames = Self.frames(try output(channel))
        #expect(frames.first?.type == 4, "server SETTINGS first")
        let head = try #require(frames.first { $0.type == 1 && $0.streamID == 1 })
        #expect(head.payload.first == 0x8D, ":status 404 (static table index 13)")
        let data = try #require(frames.first { $0.type == 0 && $0.streamID == 1 })
        #expect(data.flags & 1 == 1, "END_STREAM")
        #expect(String(decoding: data.payload, as: UTF8.self).contains("404 Not Found"))
        #expect(channel.isActive)
    }

    @Test func headGetsHeadersWithEndStreamAndNoData() throws {
        let channel = try makeChannel()
        try send(channel, Self.preface + Self.frame(type: 4, flags: 0, streamID: 0)
            + Self.headers(streamID: 1, Self.request("HEAD", "/nowhere"), endStream: true))
        let frames = Self.frames(try output(channel)).filter { $0.streamID == 1 }
        #expect(frames.map(\.type) == [1])
        #expect(frames.first.map { $0.flags & 1 == 1 } == true)
    }

    @Test func anAnswerBeforeTheBodyIsFollowedByResetNoErrorAndTheConnectionGoesOn() throws {
        let channel = try makeChannel()
        // Over max_body_size (1000): 413 at once, the body is not wanted.
        try send(channel, Self.preface + Self.frame(type: 4, flags: 0, streamID: 0)
            + Self.headers(streamID: 1, Self.request("POST", "/app/x.php", [("content-length", "5000")]), endStream: false))
        let frames = Self.frames(try output(channel)).filter { $0.streamID == 1 }
        #expect(frames.map(\.type) == [1, 0, 3], "HEADERS, DATA, then RST_STREAM")
        #expect(frames.last?.payload == [0, 0, 0, 0], "NO_ERROR")
        // A second stream on the same connection is served.
        try send(channel, Self.headers(streamID: 3, Self.request("GET", "/nowhere"), endStream: true))
        #expect(Self.frames(try output(channel)).contains { $0.type == 1 && $0.streamID == 3 })
    }

    /// Two streams' bodies need more than the connection's file allowance (100 bytes, nothing in
    /// memory): the second is refused with RST_STREAM(REFUSED_STREAM) and no response, and the
    /// connection goes on (no GOAWAY, a third stream answered).
    @Test func aBodyBeyondTheConnectionAllowanceIsRefusedAndTheConnectionGoesOn() throws {
        try #require(FileManager.default.createFile(atPath: fixture.root + "/app/up.php", contents: Data()))
        let channel = try makeChannel {
            $0.bodyBufferSize = 0
            $0.connectionSpill = 100
        }
        let data = Self.frame(type: 0, flags: 0, streamID: 1, Array(repeating: 0x61, count: 60))
        try send(channel, Self.preface + Self.frame(type: 4, flags: 0, streamID: 0)
            + Self.headers(streamID: 1, Self.request("POST", "/app/up.php"), endStream: false) + data)
        #expect(Self.frames(try output(channel)).allSatisfy { $0.streamID != 1 }, "60 bytes fit: nothing for stream 1")
        var second = Self.headers(streamID: 3, Self.request("POST", "/app/up.php"), endStream: false)
        second += Self.frame(type: 0, flags: 0, streamID: 3, Array(repeating: 0x62, count: 60))
        try send(channel, second)
        let frames = Self.frames(try output(channel))
        #expect(frames.filter { $0.streamID == 3 }.map(\.type) == [3], "RST_STREAM only, no response")
        #expect(frames.first { $0.streamID == 3 }?.payload == [0, 0, 0, 7], "REFUSED_STREAM")
        #expect(!frames.contains { $0.type == 7 }, "no GOAWAY")
        try send(channel, Self.headers(streamID: 5, Self.request("GET", "/nowhere"), endStream: true))
        #expect(Self.frames(try output(channel)).contains { $0.type == 1 && $0.streamID == 5 })
        #expect(channel.isActive)
    }

    @Test func quiesceOnAnIdleConnectionSendsGoAwayAndCloses() throws {
        let channel = try makeChannel()
        try send(channel, Self.preface + Self.frame(type: 4, flags: 0, streamID: 0))
        _ = try output(channel)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
        let frames = Self.frames(try output(channel))
        #expect(frames.contains { $0.type == 7 }, "GOAWAY")
        #expect(!channel.isActive)
    }

    /// Without `h2c_upgrade = on` an `Upgrade: h2c` request is plain HTTP/1.1: no 101, and the
    /// connection stays HTTP/1.1 (here the route's 404 for a missing script).
    @Test func upgradeRequestIsServedAsHTTP1ByDefault() throws {
        let channel = try makeChannel()
        let upgrade = Array(
            "GET /app/missing.php HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n".utf8)
        try send(channel, upgrade)
        channel.embeddedEventLoop.run()
        let out = String(decoding: try output(channel), as: UTF8.self)
        #expect(out.hasPrefix("HTTP/1.1 404 "), "\(out)")
        #expect(!out.contains("101"), "\(out)")
        #expect(channel.isActive)
    }

    /// Bytes behind an `Upgrade: h2c` request in the same read are the client's preface and
    /// frames: they reach the HTTP/2 session (here a PING, answered with its ACK).
    @Test func bytesBehindAnUpgradeRequestGoToHTTP2() throws {
        let channel = try makeChannel { $0.h2cUpgrade = true }
        let upgrade = Array(
            "GET /app/missing.php HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n".utf8)
        let ping = Self.frame(type: 6, flags: 0, streamID: 0, Array("12345678".utf8))
        try send(channel, upgrade + Self.preface + Self.frame(type: 4, flags: 0, streamID: 0) + ping)
        channel.embeddedEventLoop.run()
        let out = try output(channel)
        let switching = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8)
        try #require(out.starts(with: switching), "\(String(decoding: out.prefix(120), as: UTF8.self))")
        let frames = Self.frames(Array(out[switching.count...]))
        #expect(frames.contains { $0.type == 6 && $0.flags & 1 == 1 && $0.payload == Array("12345678".utf8) }, "PING ACK")
        // Stream 1 is the upgraded request, answered over HTTP/2.
        #expect(frames.contains { $0.type == 1 && $0.streamID == 1 }, "HEADERS on stream 1")
    }

    @Test func withHTTP2OffThePrefaceIsABadHTTP1Request() throws {
        let channel = try makeChannel(http2: false)
        try send(channel, Self.preface)
        let out = String(decoding: try output(channel), as: UTF8.self)
        // `PRI * HTTP/2.0` is a well-formed request line of a version we don't speak: 505, as nginx.
        #expect(out.hasPrefix("HTTP/1.1 505 "), "\(out)")
        #expect(!channel.isActive)
    }
}
#endif

#if HTTP2
@Suite struct H2CUpgradeSettingsTests {
    @Test func base64URLWithAndWithoutPadding() {
        // SETTINGS_MAX_CONCURRENT_STREAMS = 100, SETTINGS_INITIAL_WINDOW_SIZE = 33554432 (curl's).
        #expect(HTTPFrontendHandler.base64URLDecode("AAMAAABkAAQCAAAAAAIAAAAA") == [0, 3, 0, 0, 0, 100, 0, 4, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0])
        #expect(HTTPFrontendHandler.base64URLDecode("-_8") == [0xfb, 0xff])
        #expect(HTTPFrontendHandler.base64URLDecode("-_8=") == [0xfb, 0xff])
        #expect(HTTPFrontendHandler.base64URLDecode("") == [])
        #expect(HTTPFrontendHandler.base64URLDecode("a+b/") == nil, "standard base64 is not base64url")
        #expect(HTTPFrontendHandler.base64URLDecode("a b") == nil)
    }
}
#endif
