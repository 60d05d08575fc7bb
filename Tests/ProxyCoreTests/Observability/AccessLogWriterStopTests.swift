#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing

@testable import ProxyCore

@Suite struct AccessLogWriterStopTests {
    /// Reads a pipe to its end (EOF: every write end closed).
    private static func readAll(_ fd: CInt) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What a log that a reload replaced does when its last reference goes: `stop(wait: false)`
    /// returns at once, the thread writes what was queued, then closes the descriptor itself.
    @Test func stopWithoutWaitingWritesQueuedLinesThenClosesTheDescriptor() {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = AccessLogWriter(fd: fds[1], closesDescriptor: true)
        writer.enqueue(.write(ByteBuffer(string: "one\n")))
        writer.enqueue(.write(ByteBuffer(string: "two\n")))
        writer.stop(wait: false)
        // EOF only comes once the writer closed its end: without that this read would hang.
        #expect(Self.readAll(fds[0]) == "one\ntwo\n")
        close(fds[0])
    }

    /// After a stop, a barrier returns at once and a reopen-like job is told not to touch the
    /// descriptor.
    @Test func jobsAfterStopRunAtOnceAndKnowIt() async {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = AccessLogWriter(fd: fds[1], closesDescriptor: true)
        writer.stop()
        await writer.barrier()
        let stopped = await withCheckedContinuation { continuation in
            writer.enqueue(.run { stopped in continuation.resume(returning: stopped) })
        }
        #expect(stopped)
        #expect(Self.readAll(fds[0]) == "")
        close(fds[0])
    }
}
