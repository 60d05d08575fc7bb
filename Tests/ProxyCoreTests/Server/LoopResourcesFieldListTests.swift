import NIOCore
import Testing

@testable import ProxyCore

/// The loop's recycled CGI field list: reused once the head that used it is gone, never
/// emptied under a holder, and a parser given a used list starts from nothing.
@Suite struct LoopResourcesFieldListTests {
    private static func storage(_ list: [(name: String, value: String)]) -> UnsafeRawPointer? {
        list.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    /// Parses a head with `fields` through a parser given the loop's list, keeps the list as
    /// an exchange does; returns the head.
    private static func respond(_ resources: LoopResources, _ fields: String) throws -> CGIResponseHead {
        var parser = CGIResponseHeadParser()
        #expect(parser.needsFieldStorage)
        parser.useFieldStorage(resources.takeFieldList())
        var bytes = ByteBuffer(string: fields + "\r\n")
        guard case .head(let head, _) = try parser.feed(&bytes) else {
            Issue.record("no head from \(fields)")
            return CGIResponseHead(status: 0)
        }
        resources.keepFieldList(head.headers)
        return head
    }

    @Test func theListIsReusedAndStartsEmpty() throws {
        let resources = try LoopResources.forTests()
        let firstStorage = Self.storage(try Self.respond(resources, "Content-Type: text/plain\r\nX-A: 1\r\n").headers)
        let second = try Self.respond(resources, "X-B: 2\r\n")
        #expect(second.headers.map(\.name) == ["X-B"], "nothing of the first head is left")
        #expect(firstStorage != nil)
        #expect(Self.storage(second.headers) == firstStorage, "the same storage, no new allocation")
    }

    @Test func aListStillHeldIsNotEmptied() throws {
        let resources = try LoopResources.forTests()
        let held = try Self.respond(resources, "Content-Type: text/html\r\nX-Held: yes\r\n")
        let next = try Self.respond(resources, "X-Next: 1\r\n")
        #expect(held.headers.map(\.name) == ["Content-Type", "X-Held"], "a holder keeps its fields")
        #expect(next.headers.map(\.name) == ["X-Next"])
        #expect(Self.storage(next.headers) != Self.storage(held.headers))
    }

    @Test func aParserGivenAUsedListDropsItsElements() throws {
        var parser = CGIResponseHeadParser()
        parser.useFieldStorage([("Stale", "x"), ("Old", "y")])
        #expect(!parser.needsFieldStorage)
        var bytes = ByteBuffer(string: "Status: 404 Not Found\r\nX-New: 1\r\n\r\nbody")
        guard case .head(let head, let body) = try parser.feed(&bytes) else {
            Issue.record("no head")
            return
        }
        #expect(head.status == 404)
        #expect(head.headers.map(\.name) == ["X-New"])
        #expect(String(buffer: body) == "body")
    }
}
