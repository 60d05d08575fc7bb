import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import ProxyCore

/// Held bytes: memory first, then an unlinked file; order kept, limits per request and per
/// budget, everything given back when bytes are taken out or the buffer goes.
@Suite(.serialized) struct SpillBufferTests {
    private let allocator = ByteBufferAllocator()

    private func bytes(_ byte: UInt8, _ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: [UInt8](repeating: byte, count: count))
    }

    private func drain(_ buffer: SpillBuffer, max: Int = 7) throws -> [UInt8] {
        var out: [UInt8] = []
        while case .chunk(let chunk) = try buffer.next(maxLength: max) {
            out += chunk.readableBytesView
        }
        return out
    }

    /// Files of an earlier test still being freed count against the server's share: wait for them.
    private func makeBudgets() -> (connection: BufferBudget, loop: BufferBudget) {
        while SpillFile.releasingBytes.load(ordering: .relaxed) > 0 { usleep(1000) }
        let loop = BufferBudget(memoryLimit: 100, spillLimit: 1000, scope: .server)
        return (BufferBudget(memoryLimit: 50, spillLimit: 500, scope: .connection, parent: loop), loop)
    }

    @Test func memoryThenFileKeepsOrderAndGivesEverythingBack() throws {
        let (connection, loop) = makeBudgets()
        do {
            let buffer = SpillBuffer(memoryLimit: 16, spillLimit: 100, budget: connection, tempDir: NSTemporaryDirectory(), allocator: allocator)
            #expect(try buffer.append(bytes(1, 10)) == .held)
            #expect(connection.memoryUsed == 10 && loop.memoryUsed == 10)
            // Over the request's memory: to the file; later bytes follow it there, in order.
            #expect(try buffer.append(bytes(2, 10)) == .held)
            #expect(try buffer.append(bytes(3, 3)) == .held)
            #expect(connection.spillUsed == 13 && loop.spillUsed == 13)
            #expect(buffer.heldBytes == 23 && buffer.length == 23)
            #expect(try drain(buffer) == [UInt8](repeating: 1, count: 10) + [UInt8](repeating: 2, count: 10) + [3, 3, 3])
            // Drained: the file is truncated and its space given back; memory is used again.
            #expect(connection.memoryUsed == 0 && connection.spillUsed == 0 && loop.spillUsed == 0)
            #expect(try buffer.append(bytes(4, 5)) == .held)
            #expect(connection.memoryUsed == 5 && connection.spillUsed == 0)
        }
        // Gone with the buffer.
        #expect(connection.memoryUsed == 0 && loop.memoryUsed == 0)
    }

    @Test func requestSpillLimitRefusesWithoutTakingAnything() throws {
        let (connection, _) = makeBudgets()
        let buffer = SpillBuffer(memoryLimit: 4, spillLimit: 8, budget: connection, tempDir: NSTemporaryDirectory(), allocator: allocator)
        #expect(try buffer.append(bytes(1, 4)) == .held)
        #expect(try buffer.append(bytes(2, 8)) == .held)
        #expect(try buffer.append(bytes(3, 1)) == .full(.request))
        #expect(buffer.heldBytes == 12 && connection.spillUsed == 8)
        // Forced (bytes of a read already under way): held beyond the limits, counted.
        #expect(try buffer.append(bytes(3, 2), force: true) == .held)
        #expect(connection.spillUsed == 10)
        #expect(try drain(buffer).suffix(2) == [3, 3])
    }

    @Test func connectionAndServerBudgetsAreSharedAndNameTheirScope() throws {
        let (connection, loop) = makeBudgets()
        let other = BufferBudget(memoryLimit: 50, spillLimit: 900, scope: .connection, parent: loop)
        let first = SpillBuffer(memoryLimit: 0, spillLimit: 10_000, budget: connection, tempDir: NSTemporaryDirectory(), allocator: allocator)
        let second = SpillBuffer(memoryLimit: 0, spillLimit: 10_000, budget: connection, tempDir: NSTemporaryDirectory(), allocator: allocator)
        #expect(try first.append(bytes(1, 300)) == .held)
        // Two requests of one connection share its 500.
        #expect(try second.append(bytes(1, 300)) == .full(.connection))
        #expect(try second.append(bytes(1, 200)) == .held)
        // Another connection reaches the loop's 1000.
        let third = SpillBuffer(memoryLimit: 0, spillLimit: 10_000, budget: other, tempDir: NSTemporaryDirectory(), allocator: allocator)
        #expect(try third.append(bytes(1, 600)) == .full(.server))
        #expect(try third.append(bytes(1, 500)) == .held)
        #expect(loop.spillUsed == 1000 && connection.spillUsed == 500 && other.spillUsed == 500)
    }

    @Test func memoryBudgetSendsBytesToTheFile() throws {
        let (connection, loop) = makeBudgets()
        let a = SpillBuffer(memoryLimit: 1000, spillLimit: 1000, budget: connection, tempDir: NSTemporaryDirectory(), allocator: allocator)
        #expect(try a.append(bytes(1, 50)) == .held)
        #expect(connection.memoryUsed == 50)
        // The connection's memory is used up: the next bytes go to the file.
        #expect(try a.append(bytes(2, 1)) == .held)
        #expect(connection.memoryUsed == 50 && connection.spillUsed == 1 && loop.memoryUsed == 50)
    }

    /// Runs `body` on a loop of its own with a spill thread pool of `threads`, as the server does.
    private func onLoop<T: Sendable>(
        threads count: Int, _ body: @escaping @Sendable (any EventLoop, NIOThreadPool) -> EventLoopFuture<T>
    ) async throws -> T {
        _ = makeBudgets()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threads = NIOThreadPool(numberOfThreads: count)
        threads.start()
        let loop = group.next()
        let result = try await loop.flatSubmit { body(loop, threads) }.get()
        // Threads first: what they finish completes on the loop.
        try await threads.shutdownGracefully()
        try await group.shutdownGracefully()
        return result
    }

    /// With a thread pool, file writes and reads run off the loop: the producer is told when
    /// writes fall behind, the reader waits for progress, and order and budgets hold.
    @Test func fileIOOffTheLoopKeepsOrderAndTellsBacklog() async throws {
        let tempDir = NSTemporaryDirectory()
        let pieces = 48
        let outcome = try await onLoop(threads: 2) { loop, threads -> EventLoopFuture<(backlogged: Bool, unwritten: Int, waited: Int, out: [UInt8], left: Int)> in
            let budget = BufferBudget(memoryLimit: 1000, spillLimit: 100_000_000, scope: .connection)
            let buffer = SpillBuffer(
                memoryLimit: 100, spillLimit: 100_000_000, budget: budget, tempDir: tempDir, allocator: ByteBufferAllocator(),
                io: SpillBuffer.IO(threads: threads, eventLoop: loop))
            var backlogged = false
            _ = try? buffer.append(ByteBuffer(bytes: [UInt8](repeating: 0, count: 100)))
            for piece in 1...pieces {
                // Nothing written can complete while this loop turn runs: the backlog only grows.
                _ = try? buffer.append(ByteBuffer(bytes: [UInt8](repeating: UInt8(piece), count: 64 * 1024)))
                backlogged = backlogged || buffer.isBacklogged
            }
            // Queued for the file: counted as not written yet, here and up the chain.
            let unwritten = budget.unwrittenBytes
            let done = loop.makePromise(of: (backlogged: Bool, unwritten: Int, waited: Int, out: [UInt8], left: Int).self)
            var out: [UInt8] = []
            var waited = 0
            func pump() {
                do {
                    while true {
                        switch try buffer.next(maxLength: 50_000) {
                        case .chunk(let chunk): out += chunk.readableBytesView
                        case .waiting:
                            waited += 1
                            return
                        case .empty:
                            buffer.onProgress = nil
                            done.succeed((backlogged, unwritten, waited, out, budget.spillUsed + budget.unwrittenBytes))
                            return
                        }
                    }
                } catch {
                    done.fail(error)
                }
            }
            buffer.onProgress = { pump() }
            pump()
            return done.futureResult
        }
        #expect(outcome.backlogged)
        #expect(outcome.unwritten > SpillBuffer.writeBehindLimit)
        #expect(outcome.waited > 0)
        var expected = [UInt8](repeating: 0, count: 100)
        for piece in 1...pieces { expected += [UInt8](repeating: UInt8(piece), count: 64 * 1024) }
        #expect(outcome.out == expected)
        #expect(outcome.left == 0)
    }

    /// A buffer dropped while its file is being written: the write finishes on its own, the file
    /// is freed after it, and its bytes stop counting as being freed.
    @Test func droppedWhileWritingFreesTheFileAfterTheWrite() async throws {
        let tempDir = NSTemporaryDirectory()
        let spillAfterDrop = try await onLoop(threads: 1) { loop, threads -> EventLoopFuture<Int> in
            let budget = BufferBudget(memoryLimit: 0, spillLimit: 100_000_000, scope: .server)
            var buffer: SpillBuffer? = SpillBuffer(
                memoryLimit: 0, spillLimit: 100_000_000, budget: budget, tempDir: tempDir, allocator: ByteBufferAllocator(),
                io: SpillBuffer.IO(threads: threads, eventLoop: loop))
            _ = try? buffer!.append(ByteBuffer(bytes: [UInt8](repeating: 7, count: 4 << 20)))
            let behind = buffer!.loopIsBacklogged
            buffer = nil
            return loop.makeSucceededFuture(behind ? -1 : budget.spillUsed + budget.unwrittenBytes)
        }
        // Not over the loop's 16 MiB; and nothing counted once the buffer is gone.
        #expect(spillAfterDrop == 0)
        let deadline = Date().addingTimeInterval(10)
        while SpillFile.releasingBytes.load(ordering: .relaxed) > 0, Date() < deadline { usleep(1000) }
        #expect(SpillFile.releasingBytes.load(ordering: .relaxed) == 0)
    }

    /// Unwritten bytes add up to the loop's budget, whose limit every connection under it sees.
    @Test func unwrittenBytesAreLimitedPerLoop() {
        let (connection, loop) = makeBudgets()
        let other = BufferBudget(memoryLimit: 50, spillLimit: 500, scope: .connection, parent: loop)
        connection.addUnwritten(BufferBudget.loopUnwrittenLimit)
        #expect(!other.unwrittenOverLimit)
        other.addUnwritten(1)
        #expect(connection.unwrittenOverLimit && other.unwrittenOverLimit && loop.unwrittenBytes == BufferBudget.loopUnwrittenLimit + 1)
        connection.addUnwritten(-BufferBudget.loopUnwrittenLimit)
        #expect(!other.unwrittenOverLimit)
    }
}
