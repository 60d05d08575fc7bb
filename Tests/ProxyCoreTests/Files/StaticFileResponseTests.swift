import NIOCore
import NIOHTTP1
import Testing

@testable import ProxyCore

@Suite struct StaticFileResponseTests {
    private let validators = FileValidators(size: 1000, modified: 1_700_000_000)

    private func respond(
        _ fields: [(String, String)] = [], method: HTTPMethod = .GET, coding: PrecompressedCoding? = nil,
        vary: Bool = false, extra: [(name: String, value: String)] = []
    ) -> StaticFileResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/f.txt")
        for (name, value) in fields { head.headers.add(name: name, value: value) }
        return StaticFileResponse(
            request: head,
            file: StaticFileResponse.File(validators: validators, contentType: "text/plain", coding: coding, varyOnEncoding: vary),
            extraFields: extra, allocator: ByteBufferAllocator(), boundary: { "00000000000000000007" })
    }

    private func field(_ response: StaticFileResponse, _ name: String) -> String? {
        response.head.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    private func fileRanges(_ response: StaticFileResponse) -> [Range<Int>] {
        response.body.compactMap { if case .file(let range) = $0 { range } else { nil } }
    }

    @Test func aPlainGetSendsTheWholeFile() {
        let response = respond(extra: [("Cache-Control", "max-age=60")])
        #expect(response.head.status == 200)
        #expect(response.head.contentLength == 1000)
        #expect(field(response, "Content-Length") == "1000")
        #expect(field(response, "Content-Type") == "text/plain")
        #expect(field(response, "ETag") == validators.etag)
        #expect(field(response, "Last-Modified") == validators.lastModified)
        #expect(field(response, "Accept-Ranges") == "bytes")
        #expect(field(response, "Cache-Control") == "max-age=60")
        #expect(field(response, "Vary") == nil)
        #expect(fileRanges(response) == [0..<1000])
        #expect(response.bodyLength == 1000)
    }

    @Test func headKeepsTheLengthButHasNoBody() {
        let response = respond(method: .HEAD)
        #expect(response.head.status == 200)
        #expect(field(response, "Content-Length") == "1000")
        #expect(response.body.isEmpty)
    }

    @Test func aMatchingTagIsNotModifiedWithTheCacheFields() {
        let response = respond([("If-None-Match", "\"x\", \(validators.etag)")], vary: true, extra: [("Cache-Control", "public")])
        #expect(response.head.status == 304)
        #expect(response.body.isEmpty)
        #expect(field(response, "ETag") == validators.etag)
        #expect(field(response, "Vary") == "Accept-Encoding")
        #expect(field(response, "Cache-Control") == "public")
        #expect(field(response, "Content-Length") == nil)
    }

    @Test func aFailedIfMatchIs412() {
        let response = respond([("If-Match", "\"nope\"")])
        #expect(response.head.status == 412)
        #expect(response.body.count == 1)
    }

    @Test func oneRangeIs206WithContentRange() {
        let response = respond([("Range", "bytes=10-19")])
        #expect(response.head.status == 206)
        #expect(field(response, "Content-Range") == "bytes 10-19/1000")
        #expect(field(response, "Content-Length") == "10")
        #expect(fileRanges(response) == [10..<20])
    }

    @Test func severalRangesAreMultipartWithAnExactLength() {
        let response = respond([("Range", "bytes=0-9, 100-109")])
        #expect(response.head.status == 206)
        #expect(field(response, "Content-Type") == "multipart/byteranges; boundary=00000000000000000007")
        #expect(fileRanges(response) == [0..<10, 100..<110])
        var total = 0
        for piece in response.body {
            switch piece {
            case .bytes(let bytes): total += bytes.readableBytes
            case .file(let range): total += range.count
            }
        }
        #expect(total == response.bodyLength)
        #expect(field(response, "Content-Length") == String(total))
    }

    @Test func anUnsatisfiableRangeIs416WithTheSize() {
        let response = respond([("Range", "bytes=5000-")])
        #expect(response.head.status == 416)
        #expect(field(response, "Content-Range") == "bytes */1000")
        #expect(fileRanges(response).isEmpty)
    }

    @Test func aStaleIfRangeSendsTheWholeFile() {
        let response = respond([("Range", "bytes=0-9"), ("If-Range", "\"old\"")])
        #expect(response.head.status == 200)
        #expect(fileRanges(response) == [0..<1000])
    }

    @Test func aPrecompressedSiblingSaysItsCoding() {
        let response = respond(coding: .gzip, vary: true)
        #expect(field(response, "Content-Encoding") == "gzip")
        #expect(field(response, "Vary") == "Accept-Encoding")
        #expect(field(response, "Content-Type") == "text/plain")
    }
}

@Suite struct FileRedirectPathTests {
    @Test func xSendfilePathsStayInsideTheirDirectory() {
        #expect(StaticPathPolicy.isFile("/srv/dl/a.txt", inside: "/srv/dl"))
        #expect(StaticPathPolicy.isFile("/srv/dl/sub/a.txt", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dl", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dl/", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dlx/a.txt", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dl/../etc/passwd", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dl/./a.txt", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("/srv/dl//a.txt", inside: "/srv/dl"))
        #expect(!StaticPathPolicy.isFile("srv/dl/a.txt", inside: "/srv/dl"))
        #expect(StaticPathPolicy.isFile("/etc/x", inside: "/"))
    }

    @Test func locationsArePercentEncoded() {
        #expect(Exchange.percentEncodedPath("/docs/") == "/docs/")
        #expect(Exchange.percentEncodedPath("/a b/ü/") == "/a%20b/%C3%BC/")
        #expect(Exchange.percentEncodedPath("/x?y#z/") == "/x%3Fy%23z/")
    }
}
