import NIOCore

/// A regular file as the answer: a route's static file, or the file a backend named with
/// X-Sendfile or reached with X-Accel-Redirect. GET and HEAD only (unless the backend chose the
/// file), conditionals and ranges answered here, the body from the file itself while the client
/// takes it. A request body is not read: the connection closes after the response instead.
final class FileUpstream: Upstream {
    private unowned let exchange: Exchange
    private let path: String
    /// The route's stat of `path`, when it made one: the small-file cache checks its entry
    /// against it instead of stat-ing again.
    private let info: FileInfo?
    /// The backend chose the file (X-Sendfile) for whatever the request's method was.
    private let anyMethod: Bool
    /// The body being sent, until its last piece went out or the exchange ended.
    private var body: StaticFileBody?

    init(exchange: Exchange, path: String, info: FileInfo? = nil, anyMethod: Bool = false) {
        self.exchange = exchange
        self.path = path
        self.info = info
        self.anyMethod = anyMethod
    }

    func start(now: NIODeadline) throws(HTTPError) {
        let head = exchange.head
        guard anyMethod || head.method == .GET || head.method == .HEAD else {
            throw HTTPError(
                405, "\(head.method) on a static file", fields: [HTTPError.Field("Allow", "GET, HEAD")])
        }
        let frontend = exchange.frontend
        let files = frontend.resources.smallFiles
        let route = exchange.route?.config
        let precompressed = route?.precompressed ?? false
        var coding: PrecompressedCoding?
        var found: StaticFileSource?
        if precompressed {
            for candidate in PrecompressedCoding.accepted(acceptEncoding: head.headers.first(name: "accept-encoding")) {
                if let source = try files.source(at: path + candidate.fileSuffix) {
                    found = source
                    coding = candidate
                    break
                }
            }
        }
        if found == nil { found = try files.source(at: path, info: info) }
        guard let source = found else {
            throw HTTPError(404, "no file \(path)")
        }
        var contentType: String?
        // The route's lines alone share the configuration's array (no copy per request).
        var extraFields = route?.headers ?? []
        let keptFields = exchange.takeKeptFields()
        if !keptFields.isEmpty {
            var kept: [(name: String, value: String)] = []
            for field in keptFields {
                if field.name.utf8.count == 12, field.name.equalsLowercasedASCII("content-type") {
                    contentType = field.value
                } else {
                    kept.append(field)
                }
            }
            extraFields = kept + extraFields
        }
        let startTime = exchange.startTime
        let response = StaticFileResponse(
            request: head,
            file: StaticFileResponse.File(
                validators: source.validators,
                contentType: contentType ?? exchange.shared.mediaTypes.contentType(forPath: path[...]),
                coding: coding, varyOnEncoding: precompressed, contentLength: source.contentLength),
            extraFields: extraFields, allocator: frontend.allocator,
            boundary: { MultipartByteRanges.makeBoundary(UInt64(startTime.uptimeNanoseconds)) })

        if exchange.requestBodyPending {
            // A body nobody reads would be parsed as the next request.
            frontend.closeAfterCurrentResponse()
        }
        exchange.machine.fileStarted()
        exchange.responseStatus = response.head.status
        let hasBody = !response.body.isEmpty
        switch source {
        case .memory(let file):
            if response.body.count == 1, case .file(let range) = response.body[0] {
                // Head and body in one write (one segment on the wire).
                let bytes = file.bytes.getSlice(at: file.bytes.readerIndex + range.lowerBound, length: range.count)!
                frontend.writeResponseHead(response.head, request: head, hasBody: true, firstBody: bytes)
                exchange.bytesSent += range.count
                exchange.end(exchange.machine.fileSent())
                return
            }
            frontend.writeResponseHead(response.head, request: head, hasBody: hasBody, firstBody: ByteBuffer())
            guard hasBody else {
                exchange.end(exchange.machine.fileSent())
                return
            }
            body = StaticFileBody(bytes: file.bytes, pieces: response.body)
        case .descriptor(let file):
            frontend.writeResponseHead(response.head, request: head, hasBody: hasBody, firstBody: ByteBuffer())
            guard hasBody else {
                try? file.handle.close()
                exchange.end(exchange.machine.fileSent())
                return
            }
            body = StaticFileBody(handle: file.handle, pieces: response.body)
        }
        pump()
    }

    func clientWritable() {
        pump()
    }

    func abandon() {
        // Its descriptor closes once the writes under way no longer need it.
        body?.close()
        body = nil
    }

    /// Hands the file to the client while it takes it; ends the response with the last piece.
    private func pump() {
        guard let body, !exchange.machine.isDone else { return }
        let frontend = exchange.frontend
        do {
            let progress = try body.pump(to: frontend, eventLoop: frontend.resources.eventLoop)
            exchange.bytesSent += progress.bytes
            if progress.done {
                exchange.end(exchange.machine.fileSent())
                return
            }
            frontend.flush()
            // The flush can let the socket take the rest at once, and the writability change
            // that brings re-enters here and ends the exchange.
            guard !exchange.machine.isDone else { return }
            // The client does not take it as fast: the send clock (min_send_rate) runs.
            exchange.startSendWindow()
        } catch {
            exchange.shared.logger.error("\(error.reason); response cut", metadata: exchange.logMetadata)
            exchange.abortResponse(reset: false)
        }
    }
}
