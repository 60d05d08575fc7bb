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

    /// Opens `path`; nil when there is no regular file (a 404 for the caller). Opened on the
    /// event loop, as nginx does without thread pools: the route's lookup just stat'ed the same
    /// path, so its inode is in the kernel's cache.
    static func opened(at path: String) throws(HTTPError) -> StaticFile? {
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
        return StaticFile(
            handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd), size: Int(info.st_size),
            modified: Int(info.st_mtim.tv_sec))
    }
}
