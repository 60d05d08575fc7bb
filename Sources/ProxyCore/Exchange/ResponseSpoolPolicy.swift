/// What a FastCGI response does when its client falls behind the backend, without I/O: whether
/// bytes go to a spool or the backend pauses, and what a spool at a limit or behind on its disk
/// writes means for a connection of its own (pause the backend) and a multiplexed one (which
/// must never stall for one client: abort that request).
enum ResponseSpoolPolicy {
    /// How backpressure from the client reaches the backend.
    enum Backpressure: Equatable {
        /// Spool the output (memory, then `temp_dir`).
        case spool
        /// Pause the backend's reads (`response_buffering = off` on a connection of its own).
        case pauseBackend
    }

    static func backpressure(multiplexed: Bool, responseBuffering: Bool) -> Backpressure {
        !multiplexed && !responseBuffering ? .pauseBackend : .spool
    }

    /// After bytes were offered to the spool.
    enum Action: Equatable {
        case keepGoing
        /// The spool took the bytes over its limit (the read under way must go somewhere); the
        /// backend pauses until the client drained it.
        case pauseBackendUntilDrained
        /// The spool's file writes fell behind: the backend pauses until they catch up.
        case pauseBackendForDisk
        /// The request cannot go on without stalling a shared connection: 502, cut.
        case abort(reason: String)
    }

    /// `fullScope`: the limit the spool refused the bytes at (nil: it held them). `loopBacklogged`:
    /// the loop's spools together are too far behind their disk; `spoolBacklogged`: this one is;
    /// `diskPaused`: the backend already waits for this spool's disk.
    static func afterAppend(
        fullScope: String?, multiplexed: Bool, loopBacklogged: Bool, spoolBacklogged: Bool, diskPaused: Bool
    ) -> Action {
        if let fullScope {
            guard !multiplexed else {
                return .abort(reason: "client too slow on a multiplexed connection: \(fullScope) spool limit reached")
            }
            return .pauseBackendUntilDrained
        }
        if multiplexed {
            // temp_dir takes bytes slower than the backend sends them: they pile up in memory,
            // and a shared connection cannot wait for the disk. Only the loop's total bounds
            // them: one spool a few MiB behind a fast backend is normal (a 20 MB response at
            // loopback speed), a thousand of them is not.
            return loopBacklogged
                ? .abort(reason: "client too slow on a multiplexed connection and temp_dir writes behind") : .keepGoing
        }
        // A connection of its own waits for its own writes (so at most max_conns of these).
        return spoolBacklogged && !diskPaused ? .pauseBackendForDisk : .keepGoing
    }
}
