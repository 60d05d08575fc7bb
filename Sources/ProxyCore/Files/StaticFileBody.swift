#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// The body of a static response: ranges of one open file and the bytes between them (the
/// framing of a `multipart/byteranges` body), handed to the front end while it takes them.
///
/// Where the front end can send a file region (plain HTTP/1), the kernel copies the file to
/// the socket (sendfile); otherwise (TLS, HTTP/2) the file is read in bounded chunks, one per
/// writable turn, so a large file never sits in memory. Either way the channel's writability
/// is the backpressure. A file held in memory (``CachedFile``) goes as slices of its bytes.
final class StaticFileBody {
    enum Piece {
        case bytes(ByteBuffer)
        case file(Range<Int>)
    }

    /// What one ``pump(to:eventLoop:)`` did.
    struct Progress {
        /// Body bytes handed to the front end.
        var bytes = 0
        /// Every piece has been handed over.
        var done = false
    }

    private var handle: NIOFileHandle?
    /// The whole file, when it is in memory (then there is no handle).
    private let bytes: ByteBuffer?
    private var pieces: [Piece]
    private var nextPiece = 0
    /// The part of the current file piece not read yet (the chunked path).
    private var remainder: Range<Int>?
    /// File regions written whose writes have not completed: the descriptor stays open until
    /// the last one did, or the kernel would send from a closed (perhaps reused) descriptor.
    private var regionsInFlight = 0
    private var closeRequested = false

    /// Bytes read per chunk where the file cannot go as a region.
    static let chunkSize = 64 * 1024

    init(handle: NIOFileHandle, pieces: [Piece]) {
        self.handle = handle
        self.bytes = nil
        self.pieces = pieces
    }

    init(bytes: ByteBuffer, pieces: [Piece]) {
        self.handle = nil
        self.bytes = bytes
        self.pieces = pieces
    }

    deinit {
        // Closing is ours: an exchange that forgot would leak a descriptor per request.
        if let handle, handle.isOpen { try? handle.close() }
    }

    /// Hands pieces to `frontend` while it is writable.
    func pump(to frontend: any ExchangeFrontend, eventLoop: any EventLoop) throws(HTTPError) -> Progress {
        var progress = Progress()
        guard handle != nil || bytes != nil else {
            progress.done = true
            return progress
        }
        // With every piece handed over the body is done even if the last one made the channel
        // unwritable: the channel sends it, and waiting for writability would only add a turn.
        while frontend.isWritable || (remainder == nil && nextPiece == pieces.count) {
            if let range = remainder, let handle {
                let chunk = try read(handle, range: range.lowerBound..<min(range.upperBound, range.lowerBound + Self.chunkSize), allocator: frontend.allocator)
                let rest = (range.lowerBound + chunk.readableBytes)..<range.upperBound
                remainder = rest.isEmpty ? nil : rest
                progress.bytes += chunk.readableBytes
                frontend.writeResponseBody(chunk)
                continue
            }
            guard nextPiece < pieces.count else {
                progress.done = true
                return progress
            }
            let piece = pieces[nextPiece]
            nextPiece += 1
            switch piece {
            case .bytes(let bytes):
                progress.bytes += bytes.readableBytes
                frontend.writeResponseBody(bytes)
            case .file(let range) where range.isEmpty:
                continue
            case .file(let range):
                if let bytes {
                    progress.bytes += range.count
                    frontend.writeResponseBody(bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!)
                } else if let handle, frontend.canSendFileRegion {
                    let promise = eventLoop.makePromise(of: Void.self)
                    regionsInFlight += 1
                    promise.futureResult.assumeIsolated().whenComplete { [self] _ in
                        regionsInFlight -= 1
                        closeIfIdle()
                    }
                    progress.bytes += range.count
                    frontend.writeResponseFile(
                        FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound),
                        promise: promise)
                } else {
                    remainder = range
                }
            }
        }
        return progress
    }

    /// Closes the file once no write still needs it.
    func close() {
        closeRequested = true
        closeIfIdle()
    }

    private func closeIfIdle() {
        guard closeRequested, regionsInFlight == 0, let handle else { return }
        self.handle = nil
        try? handle.close()
    }

    /// `range` of the file, read on the loop: a page-cache hit costs a copy, which the TLS or
    /// HTTP/2 framing that follows needs anyway.
    private func read(_ handle: NIOFileHandle, range: Range<Int>, allocator: ByteBufferAllocator) throws(HTTPError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: range.count)
        var result: Int = 0
        do {
            result = try handle.withUnsafeFileDescriptor { fd in
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: range.count) { out in
                    var count: Int
                    repeat {
                        count = pread(fd, out.baseAddress, range.count, off_t(range.lowerBound))
                    } while count < 0 && errno == EINTR
                    return max(count, 0)
                }
            }
        } catch {
            throw HTTPError(500, "cannot read file: \(error)")
        }
        guard result > 0 else {
            // The file shrank after its size went out in the head: the response can only be cut.
            throw HTTPError(500, "file shorter than its size when opened")
        }
        return buffer
    }
}

@available(*, unavailable)
extension StaticFileBody: Sendable {}
