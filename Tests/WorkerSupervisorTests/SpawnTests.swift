#if os(Linux)
// Linux only: the checks read /proc and rely on PR_SET_PDEATHSIG.
import CSpawn
import Foundation
import NIOCore
import NIOPosix
import ProxyConfig
import Testing

@testable import WorkerSupervisor

/// The process-level guarantees of the C shim: what a worker inherits, and that it dies with
/// its parent.
@Suite(.serialized) struct SpawnTests {
    @Test func workerStartsWithEmptySignalMaskDefaultDispositionsAndOnlyThreeDescriptors() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        // State a proxy typically has and a worker must not inherit: an ignored SIGPIPE and a
        // descriptor without close-on-exec.
        signal(SIGPIPE, SIG_IGN)
        // Far above 0–2 whatever other suites have open: the worker must not see it.
        let opened = open("/dev/null", O_RDONLY)
        let leaky = fcntl(opened, F_DUPFD, 40)
        close(opened)
        defer { close(leaky) }
        #expect(leaky >= 40)

        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning([
                "/bin/sh", "-c",
                "grep -E '^Sig(Blk|Ign)' /proc/self/status >&2; ls /proc/self/fd >&2; readlink /proc/self/fd/0 >&2; echo done >&2; exec sleep 60",
            ]),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let done = await eventually { !recorder.messages(containing: "worker stderr: done").isEmpty }
        await supervisor.stop(grace: .seconds(5))
        #expect(done)

        let lines = recorder.messages(containing: "worker stderr: ").map { String($0.message.dropFirst("worker stderr: ".count)) }
        #expect(lines.contains("SigBlk:\\x090000000000000000"))
        #expect(lines.contains("SigIgn:\\x090000000000000000"))
        // ls sees 0, 1, 2 and the directory it is reading (3); nothing of the proxy's.
        let descriptors = lines.compactMap { Int($0) }
        #expect(Set(descriptors).isSubset(of: [0, 1, 2, 3]))
        #expect(descriptors.contains(0))
        #expect(lines.contains { $0.hasPrefix("socket:[") })
    }

    @Test func workerDiesWhenItsParentIsKilled() async throws {
        // The proxy cannot be SIGKILLed inside this test process, so a forked intermediate plays
        // the proxy: it starts the worker through the same code path, then we SIGKILL it.
        let command = try WorkerCommand(pool: "t", spawn: ["/bin/sleep", "60"], env: [])
        var report: [CInt] = [-1, -1]
        #expect(cspawn_pipe_cloexec(&report) == 0)
        defer {
            close(report[0])
            close(report[1])
        }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }

        let intermediate = try command.spawnViaIntermediate(
            listenDescriptor: devnull,
            outputDescriptor: devnull,
            reportDescriptor: report[1]
        )
        var worker: pid_t = 0
        #expect(read(report[0], &worker, MemoryLayout<pid_t>.size) == MemoryLayout<pid_t>.size)
        #expect(worker > 0)
        #expect(Processes.parent(of: worker) == intermediate)
        #expect(!Processes.isGone(worker))

        #expect(kill(intermediate, SIGKILL) == 0)
        var status: CInt = 0
        #expect(waitpid(intermediate, &status, 0) == intermediate)
        let died = await eventually(within: .seconds(5)) { Processes.isGone(worker) }
        #expect(died)
        if !died {
            kill(worker, SIGKILL)
        }
    }

    @Test func workerOutlivesTheThreadThatAskedForIt() async throws {
        // PR_SET_PDEATHSIG fires when the forking *thread* ends; the shim forks on its own
        // thread, so a worker started from a pool thread that is then retired must survive.
        let command = try WorkerCommand(pool: "t", spawn: ["/bin/sleep", "60"], env: [])
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let pid = try await pool.runIfActive {
            try command.spawn(listenDescriptor: devnull, outputDescriptor: devnull)
        }
        try await pool.shutdownGracefully()

        try await Task.sleep(for: .milliseconds(500))
        #expect(!Processes.isGone(pid))
        #expect(Processes.parent(of: pid) == getpid())
        kill(pid, SIGKILL)
        var status: CInt = 0
        #expect(waitpid(pid, &status, 0) == pid)
    }

    @Test func execFailureIsReportedWithItsErrno() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        // Not executable: execve refuses it even for root.
        let file = "\(folder.path)/data"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644]))
        let command = try WorkerCommand(pool: "t", spawn: [file], env: [])
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        #expect(throws: WorkerSupervisorError.spawnFailed(program: file, errno: EACCES)) {
            _ = try command.spawn(listenDescriptor: devnull, outputDescriptor: devnull)
        }
    }
}

@Suite struct WorkerOutputTests {
    @Test func rateLimiterAdmitsABurstThenRefillsAndCountsDrops() {
        var limiter = RateLimiter(capacity: 2, refillPerSecond: 1)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(limiter.admit(now: start) == (true, 0))
        #expect(limiter.admit(now: start) == (true, 0))
        #expect(limiter.admit(now: start) == (false, 0))
        #expect(limiter.admit(now: start) == (false, 0))
        #expect(limiter.admit(now: start + .milliseconds(1500)) == (true, 2))
        #expect(limiter.admit(now: start + .milliseconds(1600)) == (false, 0))
    }
}
#endif
