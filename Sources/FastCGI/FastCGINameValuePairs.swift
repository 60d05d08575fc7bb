import NIOCore

/// Name-value pairs (1-byte length if < 128, else 4-byte with high bit set).
///
/// This is the body format of PARAMS, GET_VALUES and GET_VALUES_RESULT. Names and values are bytes, not text:
/// CGI variables need not be UTF-8, so parsing hands back `ByteBuffer` slices.
public enum FastCGINameValuePairs {
    /// Lengths up to this value take one byte on the wire; longer ones take four.
    @usableFromInline static let maxShortLength = 127
    /// Four-byte lengths carry 31 bits; the top bit only marks the long form.
    @usableFromInline static let maxLongLength = 0x7fff_ffff

    /// The bytes one pair takes on the wire, length prefixes included.
    @inlinable
    public static func encodedLength(nameLength: Int, valueLength: Int) -> Int {
        self.prefixLength(nameLength) + self.prefixLength(valueLength) + nameLength + valueLength
    }

    /// Appends one pair whose name and value are the UTF-8 bytes of the strings.
    ///
    /// One reservation and one raw copy per string: this runs ~25 times per proxied request, and
    /// ByteBuffer's checked per-integer and per-string writes cost more than the bytes themselves.
    public static func write(name: String, value: String, to buffer: inout ByteBuffer) {
        let total = self.encodedLength(nameLength: name.utf8.count, valueLength: value.utf8.count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            self.storePair(name: name, value: value, into: out, at: 0)
        }
    }

    /// Stores a length prefix at `position`; returns the position after it.
    @inlinable @inline(__always)
    static func storeLength(_ length: Int, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        if length <= self.maxShortLength {
            out[position] = UInt8(length)
            return position + 1
        }
        precondition(length <= self.maxLongLength, "FastCGI name or value longer than 2^31-1 bytes")
        out.storeBytes(of: (UInt32(length) | 0x8000_0000).bigEndian, toByteOffset: position, as: UInt32.self)
        return position + 4
    }

    /// Appends one pair with a text name and a byte value (for values that need not be UTF-8).
    public static func write(name: String, value: ByteBuffer, to buffer: inout ByteBuffer) {
        let nameLength = name.utf8.count
        let valueLength = value.readableBytes
        buffer.reserveCapacity(
            minimumWritableBytes: self.encodedLength(nameLength: nameLength, valueLength: valueLength)
        )
        buffer.writeFastCGINameValueLength(nameLength)
        buffer.writeFastCGINameValueLength(valueLength)
        buffer.writeString(name)
        buffer.writeImmutableBuffer(value)
    }

    /// Appends one pair whose name and value are the readable bytes of the buffers.
    public static func write(name: ByteBuffer, value: ByteBuffer, to buffer: inout ByteBuffer) {
        let nameLength = name.readableBytes
        let valueLength = value.readableBytes
        buffer.reserveCapacity(
            minimumWritableBytes: self.encodedLength(nameLength: nameLength, valueLength: valueLength)
        )
        buffer.writeFastCGINameValueLength(nameLength)
        buffer.writeFastCGINameValueLength(valueLength)
        buffer.writeImmutableBuffer(name)
        buffer.writeImmutableBuffer(value)
    }

    /// Parses all pairs in `buffer` (whole stream content); names/values are slices.
    /// - Throws: `FastCGIProtocolError.malformedNameValuePair` if the content ends inside a pair.
    public static func parse(_ buffer: ByteBuffer) throws(FastCGIProtocolError) -> [(name: ByteBuffer, value: ByteBuffer)]
    {
        var buffer = buffer
        var pairs: [(name: ByteBuffer, value: ByteBuffer)] = []
        while buffer.readableBytes > 0 {
            guard let pair = buffer.readFastCGINameValuePair() else {
                throw .malformedNameValuePair
            }
            pairs.append(pair)
        }
        return pairs
    }

    @inlinable
    static func prefixLength(_ length: Int) -> Int {
        length <= self.maxShortLength ? 1 : 4
    }
}

extension ByteBuffer {
    /// Reads one name-value pair if it is complete; otherwise consumes nothing and returns `nil`.
    ///
    /// Returning `nil` rather than throwing lets a caller parse PARAMS content as it arrives, since a pair may
    /// straddle two records; the caller decides the content was truncated once the stream has ended.
    public mutating func readFastCGINameValuePair() -> (name: ByteBuffer, value: ByteBuffer)? {
        let start = self.readerIndex
        guard let nameLength = self.readFastCGINameValueLength(),
            let valueLength = self.readFastCGINameValueLength(),
            let name = self.readSlice(length: nameLength),
            let value = self.readSlice(length: valueLength)
        else {
            self.moveReaderIndex(to: start)
            return nil
        }
        return (name, value)
    }

    private mutating func readFastCGINameValueLength() -> Int? {
        guard let first = self.getInteger(at: self.readerIndex, as: UInt8.self) else {
            return nil
        }
        if first & 0x80 == 0 {
            self.moveReaderIndex(forwardBy: 1)
            return Int(first)
        }
        guard let long = self.readInteger(endianness: .big, as: UInt32.self) else {
            return nil
        }
        return Int(long & 0x7fff_ffff)
    }

    mutating func writeFastCGINameValueLength(_ length: Int) {
        if length <= FastCGINameValuePairs.maxShortLength {
            self.writeInteger(UInt8(length))
        } else {
            precondition(length <= FastCGINameValuePairs.maxLongLength, "FastCGI name or value longer than 2^31-1 bytes")
            self.writeInteger(UInt32(length) | 0x8000_0000, endianness: .big)
        }
    }
}
