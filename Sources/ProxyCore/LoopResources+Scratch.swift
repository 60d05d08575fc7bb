import NIOCore

extension LoopResources {
    /// Largest scratch buffer kept for the next request; a bigger one (huge cookies, say) goes
    /// back to the allocator after use.
    static let scratchCapacityLimit = 16 * 1024

    /// An empty buffer for bytes that are built and then written whole: a request start to the
    /// backend, an HTTP/1 response head. Give it back with ``keepScratch(_:)`` right before
    /// writing it.
    ///
    /// It is the loop's one recycled buffer when the socket has taken the bytes written from it
    /// last time (the usual case: writes complete at their flush), and a new one otherwise, so
    /// nothing in flight is ever overwritten (`clear` allocates when the storage is shared).
    /// That saves two allocations (storage object and bytes) per use and keeps the memory warm.
    func takeScratch(minimumCapacity: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        swap(&buffer, &scratch)
        buffer.clear(minimumCapacity: minimumCapacity)
        return buffer
    }

    /// Keeps `buffer` (also being written) as the next ``takeScratch(minimumCapacity:)``.
    func keepScratch(_ buffer: ByteBuffer) {
        guard buffer.capacity <= Self.scratchCapacityLimit else { return }
        scratch = buffer
    }
}
