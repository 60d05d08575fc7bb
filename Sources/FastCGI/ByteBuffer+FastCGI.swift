import NIOCore

extension ByteBuffer {
    /// Writes an 8-byte record header. The caller writes `contentLength` content bytes and `paddingLength`
    /// padding bytes after it.
    public mutating func writeFastCGIRecordHeader(
        type: FastCGIRecordType,
        requestID: UInt16,
        contentLength: Int,
        paddingLength: Int
    ) {
        self.writeFastCGIRecordHeader(
            rawType: type.rawValue,
            requestID: requestID,
            contentLength: contentLength,
            paddingLength: paddingLength
        )
    }

    /// Writes one whole record (header, content, padding to a multiple of 8).
    /// The content must fit one record (`FastCGIConstants.maxContentLength` bytes).
    public mutating func writeFastCGIRecord(_ record: FastCGIRecord) {
        let contentLength = record.content.readableBytes
        let paddingLength = Self.fastCGIPaddingLength(forContentLength: contentLength)
        self.reserveCapacity(minimumWritableBytes: FastCGIConstants.headerLength + contentLength + paddingLength)
        self.writeFastCGIRecordHeader(
            rawType: record.type,
            requestID: record.requestID,
            contentLength: contentLength,
            paddingLength: paddingLength
        )
        self.writeImmutableBuffer(record.content)
        self.writeRepeatingByte(0, count: paddingLength)
    }

    /// Writes `FCGI_BEGIN_REQUEST`, which opens request `requestID` on the connection.
    public mutating func writeFastCGIBeginRequest(requestID: UInt16, role: FastCGIRole, flags: UInt8) {
        self.writeFastCGIRecordHeader(type: .beginRequest, requestID: requestID, contentLength: 8, paddingLength: 0)
        self.writeMultipleIntegers(role.rawValue, flags, UInt8(0), UInt32(0), endianness: .big)
    }

    /// Writes `FCGI_ABORT_REQUEST`, which asks the application to stop request `requestID`.
    public mutating func writeFastCGIAbortRequest(requestID: UInt16) {
        self.writeFastCGIRecordHeader(type: .abortRequest, requestID: requestID, contentLength: 0, paddingLength: 0)
    }

    /// Writes `FCGI_END_REQUEST`, with which the application completes request `requestID`.
    public mutating func writeFastCGIEndRequest(
        requestID: UInt16,
        appStatus: UInt32,
        protocolStatus: FastCGIProtocolStatus
    ) {
        self.writeFastCGIRecordHeader(type: .endRequest, requestID: requestID, contentLength: 8, paddingLength: 0)
        self.writeMultipleIntegers(appStatus, protocolStatus.rawValue, UInt8(0), UInt16(0), endianness: .big)
    }

    /// Splits `content` into STDIN/STDOUT/STDERR/DATA records with content <= 65528 (8-aligned) and padding to a
    /// multiple of 8, so content+padding <= 65535. Empty content writes nothing.
    ///
    /// Empty content writes nothing because an empty record would end the stream; use `writeFastCGIStreamEnd`
    /// for that. PARAMS must not go through here: use `FastCGIParamsWriter` or `FastCGIParamsBuffer`, which keep pairs whole.
    public mutating func writeFastCGIStream(type: FastCGIRecordType, requestID: UInt16, content: ByteBuffer) {
        var remaining = content
        let chunkLimit = FastCGIConstants.maxAlignedContentLength
        let recordCount = (remaining.readableBytes + chunkLimit - 1) / chunkLimit
        // Header plus at most 7 padding bytes per record: one allocation for the whole stream.
        self.reserveCapacity(
            minimumWritableBytes: remaining.readableBytes + recordCount * (FastCGIConstants.headerLength + 7)
        )
        while remaining.readableBytes > 0 {
            let chunk = remaining.readSlice(length: min(remaining.readableBytes, chunkLimit))!
            let paddingLength = Self.fastCGIPaddingLength(forContentLength: chunk.readableBytes)
            self.writeFastCGIRecordHeader(
                type: type,
                requestID: requestID,
                contentLength: chunk.readableBytes,
                paddingLength: paddingLength
            )
            self.writeImmutableBuffer(chunk)
            self.writeRepeatingByte(0, count: paddingLength)
        }
    }

    /// The empty record that ends a stream (PARAMS, STDIN, STDOUT, ...).
    public mutating func writeFastCGIStreamEnd(type: FastCGIRecordType, requestID: UInt16) {
        self.writeFastCGIRecordHeader(type: type, requestID: requestID, contentLength: 0, paddingLength: 0)
    }

    /// Writes `FCGI_GET_VALUES` asking for the given variables (see `FastCGIConstants.maxConns` and friends).
    /// The names must fit one record.
    public mutating func writeFastCGIGetValues(names: [String]) {
        let headerIndex = self.startFastCGIRecord(type: .getValues, requestID: FastCGIConstants.managementRequestID)
        for name in names {
            FastCGINameValuePairs.write(name: name, value: "", to: &self)
        }
        self.finishFastCGIRecord(headerAt: headerIndex)
    }

    /// Writes `FCGI_GET_VALUES_RESULT` with the given answers. The pairs must fit one record.
    public mutating func writeFastCGIGetValuesResult(_ pairs: [(name: String, value: String)]) {
        let headerIndex = self.startFastCGIRecord(
            type: .getValuesResult,
            requestID: FastCGIConstants.managementRequestID
        )
        for pair in pairs {
            FastCGINameValuePairs.write(name: pair.name, value: pair.value, to: &self)
        }
        self.finishFastCGIRecord(headerAt: headerIndex)
    }

    /// Writes `FCGI_UNKNOWN_TYPE`, the answer to a management record of a type the application does not know.
    public mutating func writeFastCGIUnknownType(_ type: UInt8) {
        self.writeFastCGIRecordHeader(
            type: .unknownType,
            requestID: FastCGIConstants.managementRequestID,
            contentLength: 8,
            paddingLength: 0
        )
        self.writeMultipleIntegers(type, UInt8(0), UInt16(0), UInt32(0), endianness: .big)
    }
}

// Building blocks shared with FastCGIParamsWriter.
extension ByteBuffer {
    /// Padding that aligns a record to 8 bytes, as the spec recommends; none when aligning would push
    /// content+padding past 65535, which PHP-FPM rejects.
    static func fastCGIPaddingLength(forContentLength contentLength: Int) -> Int {
        let padding = (8 - (contentLength & 7)) & 7
        return contentLength + padding <= FastCGIConstants.maxContentLength ? padding : 0
    }

    mutating func writeFastCGIRecordHeader(rawType: UInt8, requestID: UInt16, contentLength: Int, paddingLength: Int) {
        precondition(
            (0...FastCGIConstants.maxContentLength).contains(contentLength),
            "FastCGI record content of \(contentLength) bytes"
        )
        precondition((0...255).contains(paddingLength), "FastCGI record padding of \(paddingLength) bytes")
        self.writeMultipleIntegers(
            FastCGIConstants.version,
            rawType,
            requestID,
            UInt16(contentLength),
            UInt8(paddingLength),
            UInt8(0),
            endianness: .big
        )
    }

    /// Writes a header with placeholder lengths; returns its index for `finishFastCGIRecord(headerAt:)`.
    /// This lets content be written straight into the buffer before its length is known.
    mutating func startFastCGIRecord(type: FastCGIRecordType, requestID: UInt16) -> Int {
        let headerIndex = self.writerIndex
        self.writeFastCGIRecordHeader(type: type, requestID: requestID, contentLength: 0, paddingLength: 0)
        return headerIndex
    }

    /// Back-fills the lengths of the record started at `headerIndex` from what has been written since, and pads it.
    mutating func finishFastCGIRecord(headerAt headerIndex: Int) {
        let contentLength = self.writerIndex - headerIndex - FastCGIConstants.headerLength
        precondition(contentLength <= FastCGIConstants.maxContentLength, "FastCGI record content of \(contentLength) bytes")
        let paddingLength = Self.fastCGIPaddingLength(forContentLength: contentLength)
        // Offsets 4 and 6 of the header: contentLength (u16) and paddingLength (u8).
        self.setInteger(UInt16(contentLength), at: headerIndex + 4, endianness: .big)
        self.setInteger(UInt8(paddingLength), at: headerIndex + 6)
        self.writeRepeatingByte(0, count: paddingLength)
    }
}
