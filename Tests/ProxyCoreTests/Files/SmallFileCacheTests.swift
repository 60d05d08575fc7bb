import Foundation
import NIOCore
import Testing

@testable import ProxyCore

/// `SmallFileCache` against a file system made of a dictionary, and once against the disk.
@Suite struct SmallFileCacheTests {
    /// One test's files; only used on that test's thread.
    final class Disk: @unchecked Sendable {
        struct File {
            var bytes: [UInt8]
            var identity: FileIdentity
        }
        var files: [String: File] = [:]
        var reads = 0
        /// The file as the second fstat of a read sees it (a writer in between), when set.
        var changeDuringRead: ((inout File) -> Void)?
        var now = 2_000_000_000

        func add(_ path: String, _ text: String, inode: UInt64 = 1, changed: Int = 1_700_000_000) {
            let bytes = Array(text.utf8)
            files[path] = File(
                bytes: bytes,
                identity: FileIdentity(
                    device: 1, inode: inode, size: bytes.count, modifiedSeconds: 1_700_000_000, modifiedNanoseconds: 5,
                    changedSeconds: changed, changedNanoseconds: 7))
        }

        var fileSystem: SmallFileCache.FileSystem {
            SmallFileCache.FileSystem(
                stat: { path in
                    self.files[path].map {
                        FileInfo(
                            size: $0.identity.size, modified: $0.identity.modifiedSeconds, isDirectory: false,
                            isRegular: true, identity: $0.identity)
                    }
                },
                read: { (path: String, limit: Int) throws(HTTPError) -> StaticFile.Contents? in
                    guard var file = self.files[path] else { return nil }
                    #expect(file.bytes.count <= limit, "a fake file is never too large to read")
                    self.reads += 1
                    let opened = file.identity
                    let bytes = ByteBuffer(bytes: file.bytes)
                    if let change = self.changeDuringRead {
                        change(&file)
                        self.files[path] = file
                    }
                    return .bytes(bytes, opened: opened, read: file.identity)
                },
                now: { self.now })
        }
    }

    static func text(_ source: StaticFileSource?) -> String? {
        guard case .memory(let file) = source else { return nil }
        return String(buffer: file.bytes)
    }

    @Test func aSecondRequestIsServedFromMemory() throws {
        let disk = Disk()
        disk.add("/www/a.css", "body{}")
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        #expect(try Self.text(cache.source(at: "/www/a.css")) == "body{}")
        #expect(disk.reads == 1)
        #expect(cache.count == 1)
        #expect(try Self.text(cache.source(at: "/www/a.css")) == "body{}")
        #expect(disk.reads == 1)
    }

    @Test func anEntryCarriesWhatTheHeadNeeds() throws {
        let disk = Disk()
        disk.add("/www/a.css", "body{}")
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        guard case .memory(let file) = try cache.source(at: "/www/a.css") else {
            Issue.record("not in memory")
            return
        }
        #expect(file.contentLength == "6")
        #expect(file.validators == FileValidators(size: 6, modified: 1_700_000_000))
    }

    @Test func aMissingFileIsNoSource() throws {
        let cache = SmallFileCache(fileSystem: Disk().fileSystem)
        #expect(try cache.source(at: "/www/none") == nil)
        #expect(cache.count == 0)
    }

    @Test func theRoutesStatIsUsedWhenGiven() throws {
        let disk = Disk()
        disk.add("/www/a.css", "old")
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        _ = try cache.source(at: "/www/a.css")
        // What the route saw wins over what the cache would stat itself.
        var stale = FileInfo(size: 3, modified: 1_700_000_000, isDirectory: false, isRegular: true)
        stale.identity = disk.files["/www/a.css"]!.identity
        disk.add("/www/a.css", "new", inode: 2)
        #expect(try Self.text(cache.source(at: "/www/a.css", info: stale)) == "old")
        #expect(try Self.text(cache.source(at: "/www/a.css")) == "new")
    }

    static let changes: [(String, @Sendable (inout FileIdentity) -> Void)] = [
        ("inode", { $0.inode += 1 }),
        ("device", { $0.device += 1 }),
        ("size", { $0.size += 1 }),
        ("mtime", { $0.modifiedSeconds += 1 }),
        ("mtime nanoseconds", { $0.modifiedNanoseconds += 1 }),
        ("ctime", { $0.changedSeconds += 1 }),
        ("ctime nanoseconds", { $0.changedNanoseconds += 1 }),
    ]

    @Test(arguments: 0..<changes.count) func anEntryOfAnotherIdentityIsReadAgain(change: Int) throws {
        let disk = Disk()
        disk.add("/www/a.js", "one")
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        _ = try cache.source(at: "/www/a.js")
        Self.changes[change].1(&disk.files["/www/a.js"]!.identity)
        let now = String(repeating: "2", count: disk.files["/www/a.js"]!.identity.size)
        disk.files["/www/a.js"]!.bytes = Array(now.utf8)
        #expect(try Self.text(cache.source(at: "/www/a.js")) == now, "\(Self.changes[change].0)")
        #expect(disk.reads == 2)
        #expect(cache.count == 1)
    }

    @Test func aFileWrittenDuringTheReadIsServedButNotKept() throws {
        let disk = Disk()
        disk.add("/www/a.js", "half")
        disk.changeDuringRead = { $0.identity.changedNanoseconds += 1 }
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        #expect(try Self.text(cache.source(at: "/www/a.js")) == "half")
        #expect(cache.count == 0)
        disk.changeDuringRead = nil
        _ = try cache.source(at: "/www/a.js")
        #expect(disk.reads == 2)
        #expect(cache.count == 1)
    }

    @Test func aFileChangedWithinTheCurrentSecondIsNotKept() throws {
        let disk = Disk()
        disk.add("/www/a.js", "fresh", changed: disk.now)
        let cache = SmallFileCache(fileSystem: disk.fileSystem)
        #expect(try Self.text(cache.source(at: "/www/a.js")) == "fresh")
        #expect(cache.count == 0)
        disk.now += 1
        _ = try cache.source(at: "/www/a.js")
        #expect(cache.count == 1)
    }

    @Test func aFileTooLargeForTheBudgetIsNotKept() throws {
        let disk = Disk()
        disk.add("/www/big", String(repeating: "x", count: 600))
        let cache = SmallFileCache(
            limits: SmallFileCache.Limits(maxEntries: 10, maxBytes: 512, maxFileSize: 1024), fileSystem: disk.fileSystem)
        #expect(try Self.text(cache.source(at: "/www/big"))?.utf8.count == 600)
        #expect(cache.count == 0)
        #expect(cache.totalBytes == 0)
    }

    @Test func aFileOverTheSizeLimitStaysOnDisk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smallfiles-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("big.bin").path
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: path))
        let cache = SmallFileCache(limits: SmallFileCache.Limits(maxEntries: 10, maxBytes: 1 << 20, maxFileSize: 99))
        guard case .descriptor(let file) = try cache.source(at: path) else {
            Issue.record("read into memory")
            return
        }
        #expect(file.size == 100)
        try file.handle.close()
        #expect(cache.count == 0)
    }

    @Test func manyDistinctPathsStayWithinTheLimits() throws {
        let disk = Disk()
        for number in 0..<500 { disk.add("/www/f\(number)", String(repeating: "y", count: number % 97), inode: UInt64(number)) }
        disk.add("/www/hot", "hot", inode: 9999)
        let limits = SmallFileCache.Limits(maxEntries: 16, maxBytes: 16 * 300, maxFileSize: 1024)
        let cache = SmallFileCache(limits: limits, fileSystem: disk.fileSystem)
        _ = try cache.source(at: "/www/hot")
        for number in 0..<500 {
            _ = try cache.source(at: "/www/f\(number)")
            #expect(cache.count <= limits.maxEntries)
            #expect(cache.totalBytes <= limits.maxBytes)
            // Hit between the one-time paths, the hot entry keeps its place.
            #expect(try Self.text(cache.source(at: "/www/hot")) == "hot")
        }
        #expect(disk.reads == 501)
        #expect(cache.count > 1)
    }

    @Test func theEntryCountIsBoundedToo() throws {
        let disk = Disk()
        for number in 0..<100 { disk.add("/f\(number)", "z", inode: UInt64(number)) }
        let cache = SmallFileCache(
            limits: SmallFileCache.Limits(maxEntries: 5, maxBytes: 1 << 20, maxFileSize: 1024), fileSystem: disk.fileSystem)
        for number in 0..<100 {
            _ = try cache.source(at: "/f\(number)")
            #expect(cache.count == min(number + 1, 5))
        }
    }

    /// On disk: a file rewritten in place with the same size is read again.
    @Test func aRewrittenFileOnDiskIsReadAgain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smallfiles-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("page.html").path
        try Data("first".utf8).write(to: URL(fileURLWithPath: path))
        // Past the second of the write: the cache keeps only files older than that.
        Thread.sleep(forTimeInterval: 1.1)
        let live = SmallFileCache.FileSystem.live
        let reads = ReadCounter()
        let counting = SmallFileCache.FileSystem(
            stat: live.stat,
            read: { (path: String, limit: Int) throws(HTTPError) -> StaticFile.Contents? in
                reads.count += 1
                return try live.read(path, limit)
            },
            now: live.now)
        let cache = SmallFileCache(fileSystem: counting)
        #expect(try Self.text(cache.source(at: path)) == "first")
        #expect(try Self.text(cache.source(at: path)) == "first")
        #expect(reads.count == 1)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data("again".utf8))
        try handle.close()
        #expect(try Self.text(cache.source(at: path)) == "again")
        #expect(reads.count == 2)
    }

    final class ReadCounter: @unchecked Sendable {
        var count = 0
    }
}
