import FastCGI
import NIOCore

/// What a backend connection reports about the request running on it.
///
/// All calls arrive on the connection's event loop, which is also the front-end channel's loop
/// (pools are per event loop), so implementations need no locks.
public protocol FastCGIResponseReceiver: AnyObject {
    /// A non-empty STDOUT record's content (a slice of the read buffer, no copy).
    func backendStdout(_ data: ByteBuffer)
    /// A non-empty STDERR record's content.
    func backendStderr(_ data: ByteBuffer)
    /// The end of one read burst: a good moment to flush what was forwarded.
    func backendReadComplete()
    /// END_REQUEST with REQUEST_COMPLETE. The connection is idle again when this is called.
    func backendEnded(appStatus: UInt32)
    /// The request failed; the connection is already being closed.
    func backendFailed(_ error: BackendError)
    /// The backend socket's writability changed (gate request-body reads on it).
    func backendWritabilityChanged(isWritable: Bool)
}
