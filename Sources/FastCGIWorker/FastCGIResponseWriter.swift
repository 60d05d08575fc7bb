import NIOCore

/// Writes one request's response: an optional head, body chunks, then the end.
///
/// Every call suspends until its bytes are handed to the connection, and while the connection is not
/// writable (the web server reads slower than the handler writes) it stays suspended, so the memory a
/// response takes is bounded whatever its size. Requests multiplexed on one connection take turns one record
/// (at most 65528 bytes) at a time, so a large response does not hold back the others.
///
/// Calls on one writer should not overlap; they are applied in the order they reach the connection.
/// After the request was aborted or its connection closed, calls throw ``FastCGIWorkerError/requestClosed``.
public struct FastCGIResponseWriter: Sendable {
    private let sink: FastCGIWorkerRequestSink

    init(sink: FastCGIWorkerRequestSink) {
        self.sink = sink
    }

    /// The request this writer answers.
    public var requestID: UInt16 { self.sink.requestID }

    /// Writes the CGI response head: `Status: <status>`, then `headers` in order.
    /// - Throws: ``FastCGIWorkerError/headAlreadyWritten`` on a second head, ``FastCGIWorkerError/invalidHeader(name:)``
    ///   for a header that would split the response, ``FastCGIWorkerError/invalidStatus(_:)``.
    public func writeHead(status: Int = 200, headers: [(String, String)] = []) async throws {
        let head = try CGIResponseHead.encode(status: status, headers: headers)
        try await self.sink.send(.head(head))
    }

    /// Writes body bytes (`FCGI_STDOUT`), after a bare `200` head if none was written yet.
    public func write(_ chunk: ByteBuffer) async throws {
        // An empty FCGI_STDOUT record would end the stream, so empty writes must not reach the wire.
        guard chunk.readableBytes > 0 else { return }
        try await self.sink.send(.body(chunk))
    }

    /// Writes body text as UTF-8.
    public func write(_ text: String) async throws {
        try await self.write(ByteBuffer(string: text))
    }

    /// Writes to `FCGI_STDERR`, which web servers put in their error log.
    public func writeError(_ message: String) async throws {
        guard !message.isEmpty else { return }
        try await self.sink.send(.stderr(ByteBuffer(string: message)))
    }

    /// Ends the response: the end of `FCGI_STDOUT`, then `FCGI_END_REQUEST` with `appStatus` (the CGI
    /// "exit status"; web servers mostly ignore it). A bare `200` head is written first if none was.
    public func finish(appStatus: UInt32 = 0) async throws {
        try await self.sink.send(.end(appStatus: appStatus))
    }
}
