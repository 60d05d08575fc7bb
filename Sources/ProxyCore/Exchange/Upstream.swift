import NIOCore

/// What answers a routed ``Exchange``: the FastCGI responder (``FastCGIUpstream``), a file
/// (``FileUpstream``) or a fixed status (``StatusUpstream``).
///
/// The exchange validates and routes the request, keeps its clocks, counts its bytes and ends
/// it; it drives whichever upstream the route chose through this protocol only. A new kind of
/// answer (a cache, an Authorizer step) is a new conforming type, not a new flag in the
/// exchange. An upstream reaches back through its exchange's own methods (write, end, fail,
/// redirect), so the state machine's rules hold for every kind alike.
///
/// All calls happen on the exchange's event loop.
protocol Upstream: AnyObject {
    /// Begins the answer (or the backend request). An error thrown here goes to the client as
    /// the proxy's response for that status.
    func start(now: NIODeadline) throws(HTTPError)
    /// A part of the request body; the exchange has counted and timed it.
    func requestBody(_ body: ByteBuffer)
    /// The request body is complete.
    func requestEnd()
    /// The client's read burst has been delivered: writes that waited for it may go out.
    func frontendReadComplete()
    /// The client takes bytes again.
    func clientWritable()
    /// The exchange is over, or hands the request to another upstream (a redirect): whatever is
    /// under way (a backend request, a queued lease, an open file, a spool) is given up.
    /// Called more than once at worst; later calls do nothing.
    func abandon()
    /// Response bytes held for the client beyond what the front end holds (a spool): the send
    /// clock waits on them too.
    var heldBytes: Int { get }
    /// Whether a backend has seen the request or has it queued: the request can no longer be
    /// refused as never seen.
    var backendAsked: Bool { get }
}

extension Upstream {
    func requestBody(_ body: ByteBuffer) {}
    func requestEnd() {}
    func frontendReadComplete() {}
    func clientWritable() {}
    func abandon() {}
    var heldBytes: Int { 0 }
    var backendAsked: Bool { false }
}
