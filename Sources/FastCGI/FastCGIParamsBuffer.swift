import NIOCore

/// The PARAMS of one request, encoded pair by pair into raw memory that the buffer keeps from
/// request to request, then framed behind BEGIN_REQUEST for whatever request id the connection
/// gives.
///
/// Why not an array of pairs or a `ByteBuffer`: the array costs an allocation and a retain and
/// release per string per request, and checked `ByteBuffer` writes cost more than the bytes
/// themselves (~25 pairs per PHP request). Here a pair is two length prefixes and two copies.
/// Pairs never span records (PHP-FPM parses each PARAMS record alone): the buffer notes where a
/// new record must begin, and a pair larger than one record is refused (``oversizedPair``).
///
/// Not thread-safe; meant to be owned by one event loop and reused by its requests.
public final class FastCGIParamsBuffer {
    @usableFromInline var encoder: FastCGIParamsEncoder

    public init(capacity: Int = 4096) {
        encoder = FastCGIParamsEncoder(capacity: capacity)
    }

    deinit {
        encoder.storage.deallocate()
    }

    /// Forgets the previous pairs and lets `body` append the new ones. The encoder is a value
    /// on the caller's stack while `body` runs: its appends are inlined and touch no class
    /// property (each of which would cost a dynamic exclusivity check per access).
    ///
    /// The encoder works on this buffer's memory and may replace it when it grows: keep no copy
    /// of it past `body`, and do not use the buffer itself inside `body`.
    @inlinable
    public func encode(_ body: (inout FastCGIParamsEncoder) -> Void) {
        var local = encoder
        local.reset()
        body(&local)
        encoder = local
    }

    /// Encoded bytes of the last ``encode(_:)``.
    public var count: Int { encoder.count }

    /// The first pair the last ``encode(_:)`` refused for not fitting one record: its name and
    /// encoded length.
    public var oversizedPair: (name: String, encodedLength: Int)? { encoder.oversizedPair }

    private func requestStartLength(endingStdin: Bool) -> Int {
        let header = FastCGIConstants.headerLength
        var total = header + 8 + header + (endingStdin ? header : 0)
        forEachRecord { start, end in
            let content = end - start
            total += header + content + ByteBuffer.fastCGIPaddingLength(forContentLength: content)
        }
        return total
    }

    /// Calls `body` with the content range of each PARAMS record (none when there are no pairs).
    @inline(__always)
    private func forEachRecord(_ body: (Int, Int) -> Void) {
        guard encoder.count > 0 else { return }
        var start = 0
        for next in encoder.recordStarts {
            body(start, next)
            start = next
        }
        body(start, encoder.count)
    }

    /// Appends the request start for `requestID` to `buffer`: BEGIN_REQUEST, the PARAMS records
    /// with the pairs, the empty PARAMS record and, with `endingStdin`, the empty STDIN record of
    /// a request without body. One reservation and one raw pass; the same bytes as
    /// ``FastCGIParamsWriter`` writes for the same pairs.
    public func writeRequestStart(
        requestID: UInt16,
        role: FastCGIRole = .responder,
        flags: UInt8,
        endingStdin: Bool,
        into buffer: inout ByteBuffer
    ) {
        let total = requestStartLength(endingStdin: endingStdin)
        let source = UnsafeRawBufferPointer(start: encoder.storage, count: encoder.count)
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
            forEachRecord { start, end in
                let content = end - start
                let padding = ByteBuffer.fastCGIPaddingLength(forContentLength: content)
                recordHeader(.params, content: content, padding: padding)
                UnsafeMutableRawBufferPointer(rebasing: out[position..<(position + content)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<end]))
                position += content
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

@available(*, unavailable)
extension FastCGIParamsBuffer: Sendable {}

/// Appends pairs to a ``FastCGIParamsBuffer``'s memory, inside ``FastCGIParamsBuffer/encode(_:)``
/// only (it points into the buffer's memory, which it frees and replaces when it grows).
public struct FastCGIParamsEncoder {
    @usableFromInline var storage: UnsafeMutableRawPointer
    @usableFromInline var capacity: Int
    /// Encoded bytes so far.
    public var count: Int { used }
    @usableFromInline var used = 0
    /// Where the records after the first begin; empty unless the pairs exceed one record.
    @usableFromInline var recordStarts: [Int] = []
    @usableFromInline var currentRecordStart = 0
    /// The first pair refused for not fitting one record: its name and encoded length.
    public internal(set) var oversizedPair: (name: String, encodedLength: Int)?

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        self.storage = .allocate(byteCount: self.capacity, alignment: 8)
    }

    @usableFromInline
    mutating func reset() {
        used = 0
        currentRecordStart = 0
        oversizedPair = nil
        if !recordStarts.isEmpty { recordStarts.removeAll(keepingCapacity: true) }
    }

    /// Appends one pair of UTF-8 text; a pair that does not fit one record is not written and
    /// is reported in ``oversizedPair`` instead (the first one only).
    @inlinable
    public mutating func append(name: String, value: String) {
        let nameLength = name.utf8.count
        let valueLength = value.utf8.count
        guard let position = reserve(forPairOf: nameLength, valueLength, name: name) else { return }
        let out = UnsafeMutableRawBufferPointer(start: storage, count: capacity)
        used = FastCGINameValuePairs.storeBytes(
            of: value, into: out, at: FastCGINameValuePairs.storeBytes(of: name, into: out, at: position))
    }

    /// Appends one pair whose value is the raw `bytes` (not necessarily UTF-8), as
    /// ``append(name:value:)``.
    public mutating func append(name: String, bytes: UnsafeRawBufferPointer) {
        guard let position = reserve(forPairOf: name.utf8.count, bytes.count, name: name) else { return }
        let out = UnsafeMutableRawBufferPointer(start: storage, count: capacity)
        let start = FastCGINameValuePairs.storeBytes(of: name, into: out, at: position)
        if bytes.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: out[start..<start + bytes.count]).copyMemory(from: bytes)
        }
        used = start + bytes.count
    }

    /// Appends one pair whose value is `prefix` followed by `suffix`, as ``append(name:value:)``.
    @inlinable
    public mutating func append(name: String, value prefix: String, _ suffix: Substring) {
        let nameLength = name.utf8.count
        let valueLength = prefix.utf8.count + suffix.utf8.count
        guard let position = reserve(forPairOf: nameLength, valueLength, name: name) else { return }
        let out = UnsafeMutableRawBufferPointer(start: storage, count: capacity)
        var end = FastCGINameValuePairs.storeBytes(of: name, into: out, at: position)
        end = FastCGINameValuePairs.storeBytes(of: prefix, into: out, at: end)
        used = FastCGINameValuePairs.storeBytes(of: suffix, into: out, at: end)
    }

    /// Makes room for a pair and writes its two length prefixes; returns where its bytes go, or
    /// nil for a pair over one record (refused).
    @inlinable @inline(__always)
    mutating func reserve(forPairOf nameLength: Int, _ valueLength: Int, name: String) -> Int? {
        let length = FastCGINameValuePairs.encodedLength(nameLength: nameLength, valueLength: valueLength)
        guard length <= FastCGIConstants.maxContentLength else {
            refuse(name: name, length: length)
            return nil
        }
        if used - currentRecordStart + length > FastCGIConstants.maxContentLength {
            startRecord()
        }
        if used + length > capacity { grow(to: used + length) }
        let out = UnsafeMutableRawBufferPointer(start: storage, count: capacity)
        let position = FastCGINameValuePairs.storeLength(nameLength, into: out, at: used)
        return FastCGINameValuePairs.storeLength(valueLength, into: out, at: position)
    }

    @usableFromInline
    mutating func refuse(name: String, length: Int) {
        if oversizedPair == nil { oversizedPair = (name, length) }
    }

    @usableFromInline
    mutating func startRecord() {
        recordStarts.append(used)
        currentRecordStart = used
    }

    @usableFromInline
    mutating func grow(to needed: Int) {
        var grown = capacity * 2
        while grown < needed { grown *= 2 }
        let larger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        larger.copyMemory(from: storage, byteCount: used)
        storage.deallocate()
        storage = larger
        capacity = grown
    }
}
