import Dispatch
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps systemd informed while the daemon runs: `WATCHDOG=1` at half of `WatchdogSec=`, but
/// only while every event loop is responsive, and a `STATUS=` line whenever it changes.
///
/// Liveness: each watchdog period a small task is sent to every event loop; the next ping is
/// sent only if every loop ran the task of the previous period. A loop that is stuck (a busy
/// handler, a deadlock) therefore stops the pings and systemd restarts the service.
/// The timers run on a Dispatch queue of their own, never on an event loop.
public final class SystemdWatchdog: Sendable {
    private struct State {
        /// Period counter; a loop's slot holds the last period it answered.
        var period: UInt64 = 0
        var answered: [UInt64]
        var lastStatus: String?
        var running = false
    }

    private let notifier: SystemdNotifier
    private let loops: [any EventLoop]
    private let watchdogInterval: Duration?
    private let statusInterval: Duration
    private let status: @Sendable () -> String
    private let queue = DispatchQueue(label: "fcgiproxy.systemd")
    private let state: NIOLockedValueBox<State>

    /// The ping interval asked for by `$WATCHDOG_USEC` (half of it), or nil when the watchdog is
    /// off or meant for another process (`$WATCHDOG_PID`). The variables are unset so that
    /// spawned workers do not inherit them.
    public static func intervalFromEnvironment() -> Duration? {
        let usecText = getenv("WATCHDOG_USEC").map { String(cString: $0) }
        let pidText = getenv("WATCHDOG_PID").map { String(cString: $0) }
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        guard let usecText, let usec = UInt64(usecText), usec > 0 else { return nil }
        if let pidText, pid_t(pidText) != getpid() { return nil }
        return .microseconds(max(usec / 2, 1000))
    }

    /// - Parameters:
    ///   - notifier: where to send.
    ///   - group: the event loops that must stay responsive.
    ///   - watchdogInterval: how often to ping (nil: no pings, status lines only).
    ///   - statusInterval: how often to refresh the status line (sent only when it changed).
    ///   - status: the status line, cheap to compute (called on a Dispatch queue).
    public init(
        notifier: SystemdNotifier,
        group: any EventLoopGroup,
        watchdogInterval: Duration?,
        statusInterval: Duration = .seconds(2),
        status: @escaping @Sendable () -> String
    ) {
        self.notifier = notifier
        self.loops = Array(group.makeIterator())
        self.watchdogInterval = watchdogInterval
        self.statusInterval = statusInterval
        self.status = status
        self.state = NIOLockedValueBox(State(answered: Array(repeating: 0, count: loops.count)))
    }

    /// Starts the timers (the first ping goes out at once). Status lines are sent from the
    /// first change on: the current one is assumed known (sent with `READY=1`).
    public func start() {
        let line = status()
        let wasRunning = state.withLockedValue { state in
            defer {
                state.running = true
                state.lastStatus = line
            }
            return state.running
        }
        guard !wasRunning else { return }
        if let watchdogInterval {
            repeatEvery(watchdogInterval, first: .zero) { [self] in watchdogTick() }
        }
        repeatEvery(statusInterval, first: statusInterval) { [self] in statusTick() }
    }

    /// Stops the timers.
    public func stop() {
        state.withLockedValue { $0.running = false }
    }

    private func repeatEvery(_ interval: Duration, first: Duration, _ tick: @escaping @Sendable () -> Void) {
        queue.asyncAfter(deadline: .now() + Self.dispatchInterval(first)) { [self] in
            guard state.withLockedValue({ $0.running }) else { return }
            tick()
            repeatEvery(interval, first: interval, tick)
        }
    }

    private static func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }

    private func watchdogTick() {
        let (allAnswered, period) = state.withLockedValue { state -> (Bool, UInt64) in
            let all = state.answered.allSatisfy { $0 == state.period }
            if all {
                state.period &+= 1
            }
            return (all, state.period)
        }
        guard allAnswered else {
            // Some loop has not run last period's task: no ping, and no new task piled on it.
            return
        }
        notifier.watchdog()
        for (index, loop) in loops.enumerated() {
            loop.execute { [state] in
                state.withLockedValue { $0.answered[index] = period }
            }
        }
    }

    private func statusTick() {
        let line = status()
        let changed = state.withLockedValue { state in
            defer { state.lastStatus = line }
            return state.lastStatus != line
        }
        if changed {
            notifier.status(line)
        }
    }
}
