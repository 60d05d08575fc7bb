import NIOCore
import NIOHTTP1

/// A static file's response, worked out from the request's conditionals and `Range`: the head
/// and the pieces of the file (and framing) its body is made of. Pure: the file is described,
/// not read.
struct StaticFileResponse {
    var head: CGIResponseHead
    /// Empty when the response has no body (HEAD, 304).
    var body: [StaticFileBody.Piece]
    /// Bytes the body will have.
    var bodyLength: Int

    /// What is known of the file and how it is to be labelled.
    struct File {
        var validators: FileValidators
        var contentType: String
        /// The file is a precompressed sibling in this coding.
        var coding: PrecompressedCoding?
        /// The route serves precompressed siblings: the answer depends on Accept-Encoding.
        var varyOnEncoding: Bool
        /// The size as a Content-Length value, when already made (a cached file).
        var contentLength: String? = nil
    }

    /// `extraFields` (the route's `header` lines, fields a backend's X-Accel-Redirect kept) go
    /// after ours on a response below 400. `boundary` is asked only for a multi-range answer.
    init(
        request: HTTPRequestHead, file: File, extraFields: [(name: String, value: String)],
        allocator: ByteBufferAllocator, boundary: () -> String
    ) {
        let size = file.validators.size
        let isHead = request.method == .HEAD
        let requestFields = RequestFields(request.headers)
        let outcome = ConditionalRequest.evaluate(
            ifMatch: requestFields.ifMatch,
            ifNoneMatch: requestFields.ifNoneMatch,
            ifModifiedSince: requestFields.ifModifiedSince,
            ifUnmodifiedSince: requestFields.ifUnmodifiedSince,
            ifRange: requestFields.ifRange,
            isGetOrHead: true,
            validators: file.validators)

        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(8 + extraFields.count)
        func appendValidators() {
            fields.append(("Last-Modified", file.validators.lastModified))
            fields.append(("ETag", file.validators.etag))
            if file.varyOnEncoding { fields.append(("Vary", "Accept-Encoding")) }
        }

        switch outcome {
        case .notModified:
            // RFC 9110 §15.4.5: the fields a 200 would have carried that describe the cache entry.
            appendValidators()
            fields += extraFields
            head = CGIResponseHead(status: 304, headers: fields)
            body = []
            bodyLength = 0
            return
        case .preconditionFailed:
            self = Self.page(412, allocator: allocator, isHead: isHead, fields: [])
            return
        case .proceed(let rangeAllowed):
            var ranges: ByteRangeResult = .full
            if rangeAllowed, let range = requestFields.range {
                ranges = ByteRanges.evaluate(range, size: size)
            }
            fields.append(("Content-Type", file.contentType))
            switch ranges {
            case .unsatisfiable:
                self = Self.page(
                    416, allocator: allocator, isHead: isHead,
                    fields: [("Content-Range", ByteRanges.unsatisfiedContentRange(size: size))])
                return
            case .full:
                fields.append(("Content-Length", file.contentLength ?? String(size)))
                head = CGIResponseHead(status: 200, contentLength: size)
                body = [.file(0..<size)]
                bodyLength = size
            case .partial(let parts) where parts.count == 1:
                fields.append(("Content-Length", String(parts[0].count)))
                fields.append(("Content-Range", ByteRanges.contentRange(parts[0], size: size)))
                head = CGIResponseHead(status: 206, contentLength: parts[0].count)
                body = [.file(parts[0])]
                bodyLength = parts[0].count
            case .partial(let parts):
                let multipart = MultipartByteRanges(
                    ranges: parts, size: size, contentType: file.contentType, boundary: boundary())
                fields[fields.count - 1] = ("Content-Type", multipart.contentType)
                fields.append(("Content-Length", String(multipart.contentLength)))
                var pieces: [StaticFileBody.Piece] = []
                pieces.reserveCapacity(parts.count * 2 + 1)
                for (index, part) in parts.enumerated() {
                    pieces.append(.bytes(allocator.buffer(string: multipart.partHeader(index))))
                    pieces.append(.file(part))
                }
                pieces.append(.bytes(allocator.buffer(string: multipart.closing)))
                head = CGIResponseHead(status: 206, contentLength: multipart.contentLength)
                body = pieces
                bodyLength = multipart.contentLength
            }
            if let coding = file.coding { fields.append(("Content-Encoding", coding.rawValue)) }
            appendValidators()
            fields.append(("Accept-Ranges", "bytes"))
            fields += extraFields
            head.headers = fields
            if isHead {
                body = []
                bodyLength = 0
            }
        }
    }

    private init(head: CGIResponseHead, body: [StaticFileBody.Piece], bodyLength: Int) {
        self.head = head
        self.body = body
        self.bodyLength = bodyLength
    }

    /// The proxy's own small page for a status it decided, with `fields` after its own.
    private static func page(
        _ status: Int, allocator: ByteBufferAllocator, isHead: Bool, fields: [(name: String, value: String)]
    ) -> StaticFileResponse {
        let page = ErrorPage(HTTPError(status, ""), allocator: allocator)
        let length = page.body.readableBytes
        return StaticFileResponse(
            head: CGIResponseHead(status: status, headers: page.fields + fields, contentLength: length),
            body: isHead ? [] : [.bytes(page.body)],
            bodyLength: isHead ? 0 : length)
    }

    /// The request fields a static answer depends on, found in one pass over the head (each
    /// `HTTPHeaders` lookup would scan it again, and a list lookup allocates).
    private struct RequestFields {
        /// Every line of the field, as one comma-separated list (entity-tag lists may be split
        /// over several lines).
        var ifMatch: String?
        var ifNoneMatch: String?
        /// The first line of the field.
        var ifModifiedSince: String?
        var ifUnmodifiedSince: String?
        var ifRange: String?
        var range: String?

        init(_ headers: HTTPHeaders) {
            for (name, value) in headers {
                switch name.utf8.count {
                case 5 where name.equalsLowercasedASCII("range"):
                    if range == nil { range = value }
                case 8 where name.equalsLowercasedASCII("if-match"):
                    ifMatch = ifMatch.map { $0 + ", " + value } ?? value
                case 8 where name.equalsLowercasedASCII("if-range"):
                    if ifRange == nil { ifRange = value }
                case 13 where name.equalsLowercasedASCII("if-none-match"):
                    ifNoneMatch = ifNoneMatch.map { $0 + ", " + value } ?? value
                case 17 where name.equalsLowercasedASCII("if-modified-since"):
                    if ifModifiedSince == nil { ifModifiedSince = value }
                case 19 where name.equalsLowercasedASCII("if-unmodified-since"):
                    if ifUnmodifiedSince == nil { ifUnmodifiedSince = value }
                default:
                    break
                }
            }
        }
    }
}
