#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a pool's workers could not be set up or started.
public enum WorkerSupervisorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pool has no `spawn =` command.
    case noCommand(pool: String)
    /// A spawned pool listens on one socket; several `backend =` addresses are ambiguous.
    case severalBackends(pool: String)
    /// A bare program name was not found in the workers' `PATH`.
    case programNotFound(program: String, searchPath: String)
    /// A Unix socket path longer than `sun_path` allows.
    case socketPathTooLong(String)
    /// Another process is accepting on the address.
    case addressInUse(String)
    /// Something other than a socket exists where the Unix socket goes; it is not removed.
    case notASocket(String)
    /// A system call on the listening socket failed.
    case socketFailed(operation: String, address: String, errno: Int32)
    /// fork or exec of the worker failed.
    case spawnFailed(program: String, errno: Int32)
    /// `start()` on a supervisor that was started or stopped before.
    case alreadyStarted

    public var description: String {
        switch self {
        case .noCommand(let pool):
            return "pool \"\(pool)\" has no spawn command"
        case .severalBackends(let pool):
            return "pool \"\(pool)\": spawned workers listen on one socket, but several backends are configured"
        case .programNotFound(let program, let searchPath):
            return "spawn: \"\(program)\" not found in PATH \(searchPath)"
        case .socketPathTooLong(let path):
            return "socket path too long: \(path)"
        case .addressInUse(let address):
            return "\(address) is in use by another process"
        case .notASocket(let path):
            return "\(path) exists and is not a socket"
        case .socketFailed(let operation, let address, let code):
            return "\(operation) \(address): \(Self.message(code))"
        case .spawnFailed(let program, let code):
            return "cannot start \(program): \(Self.message(code))"
        case .alreadyStarted:
            return "worker supervisor already started"
        }
    }

    private static func message(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
