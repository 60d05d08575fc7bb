import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Process limits set at start.
enum ResourceLimits {
    /// Raises the soft RLIMIT_NOFILE to the hard limit (every client connection, backend
    /// connection and spooled body costs a descriptor; the usual soft default of 1024 is far too
    /// low for a proxy) and logs the result.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else {
            logger.warning("cannot read the open file limit: errno \(errno)")
            return
        }
        let before = limit.rlim_cur
        var target = limit.rlim_max
        if target == rlim_t.max {
            // The kernel refuses an infinite RLIMIT_NOFILE; its own ceiling is fs.nr_open.
            target = nrOpen() ?? 1_048_576
        }
        guard target > before else {
            logger.info("open file limit: \(before)")
            return
        }
        limit.rlim_cur = target
        if setrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
            logger.info("open file limit: \(target) (raised from \(before))")
        } else {
            logger.warning("open file limit: \(before) (raising it to \(target) failed: errno \(errno))")
        }
    }

    private static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t {
        __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    }

    private static func nrOpen() -> rlim_t? {
        let fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(String(decoding: bytes.prefix(count), as: UTF8.self).filter(\.isNumber))
        return UInt64(text).map { rlim_t($0) }
    }
}
