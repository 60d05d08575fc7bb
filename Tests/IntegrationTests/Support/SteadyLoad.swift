import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Closed-loop client load for the fault-injection tests: `connections` clients, each sending one
/// request at a time over a keep-alive connection (a new one after a close or a failure), every
/// request bounded by `limit`, until ``stop()``. Each request is recorded with its start time, so
/// a test can ask what happened after an event.
///
/// Threads, not tasks: the clients block in poll(2), and blocking the few threads of the
/// cooperative pool would stall the test that drives the events.
final class SteadyLoad: @unchecked Sendable {
    struct Sample: Sendable {
        /// When the request was sent, since the load started.
        var start: Duration
        var seconds: Double
        /// 0: no complete response within the limit, or the connection failed.
        var status: Int
    }

    let origin = ContinuousClock.now
    private let lock = NSLock()
    private var samples: [Sample] = []
    private var stopping = false
    private var running: Int
    private let limit: Duration

    init(port: Int, path: String, connections: Int, limit: Duration = .seconds(3)) {
        self.limit = limit
        running = connections
        let request = "GET \(path) HTTP/1.1\r\nHost: fault\r\n\r\n"
        for _ in 0..<connections {
            let thread = Thread { [self] in
                client(port: port, request: request)
                lock.withLock { running -= 1 }
            }
            thread.start()
        }
    }

    /// Time since the load started (to mark events).
    var now: Duration { ContinuousClock.now - origin }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func client(port: Int, request: String) {
        let clock = ContinuousClock()
        var connection: RawHTTP?
        while !isStopping {
            if connection == nil {
                connection = try? RawHTTP(port: port)
                if connection == nil {
                    record(Sample(start: now, seconds: 0, status: 0))
                    usleep(10_000)
                    continue
                }
            }
            let start = clock.now
            let sent = connection!.send(request)
            let reply = sent ? connection!.readResponses(1, timeout: limit) : nil
            let took = clock.now - start
            let status = reply?.finals.first?.status ?? 0
            record(Sample(start: start - origin, seconds: Self.seconds(took), status: status))
            if status == 0 || reply?.closed == true
                || reply?.finals.first?.header("Connection")?.lowercased() == "close"
            {
                connection = nil
            }
        }
    }

    private func record(_ sample: Sample) {
        lock.withLock { samples.append(sample) }
    }

    /// Stops the clients (each finishes its request, bounded by the limit) and returns every sample.
    func stop() async -> [Sample] {
        lock.withLock { stopping = true }
        let deadline = ContinuousClock.now + limit + .seconds(2)
        while lock.withLock({ running }) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return lock.withLock { samples }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// `sent N, 2xx N, failed N (000×2 502×1), max 0.123 s`.
    static func summary(_ samples: [Sample]) -> String {
        let ok = samples.filter { (200..<300).contains($0.status) }.count
        let failed = samples.filter { !(200..<300).contains($0.status) }
        let statuses = PoolLoad.histogram(failed.map(\.status)).sorted { $0.key < $1.key }
            .map { String(format: "%03d×%d", $0.key, $0.value) }.joined(separator: " ")
        let slowest = samples.map(\.seconds).max() ?? 0
        return "sent \(samples.count), 2xx \(ok), failed \(failed.count)\(statuses.isEmpty ? "" : " (\(statuses))"), max \(String(format: "%.3f", slowest)) s"
    }
}
