import NIOCore

/// Builds the PARAMS stream of one request: pairs packed into records of at most 65535 content bytes
/// (content+padding <= 65535, PHP-FPM closes otherwise), never splitting one pair across two records
/// (PHP-FPM parses each PARAMS record alone). A pair larger than one record throws `nameValuePairTooLarge`.
///
/// Pairs go straight into the output buffer; each record's header is written with placeholder lengths and
/// back-filled when the record is closed, so no pair is encoded twice or held in an intermediate array.
public struct FastCGIParamsWriter: Sendable {
    private let requestID: UInt16
    private var buffer: ByteBuffer
    /// Where the header of the record being filled starts, or `nil` before the first pair and after `finish()`.
    private var openRecordHeaderIndex: Int?

    /// Starts a PARAMS stream for `requestID`, appending its records after whatever `buffer` already holds
    /// (typically the request's BEGIN_REQUEST record).
    public init(requestID: UInt16, buffer: ByteBuffer) {
        self.requestID = requestID
        self.buffer = buffer
        self.openRecordHeaderIndex = nil
    }

    /// Starts a request: BEGIN_REQUEST for `requestID`, then the PARAMS stream, in one buffer of
    /// its own. (Handing a buffer to ``init(requestID:buffer:)`` while the caller still holds it
    /// makes the first write copy it.)
    public init(requestID: UInt16, role: FastCGIRole = .responder, flags: UInt8, allocator: ByteBufferAllocator, capacity: Int = 1024) {
        self.requestID = requestID
        self.buffer = allocator.buffer(capacity: capacity)
        self.openRecordHeaderIndex = nil
        self.buffer.writeFastCGIBeginRequest(requestID: requestID, role: role, flags: flags)
    }

    /// Appends a pair with a text name and value.
    /// - Throws: `FastCGIProtocolError.nameValuePairTooLarge` if the encoded pair exceeds one record; nothing is
    ///   written then, so the caller may skip the pair and go on.
    public mutating func append(name: String, value: String) throws(FastCGIProtocolError) {
        try self.openRecord(
            forPairOfLength: FastCGINameValuePairs.encodedLength(
                nameLength: name.utf8.count,
                valueLength: value.utf8.count
            )
        )
        FastCGINameValuePairs.write(name: name, value: value, to: &self.buffer)
    }

    /// Appends a pair whose value is raw bytes (request paths and headers need not be UTF-8).
    /// - Throws: `FastCGIProtocolError.nameValuePairTooLarge` if the encoded pair exceeds one record; nothing is
    ///   written then.
    public mutating func append(name: String, value: ByteBuffer) throws(FastCGIProtocolError) {
        try self.openRecord(
            forPairOfLength: FastCGINameValuePairs.encodedLength(
                nameLength: name.utf8.count,
                valueLength: value.readableBytes
            )
        )
        FastCGINameValuePairs.write(name: name, value: value, to: &self.buffer)
    }

    /// Appends a pair whose name and value are raw bytes.
    /// - Throws: `FastCGIProtocolError.nameValuePairTooLarge` if the encoded pair exceeds one record; nothing is
    ///   written then.
    public mutating func append(name: ByteBuffer, value: ByteBuffer) throws(FastCGIProtocolError) {
        try self.openRecord(
            forPairOfLength: FastCGINameValuePairs.encodedLength(
                nameLength: name.readableBytes,
                valueLength: value.readableBytes
            )
        )
        FastCGINameValuePairs.write(name: name, value: value, to: &self.buffer)
    }

    /// Flushes the pending record and writes the empty PARAMS record; returns the buffer with all records.
    ///
    /// The writer lets go of the buffer, so the caller holds the only reference and can keep writing to it
    /// (STDIN, say) without a copy. Don't append to the writer afterwards.
    ///
    /// `endingStdin`: also write the empty STDIN record, for a request without a body, so the
    /// whole request is one buffer and one write.
    public mutating func finish(endingStdin: Bool = false) -> ByteBuffer {
        if let headerIndex = self.openRecordHeaderIndex {
            self.buffer.finishFastCGIRecord(headerAt: headerIndex)
            self.openRecordHeaderIndex = nil
        }
        self.buffer.writeFastCGIStreamEnd(type: .params, requestID: self.requestID)
        if endingStdin {
            self.buffer.writeFastCGIStreamEnd(type: .stdin, requestID: self.requestID)
        }
        let result = self.buffer
        self.buffer = ByteBuffer()
        return result
    }

    /// Makes sure a record with room for `pairLength` more content bytes is open, closing the current one
    /// if the pair would not fit in it.
    private mutating func openRecord(forPairOfLength pairLength: Int) throws(FastCGIProtocolError) {
        guard pairLength <= FastCGIConstants.maxContentLength else {
            throw .nameValuePairTooLarge(pairLength)
        }
        if let headerIndex = self.openRecordHeaderIndex {
            let used = self.buffer.writerIndex - headerIndex - FastCGIConstants.headerLength
            if used + pairLength <= FastCGIConstants.maxContentLength {
                return
            }
            self.buffer.finishFastCGIRecord(headerAt: headerIndex)
        }
        self.openRecordHeaderIndex = self.buffer.startFastCGIRecord(type: .params, requestID: self.requestID)
    }
}
