/// Reads one `[pool:NAME]` section into a ``PoolConfig``.
struct PoolSection {
    private var keys: SectionKeys
    private var config: PoolConfig
    /// Set even when the address was invalid, so that line's error is not followed by "has no backend".
    private var hasBackendLine = false

    init(name: String, line: Int) {
        keys = SectionKeys(label: "[pool:\(name)]")
        config = PoolConfig(name: name, line: line)
    }

    mutating func apply(_ entry: INIEntry, _ errors: inout ConfigErrorList) {
        switch entry.key {
        case "backend":
            hasBackendLine = true
            if let backend = keys.repeated(entry, &errors, Self.backend) {
                config.backends.append(backend.address)
                config.backendWeights[config.backends.count - 1] = backend.weight
            }
        case "balance":
            if let mode = keys.single(entry, &errors, Self.balance) { config.balance = mode }
        case "tries":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) { config.tries = count }
        case "max_reqs":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) {
                config.maxRequestsPerConnection = count
            }
        case "response_buffer", "multiplex_buffer":
            if let size = keys.single(entry, &errors, ConfigValue.positiveSize) { config.responseBuffer = size }
        case "response_spill", "multiplex_spill":
            // Zero is meaningful: no temporary file, only the memory buffer.
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.responseSpill = size }
        case "abort_grace":
            if let grace = keys.single(entry, &errors, ConfigValue.duration) { config.abortGrace = grace }
        case "idle_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.idleTimeout = timeout }
        case "max_conns":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) { config.maxConns = count }
        case "keepalive":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.keepalive = enabled }
        case "multiplex":
            if let mode = keys.single(entry, &errors, Self.multiplex) { config.multiplex = mode }
        case "queue_size":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) { config.queueSize = count }
        case "queue_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.queueTimeout = timeout }
        case "max_fails":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) { config.maxFails = count }
        case "fail_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.failTimeout = timeout }
        case "spawn":
            if let command = keys.single(entry, &errors, Self.command) { config.spawn = command }
        case "processes":
            if let count = keys.single(entry, &errors, ConfigValue.positiveInt) { config.processes = count }
        case "env":
            if let variable = keys.repeated(entry, &errors, Self.environmentVariable) { config.env.append(variable) }
        case "connect_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.connectTimeout = timeout }
        case "x_sendfile":
            if let directory = keys.single(entry, &errors, ConfigValue.absoluteDirectory) { config.xSendfile = directory }
        case "read_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.readTimeout = timeout }
        default:
            keys.unknown(entry, &errors)
        }
    }

    /// The finished pool, after the checks that involve several keys.
    func finish(_ errors: inout ConfigErrorList) -> PoolConfig {
        // A spawned worker gets its listening socket from us, so it needs no address.
        if !hasBackendLine && keys.line(of: "spawn") == nil {
            errors.add(line: config.line, "pool \"\(config.name)\" has no \"backend\" (nor \"spawn\")")
        }
        return config
    }

    /// `ADDRESS` or `ADDRESS weight=N`, N a positive integer.
    private static func backend(
        _ value: INIValue
    ) throws(ConfigValue.ValueError) -> (address: SocketAddressSpec, weight: Int) {
        guard let first = value.words.first, value.words.count <= 2 else {
            throw ConfigValue.ValueError("host:port, [v6]:port or unix:/path, optionally followed by weight=N")
        }
        let address = try ConfigValue.address(first)
        guard value.words.count == 2 else { return (address, 1) }
        let option = value.words[1]
        guard option.lowercased().hasPrefix("weight=") else {
            throw ConfigValue.ValueError("nothing but weight=N after the address")
        }
        guard let weight = ConfigValue.decimal(option.dropFirst("weight=".count)), weight > 0 else {
            throw ConfigValue.ValueError("weight=N with N a positive integer")
        }
        return (address, weight)
    }

    private static func balance(_ value: INIValue) throws(ConfigValue.ValueError) -> BalanceMode {
        guard let mode = BalanceMode(rawValue: value.text.lowercased()) else {
            throw ConfigValue.ValueError("round_robin or least_conn")
        }
        return mode
    }

    private static func multiplex(_ value: INIValue) throws(ConfigValue.ValueError) -> MultiplexMode {
        if value.text.lowercased() == "auto" {
            return .auto
        }
        do {
            return try ConfigValue.bool(value) ? .on : .off
        } catch {
            throw ConfigValue.ValueError("auto, on or off")
        }
    }

    /// Split on whitespace; quotes keep an argument with spaces together.
    private static func command(_ value: INIValue) throws(ConfigValue.ValueError) -> [String] {
        guard let program = value.words.first, !program.isEmpty else {
            throw ConfigValue.ValueError("a command line (program and arguments)")
        }
        return value.words
    }

    private static func environmentVariable(
        _ value: INIValue
    ) throws(ConfigValue.ValueError) -> (name: String, value: String) {
        try ConfigValue.namedValue(
            value,
            validName: isEnvironmentName,
            nameRule: "letters, digits and \"_\", not starting with a digit"
        )
    }

    private static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
