import NIOCore

/// The `FCGI_WEB_SERVER_ADDRS` check: which peers may connect over TCP.
struct WebServerAddressFilter: Sendable {
    /// Canonical text forms of the allowed addresses, or `nil` to allow everyone.
    private let allowed: Set<String>?

    /// Entries that do not parse as IP addresses are dropped (and reported in `invalidEntries`), so a typo
    /// locks a peer out rather than letting everyone in.
    init(addresses: [String]?) {
        guard let addresses else {
            self.allowed = nil
            self.invalidEntries = []
            return
        }
        var allowed: Set<String> = []
        var invalid: [String] = []
        for entry in addresses {
            if let address = try? SocketAddress(ipAddress: entry, port: 0), let canonical = address.ipAddress {
                allowed.insert(Self.unmapped(canonical))
            } else {
                invalid.append(entry)
            }
        }
        self.allowed = allowed
        self.invalidEntries = invalid
    }

    /// Entries of the list that are not IP addresses.
    let invalidEntries: [String]

    /// Whether a peer at `address` may connect. Unix-socket peers always may: the list names IP addresses,
    /// and the reference library (libfcgi) checks TCP peers only.
    func allows(_ address: SocketAddress?) -> Bool {
        guard let allowed = self.allowed else { return true }
        switch address {
        case .unixDomainSocket:
            return true
        case .v4, .v6:
            guard let ip = address?.ipAddress else { return false }
            return allowed.contains(Self.unmapped(ip))
        case nil:
            return false
        }
    }

    /// A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`; the list names them as `a.b.c.d`.
    private static func unmapped(_ ip: String) -> String {
        let prefix = "::ffff:"
        if ip.lowercased().hasPrefix(prefix), ip.contains(".") {
            return String(ip.dropFirst(prefix.count))
        }
        return ip
    }
}
