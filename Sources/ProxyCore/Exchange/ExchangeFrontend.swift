import NIOCore
import NIOHTTP1

/// The client side of an ``Exchange``: one HTTP/1.1 connection, or one HTTP/2 stream.
///
/// The exchange decides *what* the response is (status, fields, whether a body follows) and
/// when bytes may flow; the front end decides *how* it goes on the wire: status line or
/// HEADERS frame, chunked or length-delimited framing, connection persistence. This keeps the
/// request path (routing, CGI mapping, pools, streaming, limits) one piece of code for every
/// protocol.
///
/// All calls happen on the connection's event loop.
protocol ExchangeFrontend: AnyObject {
    var shared: ProxyContext { get }
    var resources: LoopResources { get }
    var connectionInfo: ConnectionInfo { get }
    var allocator: ByteBufferAllocator { get }
    /// Whether the client takes more response bytes now (backpressure towards the backend).
    var isWritable: Bool { get }
    /// The connection (or stream) ends after the current response.
    var willClose: Bool { get }
    /// A read burst of the client is being delivered, and its end calls
    /// ``Exchange/frontendReadComplete()`` on the current exchange: a write may wait for it.
    var readCompleteFollows: Bool { get }
    /// The client connection's allowance for held bytes (shared by HTTP/2 streams).
    var bufferBudget: BufferBudget { get }
    /// Response bytes handed to the front end that have not gone out to the client yet.
    var unsentResponseBytes: Int { get }
    /// Whether the protocol can turn a request down so that the client knows nothing was done
    /// and may send it again (HTTP/2's REFUSED_STREAM, RFC 9113 §8.7). HTTP/1 has no such
    /// answer short of closing the connection.
    var canRefuseRequest: Bool { get }

    /// Stops delivering request body parts until ``resumeReading()``.
    func pauseReading()
    func resumeReading()

    /// `100 Continue`, for a request that asked for it before sending its body.
    func sendContinue()
    /// Starts the response. `hasBody` is false for HEAD requests and statuses without content;
    /// `firstBody` is the part of the body that arrived with the head (may be empty).
    func writeResponseHead(_ head: CGIResponseHead, request: HTTPRequestHead, hasBody: Bool, firstBody: ByteBuffer)
    /// Writes response body bytes (never empty); framing is the front end's business.
    func writeResponseBody(_ data: ByteBuffer)
    /// Whether ``writeResponseFile(_:promise:)`` may be used: the socket takes file regions
    /// (sendfile), which a TLS or HTTP/2 framing layer cannot.
    var canSendFileRegion: Bool { get }
    /// Writes part of a file as response body, the kernel copying it to the socket; `promise`
    /// completes when the write did (or failed), after which the descriptor may be closed.
    func writeResponseFile(_ region: FileRegion, promise: EventLoopPromise<Void>)
    func flush()
    /// A complete small response for an error the proxy decided; the caller then calls
    /// ``finish(_:keepAlive:now:)``. Returns the body bytes written (for the access log).
    func writeSimpleResponse(_ error: HTTPError, version: HTTPVersion, keepAlive: Bool, isHead: Bool) -> Int
    /// Ends the exchange's response cleanly. Must be the exchange's last call. `now`: a clock
    /// reading taken just before (the backend's END_REQUEST), if there is one.
    func finish(_ exchange: Exchange, keepAlive: Bool, now: NIODeadline?)
    /// Ends it without a clean end: the client must see a truncated response. `reset`: a client
    /// too slow to take it: what the kernel still holds for it is dropped too (TCP RST, as nginx's
    /// `reset_timedout_connection`), else a trickling client would read it for minutes more.
    func abort(_ exchange: Exchange, reset: Bool)
    /// Ends the exchange by refusing its request, without a response: only when
    /// ``canRefuseRequest``, and only before anything was sent to a backend. Must be the
    /// exchange's last call.
    func refuseRequest(_ exchange: Exchange)

    /// The connection must close after the current response (set before its head).
    func closeAfterCurrentResponse()
}
