import CSpawn

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A pool's worker command line and environment, turned into C strings once.
///
/// Built before any fork because the child side of a fork in a multithreaded process may not
/// allocate; immutable afterwards, which is why sharing it across threads is safe.
final class WorkerCommand: @unchecked Sendable {
    /// `PATH` of the workers unless `env = PATH …` says otherwise: systemd's default, so a worker
    /// behaves the same whether the proxy was started from a shell or by systemd, and nothing of
    /// the proxy's own environment leaks into it.
    static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The file that is executed.
    let executable: String
    /// argv as configured (argv[0] is the name as written in `spawn =`).
    let arguments: [String]
    /// `NAME=VALUE` entries, exactly the worker's environment.
    let environment: [String]

    private let cExecutable: UnsafeMutablePointer<CChar>
    private let argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    init(pool: String, spawn: [String], env: [(name: String, value: String)]) throws {
        guard let program = spawn.first, !program.isEmpty else {
            throw WorkerSupervisorError.noCommand(pool: pool)
        }
        environment = Self.environment(env)
        let searchPath =
            environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? Self.defaultSearchPath
        executable = try Self.resolve(program, searchPath: searchPath)
        arguments = spawn
        cExecutable = strdup(executable)
        argv = Self.cArray(arguments)
        envp = Self.cArray(environment)
    }

    deinit {
        free(cExecutable)
        Self.freeArray(argv, count: arguments.count)
        Self.freeArray(envp, count: environment.count)
    }

    /// Forks and execs one worker; returns its pid, or throws the errno of fork or exec.
    func spawn(listenDescriptor: CInt, outputDescriptor: CInt) throws -> pid_t {
        var error: CInt = 0
        let pid = cspawn_start(cExecutable, argv, envp, listenDescriptor, outputDescriptor, &error)
        guard pid > 0 else {
            throw WorkerSupervisorError.spawnFailed(program: executable, errno: error)
        }
        return pid
    }

    /// Test hook: the same start, but from a forked intermediate process (see CSpawn.h).
    func spawnViaIntermediate(listenDescriptor: CInt, outputDescriptor: CInt, reportDescriptor: CInt) throws -> pid_t {
        var error: CInt = 0
        let pid = cspawn_test_spawn_via_intermediate(
            cExecutable, argv, envp, listenDescriptor, outputDescriptor, reportDescriptor, &error
        )
        guard pid > 0 else {
            throw WorkerSupervisorError.spawnFailed(program: executable, errno: error)
        }
        return pid
    }

    /// The `env =` keys, a later one with the same name replacing an earlier one in place
    /// (execve would keep both and most programs would see the first), plus the default PATH.
    static func environment(_ env: [(name: String, value: String)]) -> [String] {
        var names: [String] = []
        var values: [String: String] = [:]
        for (name, value) in env {
            if values.updateValue(value, forKey: name) == nil {
                names.append(name)
            }
        }
        if values["PATH"] == nil {
            names.append("PATH")
            values["PATH"] = defaultSearchPath
        }
        return names.map { "\($0)=\(values[$0]!)" }
    }

    /// A name with a slash is taken as is (relative to the proxy's working directory); a bare
    /// name is looked up in the workers' PATH, the one they will see, not in the proxy's.
    static func resolve(_ program: String, searchPath: String) throws -> String {
        if program.contains("/") {
            return program
        }
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(directory)/\(program)"
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw WorkerSupervisorError.programNotFound(program: program, searchPath: searchPath)
    }

    private static func cArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() {
            array[index] = strdup(string)
        }
        array[strings.count] = nil
        return array
    }

    private static func freeArray(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, count: Int) {
        for index in 0..<count {
            free(array[index])
        }
        array.deallocate()
    }
}
