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

    /// Most fields a recycled CGI field list keeps room for; a larger one is let go.
    static let fieldListCapacityLimit = 64

    /// An empty field list for the next CGI response head parser: the one the last response
    /// head used, once nothing else holds it (the usual case: the head was written out), emptied
    /// now; a list of its own otherwise. Give it back with ``keepFieldList(_:)``.
    func takeFieldList() -> [(name: String, value: String)] {
        var list: [(name: String, value: String)] = []
        swap(&list, &spareFieldList)
        // In place when unique; a shared list is left to its holder and a new one made.
        list.removeAll(keepingCapacity: true)
        return list
    }

    /// Keeps a response head's field list (still in use, e.g. being written) for the next
    /// ``takeFieldList()``.
    func keepFieldList(_ list: [(name: String, value: String)]) {
        guard list.capacity <= Self.fieldListCapacityLimit else { return }
        spareFieldList = list
    }
}
