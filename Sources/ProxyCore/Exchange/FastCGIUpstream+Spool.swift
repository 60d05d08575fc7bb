import FastCGIClient
import NIOCore

/// Response bytes for a client slower than the backend: a spool (memory, then a temporary file)
/// on a multiplexed connection, which must never stall for one client, or with
/// `response_buffering` on a connection of its own, which is released sooner that way.
extension FastCGIUpstream {
    /// The client stopped taking bytes: spool this request's output, or, with
    /// `response_buffering = off` on a connection of its own, pause the backend.
    func applyClientBackpressure() {
        let frontend = exchange.frontend
        guard !frontend.isWritable, let connection else { return }
        exchange.startSendWindow()
        guard spool == nil else { return }
        let responseBuffering = exchange.route?.config.responseBuffering ?? true
        if ResponseSpoolPolicy.backpressure(multiplexed: connection.isMultiplexed, responseBuffering: responseBuffering)
            == .pauseBackend
        {
            connection.pauseReading()
            return
        }
        let poolConfig = poolConfig
        let spool = SpillBuffer(
            memoryLimit: poolConfig.responseBuffer, spillLimit: poolConfig.responseSpill, budget: frontend.bufferBudget,
            tempDir: exchange.server.tempDir, allocator: frontend.allocator, io: frontend.resources.spillIO)
        spool.onProgress = { [weak self] in self?.spoolProgressed() }
        self.spool = spool
    }

    /// A file write or read of the spool finished: the backend may go on, the client may get
    /// the bytes read back.
    private func spoolProgressed() {
        guard !exchange.machine.isDone, let spool else { return }
        do {
            try spool.throwIfFailed()
        } catch {
            exchange.shared.logger.error("\(error.reason); request aborted", metadata: exchange.logMetadata)
            exchange.abortResponse(reset: true)
            return
        }
        if diskPausedBackend, !spool.isBacklogged {
            diskPausedBackend = false
            if !spoolPausedBackend { connection?.resumeReading() }
        }
        drainSpool()
    }

    /// Spools output for a client that is not reading. At a limit (the request's
    /// `response_buffer` + `response_spill`, the connection's or the server's), a connection of
    /// its own pauses until the client drained the spool; a request on a shared connection,
    /// which cannot pause, is aborted.
    func holdForSlowClient(_ data: ByteBuffer) {
        guard let spool else { return }
        let multiplexed = connection?.isMultiplexed ?? false
        let action: ResponseSpoolPolicy.Action
        do throws(HTTPError) {
            var fullScope: String?
            if case .full(let scope) = try spool.append(data, force: spoolPausedBackend || diskPausedBackend) {
                fullScope = "\(scope)"
            }
            action = ResponseSpoolPolicy.afterAppend(
                fullScope: fullScope, multiplexed: multiplexed, loopBacklogged: spool.loopIsBacklogged,
                spoolBacklogged: spool.isBacklogged, diskPaused: diskPausedBackend)
            if action == .pauseBackendUntilDrained {
                // The bytes of the read under way still have to go somewhere.
                _ = try spool.append(data, force: true)
            }
        } catch {
            exchange.shared.logger.warning("\(error.reason); request aborted", metadata: exchange.logMetadata)
            exchange.abortResponse(reset: true)
            return
        }
        switch action {
        case .keepGoing:
            break
        case .pauseBackendUntilDrained:
            spoolPausedBackend = true
            connection?.pauseReading()
        case .pauseBackendForDisk:
            diskPausedBackend = true
            connection?.pauseReading()
        case .abort(let reason):
            exchange.shared.logger.warning("\(reason); request aborted", metadata: exchange.logMetadata)
            exchange.abortResponse(reset: true)
        }
    }

    /// Writes spooled output while the client takes it; ends the response when the backend had
    /// already ended and the spool is empty.
    func drainSpool() {
        guard let spool else { return }
        let frontend = exchange.frontend
        do {
            while frontend.isWritable {
                let chunk: ByteBuffer
                switch try spool.next(maxLength: 64 * 1024) {
                case .chunk(let next):
                    chunk = next
                case .waiting:
                    // Read from the file off the loop; progress brings us back.
                    frontend.flush()
                    return
                case .empty:
                    self.spool = nil
                    if spoolPausedBackend || diskPausedBackend {
                        spoolPausedBackend = false
                        diskPausedBackend = false
                        connection?.resumeReading()
                    }
                    frontend.flush()
                    exchange.end(exchange.machine.spoolDrained())
                    return
                }
                exchange.bytesSent += chunk.readableBytes
                frontend.writeResponseBody(chunk)
            }
            frontend.flush()
        } catch {
            exchange.shared.logger.error("\(error.reason)", metadata: exchange.logMetadata)
            self.spool = nil
            exchange.abortResponse(reset: false)
        }
    }
}
