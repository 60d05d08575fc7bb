#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSpawn
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyConfig

/// Runs the worker processes of one `[pool:NAME]` that has `spawn =`.
///
/// The supervisor binds the pool's listening socket (see ``backendAddress``) and starts
/// `processes` copies of the command with that socket as fd 0 (`FCGI_LISTENSOCK_FILENO`), the
/// spawn-fcgi convention. A worker gets:
/// - fd 0: the listening socket; fd 1 and 2: a pipe whose lines are logged with the pool name
///   (escaped, truncated, rate-limited); no other descriptor;
/// - an environment made only of the pool's `env = NAME VALUE` keys, plus
///   `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` unless `env` sets PATH;
/// - an empty signal mask, default dispositions, its own session and process group;
/// - `PR_SET_PDEATHSIG(SIGKILL)`: it dies with the proxy, even when the proxy is SIGKILLed.
///
/// A worker that exits while the supervisor runs is restarted after 100 ms × 2ⁿ (n = failures
/// in a row, capped at 10 s); a worker that ran 10 s or longer counts as healthy again.
/// Exits are noticed by polling `waitpid(pid, WNOHANG)` every ``reapInterval``, rather than
/// through SIGCHLD, whose disposition is process-wide and which would also report children
/// that are not ours.
///
/// Call ``stop(grace:)`` before the process exits; PDEATHSIG is the safety net, not the plan.
public final class WorkerSupervisor: Sendable {
    /// The first restart waits this long; each further failure in a row doubles it.
    public static let initialRestartDelay = TimeAmount.milliseconds(100)
    /// Longest wait before a restart.
    public static let maxRestartDelay = TimeAmount.seconds(10)
    /// A worker that ran this long resets the backoff.
    public static let stableRunTime = TimeAmount.seconds(10)
    /// How often exited workers are looked for.
    public static let reapInterval = TimeAmount.milliseconds(100)

    /// The pool's name (also the `pool` metadata of every log record).
    public let pool: String
    /// How many workers run at once.
    public let processes: Int

    private let socket: ListeningSocket
    private let command: WorkerCommand
    private let logger: Logger
    private let output: WorkerOutputLog
    private let eventLoop: any EventLoop
    private let state: NIOLockedValueBox<State>

    /// Binds the pool's listening socket; no process starts before ``start()``.
    ///
    /// - Parameters:
    ///   - pool: a pool with `spawn`; its single `backend`, if any, is where the socket is bound.
    ///   - runDirectory: existing folder for `<pool>.sock` when the pool has no `backend`.
    ///   - logger: receives worker output and lifecycle events; `pool` metadata is added.
    ///   - eventLoopGroup: one of its loops runs the reaper, restarts and output reading.
    public init(
        pool: PoolConfig,
        runDirectory: String,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        guard let spawn = pool.spawn else {
            throw WorkerSupervisorError.noCommand(pool: pool.name)
        }
        self.pool = pool.name
        self.processes = max(1, pool.processes)
        self.command = try WorkerCommand(pool: pool.name, spawn: spawn, env: pool.env)
        var logger = logger
        logger[metadataKey: "pool"] = "\(pool.name)"
        self.logger = logger
        self.output = WorkerOutputLog(logger: logger)
        self.eventLoop = eventLoopGroup.next()
        self.socket = try ListeningSocket.make(Self.backendAddress(for: pool, runDirectory: runDirectory))
        self.state = NIOLockedValueBox(State(workers: Array(repeating: Worker(), count: self.processes)))
    }

    deinit {
        // Only reached without stop() (a failed start, a test that threw): kill without grace
        // rather than leave workers behind.
        let pids = state.withLockedValue { state in
            defer { state.workers = [] }
            return state.workers.compactMap(\.pid)
        }
        for pid in pids {
            Self.signal(pid, SIGKILL)
            while waitpid(pid, nil, 0) < 0 && errno == EINTR {}
        }
        if !state.withLockedValue(\.socketClosed) {
            socket.release()
        }
    }

    /// The address the workers' socket is bound to, where the proxy connects (for a TCP
    /// `backend` with port 0, the port the kernel picked).
    public var backendAddress: SocketAddressSpec {
        socket.address
    }

    /// Where a pool's workers listen: its `backend` if it has one, else `<runDirectory>/<pool>.sock`.
    public static func backendAddress(for pool: PoolConfig, runDirectory: String) throws -> SocketAddressSpec {
        switch pool.backends.count {
        case 0:
            let folder = runDirectory.hasSuffix("/") ? String(runDirectory.dropLast()) : runDirectory
            return .unix(path: "\(folder)/\(pool.name).sock")
        case 1:
            return pool.backends[0]
        default:
            throw WorkerSupervisorError.severalBackends(pool: pool.name)
        }
    }

    /// The pids of the workers running now.
    public var childPIDs: [pid_t] {
        state.withLockedValue { $0.workers.compactMap(\.pid) }
    }

    /// Starts all workers; throws if one cannot be started (then none is left running).
    ///
    /// Blocks for the fork and exec handshake of each worker (milliseconds).
    public func start() throws {
        let started: [(descriptor: CInt, pid: pid_t)] = try state.withLockedValue { state in
            guard state.phase == .created else {
                throw WorkerSupervisorError.alreadyStarted
            }
            var started: [(descriptor: CInt, pid: pid_t)] = []
            do {
                for index in 0..<processes {
                    started.append(try launch(index, &state))
                }
            } catch {
                for worker in started {
                    _ = close(worker.descriptor)
                    Self.signal(worker.pid, SIGKILL)
                    while waitpid(worker.pid, nil, 0) < 0 && errno == EINTR {}
                }
                state.workers = Array(repeating: Worker(), count: processes)
                throw error
            }
            state.phase = .running
            // The reaper ends itself once stopped: cancelling it from stop would schedule work
            // on the loop, which may already be shut down by then.
            eventLoop.scheduleRepeatedTask(initialDelay: Self.reapInterval, delay: Self.reapInterval) {
                [weak self] task in
                guard let self, self.state.withLockedValue({ $0.phase }) != .stopped else {
                    task.cancel()
                    return
                }
                self.reap()
            }
            return started
        }
        for worker in started {
            attachOutput(descriptor: worker.descriptor, pid: worker.pid)
        }
        logger.info(
            "started \(processes) workers on \(socket.address)",
            metadata: ["pids": "\(started.map(\.pid))", "command": "\(command.arguments)"]
        )
    }

    /// Stops the workers: SIGTERM to each worker's process group, up to `grace` for them to
    /// exit, SIGKILL for the rest; returns once all are reaped, their output is closed and the
    /// listening socket is closed (and its file removed). No worker is restarted after this
    /// begins. Not cancellable: leaving workers behind is never the better outcome.
    public func stop(grace: Duration) async {
        let pids = state.withLockedValue { state -> [pid_t] in
            if state.phase != .stopped {
                state.phase = .stopping
            }
            for index in state.workers.indices {
                state.workers[index].restart?.cancel()
                state.workers[index].restart = nil
            }
            return state.workers.compactMap(\.pid)
        }
        for pid in pids {
            Self.signal(pid, SIGTERM)
        }

        let deadline = ContinuousClock.now + grace
        while reap() > 0 && ContinuousClock.now < deadline {
            await pause(.milliseconds(20))
        }
        let stubborn = childPIDs
        if !stubborn.isEmpty {
            logger.warning(
                "workers still running after \(grace): SIGKILL",
                metadata: ["pids": "\(stubborn)"]
            )
            for pid in stubborn {
                Self.signal(pid, SIGKILL)
            }
            // SIGKILL cannot be refused, but a process stuck in uninterruptible sleep (a dead
            // NFS mount) dies only when that ends; stop must not hang the proxy's exit on it.
            let killDeadline = ContinuousClock.now + .seconds(10)
            while reap() > 0 && ContinuousClock.now < killDeadline {
                await pause(.milliseconds(10))
            }
            let unkillable = childPIDs
            if !unkillable.isEmpty {
                logger.error("workers survive SIGKILL, giving up on them", metadata: ["pids": "\(unkillable)"])
            }
        }

        // The dead workers' last lines may still sit in their pipes: let those drain to EOF
        // for a moment before closing what remains (pipes a worker's own children hold open).
        let drainDeadline = ContinuousClock.now + .milliseconds(500)
        while !state.withLockedValue(\.outputs.isEmpty) && ContinuousClock.now < drainDeadline {
            await pause(.milliseconds(10))
        }

        let (channels, closeSocket) = state.withLockedValue { state in
            state.phase = .stopped
            defer {
                state.outputs = [:]
                state.socketClosed = true
            }
            return (Array(state.outputs.values), !state.socketClosed)
        }
        for channel in channels {
            channel.close(promise: nil)
        }
        if closeSocket {
            socket.release()
            logger.info("workers stopped")
        }
    }

    /// 100 ms × 2^failures, capped at ``maxRestartDelay``.
    static func restartDelay(afterFailures failures: Int) -> TimeAmount {
        let doublings = min(max(failures, 0), 20)
        let delay = initialRestartDelay.nanoseconds << doublings
        return .nanoseconds(min(delay, maxRestartDelay.nanoseconds))
    }

    // MARK: - Internals

    private enum Phase {
        case created, running, stopping, stopped
    }

    private struct Worker {
        var pid: pid_t?
        var startedAt = NIODeadline.now()
        var failures = 0
        var restart: Scheduled<Void>?
    }

    private struct State {
        var phase = Phase.created
        var workers: [Worker]
        /// Open output pipes, closed at stop.
        var outputs: [ObjectIdentifier: any Channel] = [:]
        var socketClosed = false
    }

    /// Forks worker `index`; returns the read end of its output pipe, to be attached once the
    /// lock is released (NIO may call back synchronously).
    private func launch(_ index: Int, _ state: inout State) throws -> (descriptor: CInt, pid: pid_t) {
        var pipe: [CInt] = [-1, -1]
        guard cspawn_pipe_cloexec(&pipe) == 0 else {
            throw WorkerSupervisorError.spawnFailed(program: command.executable, errno: errno)
        }
        let pid: pid_t
        do {
            pid = try command.spawn(listenDescriptor: socket.descriptor, outputDescriptor: pipe[1])
        } catch {
            _ = close(pipe[0])
            _ = close(pipe[1])
            throw error
        }
        // Only the worker may hold the write end, or the pipe would never report EOF.
        _ = close(pipe[1])
        state.workers[index].pid = pid
        state.workers[index].startedAt = .now()
        return (pipe[0], pid)
    }

    private func attachOutput(descriptor: CInt, pid: pid_t) {
        let output = self.output
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WorkerOutputHandler(log: output, pid: pid))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .whenComplete { [weak self] result in
                switch result {
                case .success(let channel):
                    guard let self else {
                        channel.close(promise: nil)
                        return
                    }
                    let key = ObjectIdentifier(channel)
                    let keep = self.state.withLockedValue { state in
                        guard state.phase != .stopped else { return false }
                        state.outputs[key] = channel
                        return true
                    }
                    if !keep {
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { [weak self] _ in
                        _ = self?.state.withLockedValue { $0.outputs.removeValue(forKey: key) }
                    }
                case .failure(let error):
                    // On failure the descriptor is still ours.
                    _ = close(descriptor)
                    self?.logger.error("cannot read worker output: \(error)", metadata: ["pid": "\(pid)"])
                }
            }
    }

    /// Collects exited workers and schedules their restarts; returns how many still run.
    @discardableResult
    private func reap() -> Int {
        state.withLockedValue { state in
            var running = 0
            for index in state.workers.indices {
                guard let pid = state.workers[index].pid else { continue }
                var status: CInt = 0
                let result = waitpid(pid, &status, WNOHANG)
                // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN); it is gone all the same.
                guard result == pid || (result < 0 && errno == ECHILD) else {
                    running += 1
                    continue
                }
                state.workers[index].pid = nil
                let how = result == pid ? Self.describe(status) : "exited (status unknown)"
                guard state.phase == .running else {
                    logger.info("worker \(how)", metadata: ["pid": "\(pid)"])
                    continue
                }
                let lived = NIODeadline.now() - state.workers[index].startedAt
                if lived >= Self.stableRunTime {
                    state.workers[index].failures = 0
                }
                let delay = scheduleRestart(index, &state)
                logger.error(
                    "worker \(how); restart in \(delay.nanoseconds / 1_000_000) ms",
                    metadata: ["pid": "\(pid)"]
                )
            }
            return running
        }
    }

    private func scheduleRestart(_ index: Int, _ state: inout State) -> TimeAmount {
        let delay = Self.restartDelay(afterFailures: state.workers[index].failures)
        state.workers[index].failures += 1
        state.workers[index].restart = eventLoop.scheduleTask(in: delay) { [weak self] in
            self?.restart(index)
        }
        return delay
    }

    private func restart(_ index: Int) {
        let started: (descriptor: CInt, pid: pid_t)? = state.withLockedValue { state in
            state.workers[index].restart = nil
            guard state.phase == .running, state.workers[index].pid == nil else { return nil }
            do {
                return try launch(index, &state)
            } catch {
                let delay = scheduleRestart(index, &state)
                logger.error("\(error); retry in \(delay.nanoseconds / 1_000_000) ms")
                return nil
            }
        }
        if let started {
            attachOutput(descriptor: started.descriptor, pid: started.pid)
            logger.info("worker restarted", metadata: ["pid": "\(started.pid)"])
        }
    }

    private func pause(_ amount: TimeAmount) async {
        // Not an event-loop timer: stop must work after the daemon shut its loops down, and NIO
        // never completes a task scheduled on a dead loop.
        do {
            try await Task.sleep(nanoseconds: UInt64(max(0, amount.nanoseconds)))
        } catch {
            // Cancelled: the workers must still be waited for, and a short blocking nap beats
            // spinning until the deadline.
            usleep(useconds_t(max(0, amount.nanoseconds / 1000)))
        }
    }

    /// Signals the worker's process group (it leads one, so helpers it started go too), or the
    /// worker alone if it left that group.
    private static func signal(_ pid: pid_t, _ signal: CInt) {
        if kill(-pid, signal) != 0 {
            _ = kill(pid, signal)
        }
    }

    private static func describe(_ status: CInt) -> String {
        // WIFEXITED / WTERMSIG are macros Swift does not import.
        let signal = status & 0x7f
        if signal == 0 {
            return "exited with status \((status >> 8) & 0xff)"
        }
        let core = status & 0x80 != 0 ? ", core dumped" : ""
        return "killed by signal \(signal)\(core)"
    }
}
