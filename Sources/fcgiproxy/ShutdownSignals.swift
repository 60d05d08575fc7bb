import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT, caught from the start of the process: the first one asks for a graceful
/// stop (``waitForFirst()`` returns), every later one for an immediate one (``onRepeat``).
final class ShutdownSignals: @unchecked Sendable {
    private struct State {
        var received: [Int32] = []
        var waiter: CheckedContinuation<Int32, Never>?
        var onRepeat: (@Sendable (Int32) -> Void)?
    }

    private let state = NIOLockedValueBox(State())
    /// Only touched in `init` and `cancel()`, both on the main task.
    private var sources: [any DispatchSourceSignal] = []

    init() {
        // Handled here, not by the default action; spawned workers get default actions back
        // (CSpawn resets ignored signals before exec).
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [state] in
                let (waiter, repeatHandler): (CheckedContinuation<Int32, Never>?, (@Sendable (Int32) -> Void)?) =
                    state.withLockedValue { state in
                        state.received.append(number)
                        if state.received.count == 1 {
                            defer { state.waiter = nil }
                            return (state.waiter, nil)
                        }
                        return (nil, state.onRepeat)
                    }
                waiter?.resume(returning: number)
                repeatHandler?(number)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Suspends until the first stop signal (returns at once if it already came) and returns it.
    func waitForFirst() async -> Int32 {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            let first: Int32? = state.withLockedValue { state in
                if let first = state.received.first { return first }
                state.waiter = continuation
                return nil
            }
            if let first {
                continuation.resume(returning: first)
            }
        }
    }

    /// Called for each stop signal after the first (also at once, when one already came).
    func onRepeat(_ handler: @escaping @Sendable (Int32) -> Void) {
        let already = state.withLockedValue { state in
            state.onRepeat = handler
            return Array(state.received.dropFirst())
        }
        for number in already {
            handler(number)
        }
    }

    /// True once more than one stop signal arrived.
    var repeated: Bool {
        state.withLockedValue { $0.received.count > 1 }
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        default: return "signal \(number)"
        }
    }
}
