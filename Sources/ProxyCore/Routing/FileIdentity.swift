#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which version of which file a `stat(2)` saw: equal identities mean the same inode with the
/// same size, content time and inode-change time, so bytes read from it then are still its
/// bytes now. The change time (ctime) moves on every write and cannot be set from user space
/// (unlike the mtime, which `touch -d` or an archive extractor sets at will).
struct FileIdentity: Equatable, Sendable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int = 0
    var modifiedSeconds: Int = 0
    var modifiedNanoseconds: Int = 0
    var changedSeconds: Int = 0
    var changedNanoseconds: Int = 0

    init(
        device: UInt64 = 0, inode: UInt64 = 0, size: Int = 0, modifiedSeconds: Int = 0, modifiedNanoseconds: Int = 0,
        changedSeconds: Int = 0, changedNanoseconds: Int = 0
    ) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedSeconds = modifiedSeconds
        self.modifiedNanoseconds = modifiedNanoseconds
        self.changedSeconds = changedSeconds
        self.changedNanoseconds = changedNanoseconds
    }

    /// What `stat`, `lstat` or `fstat` filled in.
    init(_ info: stat) {
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        let changed = info.st_ctimespec
        #else
        let modified = info.st_mtim
        let changed = info.st_ctim
        #endif
        self.init(
            device: UInt64(truncatingIfNeeded: info.st_dev), inode: UInt64(truncatingIfNeeded: info.st_ino),
            size: Int(info.st_size), modifiedSeconds: Int(modified.tv_sec), modifiedNanoseconds: Int(modified.tv_nsec),
            changedSeconds: Int(changed.tv_sec), changedNanoseconds: Int(changed.tv_nsec))
    }
}
