#if HTTP2
import CNGHTTP2
import NIOCore
import ProxyHTTP2
import Testing

@Suite struct HTTP2ServerSessionTests {
    private func bodyBytes(_ events: [HTTP2SessionEvent], stream: Int32) -> Int {
        events.reduce(0) { total, event in
            if case .requestBody(stream, let bytes) = event { return total + bytes.readableBytes }
            return total
        }
    }

    private func heads(_ events: [HTTP2SessionEvent]) -> [Int32: HTTP2RequestHead] {
        var heads: [Int32: HTTP2RequestHead] = [:]
        for case .requestHead(let id, let head) in events { heads[id] = head }
        return heads
    }

    @Test func getWithHeadersBecomesOneRequestAndGetsItsResponse() throws {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        let id = client.request(
            path: "/index.php?a=1", authority: "example.com:8080",
            headers: [("user-agent", "t"), ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
        let events = pump(client, server)
        let head = try #require(heads(events)[id])
        #expect(head.method == "GET" && head.scheme == "http" && head.path == "/index.php?a=1")
        #expect(head.authority == "example.com:8080")
        #expect(head.endStream)
        #expect(head.headers.map { "\($0.name)=\($0.value)" } == ["user-agent=t", "cookie=a=1; b=2", "accept=*/*"])
        #expect(events.last == .requestEnd(streamID: id))

        server.submitResponse(
            streamID: id, status: 200,
            headers: [("Content-Type", "text/plain"), ("Connection", "close"), ("Transfer-Encoding", "chunked")],
            endStream: false)
        server.sendResponseBody(streamID: id, ByteBuffer(string: "hello"), endStream: true)
        let after = pump(client, server)
        let response = try #require(client.responses[id])
        #expect(response.headers.map { "\($0.name)=\($0.value)" } == [":status=200", "content-type=text/plain"])
        #expect(String(decoding: response.body, as: UTF8.self) == "hello")
        #expect(response.closedWith == 0)
        #expect(after == [.streamClosed(streamID: id, errorCode: 0, responseComplete: true)])
        #expect(server.activeStreamCount == 1, "held until the owner releases it")
        server.releaseStream(id)
        #expect(server.activeStreamCount == 0)
    }

    @Test func postBodyArrivesOnlyAsFastAsItIsConsumed() throws {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let id = client.request(method: "POST", headers: [("content-length", "200000")], body: body)
        var events = pump(client, server)
        let head = try #require(heads(events)[id])
        #expect(!head.endStream && head.contentLength == 200_000)
        var received = [UInt8]()
        func collect(_ events: [HTTP2SessionEvent]) {
            for case .requestBody(id, let bytes) in events { received += bytes.readableBytesView }
        }
        collect(events)
        #expect(received.count == 65_535, "one stream window")
        #expect(pump(client, server).isEmpty, "the window stays closed while nothing is consumed")

        var rounds = 0
        while !events.contains(.requestEnd(streamID: id)) && rounds < 20 {
            let before = received.count
            server.consume(streamID: id, count: 65_535)
            events = pump(client, server)
            collect(events)
            #expect(received.count - before <= 65_535)
            rounds += 1
        }
        #expect(received == body)
        #expect(rounds == 3)
    }

    @Test func responseDataIsDeferredUntilQueuedAndSentAsTheClientOpensItsWindow() throws {
        var configuration = HTTP2SessionConfiguration()
        configuration.responseLowWatermark = 40_000
        let server = HTTP2ServerSession(configuration: configuration)
        let client = NGHTTP2TestClient(autoWindowUpdate: false)
        let id = client.request()
        pump(client, server)
        server.submitResponse(streamID: id, status: 200, headers: [("content-type", "text/plain")], endStream: false)
        pump(client, server)
        #expect(client.responses[id]?.status == "200")
        #expect(client.responses[id]?.body.isEmpty == true)

        server.sendResponseBody(streamID: id, ByteBuffer(repeating: 0x61, count: 100_000), endStream: false)
        #expect(server.pendingResponseBytes(streamID: id) == 100_000)
        var events = pump(client, server)
        #expect(client.responses[id]?.body.count == 65_535, "the client's window")
        #expect(server.pendingResponseBytes(streamID: id) == 100_000 - 65_535)
        #expect(events == [.responseDrained(streamID: id)])

        client.consume(id, 65_535)
        events = pump(client, server)
        #expect(client.responses[id]?.body.count == 100_000)
        #expect(events.isEmpty)
        #expect(client.responses[id]?.closedWith == nil, "no END_STREAM before the owner says so")

        server.sendResponseBody(streamID: id, ByteBuffer(), endStream: true)
        events = pump(client, server)
        #expect(client.responses[id]?.closedWith == 0)
        #expect(events == [.streamClosed(streamID: id, errorCode: 0, responseComplete: true)])
    }

    @Test func clientResetIsReportedAndTheStreamKeepsItsSlotUntilReleased() throws {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        let id = client.request(method: "POST", body: Array(repeating: 1, count: 10))
        pump(client, server)
        client.reset(id)
        let events = pump(client, server)
        #expect(
            events == [
                .streamReset(streamID: id, errorCode: NGHTTP2_CANCEL.rawValue),
                .streamClosed(streamID: id, errorCode: NGHTTP2_CANCEL.rawValue, responseComplete: false),
            ])
        #expect(server.activeStreamCount == 1)
        // Commands for a closed stream are ignored, not crashes.
        server.consume(streamID: id, count: 10)
        #expect(!server.submitResponse(streamID: id, status: 200, headers: [], endStream: true))
        server.releaseStream(id)
        #expect(server.activeStreamCount == 0)
    }

    @Test func resetStreamsWhoseBackendWorkRunsStillCountAgainstTheLimit() throws {
        var configuration = HTTP2SessionConfiguration()
        configuration.maxConcurrentStreams = 2
        let server = HTTP2ServerSession(configuration: configuration)
        let client = NGHTTP2TestClient()
        let first = client.request()
        let second = client.request()
        pump(client, server)
        client.reset(first)
        client.reset(second)
        pump(client, server)
        #expect(server.activeStreamCount == 2)

        let third = client.request()
        var events = pump(client, server)
        #expect(heads(events).isEmpty)
        #expect(client.responses[third]?.closedWith == NGHTTP2_REFUSED_STREAM.rawValue)

        server.releaseStream(first)
        let fourth = client.request()
        events = pump(client, server)
        #expect(heads(events).keys.sorted() == [fourth])
    }

    @Test func tooLargeHeaderListIsAnswered431WithoutShowingTheRequest() throws {
        var configuration = HTTP2SessionConfiguration()
        configuration.maxHeaderListSize = 1024
        let server = HTTP2ServerSession(configuration: configuration)
        let client = NGHTTP2TestClient()
        let small = client.request(headers: [("x-a", String(repeating: "a", count: 800))])
        let big = client.request(headers: [("x-a", String(repeating: "a", count: 1000))])
        let post = client.request(
            method: "POST", headers: [("x-a", String(repeating: "a", count: 1000))],
            body: Array(repeating: 2, count: 100_000))
        let events = pump(client, server)
        #expect(heads(events).keys.sorted() == [small])
        #expect(events.contains(.requestRejected(streamID: big, status: 431)))
        #expect(events.contains(.requestRejected(streamID: post, status: 431)))
        #expect(client.responses[big]?.status == "431")
        #expect(client.responses[big]?.closedWith == 0)
        #expect(client.responses[post]?.status == "431")
        #expect(client.responses[post]?.closedWith == 0, "RST_STREAM NO_ERROR stops the body")
        #expect(server.activeStreamCount == 1)
    }

    @Test func streamsBeyondMaxConcurrentStreamsAreRefused() throws {
        var configuration = HTTP2SessionConfiguration()
        configuration.maxConcurrentStreams = 2
        let server = HTTP2ServerSession(configuration: configuration)
        let client = NGHTTP2TestClient()
        // Sent before the client saw the server's SETTINGS, as a hostile client would.
        let ids = (0..<3).map { _ in client.request() }
        let events = pump(client, server)
        #expect(heads(events).keys.sorted() == Array(ids.prefix(2)))
        #expect(client.responses[ids[2]]?.closedWith == NGHTTP2_REFUSED_STREAM.rawValue)
    }

    /// RFC 9113 §8.2.1: CR, LF or NUL in a field value, or whitespace at either end, makes the
    /// request malformed: the stream is reset and no request head reaches the proxy, while a
    /// good request on the same connection still does.
    @Test(arguments: ["a\r\nx-injected: 1", "a\nb", "a\rb", "a\u{0}b", " lead", "trail\t"])
    func invalidFieldValueResetsTheStreamBeforeItIsARequest(value: String) throws {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        let bad = client.request(headers: [("x-value", value)])
        let good = client.request(headers: [("x-value", "fine")])
        let events = pump(client, server)
        #expect(heads(events)[bad] == nil, "\(value.debugDescription) became a request")
        #expect(client.responses[bad]?.closedWith == NGHTTP2_PROTOCOL_ERROR.rawValue, "\(value.debugDescription)")
        #expect(heads(events)[good]?.headers.first?.value == "fine")
    }

    @Test func gracefulGoAwayLetsTheStreamInFlightFinish() throws {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        let id = client.request()
        pump(client, server)
        server.sendShutdownNotice()
        server.goAway()
        pump(client, server)
        #expect(client.goAway?.lastStreamID == id)
        #expect(!server.isFinished)
        server.submitResponse(streamID: id, status: 204, headers: [], endStream: true)
        let events = pump(client, server)
        #expect(client.responses[id]?.status == "204")
        #expect(events == [.streamClosed(streamID: id, errorCode: 0, responseComplete: true)])
        #expect(server.isFinished)
    }

    @Test func goAwayFromTheClientIsReported() {
        let server = HTTP2ServerSession()
        let client = NGHTTP2TestClient()
        pump(client, server)
        client.sendGoAway()
        let events = pump(client, server)
        #expect(events == [.goAway(lastStreamID: 0, errorCode: 0)])
    }

    @Test func garbagePrefaceIsAConnectionError() throws {
        let server = HTTP2ServerSession()
        server.receive(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        let event = try #require(server.nextEvent())
        guard case .connectionError(let error) = event else {
            Issue.record("expected a connection error, got \(event)")
            return
        }
        #expect(error.code == NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue)
        #expect(error.description.lowercased().contains("magic"))
    }

    @Test func floodLimitsAreSetWhereTheLibraryHasThem() {
        let server = HTTP2ServerSession()
        // Debian 12's 1.52 has both by backport; upstream 1.57 / 1.61 and later have them too.
        #expect(server.hasStreamResetRateLimit)
        #expect(server.hasContinuationLimit)
    }
}
#endif
