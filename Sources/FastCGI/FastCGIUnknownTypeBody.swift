import NIOCore

/// The 8-byte content of `FCGI_UNKNOWN_TYPE`: the record type the application did not understand,
/// then seven reserved bytes.
public struct FastCGIUnknownTypeBody: Sendable, Equatable {
    /// The raw type of the record that was not understood.
    public var type: UInt8

    /// Creates a body naming the rejected type.
    public init(type: UInt8) {
        self.type = type
    }

    /// Parses the content of an UNKNOWN_TYPE record.
    /// - Throws: `FastCGIProtocolError.malformedBody` if the content is not exactly 8 bytes.
    public init(parsing content: ByteBuffer) throws(FastCGIProtocolError) {
        guard content.readableBytes == 8, let type = content.getInteger(at: content.readerIndex, as: UInt8.self)
        else {
            throw .malformedBody(type: FastCGIRecordType.unknownType.rawValue)
        }
        self.init(type: type)
    }
}
