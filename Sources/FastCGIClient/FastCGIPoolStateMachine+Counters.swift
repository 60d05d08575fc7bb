extension FastCGIPoolStateMachine {
    /// A snapshot of the shard for metrics and the status page. Totals only grow; gauges
    /// (connections, queue) describe the moment of reading. Shards are summed by the caller.
    public struct Counters: Sendable, Equatable {
        /// Failures by kind, as metric labels.
        public struct Errors: Sendable, Equatable {
            public var connectFailed = 0
            public var connectTimeout = 0
            /// EAGAIN on connect: the backend's listen backlog was full.
            public var connectOverloaded = 0
            public var readTimeout = 0
            public var closedEarly = 0
            public var protocolViolation = 0
            /// END_REQUEST with OVERLOADED, CANT_MPX_CONN or UNKNOWN_ROLE.
            public var rejected = 0
            /// Pool-level only: requests turned away or timed out while waiting.
            public var queueFull = 0
            public var queueTimeout = 0

            public init() {}

            mutating func count(_ error: BackendError) {
                switch error {
                case .connectFailed: connectFailed += 1
                case .connectTimeout: connectTimeout += 1
                case .readTimeout: readTimeout += 1
                case .closedEarly: closedEarly += 1
                case .protocolViolation, .staleRecord: protocolViolation += 1
                case .rejected: rejected += 1
                }
            }
        }

        public struct Backend: Sendable, Equatable {
            /// Requests sent to this backend, retries included.
            public var requests = 0
            public var errors = Errors()
            /// Failed requests of this backend that were sent again (anywhere).
            public var retries = 0
            /// Requests whose client left while they ran here.
            public var aborts = 0
            /// Times passive health took the backend out.
            public var markedDown = 0
            public var activeConnections = 0
            public var idleConnections = 0
            public var startingConnections = 0
            public var leasedSlots = 0
            public var isDown = false
            public var isBackingOff = false

            public init() {}
        }

        public struct Pool: Sendable, Equatable {
            /// Requests that arrived (retries not counted again).
            public var requests = 0
            public var errors = Errors()
            public var retries = 0
            /// Clients that left while waiting or while their request ran.
            public var aborts = 0
            /// Waiting requests beyond those a connect is in flight for (what `queueSize` bounds).
            public var queueDepth = 0
            /// All waiting requests.
            public var waiting = 0
            public var activeConnections = 0
            public var idleConnections = 0
            public var startingConnections = 0

            public init() {}
        }

        public var pool: Pool
        public var backends: [Backend]
    }

    /// The counters now.
    public var counters: Counters {
        var pool = poolCounters
        var perBackend = backends.map { $0.counters }
        for connection in connections {
            if connection.isStarting {
                perBackend[connection.backend].startingConnections += 1
            } else if connection.isIdle {
                perBackend[connection.backend].idleConnections += 1
            } else {
                perBackend[connection.backend].activeConnections += 1
            }
            perBackend[connection.backend].leasedSlots += connection.leasedCount
        }
        for index in backends.indices {
            perBackend[index].isDown = backends[index].isDown
            perBackend[index].isBackingOff = backends[index].isBackingOff
            pool.activeConnections += perBackend[index].activeConnections
            pool.idleConnections += perBackend[index].idleConnections
            pool.startingConnections += perBackend[index].startingConnections
        }
        pool.queueDepth = queueDepth
        pool.waiting = waiters.count
        return Counters(pool: pool, backends: perBackend)
    }
}
