import Foundation

/// A few raw HTTP/2 frames for tests that need what curl does not do (RST_STREAM on one stream
/// while the connection stays). Header blocks use HPACK literals only (no table, no Huffman).
enum RawHTTP2 {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    struct Frame {
        var type: UInt8
        var flags: UInt8
        var streamID: UInt32
        var payload: [UInt8]
    }

    static let data: UInt8 = 0
    static let headers: UInt8 = 1
    static let rstStream: UInt8 = 3
    static let settings: UInt8 = 4
    static let goAway: UInt8 = 7
    static let windowUpdate: UInt8 = 8
    static let endStream: UInt8 = 1
    static let endHeaders: UInt8 = 4

    static func frame(type: UInt8, flags: UInt8, streamID: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags]
            + [UInt8(streamID >> 24 & 0x7F), UInt8(streamID >> 16 & 0xFF), UInt8(streamID >> 8 & 0xFF), UInt8(streamID & 0xFF)]
            + payload
    }

    /// HEADERS (END_HEADERS, END_STREAM) for a GET.
    static func get(streamID: UInt32, path: String, authority: String) -> [UInt8] {
        request(streamID: streamID, method: "GET", path: path, authority: authority, endStream: true)
    }

    /// HEADERS (END_HEADERS, and END_STREAM when `endStream`), no fields beyond the pseudo-headers.
    static func request(streamID: UInt32, method: String, path: String, authority: String, endStream: Bool) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)] {
            block.append(0x00)  // literal without indexing, new name
            block.append(UInt8(name.utf8.count))
            block += Array(name.utf8)
            block.append(UInt8(value.utf8.count))
            block += Array(value.utf8)
        }
        return frame(type: headers, flags: endHeaders | (endStream ? Self.endStream : 0), streamID: streamID, block)
    }

    static func reset(streamID: UInt32, errorCode: UInt32 = 8) -> [UInt8] {
        frame(
            type: rstStream, flags: 0, streamID: streamID,
            [UInt8(errorCode >> 24 & 0xFF), UInt8(errorCode >> 16 & 0xFF), UInt8(errorCode >> 8 & 0xFF), UInt8(errorCode & 0xFF)])
    }

    /// The complete frames in `bytes` (a partial last one is left out).
    static func frames(in bytes: [UInt8]) -> [Frame] {
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
}
