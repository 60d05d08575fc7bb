import Foundation
import NIOCore
import NIOPosix
import ProxyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// ``SystemdWatchdog`` in process: pings stop while one event loop is stuck, and resume after.
@Suite struct SystemdWatchdogTests {
    @Test("WATCHDOG=1 stops while an event loop is blocked and resumes once it runs again")
    func stuckLoopStopsPings() async throws {
        let dir = try TempDir("fcgiproxy-wd")
        let listener = try NotifyListener(path: dir.file("notify.sock"))
        defer { listener.stop() }
        let notifier = try SystemdNotifier(socketPath: listener.path)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let watchdog = SystemdWatchdog(
            notifier: notifier, group: group, watchdogInterval: .milliseconds(50), statusInterval: .seconds(60)
        ) { "serving" }
        watchdog.start()
        defer { watchdog.stop() }

        let pings = { listener.messages.filter { $0 == "WATCHDOG=1" }.count }
        #expect(await listener.waitFor(timeout: .seconds(5)) { $0.filter { $0 == "WATCHDOG=1" }.count >= 3 })

        // Block the second loop for 1 s: at most one more ping (the one whose task it never ran).
        let loops = Array(group.makeIterator())
        loops[1].execute { usleep(1_000_000) }
        try await Task.sleep(for: .milliseconds(200))
        let whileStuck = pings()
        try await Task.sleep(for: .milliseconds(500))
        #expect(pings() <= whileStuck + 1, "pings went on while a loop was blocked: \(whileStuck) → \(pings())")

        // Unblocked: pings resume.
        try await Task.sleep(for: .milliseconds(500))
        let after = pings()
        #expect(await listener.waitFor(timeout: .seconds(5)) { $0.filter { $0 == "WATCHDOG=1" }.count >= after + 3 })
        watchdog.stop()
        try await group.shutdownGracefully()
    }

    @Test("a NOTIFY_SOCKET that is neither absolute nor @abstract is refused")
    func relativeSocketRefused() {
        #expect(throws: SystemdNotifierError.self) { try SystemdNotifier(socketPath: "relative/notify.sock") }
    }
}
