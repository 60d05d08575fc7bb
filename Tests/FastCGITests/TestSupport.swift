import FastCGI
import NIOCore

/// The readable bytes of `buffer`, for byte-exact comparisons against hand-written vectors.
func bytes(_ buffer: ByteBuffer) -> [UInt8] {
    Array(buffer.readableBytesView)
}

/// A buffer of `count` bytes whose values vary, so misplaced or dropped bytes show up in comparisons.
func patternBuffer(count: Int, seed: Int = 0) -> ByteBuffer {
    var buffer = ByteBuffer()
    // Filled in place: a per-byte writeInteger loop takes seconds for the 16 MiB cases in debug builds.
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
        for index in 0..<count {
            pointer[index] = UInt8(truncatingIfNeeded: (index + seed) % 251)
        }
        return count
    }
    return buffer
}

/// One record header plus content and padding, read by hand (not by the decoder under test) so that
/// encoder tests check the wire bytes independently.
struct RawRecord {
    var version: UInt8
    var type: UInt8
    var requestID: UInt16
    var contentLength: Int
    var paddingLength: Int
    var reserved: UInt8
    var content: ByteBuffer
    var padding: [UInt8]
}

/// Splits `buffer` into records by reading headers by hand; returns `nil` if the bytes do not end on a
/// record boundary.
func rawRecords(_ buffer: ByteBuffer) -> [RawRecord]? {
    var buffer = buffer
    var records: [RawRecord] = []
    while buffer.readableBytes > 0 {
        guard let header = buffer.readBytes(length: 8) else { return nil }
        let contentLength = Int(header[4]) << 8 | Int(header[5])
        let paddingLength = Int(header[6])
        guard let content = buffer.readSlice(length: contentLength),
            let padding = buffer.readBytes(length: paddingLength)
        else { return nil }
        records.append(
            RawRecord(
                version: header[0],
                type: header[1],
                requestID: UInt16(header[2]) << 8 | UInt16(header[3]),
                contentLength: contentLength,
                paddingLength: paddingLength,
                reserved: header[7],
                content: content,
                padding: padding
            )
        )
    }
    return records
}

/// Decodes `chunks` in order through the decoder under test, as a channel would deliver them.
/// Also returns how many bytes were left undecoded.
func decodeRecords(_ chunks: [ByteBuffer]) throws -> (records: [FastCGIRecord], leftover: Int) {
    let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
    var records: [FastCGIRecord] = []
    for chunk in chunks {
        try processor.process(buffer: chunk) { records.append($0) }
    }
    return (records, processor.unprocessedBytes)
}

/// Decodes `buffer` delivered in one piece.
func decodeRecords(_ buffer: ByteBuffer) throws -> (records: [FastCGIRecord], leftover: Int) {
    try decodeRecords([buffer])
}
