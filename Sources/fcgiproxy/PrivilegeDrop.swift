#if canImport(Glibc)
import Glibc
#endif
import CDropPrivileges
import Logging
import ProxyConfig

/// `user =` / `group =` of `[server]`: leaves root once everything that needs it is done
/// (listeners bound, workers' sockets made; workers are started after, so they run as that
/// user too).
enum PrivilegeDrop {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The ids to switch to, or nil when neither key is set.
    static func target(user: String?, group: String?) throws -> (uid: uid_t?, gid: gid_t, userName: String?)? {
        guard user != nil || group != nil else { return nil }
        var account: SystemAccount.User?
        if let user {
            guard let found = SystemAccount.lookUpUser(user) else { throw Failure(description: "no user \"\(user)\"") }
            account = found
        }
        var gid = account?.gid ?? getgid()
        if let group {
            guard let found = SystemAccount.lookUpGroup(group) else { throw Failure(description: "no group \"\(group)\"") }
            gid = found
        }
        return (account?.uid, gid, account?.name)
    }

    /// Gives `paths` (sockets of spawned workers, their folder) to the target ids, so that the
    /// proxy can still connect to and remove them afterwards.
    static func handOver(_ paths: [String], uid: uid_t?, gid: gid_t) {
        for path in paths {
            _ = chown(path, uid ?? uid_t.max, gid)
        }
    }

    /// setgroups (the user's supplementary groups, or only `gid`), setgid, setuid; then checks
    /// that root cannot be regained. Without root, logs that the keys are ignored.
    static func drop(uid: uid_t?, gid: gid_t, userName: String?, logger: Logger) throws {
        guard geteuid() == 0 else {
            logger.warning("user/group in [server] ignored: not running as root (uid \(geteuid()))")
            return
        }
        // The user's own supplementary groups (e.g. www-data for PHP-FPM's socket) are kept.
        if let userName {
            guard initgroups(userName, gid) == 0 else { throw Failure(description: "initgroups(\(userName)): errno \(errno)") }
        } else {
            var groups = [gid]
            guard setgroups(1, &groups) == 0 else { throw Failure(description: "setgroups: errno \(errno)") }
        }
        guard setgid(gid) == 0 else { throw Failure(description: "setgid(\(gid)): errno \(errno)") }
        if let uid {
            // glibc applies this to every thread of the process, the spawning thread included.
            guard setuid(uid) == 0 else { throw Failure(description: "setuid(\(uid)): errno \(errno)") }
            guard uid == 0 || setuid(0) != 0 else { throw Failure(description: "root could be regained after setuid(\(uid))") }
        }
        // glibc leaves out the main thread parked by the Swift async main (see CDropPrivileges).
        var groups = [gid_t](repeating: 0, count: 256)
        let count = getgroups(Int32(groups.count), &groups)
        guard count >= 0 else { throw Failure(description: "getgroups: errno \(errno)") }
        let mainThread = cdrop_main_thread(uid ?? uid_t.max, gid, groups, count)
        guard mainThread == 0 else { throw Failure(description: "dropping privileges of the main thread: errno \(mainThread)") }
        logger.info("running as uid \(getuid()), gid \(getgid())\(userName.map { " (\($0))" } ?? "")")
    }
}
