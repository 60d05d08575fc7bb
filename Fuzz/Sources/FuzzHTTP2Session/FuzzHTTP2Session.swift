// libFuzzer target: the HTTP/2 front end's session (HTTP2ServerSession over nghttp2) fed a
// client's bytes, with the owner's side played as HTTP2FrontendHandler plays it: answer each
// request, consume its body, release closed streams, write what the session flushes.
//
// Input layout: byte 0 is control: bit 0 small limits, bit 1 answer with an empty body, bit 7
// no client preface (otherwise the preface is put in front of the rest, so that mutations go
// into frames); bits 2-6 the size of each read (0: everything in one). The rest is the client's
// byte stream. Only the Swift bridge is instrumented (libnghttp2 is the system library), so
// coverage guidance is coarse; AddressSanitizer still sees every copy out of nghttp2's buffers.
// Invariants (a connection error or a reset is a valid outcome):
//   - request heads only on new, odd, client stream ids;
//   - body and end only after the stream's head, nothing after its end;
//   - no event after a connection error but what the flush adds.
import NIOCore
import ProxyHTTP2

let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

struct Owner {
    let session: HTTP2ServerSession
    let emptyBody: Bool
    var heads: Set<Int32> = []
    var ended: Set<Int32> = []
    var failed = false

    mutating func drain() {
        while let event = session.nextEvent() {
            switch event {
            case .requestHead(let streamID, let head):
                require(streamID > 0 && streamID % 2 == 1, "request head on stream \(streamID)")
                require(!heads.contains(streamID), "second request head on stream \(streamID)")
                require(!head.method.isEmpty, "empty :method")
                heads.insert(streamID)
                session.submitResponse(
                    streamID: streamID, status: 200, headers: [("content-type", "text/plain")], endStream: emptyBody)
                if !emptyBody { session.sendResponseBody(streamID: streamID, ByteBuffer(string: "hello"), endStream: true) }
            case .requestBody(let streamID, let bytes):
                require(heads.contains(streamID), "body before a head on stream \(streamID)")
                require(!ended.contains(streamID), "body after the end on stream \(streamID)")
                session.consume(streamID: streamID, count: bytes.readableBytes)
            case .requestEnd(let streamID):
                require(heads.contains(streamID), "end before a head on stream \(streamID)")
                require(!ended.contains(streamID), "second end on stream \(streamID)")
                ended.insert(streamID)
            case .streamClosed(let streamID, _, _):
                session.releaseStream(streamID)
            case .connectionError:
                failed = true
            case .responseDrained, .requestRejected, .streamReset, .goAway:
                break
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let control = data[0]
    let rest = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let input = control & 0x80 == 0 ? preface + rest : Array(rest)
    var configuration = HTTP2SessionConfiguration()
    if control & 1 != 0 {
        configuration.maxConcurrentStreams = 2
        configuration.maxHeaderListSize = 256
        configuration.initialStreamWindowSize = 16
        configuration.maxContinuations = 1
    }
    var owner = Owner(session: HTTP2ServerSession(configuration: configuration), emptyBody: control & 2 != 0)
    let pieceSize = Int((control >> 2) & 0x1F)
    var output = ByteBuffer()
    var start = 0
    while start < input.count, !owner.failed {
        let end = pieceSize == 0 ? input.count : min(input.count, start + pieceSize)
        owner.session.receive(ByteBuffer(bytes: input[start..<end]))
        start = end
        owner.drain()
        owner.session.flush(into: &output)
        output.clear()
        owner.drain()
        if owner.session.isFinished { break }
    }
    owner.session.goAway()
    owner.session.flush(into: &output)
    return 0
}

/// `precondition` that keeps its message in release builds (`-O` drops it).
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError(message(), line: line) }
}
