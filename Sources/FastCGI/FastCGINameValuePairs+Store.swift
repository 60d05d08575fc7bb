import NIOCore

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
    /// both have contiguous UTF-8; the loop is for anything else). Not generic over
    /// `StringProtocol`: unspecialized, that doubled the cost of encoding a pair.
    @inlinable @inline(__always)
    static func storeBytes(of text: String, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        if let stored = text.utf8.withContiguousStorageIfAvailable({ copy($0, into: out, at: position) }) {
            return stored
        }
        var position = position
        for byte in text.utf8 {
            out[position] = byte
            position += 1
        }
        return position
    }

    /// ``storeBytes(of:into:at:)`` for a substring.
    @inlinable @inline(__always)
    static func storeBytes(of text: Substring, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        text.utf8.withContiguousStorageIfAvailable { copy($0, into: out, at: position) }
            ?? storeBytes(of: String(text), into: out, at: position)
    }

    @inlinable @inline(__always)
    static func copy(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        if let base = bytes.baseAddress, bytes.count > 0 {
            (out.baseAddress! + position).copyMemory(from: base, byteCount: bytes.count)
        }
        return position + bytes.count
    }
}
