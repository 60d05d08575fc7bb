import Foundation
import NIOCore
import NIOHTTP1
import ProxyConfig
import Testing

@testable import ProxyCore

/// A front end whose client takes bytes only once a flush drained the socket, and which says
/// so from inside that flush, as a socket that empties at once does.
private final class DrainOnFlushFrontend: ExchangeFrontend {
    let shared: ProxyContext
    let resources: LoopResources
    let connectionInfo = ConnectionInfo.unixSocket()
    let allocator = ByteBufferAllocator()
    var isWritable = false
    let willClose = false
    let readCompleteFollows = false
    let unsentResponseBytes = 0
    let canRefuseRequest = false
    let canSendFileRegion = false
    private var budget: BufferBudget?
    var bufferBudget: BufferBudget { resources.connectionBudget(cached: &budget) }

    weak var exchange: Exchange?
    private(set) var status = 0
    private(set) var body: [UInt8] = []
    private(set) var finished = false
    private(set) var aborted = false

    init(resources: LoopResources) {
        self.resources = resources
        self.shared = resources.current.context
    }

    func pauseReading() {}
    func resumeReading() {}
    func sendContinue() {}
    func writeResponseHead(_ head: CGIResponseHead, request: HTTPRequestHead, hasBody: Bool, firstBody: ByteBuffer) {
        status = head.status
        body += firstBody.readableBytesView
    }
    func writeResponseBody(_ data: ByteBuffer) { body += data.readableBytesView }
    func writeResponseFile(_ region: FileRegion, promise: EventLoopPromise<Void>) {
        promise.fail(ChannelError.operationUnsupported)
    }
    func flush() {
        guard !isWritable else { return }
        isWritable = true
        exchange?.frontendWritabilityChanged(isWritable: true)
    }
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, keepAlive: Bool, isHead: Bool) -> Int {
        status = error.status
        return 0
    }
    func finish(_ exchange: Exchange, keepAlive: Bool, now: NIODeadline?) { finished = true }
    func abort(_ exchange: Exchange, reset: Bool) { aborted = true }
    func refuseRequest(_ exchange: Exchange) {}
    func closeAfterCurrentResponse() {}
}

@Suite struct ExchangeStaticFileTests {
    /// The flush after a file piece lets the client take the rest, which ends the exchange
    /// inside the flush: no send clock may start after that. (One did, and its timer held every
    /// such exchange for `send_timeout`: memory grew and cancelling other timers slowed down.)
    @Test func anExchangeEndedInsideItsFlushLeavesNoTimer() throws {
        let fixture = try ClientPipelineFixture(name: "static-reentry")
        let size = 200 * 1024
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 253) }
        try Data(bytes).write(to: URL(fileURLWithPath: fixture.root + "/app/f.bin"))
        let (_, resources) = try fixture.makeChannel(
            server: ServerConfig(), routes: [RouteConfig(name: "files", match: .prefix("/"), pool: "", root: fixture.root)])
        let frontend = DrainOnFlushFrontend(resources: resources)
        weak var weakExchange: Exchange?
        do {
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/app/f.bin")
            head.headers.add(name: "Host", value: "x")
            let exchange = Exchange(head: head, frontend: frontend)
            frontend.exchange = exchange
            weakExchange = exchange
            exchange.start()
        }
        #expect(frontend.status == 200)
        #expect(frontend.finished && !frontend.aborted)
        #expect(frontend.body == bytes)
        #expect(weakExchange == nil, "a timer still holds the ended exchange")
    }
}
