import ProxyConfig

/// What a reload changes, computed from the old and the new configuration alone (pure, tested
/// without I/O): which listeners to bind, close or keep open, which pools carry over with their
/// connections, and a one-line summary for the log.
public struct ReloadPlan: Sendable, Equatable {
    /// `listen` lines of the new file that are not open yet: bound before the switch.
    public var addedListeners: [ListenConfig] = []
    /// Open listeners the new file no longer has: closed after the switch.
    public var removedListeners: [ListenConfig] = []
    /// Listeners in both: stay open, no gap.
    public var keptListeners: [ListenConfig] = []
    /// New pool index → old pool index, for pools whose settings (and resolved backends) did not
    /// change: their shards go on serving, warm connections included.
    public var reusedPools: [Int: Int] = [:]
    public var addedPools: [String] = []
    public var removedPools: [String] = []
    /// Same name, other settings: a fresh pool; the old one drains.
    public var changedPools: [String] = []
    public var routesChanged = false
    /// `[server]` keys whose new value applies to connections accepted from now on.
    public var changedServerKeys: [String] = []
    /// `[server]` keys whose change needs a restart; the old value stays in force (logged as a warning).
    public var restartOnlyKeys: [String] = []

    public init(from old: ProxyConfiguration, to new: ProxyConfiguration) {
        var unmatched = old.server.listen
        for listener in new.server.listen {
            if let index = unmatched.firstIndex(of: listener) {
                keptListeners.append(unmatched.remove(at: index))
            } else {
                addedListeners.append(listener)
            }
        }
        removedListeners = unmatched

        for (newIndex, pool) in new.pools.enumerated() {
            guard let oldIndex = old.pools.firstIndex(where: { $0.name == pool.name }) else {
                addedPools.append(pool.name)
                continue
            }
            if Self.sameSettings(old.pools[oldIndex], pool) {
                reusedPools[newIndex] = oldIndex
            } else {
                changedPools.append(pool.name)
            }
        }
        removedPools = old.pools.map(\.name).filter { name in !new.pools.contains { $0.name == name } }
        routesChanged = !Self.sameRoutes(old.routes, new.routes)

        let (a, b) = (old.server, new.server)
        func check(_ key: String, _ same: Bool, restart: Bool = false) {
            guard !same else { return }
            if restart { restartOnlyKeys.append(key) } else { changedServerKeys.append(key) }
        }
        check("threads", a.threads == b.threads, restart: true)
        check("user", a.user == b.user, restart: true)
        check("group", a.group == b.group, restart: true)
        check("metrics", a.metrics == b.metrics, restart: true)
        check("access_log", a.accessLog == b.accessLog)
        check("log_level", a.logLevel == b.logLevel, restart: true)
        check("header_timeout", a.headerTimeout == b.headerTimeout)
        check("keepalive_timeout", a.keepaliveTimeout == b.keepaliveTimeout)
        check("send_timeout", a.sendTimeout == b.sendTimeout)
        check("min_send_rate", a.minSendRate == b.minSendRate)
        check("body_timeout", a.bodyTimeout == b.bodyTimeout)
        check("min_body_rate", a.minBodyRate == b.minBodyRate)
        check("connection_buffer", a.connectionBuffer == b.connectionBuffer)
        check("connection_spill", a.connectionSpill == b.connectionSpill)
        check("max_buffer_memory", a.maxBufferMemory == b.maxBufferMemory)
        check("max_spill", a.maxSpill == b.maxSpill)
        check("shutdown_timeout", a.shutdownTimeout == b.shutdownTimeout)
        check("max_header_size", a.maxHeaderSize == b.maxHeaderSize)
        check("max_uri_size", a.maxURISize == b.maxURISize)
        check("max_body_size", a.maxBodySize == b.maxBodySize)
        check("body_buffer_size", a.bodyBufferSize == b.bodyBufferSize)
        check("temp_dir", a.tempDir == b.tempDir)
        check("server_software", a.serverSoftware == b.serverSoftware)
    }

    /// Pool settings compared without the `[pool:…]` line number: moving a section is no change.
    public static func sameSettings(_ a: PoolConfig, _ b: PoolConfig) -> Bool {
        var a = a
        a.line = b.line
        return a == b
    }

    static func sameRoutes(_ a: [RouteConfig], _ b: [RouteConfig]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { old, new in
            var old = old
            old.line = new.line
            return old == new
        }
    }

    /// True when the reload changes nothing at all.
    public var isEmpty: Bool {
        addedListeners.isEmpty && removedListeners.isEmpty && addedPools.isEmpty && removedPools.isEmpty
            && changedPools.isEmpty && !routesChanged && changedServerKeys.isEmpty && restartOnlyKeys.isEmpty
    }

    /// `listen +127.0.0.1:8081 -127.0.0.1:8080; pools +b ~php -old; routes changed; server: send_timeout`
    /// (or `no change`).
    public var summary: String {
        var parts: [String] = []
        let listen = addedListeners.map { "+\(Self.describe($0))" } + removedListeners.map { "-\(Self.describe($0))" }
        if !listen.isEmpty { parts.append("listen " + listen.joined(separator: " ")) }
        let pools = addedPools.map { "+\($0)" } + changedPools.map { "~\($0)" } + removedPools.map { "-\($0)" }
        if !pools.isEmpty { parts.append("pools " + pools.joined(separator: " ")) }
        if routesChanged { parts.append("routes changed") }
        if !changedServerKeys.isEmpty { parts.append("server: " + changedServerKeys.joined(separator: ", ")) }
        if !restartOnlyKeys.isEmpty {
            parts.append("need a restart (kept as they were): " + restartOnlyKeys.joined(separator: ", "))
        }
        return parts.isEmpty ? "no change" : parts.joined(separator: "; ")
    }

    public static func describe(_ listener: ListenConfig) -> String {
        var text = listener.address.description
        if let name = listener.name { text += " name=\(name)" }
        if listener.tls { text += " tls" }
        return text
    }
}
