import NIOCore

/// A regular file as the answer: a route's static file, or the file a backend named with
/// X-Sendfile or reached with X-Accel-Redirect. GET and HEAD only (unless the backend chose the
/// file), conditionals and ranges answered here, the body from the file itself while the client
/// takes it. A request body is not read: the connection closes after the response instead.
final class FileUpstream: Upstream {
    private unowned let exchange: Exchange
    private let path: String
    /// The backend chose the file (X-Sendfile) for whatever the request's method was.
    private let anyMethod: Bool
    /// The body being sent, until its last piece went out or the exchange ended.
    private var body: StaticFileBody?

    init(exchange: Exchange, path: String, anyMethod: Bool = false) {
        self.exchange = exchange
        self.path = path
        self.anyMethod = anyMethod
    }

    func start(now: NIODeadline) throws(HTTPError) {
        let head = exchange.head
        guard anyMethod || head.method == .GET || head.method == .HEAD else {
            throw HTTPError(
                405, "\(head.method) on a static file", fields: [HTTPError.Field("Allow", "GET, HEAD")])
        }
        let route = exchange.route?.config
        let precompressed = route?.precompressed ?? false
        var coding: PrecompressedCoding?
        var opened: StaticFile?
        if precompressed {
            for candidate in PrecompressedCoding.accepted(acceptEncoding: head.headers.first(name: "accept-encoding")) {
                if let file = try StaticFile.opened(at: path + candidate.fileSuffix) {
                    opened = file
                    coding = candidate
                    break
                }
            }
        }
        if opened == nil { opened = try StaticFile.opened(at: path) }
        guard let file = opened else {
            throw HTTPError(404, "no file \(path)")
        }
        var contentType: String?
        var extraFields: [(name: String, value: String)] = []
        for field in exchange.takeKeptFields() {
            if field.name.utf8.count == 12, field.name.equalsLowercasedASCII("content-type") {
                contentType = field.value
            } else {
                extraFields.append(field)
            }
        }
        if let added = route?.headers { extraFields += added }
        let frontend = exchange.frontend
        let startTime = exchange.startTime
        let response = StaticFileResponse(
            request: head,
            file: StaticFileResponse.File(
                validators: FileValidators(size: file.size, modified: file.modified),
                contentType: contentType ?? exchange.shared.mediaTypes.contentType(forPath: path[...]),
                coding: coding, varyOnEncoding: precompressed),
            extraFields: extraFields, allocator: frontend.allocator,
            boundary: { MultipartByteRanges.makeBoundary(UInt64(startTime.uptimeNanoseconds)) })

        if exchange.requestBodyPending {
            // A body nobody reads would be parsed as the next request.
            frontend.closeAfterCurrentResponse()
        }
        exchange.machine.fileStarted()
        exchange.responseStatus = response.head.status
        let hasBody = !response.body.isEmpty
        frontend.writeResponseHead(response.head, request: head, hasBody: hasBody, firstBody: ByteBuffer())
        guard hasBody else {
            try? file.handle.close()
            exchange.end(exchange.machine.fileSent())
            return
        }
        body = StaticFileBody(handle: file.handle, pieces: response.body)
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
