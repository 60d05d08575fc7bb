// libFuzzer target: FastCGIRecordDecoder, the record bodies and PARAMS name-value pairs.
//
// Input layout: byte 0 picks where the rest is split into two reads; the rest is a FastCGI byte
// stream. It is decoded in one read and in two; each record's content is parsed as the body its
// type names and as name-value pairs; the whole input is parsed as PARAMS content too.
// Invariants (a thrown FastCGIProtocolError is a valid outcome):
//   - one read and two reads give the same records, and both or neither fail;
//   - every record consumed at least 8 + its content's bytes, the content is at most 65535;
//   - the decoder consumes nothing when it returns nil;
//   - pairs re-encoded and parsed again are the same pairs; parse and the incremental
//     readFastCGINameValuePair agree.
import FastCGI
import NIOCore

struct Decoded: Equatable {
    var records: [FastCGIRecord] = []
    var failed = false
}

func decodeAll(_ buffer: inout ByteBuffer, into decoded: inout Decoded) {
    var decoder = FastCGIRecordDecoder()
    guard !decoded.failed else { return }
    while true {
        let before = buffer.readableBytes
        let record: FastCGIRecord?
        do {
            record = try decoder.decode(buffer: &buffer)
        } catch {
            decoded.failed = true
            return
        }
        guard let record else {
            require(buffer.readableBytes == before, "decode consumed bytes and returned nil")
            return
        }
        let consumed = before - buffer.readableBytes
        require(record.content.readableBytes <= 65535, "content over 65535 bytes")
        require(consumed >= 8 + record.content.readableBytes, "record consumed \(consumed) bytes")
        require(consumed <= 8 + record.content.readableBytes + 255, "record consumed \(consumed) bytes")
        decoded.records.append(record)
    }
}

func checkPairs(_ content: ByteBuffer) {
    let pairs: [(name: ByteBuffer, value: ByteBuffer)]
    do {
        pairs = try FastCGINameValuePairs.parse(content)
    } catch {
        // The incremental reader must stop short of the end too.
        var rest = content
        while rest.readFastCGINameValuePair() != nil {}
        require(rest.readableBytes > 0, "parse failed where the reader read everything")
        return
    }
    var incremental: [(name: ByteBuffer, value: ByteBuffer)] = []
    var rest = content
    while let pair = rest.readFastCGINameValuePair() { incremental.append(pair) }
    require(rest.readableBytes == 0, "reader stopped where parse read everything")
    require(incremental.elementsEqual(pairs, by: { $0.name == $1.name && $0.value == $1.value }), "parse and reader disagree")

    var encoded = ByteBuffer()
    for pair in pairs { FastCGINameValuePairs.write(name: pair.name, value: pair.value, to: &encoded) }
    let expectedLength = pairs.reduce(0) {
        $0 + FastCGINameValuePairs.encodedLength(nameLength: $1.name.readableBytes, valueLength: $1.value.readableBytes)
    }
    require(encoded.readableBytes == expectedLength, "encodedLength disagrees with write")
    require(encoded.readableBytes <= content.readableBytes, "canonical encoding is longer")
    guard let again = try? FastCGINameValuePairs.parse(encoded) else { fatalError("re-encoded pairs do not parse") }
    require(again.elementsEqual(pairs, by: { $0.name == $1.name && $0.value == $1.value }), "round trip")
}

func checkBody(_ record: FastCGIRecord) {
    switch record.recordType {
    case .beginRequest?: _ = try? FastCGIBeginRequestBody(parsing: record.content)
    case .endRequest?: _ = try? FastCGIEndRequestBody(parsing: record.content)
    case .unknownType?: _ = try? FastCGIUnknownTypeBody(parsing: record.content)
    default: break
    }
    checkPairs(record.content)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let split = Int(data[0]) * input.count / 255

    var whole = Decoded()
    var buffer = ByteBuffer(bytes: input)
    decodeAll(&buffer, into: &whole)

    var twoReads = Decoded()
    var stream = ByteBuffer(bytes: input[..<split])
    decodeAll(&stream, into: &twoReads)
    stream.writeBytes(input[split...])
    decodeAll(&stream, into: &twoReads)
    require(whole == twoReads, "one read: \(whole)\ntwo reads at \(split): \(twoReads)")

    for record in whole.records { checkBody(record) }
    checkPairs(ByteBuffer(bytes: input))
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
