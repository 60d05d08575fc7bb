import NIOCore
import Testing

@testable import ProxyCore

/// The loop's recycled buffer (request starts, HTTP/1 response heads) must never hand out
/// storage that a pending write still holds.
@Suite struct LoopResourcesScratchTests {
    private static func storage(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withVeryUnsafeBytes { $0.baseAddress }
    }

    /// Takes the scratch, writes `text`, keeps it; returns its storage. The local copy is gone on return.
    private static func use(_ resources: LoopResources, _ text: String) -> UnsafeRawPointer? {
        var buffer = resources.takeScratch(minimumCapacity: 64)
        #expect(buffer.readableBytes == 0)
        buffer.writeString(text)
        resources.keepScratch(buffer)
        return storage(buffer)
    }

    @Test func reusedOnceNothingElseHoldsIt() throws {
        let resources = try LoopResources.forTests()
        let first = Self.use(resources, "first")
        let second = Self.use(resources, "second")
        #expect(first != nil)
        #expect(first == second)
    }

    @Test func aBufferStillBeingWrittenIsNeverOverwritten() throws {
        let resources = try LoopResources.forTests()
        var buffer = resources.takeScratch(minimumCapacity: 64)
        buffer.writeString("in flight")
        resources.keepScratch(buffer)
        let pending = buffer  // what a channel's pending write holds
        let next = Self.use(resources, "XXXXXXXXXXXXXXX")
        #expect(String(buffer: pending) == "in flight")
        #expect(next != Self.storage(pending))
    }

    @Test func largeBuffersAreNotKept() throws {
        let resources = try LoopResources.forTests()
        var big = resources.takeScratch(minimumCapacity: LoopResources.scratchCapacityLimit + 1)
        big.writeString("big")
        resources.keepScratch(big)
        #expect(resources.scratch.capacity == 0)
    }
}
