import NIOCore

/// One record as read off the wire; padding already skipped; content is a slice (no copy).
public struct FastCGIRecord: Sendable, Equatable {
    /// The raw record type. Kept raw so unknown types survive decoding and can be answered with
    /// `FCGI_UNKNOWN_TYPE`; see `recordType` for the typed view.
    public var type: UInt8
    /// The request this record belongs to; `FastCGIConstants.managementRequestID` for management records.
    public var requestID: UInt16
    /// The record content without padding, sharing storage with the buffer it was decoded from.
    public var content: ByteBuffer

    /// Creates a record with a raw type, which may be one this codec does not know.
    public init(type: UInt8, requestID: UInt16, content: ByteBuffer) {
        self.type = type
        self.requestID = requestID
        self.content = content
    }

    /// Creates a record of a known type.
    public init(type: FastCGIRecordType, requestID: UInt16, content: ByteBuffer) {
        self.init(type: type.rawValue, requestID: requestID, content: content)
    }

    /// The typed record type, or `nil` if the peer sent a type FastCGI 1.0 does not define.
    public var recordType: FastCGIRecordType? {
        FastCGIRecordType(rawValue: self.type)
    }
}
