// libFuzzer target: HTTP1RequestParser on arbitrary bytes.
//
// Input layout: byte 0 picks where the rest is split into two reads, byte 1 picks the limits;
// the rest is the byte stream of one connection. The stream is parsed twice, in one read and
// in two, until the parser needs more input or throws. Findings are crashes, sanitizer reports
// and these invariants (a rejection, any HTTPError, is a valid outcome):
//   - one read and two reads give the same requests, bodies and ends, and both or neither fail;
//   - a message with a Content-Length ends after exactly that many body bytes, one without
//     framing has no body;
//   - a body part is never empty, and the parser never loops without consuming input.
import NIOCore
import NIOHTTP1
import ProxyCore

struct Transcript: Equatable {
    var heads: [String] = []
    var bodies: [[UInt8]] = []
    var ends = 0
    var failed: HTTPError?

    static func == (lhs: Transcript, rhs: Transcript) -> Bool {
        lhs.heads == rhs.heads && lhs.bodies == rhs.bodies && lhs.ends == rhs.ends
            && (lhs.failed == nil) == (rhs.failed == nil)
    }
}

func describe(_ head: HTTPRequestHead) -> String {
    var text = "\(head.method.rawValue) \(head.uri) \(head.version)"
    for (name, value) in head.headers { text += "\n\(name): \(value)" }
    return text
}

/// What the body of a message must add up to, from its head: nil for chunked.
func expectedBodyLength(_ head: HTTPRequestHead) -> Int? {
    if head.headers.contains(name: "transfer-encoding") { return nil }
    guard let value = head.headers.first(name: "content-length") else { return 0 }
    guard let length = Int(value) else { fatalError("accepted Content-Length \(value) is not a number") }
    return length
}

struct Driver {
    var parser: HTTP1RequestParser
    var transcript = Transcript()
    var expected: Int?
    var bodyLength = 0

    /// Parses what `buffer` holds until the parser needs more or fails.
    mutating func drain(_ buffer: inout ByteBuffer) {
        guard transcript.failed == nil else { return }
        var steps = 0
        let bound = 4 * buffer.readableBytes + 8
        while true {
            steps += 1
            if steps > bound { fatalError("no progress: \(steps) events from \(buffer.readableBytes) bytes") }
            let before = buffer.readableBytes
            let event: HTTP1RequestParser.Event?
            do {
                event = try parser.next(&buffer)
            } catch {
                transcript.failed = error
                // The error sticks.
                do {
                    _ = try parser.next(&buffer)
                    fatalError("parser recovered after \(error)")
                } catch let again {
                    require(again == error, "a different error after \(error): \(again)")
                }
                return
            }
            require(buffer.readableBytes <= before, "the parser gave bytes back")
            switch event {
            case nil:
                return
            case .head(let head):
                transcript.heads.append(describe(head))
                transcript.bodies.append([])
                expected = expectedBodyLength(head)
                bodyLength = 0
            case .body(let part):
                require(part.readableBytes > 0, "empty body part")
                require(!transcript.heads.isEmpty, "body before a head")
                transcript.bodies[transcript.bodies.count - 1] += part.readableBytesView
                bodyLength += part.readableBytes
                if let expected { require(bodyLength <= expected, "body longer than its Content-Length") }
            case .end:
                transcript.ends += 1
                require(transcript.ends == transcript.heads.count, "end without a head")
                if let expected { require(bodyLength == expected, "body \(bodyLength) != \(expected)") }
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = UnsafeBufferPointer(start: data + 2, count: size - 2)
    let split = Int(data[0]) * input.count / 255
    let limits =
        data[1] & 1 == 0
        ? HTTP1RequestParser.Limits()
        : HTTP1RequestParser.Limits(maxHeadSize: 64 + Int(data[1]), maxFieldCount: Int(data[1] >> 4))

    var whole = Driver(parser: HTTP1RequestParser(limits: limits))
    var buffer = ByteBuffer(bytes: input)
    whole.drain(&buffer)

    var twoReads = Driver(parser: HTTP1RequestParser(limits: limits))
    var stream = ByteBuffer(bytes: input[..<split])
    twoReads.drain(&stream)
    // The second read lands behind what the first left unread, as in the frontend.
    stream.writeBytes(input[split...])
    twoReads.drain(&stream)

    if whole.transcript != twoReads.transcript {
        fatalError("one read: \(whole.transcript)\ntwo reads at \(split): \(twoReads.transcript)")
    }
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
