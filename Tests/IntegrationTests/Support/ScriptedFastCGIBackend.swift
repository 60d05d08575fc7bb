import FastCGI
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A FastCGI responder for tests that need a backend misbehaving in ways PHP cannot: every
/// request is answered by a list of ``Step``s that a script closure picks (typically by
/// PATH_INFO, which a front-controller route sets to the whole request path).
///
/// It records every request it receives and counts accepted connections. Requests on one
/// connection are handled one at a time (it announces no multiplexing); after a request whose
/// BEGIN_REQUEST lacks FCGI_KEEP_CONN it closes the connection, as the spec asks.
final class ScriptedFastCGIBackend: Sendable {
    /// One request as the backend received it.
    struct Request: Sendable, CustomStringConvertible {
        var requestID: UInt16
        /// BEGIN_REQUEST flags (bit 0: FCGI_KEEP_CONN).
        var flags: UInt8
        var role: UInt16
        var params: [String: String]
        var stdin: [UInt8]
        /// 0 for the first accepted connection, 1 for the second, ...
        var connectionIndex: Int
        /// 0 for the first request on its connection.
        var indexOnConnection: Int

        var keepConnection: Bool { flags & FastCGIConstants.keepConnectionFlag != 0 }
        var path: String { params["PATH_INFO"] ?? params["DOCUMENT_URI"] ?? "" }
        var method: String { params["REQUEST_METHOD"] ?? "" }

        var description: String {
            "#\(requestID) conn \(connectionIndex)/\(indexOnConnection) \(method) \(params["REQUEST_URI"] ?? "?")"
        }
    }

    /// One thing the backend does while answering a request. Every step is flushed at once.
    enum Step: Sendable {
        /// STDOUT content, in records of at most `recordSize` bytes (nil: as few records as fit).
        case stdout([UInt8], recordSize: Int? = nil)
        /// STDERR content in one record.
        case stderr([UInt8])
        /// The empty STDOUT record that ends the stream.
        case endStdout
        /// END_REQUEST.
        case end(appStatus: UInt32 = 0, protocolStatus: FastCGIProtocolStatus = .requestComplete)
        /// A record of any raw type, for the request's id or another one.
        case record(type: UInt8, id: RecordID = .same, content: [UInt8])
        /// Bytes written as they are (garbage, half records).
        case raw([UInt8])
        /// Waits before the next step.
        case sleep(Duration)
        /// Closes the connection; later steps are skipped.
        case close

        static func stdout(_ text: String, recordSize: Int? = nil) -> Step {
            .stdout(Array(text.utf8), recordSize: recordSize)
        }

        static func stderr(_ text: String) -> Step { .stderr(Array(text.utf8)) }

        /// A complete, well-behaved answer: STDOUT (header block and body), empty STDOUT, END_REQUEST.
        static func respond(_ text: String, recordSize: Int? = nil) -> [Step] {
            [.stdout(text, recordSize: recordSize), .endStdout, .end()]
        }

        /// `Content-Type: text/plain` and `body`.
        static func ok(_ body: String) -> [Step] {
            respond("Content-Type: text/plain\r\n\r\n" + body)
        }
    }

    /// The request id a ``Step/record(type:id:content:)`` carries.
    enum RecordID: Sendable {
        /// The id of the request being answered.
        case same
        /// That id plus an offset (wrapping).
        case offset(Int)
        /// A fixed id (0 is the management id).
        case fixed(UInt16)
    }

    enum Transport: Sendable {
        case unix
        case tcp
    }

    typealias Script = @Sendable (Request) -> [Step]

    private struct State {
        var requests: [Request] = []
        var accepted = 0
        var aborts = 0
    }

    private let state = Mutex(State())
    private let script: Script
    private let group: MultiThreadedEventLoopGroup
    private let dir: TempDir
    /// Set once in `start`, before any connection is accepted.
    private let serverChannel = Mutex<(any Channel)?>(nil)
    let transport: Transport
    /// The Unix socket path (`.unix`), nil for TCP.
    let socketPath: String?
    private let boundPort = Mutex<Int?>(nil)

    private init(transport: Transport, script: @escaping Script) throws {
        self.transport = transport
        self.script = script
        self.dir = try TempDir("fcgiproxy-scripted")
        self.socketPath = transport == .unix ? dir.file("backend.sock") : nil
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Starts listening (a Unix socket in a temp dir, or 127.0.0.1 on a free port).
    static func start(
        _ transport: Transport = .unix,
        script: @escaping Script
    ) async throws -> ScriptedFastCGIBackend {
        let backend = try ScriptedFastCGIBackend(transport: transport, script: script)
        do {
            try await backend.bind()
        } catch {
            try? await backend.group.shutdownGracefully()
            throw error
        }
        return backend
    }

    /// Starts a backend that answers by PATH_INFO from `routes`; other paths get a 404.
    static func start(
        _ transport: Transport = .unix,
        routes: [String: [Step]]
    ) async throws -> ScriptedFastCGIBackend {
        try await start(transport) { request in
            routes[request.path] ?? Step.respond("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno script")
        }
    }

    private func bind() async throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                let index = self.state.withLock { state in
                    state.accepted += 1
                    return state.accepted - 1
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20),
                        ScriptedConnectionHandler(backend: self, connectionIndex: index)
                    )
                }
            }
        let channel: any Channel
        switch transport {
        case .unix:
            channel = try await bootstrap.bind(unixDomainSocketPath: socketPath!, cleanupExistingSocketFile: true).get()
        case .tcp:
            channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
            boundPort.withLock { $0 = channel.localAddress?.port }
        }
        serverChannel.withLock { $0 = channel }
    }

    /// The TCP port (`.tcp` only).
    var port: Int? { boundPort.withLock { $0 } }

    /// What to put in a pool's `backend =` line.
    var backendAddress: String {
        switch transport {
        case .unix: "unix:" + socketPath!
        case .tcp: "127.0.0.1:\(port ?? 0)"
        }
    }

    /// Every request received so far, in order of completion of their STDIN.
    var requests: [Request] { state.withLock { $0.requests } }

    /// Requests received for `path` (PATH_INFO).
    func requests(path: String) -> [Request] { requests.filter { $0.path == path } }

    /// Connections accepted so far.
    var acceptedConnections: Int { state.withLock { $0.accepted } }

    /// FCGI_ABORT_REQUEST records received so far.
    var abortRequests: Int { state.withLock { $0.aborts } }

    /// Closes the listener and every connection and ends the backend's thread.
    func stop() async {
        let channel = serverChannel.withLock { $0 }
        try? await channel?.close()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    fileprivate func received(_ request: Request) -> [Step] {
        state.withLock { $0.requests.append(request) }
        return script(request)
    }

    fileprivate func receivedAbort() {
        state.withLock { $0.aborts += 1 }
    }
}

/// One accepted connection: collects BEGIN_REQUEST, PARAMS and STDIN, then plays the script.
private final class ScriptedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var requestID: UInt16
        var role: UInt16
        var flags: UInt8
        var params = ByteBuffer()
        var stdin: [UInt8] = []
    }

    private let backend: ScriptedFastCGIBackend
    private let connectionIndex: Int
    private var requestsOnConnection = 0
    private var pending: Pending?
    private var closed = false

    init(backend: ScriptedFastCGIBackend, connectionIndex: Int) {
        self.backend = backend
        self.connectionIndex = connectionIndex
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        switch record.recordType {
        case .beginRequest:
            guard let body = try? FastCGIBeginRequestBody(parsing: record.content) else {
                context.close(promise: nil)
                return
            }
            pending = Pending(requestID: record.requestID, role: body.role, flags: body.flags)
        case .params:
            guard pending?.requestID == record.requestID else { return }
            var content = record.content
            pending?.params.writeBuffer(&content)
        case .stdin:
            guard var request = pending, request.requestID == record.requestID else { return }
            if record.content.readableBytes > 0 {
                request.stdin.append(contentsOf: record.content.readableBytesView)
                pending = request
                return
            }
            pending = nil
            requestComplete(request, context: context)
        case .abortRequest:
            backend.receivedAbort()
        case .getValues:
            var buffer = context.channel.allocator.buffer(capacity: 64)
            buffer.writeFastCGIGetValuesResult([
                (FastCGIConstants.maxConns, "16"), (FastCGIConstants.maxReqs, "16"), (FastCGIConstants.mpxsConns, "0"),
            ])
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func requestComplete(_ pending: Pending, context: ChannelHandlerContext) {
        var params: [String: String] = [:]
        if let pairs = try? FastCGINameValuePairs.parse(pending.params) {
            for pair in pairs {
                params[String(buffer: pair.name)] = String(buffer: pair.value)
            }
        }
        let request = ScriptedFastCGIBackend.Request(
            requestID: pending.requestID,
            flags: pending.flags,
            role: pending.role,
            params: params,
            stdin: pending.stdin,
            connectionIndex: connectionIndex,
            indexOnConnection: requestsOnConnection
        )
        requestsOnConnection += 1
        let steps = backend.received(request)
        play(steps[...], request: request, context: context)
    }

    private func play(
        _ steps: ArraySlice<ScriptedFastCGIBackend.Step>,
        request: ScriptedFastCGIBackend.Request,
        context: ChannelHandlerContext
    ) {
        var steps = steps
        while let step = steps.popFirst() {
            if closed { return }
            var buffer = context.channel.allocator.buffer(capacity: 256)
            let id = request.requestID
            switch step {
            case .stdout(let bytes, let recordSize):
                Self.writeStream(.stdout, id: id, bytes: bytes, recordSize: recordSize, to: &buffer)
            case .stderr(let bytes):
                Self.writeStream(.stderr, id: id, bytes: bytes, recordSize: nil, to: &buffer)
            case .endStdout:
                buffer.writeFastCGIStreamEnd(type: .stdout, requestID: id)
            case .end(let appStatus, let protocolStatus):
                buffer.writeFastCGIEndRequest(requestID: id, appStatus: appStatus, protocolStatus: protocolStatus)
            case .record(let type, let recordID, let content):
                let otherID: UInt16
                switch recordID {
                case .same: otherID = id
                case .offset(let offset): otherID = UInt16(truncatingIfNeeded: Int(id) + offset)
                case .fixed(let fixed): otherID = fixed
                }
                let record = FastCGIRecord(type: type, requestID: otherID, content: ByteBuffer(bytes: content))
                buffer.writeFastCGIRecord(record)
            case .raw(let bytes):
                buffer.writeBytes(bytes)
            case .sleep(let duration):
                let rest = steps
                let (seconds, attoseconds) = duration.components
                let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                    self.play(rest, request: request, context: context)
                }
                return
            case .close:
                closed = true
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !request.keepConnection, !closed {
            closed = true
            context.close(promise: nil)
        }
    }

    private static func writeStream(
        _ type: FastCGIRecordType,
        id: UInt16,
        bytes: [UInt8],
        recordSize: Int?,
        to buffer: inout ByteBuffer
    ) {
        guard let recordSize else {
            buffer.writeFastCGIStream(type: type, requestID: id, content: ByteBuffer(bytes: bytes))
            return
        }
        var start = 0
        while start < bytes.count {
            let end = min(start + max(1, recordSize), bytes.count)
            buffer.writeFastCGIStream(type: type, requestID: id, content: ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
    }
}
