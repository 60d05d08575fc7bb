import NIOCore

extension FastCGIParamsWriter {
    /// The start of a request as one buffer: BEGIN_REQUEST, the PARAMS stream with `pairs`, its
    /// empty end record and, with `endingStdin`, the empty STDIN of a request without a body.
    ///
    /// The common case (all pairs fit one PARAMS record) is sized exactly up front and written in
    /// one raw pass: one allocation, one capacity check, two copies per pair. This runs once per
    /// proxied request and the pair-by-pair path cost a tenth of the proxy's user CPU. Larger
    /// streams go through the record-splitting writer, with the same bytes on the wire.
    ///
    /// - Throws: `FastCGIProtocolError.nameValuePairTooLarge` if one pair exceeds one record.
    public static func requestStart(
        requestID: UInt16,
        role: FastCGIRole = .responder,
        flags: UInt8,
        pairs: [(name: String, value: String)],
        endingStdin: Bool,
        allocator: ByteBufferAllocator
    ) throws(FastCGIProtocolError) -> ByteBuffer {
        // Capacity 0 costs nothing; the write below reserves what the records need, once.
        var buffer = allocator.buffer(capacity: 0)
        try writeRequestStart(
            requestID: requestID, role: role, flags: flags, pairs: pairs, endingStdin: endingStdin, into: &buffer)
        return buffer
    }

    /// ``requestStart(requestID:role:flags:pairs:endingStdin:allocator:)`` appended to `buffer`
    /// (for a caller that recycles one buffer across requests); room is reserved here.
    public static func writeRequestStart(
        requestID: UInt16,
        role: FastCGIRole = .responder,
        flags: UInt8,
        pairs: [(name: String, value: String)],
        endingStdin: Bool,
        into buffer: inout ByteBuffer
    ) throws(FastCGIProtocolError) {
        var contentLength = 0
        for pair in pairs {
            contentLength += FastCGINameValuePairs.encodedLength(
                nameLength: pair.name.utf8.count, valueLength: pair.value.utf8.count)
        }
        guard contentLength <= FastCGIConstants.maxContentLength else {
            var writer = FastCGIParamsWriter(
                requestID: requestID, role: role, flags: flags, allocator: ByteBufferAllocator(),
                capacity: contentLength + 256)
            for pair in pairs {
                try writer.append(name: pair.name, value: pair.value)
            }
            buffer.writeImmutableBuffer(writer.finish(endingStdin: endingStdin))
            return
        }
        let header = FastCGIConstants.headerLength
        let padding = contentLength == 0 ? 0 : ByteBuffer.fastCGIPaddingLength(forContentLength: contentLength)
        let paramsRecord = contentLength == 0 ? 0 : header + contentLength + padding
        let total = header + 8 + paramsRecord + header + (endingStdin ? header : 0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            var position = 0
            func recordHeader(_ type: FastCGIRecordType, content: Int, padding: Int) {
                out[position] = FastCGIConstants.version
                out[position + 1] = type.rawValue
                out[position + 2] = UInt8(truncatingIfNeeded: requestID >> 8)
                out[position + 3] = UInt8(truncatingIfNeeded: requestID)
                out[position + 4] = UInt8(truncatingIfNeeded: content >> 8)
                out[position + 5] = UInt8(truncatingIfNeeded: content)
                out[position + 6] = UInt8(truncatingIfNeeded: padding)
                out[position + 7] = 0
                position += 8
            }
            recordHeader(.beginRequest, content: 8, padding: 0)
            out[position] = UInt8(truncatingIfNeeded: role.rawValue >> 8)
            out[position + 1] = UInt8(truncatingIfNeeded: role.rawValue)
            out[position + 2] = flags
            for offset in 3..<8 { out[position + offset] = 0 }
            position += 8
            if contentLength > 0 {
                recordHeader(.params, content: contentLength, padding: padding)
                for pair in pairs {
                    position = FastCGINameValuePairs.storePair(name: pair.name, value: pair.value, into: out, at: position)
                }
                for _ in 0..<padding {
                    out[position] = 0
                    position += 1
                }
            }
            recordHeader(.params, content: 0, padding: 0)
            if endingStdin {
                recordHeader(.stdin, content: 0, padding: 0)
            }
            return position
        }
    }
}

extension FastCGINameValuePairs {
    /// Stores one pair at `position` of memory the caller sized with ``encodedLength(nameLength:valueLength:)``;
    /// returns the position after it.
    @inline(__always)
    static func storePair(name: String, value: String, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        var position = self.storeLength(name.utf8.count, into: out, at: position)
        position = self.storeLength(value.utf8.count, into: out, at: position)
        position = self.storeBytes(of: name, into: out, at: position)
        return self.storeBytes(of: value, into: out, at: position)
    }

    /// The UTF-8 bytes of `text` at `position`, copied from its storage (native and small strings
    /// both have contiguous UTF-8; the loop is for anything else).
    @inline(__always)
    private static func storeBytes(of text: String, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        let stored = text.utf8.withContiguousStorageIfAvailable { bytes -> Int in
            if let base = bytes.baseAddress, bytes.count > 0 {
                (out.baseAddress! + position).copyMemory(from: base, byteCount: bytes.count)
            }
            return bytes.count
        }
        if let stored { return position + stored }
        var position = position
        for byte in text.utf8 {
            out[position] = byte
            position += 1
        }
        return position
    }
}
