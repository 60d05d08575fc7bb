import FastCGI
import FastCGIClient
import NIOCore

/// The request body on its way to STDIN: streamed as it comes, held until a connection is ready,
/// or buffered whole (memory, then a temporary file) before the pool is asked.
extension FastCGIUpstream {
    /// Pending request-body bytes that make us stop reading the client.
    static let pendingBodyLimit = 256 * 1024
    /// Body parts up to this size are copied behind their record header (one buffer); larger ones
    /// are sent as slices of the read buffer.
    static let stdinCopyLimit = 4096

    func makeBodyBuffer() -> SpillBuffer {
        let server = exchange.server
        let frontend = exchange.frontend
        let buffer = SpillBuffer(
            memoryLimit: server.bodyBufferSize, spillLimit: server.maxBodySize, budget: frontend.bufferBudget,
            tempDir: server.tempDir, allocator: frontend.allocator, io: frontend.resources.spillIO)
        buffer.onProgress = { [weak self] in self?.bodyBufferProgressed() }
        return buffer
    }

    /// A file write or read of the buffered body finished: the body may go on to the backend,
    /// or the client may send more.
    private func bodyBufferProgressed() {
        guard !exchange.machine.isDone, case .buffered(let buffer) = bodyMode else { return }
        if let connection, !stdinEnded {
            pumpBufferedBody(to: connection)
            return
        }
        do {
            try buffer.throwIfFailed()
        } catch {
            exchange.fail(error)
            return
        }
        if !exchange.requestEnded, exchange.bodyIsPaused, !buffer.isBacklogged { exchange.resumeBody() }
    }

    func requestBody(_ body: ByteBuffer) {
        switch bodyMode {
        case .none:
            return
        case .buffered(let buffer):
            do {
                if case .full(let scope) = try buffer.append(body) {
                    // max_body_size is the request's own limit, checked by the exchange: this is
                    // the connection's or the server's allowance, which frees up as others finish.
                    exchange.refuse(HTTPError(
                        503, "no room to buffer the request body (\(scope) limit)", closeConnection: true, retryAfter: 1))
                } else if buffer.isBacklogged, !exchange.bodyIsPaused {
                    // The disk is behind: the client waits, not our memory.
                    exchange.pauseBody()
                }
            } catch {
                exchange.fail(error)
            }
        case .contentLength:
            if let connection, !stdinEnded {
                writeStdin(body, to: connection)
                if !connection.isWritable { exchange.pauseBody() }
            } else if connection == nil, exchange.machine.state == .leasing {
                pendingBody.append(body)
                pendingBodyBytes += body.readableBytes
                if pendingBodyBytes > Self.pendingBodyLimit { exchange.pauseBody() }
            }
        }
    }

    func requestEnd() {
        switch bodyMode {
        case .none:
            return
        case .contentLength:
            if let connection, !stdinEnded {
                endStdin(on: connection)
            }
        case .buffered(let buffer):
            bufferedBodyEnded(length: buffer.length)
        }
    }

    func frontendReadComplete() {
        // Only body parts wait for this flush; every other write flushes itself. An empty flush
        // still walks the backend pipeline, once per request.
        guard stdinUnflushed else { return }
        stdinUnflushed = false
        connection?.flush()
    }

    /// After BEGIN_REQUEST and PARAMS: what of the body is there goes out, and the rest follows
    /// as it comes (or as the buffer is read back).
    func sendBodyOnConnect(_ connection: FastCGIConnection) {
        switch bodyMode {
        case .none:
            break
        case .contentLength:
            for part in pendingBody {
                writeStdin(part, to: connection)
            }
            pendingBody = []
            pendingBodyBytes = 0
            if exchange.requestEnded {
                endStdin(on: connection)
            } else {
                if exchange.frontend.readCompleteFollows {
                    // The body usually came in the same read as the head: the read's end sends
                    // the request start and what follows in one flush.
                    stdinUnflushed = true
                } else {
                    connection.flush()
                }
                if connection.isWritable { exchange.resumeBody() }
            }
        case .buffered:
            pumpBufferedBody(to: connection)
        }
    }

    func writeStdin(_ body: ByteBuffer, to connection: FastCGIConnection) {
        let allocator = exchange.frontend.allocator
        if body.readableBytes <= Self.stdinCopyLimit {
            var framed = allocator.buffer(capacity: body.readableBytes + 16)
            framed.writeFastCGIStream(type: .stdin, requestID: requestID, content: body)
            connection.write(framed)
        } else {
            // Larger parts go out as they came, behind a record header of their own (no padding:
            // it is optional), one more iovec instead of a copy.
            var rest = body
            while rest.readableBytes > 0 {
                let content = rest.readSlice(length: min(rest.readableBytes, FastCGIConstants.maxAlignedContentLength))!
                var header = allocator.buffer(capacity: FastCGIConstants.headerLength)
                header.writeFastCGIRecordHeader(
                    type: .stdin, requestID: requestID, contentLength: content.readableBytes, paddingLength: 0)
                connection.write(header)
                connection.write(content)
            }
        }
        stdinUnflushed = true
    }

    func endStdin(on connection: FastCGIConnection) {
        var framed = exchange.frontend.allocator.buffer(capacity: 8)
        framed.writeFastCGIStreamEnd(type: .stdin, requestID: requestID)
        connection.write(framed)
        connection.flush()
        stdinEnded = true
    }

    /// Sends the buffered body while the backend socket takes it.
    func pumpBufferedBody(to connection: FastCGIConnection) {
        guard case .buffered(let buffer) = bodyMode, !stdinEnded else { return }
        do {
            while connection.isWritable {
                switch try buffer.next(maxLength: 64 * 1024) {
                case .chunk(let chunk):
                    writeStdin(chunk, to: connection)
                case .waiting:
                    // Read from the file off the loop; progress brings us back.
                    connection.flush()
                    return
                case .empty:
                    endStdin(on: connection)
                    return
                }
            }
            connection.flush()
        } catch {
            exchange.fail(error)
        }
    }
}
