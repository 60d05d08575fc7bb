#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// A regular file opened for a static response, described by the descriptor's own `fstat`: the
/// size and time that go out in the head are those of the file being sent, even when the path
/// was replaced since the route looked it up.
struct StaticFile {
    let handle: NIOFileHandle
    let size: Int
    /// Seconds since 1970.
    let modified: Int

    /// What ``read(at:upTo:)`` found.
    enum Contents {
        /// The whole file (as far as it could be read), with what `fstat` said right after
        /// opening and right after reading: when both agree, nobody wrote to it in between.
        case bytes(ByteBuffer, opened: FileIdentity, read: FileIdentity)
        /// Larger than the limit: left open for the descriptor path.
        case opened(StaticFile)
    }

    /// Reads the file at `path` whole when `fstat` says it has at most `limit` bytes (one
    /// `pread` for a file that does not change meanwhile), and closes it; a larger one stays
    /// open. Nil when there is no regular file (a 404 for the caller). Opened and read on the
    /// event loop, as nginx does without thread pools: the route's lookup just stat'ed the same
    /// path, so its inode is in the kernel's cache.
    static func read(at path: String, upTo limit: Int) throws(HTTPError) -> Contents? {
        guard let (fd, info) = try openRegular(path) else { return nil }
        let opened = FileIdentity(info)
        guard opened.size <= limit else { return .opened(StaticFile(fd, info)) }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: max(opened.size, 1))
        var failed = false
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: opened.size) { out in
            var total = 0
            while total < opened.size {
                let count = pread(fd, out.baseAddress! + total, opened.size - total, off_t(total))
                if count > 0 {
                    total += count
                } else if count == 0 {
                    break
                } else if errno != EINTR {
                    failed = true
                    break
                }
            }
            return total
        }
        if failed { throw HTTPError(500, "cannot read \(path): errno \(errno)") }
        var after = stat()
        guard fstat(fd, &after) == 0 else { throw HTTPError(500, "cannot fstat \(path): errno \(errno)") }
        return .bytes(buffer, opened: opened, read: FileIdentity(after))
    }

    private init(_ fd: CInt, _ info: stat) {
        self.handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        self.size = Int(info.st_size)
        self.modified = Int(info.st_mtim.tv_sec)
    }

    /// open(2) and fstat(2): the descriptor of a regular file; nil when there is none.
    private static func openRegular(_ path: String) throws(HTTPError) -> (CInt, stat)? {
        var fd: CInt
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            switch errno {
            case ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG: return nil
            case EACCES: throw HTTPError(403, "no permission to open \(path)")
            default: throw HTTPError(500, "cannot open \(path): errno \(errno)")
            }
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            return nil
        }
        return (fd, info)
    }
}
