import NIOCore
import NIOPosix

/// Bytes held for one request: a request body read before the backend is asked (PHP-FPM needs
/// CONTENT_LENGTH up front, and a slow upload must not hold a worker), or the response of a
/// client that reads slower than the backend writes.
///
/// Bytes stay in memory up to `memoryLimit` (and while the connection's and the loop's
/// ``BufferBudget`` allow), the rest goes to an unlinked temporary file in `temp_dir` (like
/// nginx's temp paths) up to `spillLimit` and the budgets. Bytes taken out give their memory
/// back at once; a file read to its end is freed, so a long response that a client drains as it
/// goes never holds more than its backlog on disk.
///
/// With ``IO`` the file is written and read on a thread pool, never on the event loop: a
/// `pwrite` waits whenever the kernel has more dirty pages than it likes, and one loop serves
/// thousands of other clients (seconds of stall were measured with gigabytes spilling). Bytes
/// queued for the file stay in memory until written; past ``writeBehindLimit`` the owner is
/// told (``isBacklogged``) and should stop producing. Results come back on the loop, followed by
/// ``onProgress``. Without ``IO`` (unit tests on an embedded loop) the same steps run inline.
final class SpillBuffer {
    /// What `append` did.
    enum Outcome: Equatable {
        case held
        /// No room under this allowance; nothing was taken.
        case full(BufferBudget.Scope)
    }

    /// What `next` found.
    enum Next {
        case chunk(ByteBuffer)
        /// Bytes are held but not read back yet: ``onProgress`` follows when they are.
        case waiting
        /// Nothing is held.
        case empty
    }

    /// Where file reads and writes run, and the loop their results come back to.
    struct IO {
        let threads: NIOThreadPool
        let eventLoop: any EventLoop
    }

    /// Bytes queued for or being written to the file beyond which ``isBacklogged`` says so.
    static let writeBehindLimit = 1 << 20

    /// Called on the loop after a file write or read finished (not for inline I/O): reads may
    /// have become possible, the backlog may have shrunk, or ``next(maxLength:)`` and
    /// ``append(_:force:)`` now throw what failed.
    var onProgress: (() -> Void)?

    private var memory: ByteBuffer
    private let memoryLimit: Int
    private let spillLimit: Int
    private let budget: BufferBudget
    private let tempDir: String
    private let allocator: ByteBufferAllocator
    private let io: IO?

    /// Bytes in memory that count against the budget (taken out ones are given back).
    private var memoryHeld = 0
    private var file: SpillFile?
    /// Bytes given to the file: written, being written or queued.
    private var fileLength = 0
    /// Of those, on disk and so readable.
    private var writtenLength = 0
    private var queuedWrites: [ByteBuffer] = []
    private var queuedBytes = 0
    private var writingBytes = 0
    /// Where the next read starts; reads go one at a time, each a chunk ahead of the reader.
    private var readOffset = 0
    private var readingBytes = 0
    private var readAhead: ByteBuffer?
    /// File bytes handed out by `next`.
    private var fileTaken = 0
    /// `next` said `.waiting`: a read (or the write it needs) is owed to the reader.
    private var readerWaiting = false
    private var readSize = 64 * 1024
    private var failure: HTTPError?

    /// Bytes ever appended (a request body's length).
    private(set) var length = 0
    /// Bytes held now, memory and file.
    var heldBytes: Int { memoryHeld + fileLength - fileTaken }
    /// So many bytes wait to be written that the producer should pause (or give up).
    var isBacklogged: Bool { queuedBytes + writingBytes > Self.writeBehindLimit }
    /// The loop as a whole holds too many bytes not yet written: a producer that cannot pause
    /// should give up, even if this buffer is only a little behind. (One that can pause waits
    /// for its own backlog only: progress of others never reaches it.)
    var loopIsBacklogged: Bool { budget.unwrittenOverLimit }

    init(
        memoryLimit: Int, spillLimit: Int, budget: BufferBudget, tempDir: String, allocator: ByteBufferAllocator,
        io: IO? = nil
    ) {
        self.memoryLimit = memoryLimit
        self.spillLimit = spillLimit
        self.budget = budget
        self.tempDir = tempDir
        self.allocator = allocator
        self.io = io
        self.memory = allocator.buffer(capacity: 0)
    }

    deinit {
        budget.addUnwritten(-(queuedBytes + writingBytes))
        file?.retire(bytes: fileLength)
        budget.releaseMemory(memoryHeld)
        budget.releaseSpill(fileLength)
    }

    /// Holds `buffer` whole, or nothing (`.full`). `force` holds it beyond every limit: for the
    /// few bytes of a read already under way when the holder decided to stop reading.
    func append(_ buffer: ByteBuffer, force: Bool = false) throws(HTTPError) -> Outcome {
        if let failure { throw failure }
        let count = buffer.readableBytes
        // Bytes go to memory only while the file holds nothing: order is kept.
        if fileLength == 0 {
            if force || (memoryHeld + count <= memoryLimit && budget.reserveMemory(count)) {
                if force { budget.forceMemory(count) }
                var buffer = buffer
                memory.writeBuffer(&buffer)
                memoryHeld += count
                length += count
                return .held
            }
        } else if force {
            // Behind file bytes: to the file regardless of its limits.
            budget.forceSpill(count)
            try queueWrite(buffer)
            return .held
        }
        guard fileLength + count <= spillLimit else { return .full(.request) }
        if let refused = budget.reserveSpill(count) { return .full(refused) }
        do {
            try queueWrite(buffer)
        } catch {
            budget.releaseSpill(count)
            throw error
        }
        return .held
    }

    private func queueWrite(_ buffer: ByteBuffer) throws(HTTPError) {
        if file == nil { file = try SpillFile(in: tempDir) }
        let count = buffer.readableBytes
        fileLength += count
        length += count
        queuedWrites.append(buffer)
        queuedBytes += count
        budget.addUnwritten(count)
        startWrite()
    }

    /// One write at a time, of everything queued: writes stay in order and each thread hop
    /// carries as much as there is.
    private func startWrite() {
        guard writingBytes == 0, queuedBytes > 0, failure == nil, let file else { return }
        let buffers = queuedWrites
        let offset = writtenLength
        writingBytes = queuedBytes
        queuedWrites = []
        queuedBytes = 0
        run({ file.write(buffers, at: offset) }) { buffer, result in
            buffer.writeFinished(result)
        }
    }

    private func writeFinished(_ result: Result<Void, HTTPError>) {
        if case .failure(let error) = result { failure = error }
        budget.addUnwritten(-writingBytes)
        writtenLength += writingBytes
        writingBytes = 0
        startWrite()
        if readerWaiting { startRead() }
    }

    /// Throws what a file write or read in the background failed with.
    func throwIfFailed() throws(HTTPError) {
        if let failure { throw failure }
    }

    /// The next piece, memory first, then the file.
    func next(maxLength: Int) throws(HTTPError) -> Next {
        if let failure { throw failure }
        if memory.readableBytes > 0 {
            let chunk = memory.readSlice(length: min(maxLength, memory.readableBytes))!
            memoryHeld -= chunk.readableBytes
            budget.releaseMemory(chunk.readableBytes)
            if memory.readableBytes == 0 {
                // The slices handed out keep the old storage alive as long as they need it.
                memory = allocator.buffer(capacity: 0)
            }
            return .chunk(chunk)
        }
        readSize = maxLength
        if var ahead = readAhead {
            readerWaiting = false
            let chunk = ahead.readSlice(length: min(maxLength, ahead.readableBytes))!
            readAhead = ahead.readableBytes > 0 ? ahead : nil
            fileTaken += chunk.readableBytes
            if fileTaken == fileLength {
                retireFile()
            } else {
                // The next chunk is read while this one goes out.
                startRead()
            }
            return .chunk(chunk)
        }
        guard fileLength > 0 else { return .empty }
        readerWaiting = true
        startRead()
        if readAhead != nil || failure != nil {
            // Inline I/O: already there.
            readerWaiting = false
            return try next(maxLength: maxLength)
        }
        return .waiting
    }

    private func startRead() {
        guard readingBytes == 0, readAhead == nil, readOffset < writtenLength, failure == nil, let file else { return }
        let count = min(readSize, writtenLength - readOffset)
        let offset = readOffset
        let allocator = allocator
        readingBytes = count
        readOffset += count
        run({ file.read(count, at: offset, allocator: allocator) }) { buffer, result in
            buffer.readFinished(result, asked: count)
        }
    }

    private func readFinished(_ result: Result<ByteBuffer, HTTPError>, asked: Int) {
        readingBytes = 0
        switch result {
        case .success(let chunk):
            // A short read: the rest is asked for again.
            readOffset -= asked - chunk.readableBytes
            readAhead = chunk
        case .failure(let error):
            failure = error
        }
    }

    /// Drained: the space goes back (the file is freed off the loop; a new one is made if
    /// needed), and new bytes may use memory again.
    private func retireFile() {
        file?.retire(bytes: fileLength)
        file = nil
        budget.releaseSpill(fileLength)
        fileLength = 0
        writtenLength = 0
        readOffset = 0
        fileTaken = 0
    }

    /// Runs blocking `work` on the pool and `then` on the loop, followed by ``onProgress``
    /// (if this buffer still exists: work under way does not keep it alive, the file does).
    /// Without a pool both run now, and the caller looks at the result itself.
    private func run<T: Sendable>(
        _ work: @escaping @Sendable () -> Result<T, HTTPError>,
        then: @escaping (SpillBuffer, Result<T, HTTPError>) -> Void
    ) {
        guard let io else {
            then(self, work())
            return
        }
        io.threads.runIfActive(eventLoop: io.eventLoop) { work() }
            .assumeIsolated()
            .whenComplete { [weak self] outcome in
                guard let self else { return }
                switch outcome {
                case .success(let result): then(self, result)
                case .failure: then(self, .failure(HTTPError(500, "temporary file I/O stopped (shutting down)")))
                }
                self.onProgress?()
            }
    }
}

@available(*, unavailable)
extension SpillBuffer: Sendable {}
