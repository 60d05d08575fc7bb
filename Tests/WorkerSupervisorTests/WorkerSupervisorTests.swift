#if os(Linux)
// Linux only: the checks read /proc and rely on PR_SET_PDEATHSIG.
import Foundation
import Logging
import NIOPosix
import ProxyConfig
import Testing

@testable import WorkerSupervisor

// Serialized: these start real processes on two shared cores, and their timing assertions
// should not compete with each other.
@Suite(.serialized) struct WorkerSupervisorTests {
    @Test func workersShareTheSocketAndStopPromptly() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["python3", script], processes: 3),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        let socketPath = "\(folder.path)/app.sock"
        #expect(supervisor.backendAddress == .unix(path: socketPath))
        try supervisor.start()

        let pids = supervisor.childPIDs
        #expect(pids.count == 3)
        for pid in pids {
            #expect(Processes.parent(of: pid) == getpid())
        }
        var mode = stat()
        #expect(stat(socketPath, &mode) == 0)
        #expect(mode.st_mode & 0o777 == 0o600)

        // Blocking accepts on one socket are served in turn, so every worker answers once its
        // interpreter is up (which can take long on two loaded cores).
        var seen = Set<pid_t>()
        let allServed = try await eventually(within: .seconds(30)) {
            seen.insert(try TestWorker.request(supervisor.backendAddress).pid)
            return seen.count == 3
        }
        #expect(allServed)
        #expect(seen == Set(pids))

        let started = ContinuousClock.now
        await supervisor.stop(grace: .seconds(10))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(supervisor.childPIDs.isEmpty)
        for pid in pids {
            #expect(Processes.isGone(pid))
        }
        #expect(access(socketPath, F_OK) != 0)
        #expect(recorder.messages(containing: "SIGKILL").isEmpty)
    }

    @Test func environmentHoldsOnlyTheEnvKeysAndPath() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        setenv("FCGIPROXY_LEAK_CHECK", "must-not-leak", 1)
        let supervisor = try WorkerSupervisor(
            pool: .spawning(
                ["python3", script],
                env: [("GREETING", "hello world"), ("LEVEL", "1"), ("LEVEL", "2")]
            ),
            runDirectory: folder.path,
            logger: LogRecorder().logger()
        )
        try supervisor.start()
        let reply = try TestWorker.request(supervisor.backendAddress)
        await supervisor.stop(grace: .seconds(5))

        #expect(reply.environ == ["GREETING=hello world", "LEVEL=2", "PATH=\(WorkerCommand.defaultSearchPath)"])
        // The worker itself reports PR_GET_PDEATHSIG: the kernel's own word that it dies with us.
        #expect(reply.deathsig == SIGKILL)
    }

    @Test func envCanReplacePath() throws {
        let environment = WorkerCommand.environment([("PATH", "/opt/bin"), ("X", "y")])
        #expect(environment == ["PATH=/opt/bin", "X=y"])
    }

    @Test func killedWorkerIsRestartedAndServesAgain() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["python3", script], processes: 2),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let before = supervisor.childPIDs
        let victim = before[0]
        #expect(kill(victim, SIGKILL) == 0)

        let replaced = await eventually {
            let now = supervisor.childPIDs
            return now.count == 2 && !now.contains(victim)
        }
        #expect(replaced)
        let newcomer = try #require(Set(supervisor.childPIDs).subtracting(before).first)
        // The newcomer joins the accept queue once its interpreter is up; until then the
        // other worker answers.
        var seen = Set<pid_t>()
        let served = try await eventually {
            seen.insert(try TestWorker.request(supervisor.backendAddress).pid)
            return seen.contains(newcomer)
        }
        #expect(served)
        #expect(!seen.contains(victim))
        #expect(!recorder.messages(containing: "killed by signal 9; restart in 100 ms").isEmpty)
        await supervisor.stop(grace: .seconds(5))
        #expect(Processes.isGone(newcomer))
    }

    @Test func workerOutputIsLoggedEscapedWithPoolAndPid() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["python3", script], name: "greeter"),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let pid = try #require(supervisor.childPIDs.first)
        let expected = "worker stderr: hello from \(pid) \\x1b[31mred"
        let logged = await eventually { !recorder.messages(containing: expected).isEmpty }
        await supervisor.stop(grace: .seconds(5))

        #expect(logged)
        let record = try #require(recorder.messages(containing: expected).first)
        #expect(record.message == expected)
        #expect(record.metadata["pool"] == "greeter")
        #expect(record.metadata["pid"] == "\(pid)")
        #expect(record.level == .warning)
    }

    @Test func longLinesAreTruncatedAndLastLineWithoutNewlineIsKept() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["/bin/sh", "-c", "printf '%5000s\\n' x >&2; printf 'last words' >&2; exec sleep 60"]),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let truncated = await eventually { recorder.records.contains { $0.metadata["truncated"] == "true" } }
        #expect(truncated)
        // The final line has no newline: it is only logged when the pipe closes at stop.
        try await Task.sleep(for: .milliseconds(200))
        #expect(recorder.messages(containing: "last words").isEmpty)
        await supervisor.stop(grace: .seconds(5))
        #expect(recorder.messages(containing: "worker stderr: last words").count == 1)

        let long = try #require(recorder.records.first { $0.metadata["truncated"] == "true" })
        #expect(long.message == "worker stderr: " + String(repeating: " ", count: WorkerOutputLog.maxLineLength) + "…")
        // The rest of the long line (up to its newline) is dropped, not logged as another line.
        #expect(recorder.messages(containing: "worker stderr: ").count == 2)
    }

    @Test func stopEscalatesToSIGKILLAfterGrace() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["python3", script, "ignore-term"], processes: 2),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let pids = supervisor.childPIDs
        // The greeting comes after the SIGTERM handler is in place.
        let ready = await eventually { recorder.messages(containing: "hello from").count == 2 }
        #expect(ready)

        let started = ContinuousClock.now
        await supervisor.stop(grace: .milliseconds(500))
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(500))
        #expect(elapsed < .seconds(5))
        for pid in pids {
            #expect(Processes.isGone(pid))
        }
        #expect(!recorder.messages(containing: "SIGKILL").isEmpty)
        #expect(recorder.messages(containing: "killed by signal 9").count == 2)
    }

    @Test func crashingWorkerIsRestartedWithGrowingDelays() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let recorder = LogRecorder()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["/bin/sh", "-c", "exit 3"]),
            runDirectory: folder.path,
            logger: recorder.logger()
        )
        try supervisor.start()
        let crashed = await eventually { recorder.messages(containing: "exited with status 3").count >= 3 }
        await supervisor.stop(grace: .seconds(1))

        #expect(crashed)
        let delays = recorder.messages(containing: "exited with status 3; restart in").map(\.message)
        #expect(delays.prefix(3).map { $0.components(separatedBy: "restart in ").last } == ["100 ms", "200 ms", "400 ms"])
    }

    @Test func restartDelayDoublesUpToTheCap() {
        #expect(WorkerSupervisor.restartDelay(afterFailures: 0) == .milliseconds(100))
        #expect(WorkerSupervisor.restartDelay(afterFailures: 1) == .milliseconds(200))
        #expect(WorkerSupervisor.restartDelay(afterFailures: 3) == .milliseconds(800))
        #expect(WorkerSupervisor.restartDelay(afterFailures: 7) == .seconds(10))
        #expect(WorkerSupervisor.restartDelay(afterFailures: 10_000) == .seconds(10))
    }

    @Test func tcpBackendIsBoundAndReportsItsPort() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let script = try folder.writeWorkerScript()
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["python3", script], backends: [.tcp(host: "127.0.0.1", port: 0)]),
            runDirectory: folder.path,
            logger: LogRecorder().logger()
        )
        guard case .tcp(let host, let port) = supervisor.backendAddress else {
            Issue.record("expected a TCP address, got \(supervisor.backendAddress)")
            return
        }
        #expect(host == "127.0.0.1")
        #expect(port != 0)
        try supervisor.start()
        let reply = try TestWorker.request(supervisor.backendAddress)
        #expect(supervisor.childPIDs == [reply.pid])
        await supervisor.stop(grace: .seconds(5))
    }

    @Test func socketPlacement() throws {
        let pool = PoolConfig.spawning(["w"], name: "php")
        #expect(try WorkerSupervisor.backendAddress(for: pool, runDirectory: "/run/fcgiproxy/") == .unix(path: "/run/fcgiproxy/php.sock"))
        let configured = PoolConfig.spawning(["w"], backends: [.unix(path: "/srv/w.sock")])
        #expect(try WorkerSupervisor.backendAddress(for: configured, runDirectory: "/run") == .unix(path: "/srv/w.sock"))
        let ambiguous = PoolConfig.spawning(["w"], backends: [.unix(path: "/a"), .unix(path: "/b")], name: "two")
        #expect(throws: WorkerSupervisorError.severalBackends(pool: "two")) {
            try WorkerSupervisor.backendAddress(for: ambiguous, runDirectory: "/run")
        }
    }

    @Test func staleSocketIsReplacedButLiveOneAndOtherFilesAreNot() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = "\(folder.path)/w.sock"
        // What a SIGKILLed proxy leaves: a socket file nobody listens on.
        let stale = try ListeningSocket.make(.unix(path: path))
        _ = close(stale.descriptor)
        #expect(access(path, F_OK) == 0)

        let pool = PoolConfig.spawning(["/bin/sleep", "60"], backends: [.unix(path: path)])
        let first = try WorkerSupervisor(pool: pool, runDirectory: folder.path, logger: LogRecorder().logger())
        #expect(throws: WorkerSupervisorError.addressInUse("unix:\(path)")) {
            _ = try WorkerSupervisor(pool: pool, runDirectory: folder.path, logger: LogRecorder().logger())
        }
        await first.stop(grace: .seconds(1))

        let file = "\(folder.path)/plain"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep".utf8)))
        #expect(throws: WorkerSupervisorError.notASocket(file)) {
            _ = try WorkerSupervisor(
                pool: .spawning(["/bin/sleep", "60"], backends: [.unix(path: file)]),
                runDirectory: folder.path,
                logger: LogRecorder().logger()
            )
        }
        #expect(access(file, F_OK) == 0)
    }

    @Test func missingProgramIsReportedBeforeAnythingRuns() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        #expect(throws: WorkerSupervisorError.programNotFound(program: "no-such-worker-xyz", searchPath: WorkerCommand.defaultSearchPath)) {
            _ = try WorkerSupervisor(
                pool: .spawning(["no-such-worker-xyz"]),
                runDirectory: folder.path,
                logger: LogRecorder().logger()
            )
        }
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["/no/such/worker"], processes: 2),
            runDirectory: folder.path,
            logger: LogRecorder().logger()
        )
        #expect(throws: WorkerSupervisorError.spawnFailed(program: "/no/such/worker", errno: ENOENT)) {
            try supervisor.start()
        }
        #expect(supervisor.childPIDs.isEmpty)
        await supervisor.stop(grace: .seconds(1))
    }

    @Test func stopStillWorksAfterTheEventLoopIsGone() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["/bin/sleep", "60"], processes: 2),
            runDirectory: folder.path,
            logger: LogRecorder().logger(),
            eventLoopGroup: group
        )
        try supervisor.start()
        let pids = supervisor.childPIDs
        try await group.shutdownGracefully()

        let started = ContinuousClock.now
        await supervisor.stop(grace: .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(4))
        for pid in pids {
            #expect(Processes.isGone(pid))
        }
    }

    @Test func startTwiceIsRefused() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let supervisor = try WorkerSupervisor(
            pool: .spawning(["/bin/sleep", "60"]),
            runDirectory: folder.path,
            logger: LogRecorder().logger()
        )
        try supervisor.start()
        #expect(throws: WorkerSupervisorError.alreadyStarted) { try supervisor.start() }
        await supervisor.stop(grace: .seconds(5))
        #expect(throws: WorkerSupervisorError.alreadyStarted) { try supervisor.start() }
    }
}
#endif
