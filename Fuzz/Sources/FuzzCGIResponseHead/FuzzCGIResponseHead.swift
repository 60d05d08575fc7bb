// libFuzzer target: CGIResponseHeadParser, the backend's response header block.
//
// Input layout: byte 0 picks where the rest is split into two feeds, byte 1 the header size
// limit; the rest is what a backend sent on FCGI_STDOUT. It is fed in one piece, in two, and
// (for short inputs) one byte at a time. Invariants (an HTTPError is a valid outcome):
//   - all three give the same head and the same body bytes after it, and fail alike;
//   - a feed that needs more data consumed everything it was given;
//   - a Location-only local redirect has a path starting with one slash.
import NIOCore
import ProxyCore

struct Outcome: Equatable {
    var head: CGIResponseHead?
    var body: [UInt8] = []
    var failed = false
}

/// Feeds `pieces` in turn; bytes of later pieces after the head count as body.
func parse(_ pieces: [ArraySlice<UInt8>], maxHeaderSize: Int) -> Outcome {
    var parser = CGIResponseHeadParser(maxHeaderSize: maxHeaderSize)
    var outcome = Outcome()
    for piece in pieces {
        if outcome.head != nil {
            outcome.body += piece
            continue
        }
        var buffer = ByteBuffer(bytes: piece)
        do {
            switch try parser.feed(&buffer) {
            case .needMoreData:
                require(buffer.readableBytes == 0, "needMoreData with \(buffer.readableBytes) bytes unread")
            case .head(let head, let body):
                outcome.head = head
                outcome.body += body.readableBytesView
                check(head)
            }
        } catch {
            outcome.failed = true
            return outcome
        }
    }
    return outcome
}

func check(_ head: CGIResponseHead) {
    require((200...599).contains(head.status), "status \(head.status)")
    switch head.kind {
    case .localRedirect(let path):
        require(path.hasPrefix("/") && !path.hasPrefix("//"), "local redirect to \(path)")
        require(head.status == 302 && head.headers.count == 1, "local redirect with other fields")
    case .clientRedirect:
        require(head.status == 302, "client redirect with status \(head.status)")
    case .document:
        break
    }
    for field in head.headers {
        require(!field.name.isEmpty, "empty field name")
        require(!field.value.utf8.contains { $0 == 0x0D || $0 == 0x0A }, "CR or LF in a field value")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    let split = Int(data[0]) * input.count / 255
    let maxHeaderSize = data[1] & 1 == 0 ? 64 * 1024 : Int(data[1])

    let whole = parse([input[...]], maxHeaderSize: maxHeaderSize)
    let two = parse([input[..<split], input[split...]], maxHeaderSize: maxHeaderSize)
    require(whole == two, "one feed: \(whole)\ntwo feeds at \(split): \(two)")
    if input.count <= 512 {
        let bytewise = parse(input.indices.map { input[$0...$0] }, maxHeaderSize: maxHeaderSize)
        require(whole == bytewise, "one feed: \(whole)\nbyte by byte: \(bytewise)")
    }
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
