// nio-floor: the least an HTTP-to-FastCGI proxy on SwiftNIO can do per request, as a yardstick
// for Benchmarks/compare (the "nio-floor" server). Not a proxy anyone should run:
//
// - each client connection gets one backend connection of its own (a Unix socket), opened when
//   the client connects;
// - a read that contains the end of a request head ("\r\n\r\n") sends one fixed, pre-encoded
//   FastCGI request (BEGIN_REQUEST, a few PARAMS, empty STDIN); nothing is parsed, routed or
//   checked, request bodies and pipelining are not handled;
// - the backend's STDOUT is collected until END_REQUEST; its CGI head is skipped and the body is
//   sent behind a fixed "200 OK" head with Content-Length, in one write.
//
// What fcgiproxy does beyond this (parsing, routing, PARAMS, the pool, CGI head parsing, timeouts,
// limits) is what its CPU per request above this floor pays for.
//
//   nio-floor BACKEND_SOCKET PORT [EXTRA_NS]
//
// EXTRA_NS (default 0) burns that much CPU time per request on the loop, half when the request
// arrives and half when the answer goes out: a floor that costs as much per request as a real
// proxy, to tell what the extra CPU alone does to req/s and latency percentiles.
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

let arguments = CommandLine.arguments
let extraArgument: UInt64? = arguments.count == 4 ? UInt64(arguments[3]) : 0
guard arguments.count == 3 || arguments.count == 4, let port = Int(arguments[2]), extraArgument != nil else {
    print("usage: nio-floor BACKEND_SOCKET PORT [EXTRA_NS]")
    exit(2)
}
let backendPath = arguments[1]
let extraNanoseconds = extraArgument ?? 0

/// Spins for half of EXTRA_NS (a busy loop on the monotonic clock: CPU time, not sleep).
func burnHalfOfExtra() {
    guard extraNanoseconds > 0 else { return }
    func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
    let end = monotonicNanoseconds() + extraNanoseconds / 2
    while monotonicNanoseconds() < end {}
}

/// BEGIN_REQUEST, PARAMS for GET /small, the end of PARAMS and an empty STDIN, request id 1.
let fixedRequest: ByteBuffer = {
    var buffer = ByteBuffer()
    func record(_ type: UInt8, _ content: [UInt8]) {
        buffer.writeMultipleIntegers(UInt8(1), type, UInt16(1), UInt16(content.count), UInt8(0), UInt8(0))
        buffer.writeBytes(content)
    }
    record(1, [0, 1, 1, 0, 0, 0, 0, 0])  // responder, keep the connection
    var params: [UInt8] = []
    let pairs = [
        ("SCRIPT_FILENAME", "/x"), ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/small"), ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"), ("GATEWAY_INTERFACE", "CGI/1.1"), ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_NAME", "127.0.0.1"), ("HTTP_HOST", "127.0.0.1"),
    ]
    for (name, value) in pairs {
        params.append(UInt8(name.utf8.count))
        params.append(UInt8(value.utf8.count))
        params += Array(name.utf8) + Array(value.utf8)
    }
    record(4, params)
    record(4, [])
    record(5, [])
    return buffer
}()

/// Index just past the first "\r\n\r\n" in the readable bytes, relative to the reader index.
func endOfHead(_ buffer: ByteBuffer) -> Int? {
    buffer.withUnsafeReadableBytes { bytes in
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
            return index + 1
        }
        return nil
    }
}

final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The client side; it owns this handler's channel and outlives it.
    unowned let client: ClientHandler
    private var context: ChannelHandlerContext?
    private var unread = ByteBuffer()
    private var stdout = ByteBuffer()

    init(client: ClientHandler) { self.client = client }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send() {
        context?.writeAndFlush(wrapOutboundOut(fixedRequest), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if unread.readableBytes > 0 {
            unread.writeBuffer(&input)
            input = unread
            unread = ByteBuffer()
        }
        while input.readableBytes >= 8,
            let (_, type, _, length, padding, _) = input.getMultipleIntegers(
                at: input.readerIndex, as: (UInt8, UInt8, UInt16, UInt16, UInt8, UInt8).self),
            input.readableBytes >= 8 + Int(length) + Int(padding)
        {
            input.moveReaderIndex(forwardBy: 8)
            let content = input.readSlice(length: Int(length))!
            input.moveReaderIndex(forwardBy: Int(padding))
            switch type {
            case 6: stdout.writeImmutableBuffer(content)
            case 3:
                client.respond(&stdout)
                stdout.clear()
            default: break
            }
        }
        if input.readableBytes > 0 { unread = input }
    }
}

final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var backend: BackendHandler?
    private var backendChannel: (any Channel)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        let backend = BackendHandler(client: self)
        self.backend = backend
        // The backend channel lives on this loop: the handler never crosses threads.
        let bound = NIOLoopBound(backend, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .connect(unixDomainSocketPath: backendPath)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.backendChannel = channel
                case .failure: context.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if endOfHead(unwrapInboundIn(data)) != nil {
            burnHalfOfExtra()
            backend?.send()
        }
    }

    func respond(_ stdout: inout ByteBuffer) {
        guard let context else { return }
        burnHalfOfExtra()
        stdout.moveReaderIndex(forwardBy: endOfHead(stdout) ?? 0)
        var response = context.channel.allocator.buffer(capacity: 96 + stdout.readableBytes)
        response.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ")
        response.writeString(String(stdout.readableBytes))
        response.writeStaticString("\r\n\r\n")
        response.writeBuffer(&stdout)
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        backendChannel?.close(promise: nil)
        backend = nil
        context.fireChannelInactive()
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ClientHandler()) }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
try server.closeFuture.wait()
