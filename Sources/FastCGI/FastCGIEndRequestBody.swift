import NIOCore

/// The 8-byte content of `FCGI_END_REQUEST`: application status, protocol status and three reserved bytes.
public struct FastCGIEndRequestBody: Sendable, Equatable {
    /// The application's exit status (what a CGI program would have passed to `exit`).
    public var appStatus: UInt32
    /// The raw protocol status, kept raw so a value outside `FastCGIProtocolStatus` still decodes.
    public var protocolStatus: UInt8

    /// Creates a body from its fields.
    public init(appStatus: UInt32, protocolStatus: UInt8) {
        self.appStatus = appStatus
        self.protocolStatus = protocolStatus
    }

    /// Parses the content of an END_REQUEST record.
    /// - Throws: `FastCGIProtocolError.malformedBody` if the content is not exactly 8 bytes.
    public init(parsing content: ByteBuffer) throws(FastCGIProtocolError) {
        guard content.readableBytes == 8,
            let (appStatus, protocolStatus) = content.peekMultipleIntegers(
                endianness: .big,
                as: (UInt32, UInt8).self
            )
        else {
            throw .malformedBody(type: FastCGIRecordType.endRequest.rawValue)
        }
        self.init(appStatus: appStatus, protocolStatus: protocolStatus)
    }
}
