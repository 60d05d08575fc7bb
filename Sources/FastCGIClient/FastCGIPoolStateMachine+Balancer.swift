extension FastCGIPoolStateMachine {
    /// Which backends a pick may return.
    enum Candidates {
        /// Up, and with a free slot or room for a new connection; `avoiding` is left out.
        case canServe(avoiding: Int?)
        /// Up, not backing off, under its connection limit.
        case canConnect
    }

    func isCandidate(_ backend: Int, _ candidates: Candidates) -> Bool {
        switch candidates {
        case .canServe(let avoiding):
            guard backend != avoiding, !backends[backend].isDown else { return false }
            return hasFreeSlot(backend: backend) || canConnect(backend: backend)
        case .canConnect:
            return canConnect(backend: backend)
        }
    }

    /// Chooses a backend by the pool's balancing policy, or `nil` when none qualifies.
    mutating func pickBackend(_ candidates: Candidates) -> Int? {
        switch settings.balance {
        case .roundRobin:
            return smoothRoundRobin(candidates, tiedWith: nil)
        case .leastConnections:
            // Load is leased slots per unit of weight; compared by cross-multiplying to stay in integers.
            var best: (load: Int, weight: Int)?
            for backend in backends.indices where isCandidate(backend, candidates) {
                let load = leasedSlots(backend: backend)
                let weight = backends[backend].settings.weight
                if let current = best, load * current.weight >= current.load * weight { continue }
                best = (load, weight)
            }
            guard let best else { return nil }
            return smoothRoundRobin(candidates, tiedWith: best)
        }
    }

    /// nginx's smooth weighted round robin: every candidate gains its weight, the richest wins and
    /// pays the total. Spreads picks evenly in time (3:1 gives A A B A) instead of in bursts.
    /// Backends that are not candidates this time keep their credit untouched.
    private mutating func smoothRoundRobin(_ candidates: Candidates, tiedWith tie: (load: Int, weight: Int)?) -> Int? {
        var total = 0
        var winner: Int?
        for backend in backends.indices where isCandidate(backend, candidates) {
            let weight = backends[backend].settings.weight
            if let tie, leasedSlots(backend: backend) * tie.weight != tie.load * weight { continue }
            backends[backend].currentWeight += weight
            total += weight
            if let current = winner, backends[current].currentWeight >= backends[backend].currentWeight { continue }
            winner = backend
        }
        if let winner { backends[winner].currentWeight -= total }
        return winner
    }
}
