import NIOConcurrencyHelpers
import NIOCore

/// The open client connections of a ``ProxyServer``, for a graceful stop (and a cheap count for
/// status lines).
///
/// On ``quiesce(whenDrained:)`` every connection gets a `ChannelShouldQuiesceEvent`:
/// ``HTTPFrontendHandler`` closes an idle one at once and a busy one after its current response
/// (which then carries `Connection: close`). The promise is fulfilled when the last one closed.
final class ShutdownConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
        var drained: EventLoopPromise<Void>?
    }

    private let state = NIOLockedValueBox(State())

    /// Open client connections.
    var count: Int {
        state.withLockedValue { $0.channels.count }
    }

    /// Tracks a newly accepted connection until it closes. Returns false when the server is
    /// already stopping: the caller must not serve it.
    func add(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let accepted = state.withLockedValue { state in
            guard !state.quiescing else { return false }
            state.channels[id] = channel
            return true
        }
        guard accepted else { return false }
        channel.closeFuture.whenComplete { [self] _ in
            remove(id)
        }
        return true
    }

    private func remove(_ id: ObjectIdentifier) {
        let drained: EventLoopPromise<Void>? = state.withLockedValue { state in
            guard state.channels.removeValue(forKey: id) != nil, state.channels.isEmpty else { return nil }
            defer { state.drained = nil }
            return state.drained
        }
        drained?.succeed()
    }

    /// Asks every connection to finish its current request and close; later connections are
    /// refused. `whenDrained` is fulfilled once no connection is left (at once if none is).
    func quiesce(whenDrained: EventLoopPromise<Void>) {
        let channels: [any Channel]? = state.withLockedValue { state in
            state.quiescing = true
            if state.channels.isEmpty { return nil }
            state.drained = whenDrained
            return Array(state.channels.values)
        }
        guard let channels else {
            whenDrained.succeed()
            return
        }
        for channel in channels {
            channel.eventLoop.execute {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
    }

    /// Closes every connection now, requests in flight or not.
    func closeAll() {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for channel in channels {
            channel.close(promise: nil)
        }
    }
}
