import NIOCore

/// The 8-byte content of `FCGI_BEGIN_REQUEST`: role, flags and five reserved bytes.
public struct FastCGIBeginRequestBody: Sendable, Equatable {
    /// The raw role, kept raw so an application can answer an unknown role with `unknownRole`.
    public var role: UInt16
    /// Flag bits; only `FastCGIConstants.keepConnectionFlag` is defined.
    public var flags: UInt8

    /// Creates a body from its fields.
    public init(role: UInt16, flags: UInt8) {
        self.role = role
        self.flags = flags
    }

    /// Parses the content of a BEGIN_REQUEST record.
    /// - Throws: `FastCGIProtocolError.malformedBody` if the content is not exactly 8 bytes.
    public init(parsing content: ByteBuffer) throws(FastCGIProtocolError) {
        guard content.readableBytes == 8,
            let (role, flags) = content.peekMultipleIntegers(endianness: .big, as: (UInt16, UInt8).self)
        else {
            throw .malformedBody(type: FastCGIRecordType.beginRequest.rawValue)
        }
        self.init(role: role, flags: flags)
    }

    /// Whether the web server keeps the connection open after this request (`FCGI_KEEP_CONN`).
    public var keepConnection: Bool {
        self.flags & FastCGIConstants.keepConnectionFlag != 0
    }
}
