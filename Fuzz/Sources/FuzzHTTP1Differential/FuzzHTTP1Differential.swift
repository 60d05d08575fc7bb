// libFuzzer target: HTTP1RequestParser against NIOHTTP1's HTTPRequestDecoder (llhttp) on the
// same bytes, the first request of a connection.
//
// Our parser is stricter than llhttp on purpose (docs/architecture.md, "HTTP/1 parsing"), so
// "we reject, llhttp accepts" is never a finding. Findings are the disagreements that would let
// the two frame one byte stream differently:
//   - both accept the head but see a different method, target, version or fields;
//   - both complete the first message but with different bodies;
//   - one completes the first message while the other, without an error, still waits for it;
//   - we accept a complete head that llhttp rejects, except for the known differences below.
//
// Known, intended differences (not findings; docs/fuzzing.md):
//   - methods: we take any token of A-Z, `-`, `_` (as nginx does); llhttp only its method list;
//   - Upgrade and CONNECT: llhttp stops parsing at such a head, we frame it as any request
//     (the proxy answers CONNECT and Upgrade itself, the bytes after the head are never HTTP);
//   - request-targets other than ASCII origin-form: we take any visible byte (obs-text too) and
//     leave the target to the router; llhttp rejects many of them;
//   - whitespace after a field value: we trim it (RFC 9110 section 5.5), llhttp keeps it in
//     the value (compared trimmed here) and rejects it after a Content-Length value;
//   - bytes of a field value that are not UTF-8: we keep them (FieldBytes), NIO's decoder turns
//     each into U+FFFD; ours are compared after the same lossy decoding.
import HTTPFieldBytes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import ProxyCore

struct FirstMessage {
    var head: HTTPRequestHead?
    /// Bytes up to the end of the head (ours only).
    var headLength = 0
    var body: [UInt8] = []
    var ended = false
    var failed = false
}

func ours(_ input: UnsafeBufferPointer<UInt8>) -> FirstMessage {
    var parser = HTTP1RequestParser()
    var buffer = ByteBuffer(bytes: input)
    var message = FirstMessage()
    do {
        while let event = try parser.next(&buffer) {
            switch event {
            case .head(let head):
                message.head = head
                message.headLength = input.count - buffer.readableBytes
            case .body(let part): message.body += part.readableBytesView
            case .end:
                message.ended = true
                return message
            }
        }
    } catch {
        message.failed = true
    }
    return message
}

func llhttp(_ input: UnsafeBufferPointer<UInt8>) -> FirstMessage {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    var message = FirstMessage()
    do {
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try channel.writeInbound(ByteBuffer(bytes: input))
    } catch {
        message.failed = true
    }
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        guard !message.ended else { break }
        switch part {
        case .head(let head): message.head = head
        case .body(let bytes): message.body += bytes.readableBytesView
        case .end: message.ended = true
        }
    }
    return message
}

let llhttpMethods: Set<String> = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "COPY", "LOCK", "MKCOL", "MOVE",
    "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
    "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "MKCALENDAR", "LINK", "UNLINK",
    "SOURCE", "QUERY",
]

/// Field lines with trailing whitespace trimmed: llhttp keeps it in the value, we drop it as
/// RFC 9110 section 5.5 says (OWS is not part of the value).
func fields(_ head: HTTPRequestHead, ours: Bool = false) -> [String] {
    head.headers.map { name, value in
        var value = Substring(ours ? String(decoding: FieldBytes.bytes(value), as: UTF8.self) : value)
        while let last = value.last, last == " " || last == "\t" { value.removeLast() }
        return "\(name): \(value)"
    }
}

/// Heads whose framing llhttp hands over to an upgrade, or whose method it does not know.
func isKnownDifference(_ head: HTTPRequestHead) -> Bool {
    !llhttpMethods.contains(head.method.rawValue) || head.method == .CONNECT
        || head.headers.contains(name: "upgrade")
}

/// An origin-form target of ASCII: other targets are ours to route or refuse (with a 400 or
/// 404), llhttp rejects many of them while parsing.
func isOriginForm(_ uri: String) -> Bool {
    uri.utf8.first == UInt8(ascii: "/") && uri.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
}

/// Whether a Content-Length line of the raw head has whitespace after its value: OWS that
/// RFC 9110 section 5.5 has us trim, and llhttp rejects.
func hasContentLengthTrailingWhitespace(_ head: UnsafeBufferPointer<UInt8>) -> Bool {
    let name = Array("content-length:".utf8)
    var start = 0
    while start < head.count {
        var end = start
        while end < head.count, head[end] != UInt8(ascii: "\r") { end += 1 }
        if end - start > name.count,
            zip(head[start..<start + name.count], name).allSatisfy({ $0 | 0x20 == $1 | 0x20 }),
            head[end - 1] == UInt8(ascii: " ") || head[end - 1] == UInt8(ascii: "\t")
        {
            return true
        }
        start = end + 2
    }
    return false
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let mine = ours(input)
    guard let head = mine.head, !isKnownDifference(head) else { return 0 }
    // The head alone first: what llhttp makes of bytes after it is another question.
    let headBytes = UnsafeBufferPointer(rebasing: input[..<mine.headLength])
    let theirHead = llhttp(headBytes)
    if theirHead.failed && theirHead.head == nil {
        if !isOriginForm(head.uri) || hasContentLengthTrailingWhitespace(headBytes) { return 0 }
        fatalError("we accept a head that llhttp rejects: \(head)")
    }
    let theirs = llhttp(input)
    guard let other = theirs.head else { fatalError("llhttp took the head alone but not with what follows") }
    require(head.method == other.method, "method \(head.method) vs \(other.method)")
    require(head.uri == other.uri, "target \(head.uri) vs \(other.uri)")
    require(head.version == other.version, "version \(head.version) vs \(other.version)")
    require(fields(head, ours: true) == fields(other), "fields \(fields(head, ours: true)) vs \(fields(other))")
    if mine.ended && theirs.ended {
        require(mine.body == theirs.body, "bodies of \(mine.body.count) and \(theirs.body.count) bytes")
    } else if mine.ended && !theirs.failed {
        fatalError("we end the message after \(mine.body.count) bytes, llhttp waits for more")
    } else if theirs.ended && !mine.failed {
        fatalError("llhttp ends the message after \(theirs.body.count) bytes, we wait for more")
    }
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
