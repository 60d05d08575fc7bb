#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// One event loop's small static files in memory, checked against a fresh `stat` on every
/// request, so never stale: a hit costs no open, read or close, only the `stat` the route's
/// lookup makes anyway. Only touched on its loop (no locks).
///
/// An entry is used only while the path's identity (device, inode, size, mtime and ctime to
/// the nanosecond) is the one it was read at. A miss reads the file once (open, fstat, pread,
/// fstat, close) and serves those bytes whether or not it keeps them. It keeps them only when
/// both `fstat`s agree (nobody wrote during the read) and the file's ctime is in an earlier
/// second than now: file times come from a clock that ticks in milliseconds, so a file
/// rewritten within the tick it was read in could keep its identity; once the second has
/// passed, any write gives it a later ctime (git's "racily clean" rule).
///
/// Bounded by entry count and bytes; eviction is CLOCK (a hit sets the entry's reference bit,
/// the hand clears it once before evicting), so a flood of one-time paths pushes out each
/// other before the entries that are being hit.
final class SmallFileCache {
    struct Limits: Sendable {
        var maxEntries: Int
        /// Bytes of file content plus ``entryOverhead`` per entry.
        var maxBytes: Int
        /// Larger files are never read into memory.
        var maxFileSize: Int

        /// Per loop: see "Static files" in docs/architecture.md for why these.
        static let standard = Limits(maxEntries: 1024, maxBytes: 8 << 20, maxFileSize: 64 << 10)
    }

    /// What the cache asks of the file system, injected so tests need no disk.
    struct FileSystem: Sendable {
        /// stat(2) following symlinks; nil when absent.
        var stat: @Sendable (String) -> FileInfo?
        /// ``StaticFile/read(at:upTo:)``.
        var read: @Sendable (_ path: String, _ limit: Int) throws(HTTPError) -> StaticFile.Contents?
        /// Seconds since 1970, from the clock file times come from.
        var now: @Sendable () -> Int

        static let live = FileSystem(
            stat: RouteTargetResolver.live.stat,
            read: { (path: String, limit: Int) throws(HTTPError) -> StaticFile.Contents? in
                try StaticFile.read(at: path, upTo: limit)
            },
            now: { Int(time(nil)) })
    }

    /// Bytes an entry costs beyond its content: the entry object, its strings, its slot and
    /// dictionary bucket, rounded up.
    static let entryOverhead = 256

    let limits: Limits
    private let fileSystem: FileSystem

    private struct Slot {
        let path: String
        let file: CachedFile
        let cost: Int
        var referenced = false
    }

    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var index: [String: Int] = [:]
    private var hand = 0
    /// Entries held.
    var count: Int { index.count }
    /// Bytes held, as ``Limits/maxBytes`` counts them.
    private(set) var totalBytes = 0

    init(limits: Limits = .standard, fileSystem: FileSystem = .live) {
        self.limits = limits
        self.fileSystem = fileSystem
    }

    /// The body source of the regular file at `path`; nil when there is none. `info`: what a
    /// `stat` of `path` said just now (the route's lookup), else the cache stats it itself.
    func source(at path: String, info known: FileInfo? = nil) throws(HTTPError) -> StaticFileSource? {
        guard let info = known ?? fileSystem.stat(path), info.isRegular else { return nil }
        if let slot = index[path] {
            if slots[slot]!.file.identity == info.identity {
                slots[slot]!.referenced = true
                return .memory(slots[slot]!.file)
            }
            remove(slot)
        }
        // The read decides by its own fstat: the file may have changed since the stat.
        guard let contents = try fileSystem.read(path, limits.maxFileSize) else { return nil }
        switch contents {
        case .opened(let file):
            return .descriptor(file)
        case .bytes(let bytes, let opened, let read):
            let file = CachedFile(identity: read, bytes: bytes)
            if opened == read, bytes.readableBytes == read.size, read.changedSeconds < fileSystem.now() {
                insert(file, at: path)
            }
            return .memory(file)
        }
    }

    private func insert(_ file: CachedFile, at path: String) {
        let cost = file.bytes.capacity + path.utf8.count + Self.entryOverhead
        guard cost <= limits.maxBytes, limits.maxEntries > 0 else { return }
        while index.count >= limits.maxEntries || totalBytes + cost > limits.maxBytes {
            evictOne()
        }
        let slot = Slot(path: path, file: file, cost: cost)
        if let free = freeSlots.popLast() {
            slots[free] = slot
            index[path] = free
        } else {
            slots.append(slot)
            index[path] = slots.count - 1
        }
        totalBytes += cost
    }

    /// Moves the hand to the first entry not hit since the hand last passed it, and drops it.
    /// Only called with at least one entry, so it ends within two turns.
    private func evictOne() {
        while true {
            if hand >= slots.count { hand = 0 }
            let current = hand
            hand += 1
            guard let slot = slots[current] else { continue }
            if slot.referenced {
                slots[current]!.referenced = false
            } else {
                remove(current)
                return
            }
        }
    }

    private func remove(_ slot: Int) {
        guard let removed = slots[slot] else { return }
        index[removed.path] = nil
        totalBytes -= removed.cost
        slots[slot] = nil
        freeSlots.append(slot)
    }
}
