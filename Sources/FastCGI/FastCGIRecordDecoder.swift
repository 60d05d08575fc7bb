import NIOCore

/// Incremental decoder: accepts records split at any byte, padding 0–255.
/// Throws `FastCGIProtocolError.unsupportedVersion(v)` on version != 1.
///
/// Records are bounded (8 + 65535 + 255 bytes), so wrapping this decoder in a `ByteToMessageHandler` or
/// `NIOSingleStepByteToMessageProcessor` with a `maximumBufferSize` of, say, 128 KiB is safe.
public struct FastCGIRecordDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = FastCGIRecord

    /// Creates a decoder; it keeps no state between records.
    public init() {}

    /// Decodes one record if all of its bytes (header, content, padding) are readable; otherwise consumes nothing.
    public mutating func decode(buffer: inout ByteBuffer) throws(FastCGIProtocolError) -> FastCGIRecord? {
        // Check the version from the first byte so a peer that speaks something else fails at once
        // instead of leaving us waiting for a "record" that never completes.
        guard let version = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            return nil
        }
        guard version == FastCGIConstants.version else {
            throw .unsupportedVersion(version)
        }
        guard
            let (_, type, requestID, contentLength, paddingLength, _) = buffer.peekMultipleIntegers(
                endianness: .big,
                as: (UInt8, UInt8, UInt16, UInt16, UInt8, UInt8).self
            )
        else {
            return nil
        }
        // Checking the whole record up front means nothing needs rolling back on a partial read.
        let recordLength = FastCGIConstants.headerLength + Int(contentLength) + Int(paddingLength)
        guard buffer.readableBytes >= recordLength else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: FastCGIConstants.headerLength)
        let content = buffer.readSlice(length: Int(contentLength))!
        buffer.moveReaderIndex(forwardBy: Int(paddingLength))
        return FastCGIRecord(type: type, requestID: requestID, content: content)
    }

    /// Decodes what remains at end of input. A trailing partial record is left unread: the connection layer
    /// already treats a backend that closes before `FCGI_END_REQUEST` as failed.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws(FastCGIProtocolError)
        -> FastCGIRecord?
    {
        try self.decode(buffer: &buffer)
    }
}
