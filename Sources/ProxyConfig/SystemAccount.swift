#if canImport(Glibc)
import Glibc
#endif

/// Users and groups of the system database (`/etc/passwd`, `/etc/group`, NSS), for `user =` and
/// `group =`: looked up when the file is read, so that a typo is a config error with its line
/// rather than a failure after the listeners are bound.
public enum SystemAccount {
    /// A user's ids.
    public struct User: Sendable, Equatable {
        public var name: String
        public var uid: uid_t
        public var gid: gid_t
    }

    /// The user named `name`, or with that numeric id.
    public static func lookUpUser(_ name: String) -> User? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let status: CInt
        if let uid = uid_t(name) {
            status = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
        } else {
            status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, result != nil else { return nil }
        return User(name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid)
    }

    /// The id of the group named `name`, or `name` itself when numeric and known.
    public static func lookUpGroup(_ name: String) -> gid_t? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let status: CInt
        if let gid = gid_t(name) {
            status = getgrgid_r(gid, &entry, &buffer, buffer.count, &result)
        } else {
            status = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    static func user(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        guard lookUpUser(value.text) != nil else {
            throw ConfigValue.ValueError("an existing user name or uid (no user \"\(value.text)\" on this system)")
        }
        return value.text
    }

    static func group(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        guard lookUpGroup(value.text) != nil else {
            throw ConfigValue.ValueError("an existing group name or gid (no group \"\(value.text)\" on this system)")
        }
        return value.text
    }
}
