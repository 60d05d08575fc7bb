/// Reads the `[server]` section into a ``ServerConfig``.
struct ServerSection {
    private var keys = SectionKeys(label: "[server]")
    private var config = ServerConfig()
    /// Listeners in file order; empty until a `listen` line, so the default applies only when there is none.
    private var listeners: [ListenConfig] = []
    /// Lines of `listen … tls`, to point at them if the certificate is missing.
    private var tlsListenLines: [Int] = []

    private static let logLevels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    mutating func apply(_ entry: INIEntry, _ errors: inout ConfigErrorList) {
        switch entry.key {
        case "listen":
            if let listener = keys.repeated(entry, &errors, ConfigValue.listen) {
                listeners.append(listener)
                if listener.tls && !ServerConfig.builtWithTLS {
                    errors.add(
                        line: entry.line,
                        "\"listen = \(listener.address) tls\", but this fcgiproxy was built without TLS (package trait TLS)")
                } else if listener.tls {
                    tlsListenLines.append(entry.line)
                }
            }
        case "threads":
            if let threads = keys.single(entry, &errors, ConfigValue.threads) { config.threads = threads }
        case "access_log":
            if let target = keys.single(entry, &errors, Self.accessLog) { config.accessLog = target }
        case "log_level":
            if let level = keys.single(entry, &errors, Self.logLevel) { config.logLevel = level }
        case "header_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.headerTimeout = timeout }
        case "keepalive_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.keepaliveTimeout = timeout }
        case "send_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.sendTimeout = timeout }
        case "body_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.bodyTimeout = timeout }
        case "min_send_rate":
            // Zero is meaningful: no rate rule, only `send_timeout`.
            if let rate = keys.single(entry, &errors, ConfigValue.size) { config.minSendRate = rate }
        case "min_body_rate":
            // Zero is meaningful: no rate rule, only `body_timeout`.
            if let rate = keys.single(entry, &errors, ConfigValue.size) { config.minBodyRate = rate }
        case "connection_buffer":
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.connectionBuffer = size }
        case "connection_spill":
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.connectionSpill = size }
        case "max_buffer_memory":
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.maxBufferMemory = size }
        case "max_spill":
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.maxSpill = size }
        case "shutdown_timeout":
            if let timeout = keys.single(entry, &errors, ConfigValue.duration) { config.shutdownTimeout = timeout }
        case "max_header_size":
            if let size = keys.single(entry, &errors, ConfigValue.positiveSize) { config.maxHeaderSize = size }
        case "max_uri_size":
            if let size = keys.single(entry, &errors, ConfigValue.positiveSize) { config.maxURISize = size }
        case "max_body_size":
            // Zero is meaningful: a server that accepts no request bodies at all.
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.maxBodySize = size }
        case "body_buffer_size":
            // Zero is meaningful: always spill buffered bodies to a temporary file.
            if let size = keys.single(entry, &errors, ConfigValue.size) { config.bodyBufferSize = size }
        case "temp_dir":
            if let path = keys.single(entry, &errors, ConfigValue.absolutePath) { config.tempDir = path }
        case "metrics":
            if let address = keys.single(entry, &errors, ConfigValue.address) { config.metrics = address }
        case "tls_certificate":
            if let path = keys.single(entry, &errors, ConfigValue.absolutePath) {
                config.tlsCertificate = path
                config.tlsCertificateLine = entry.line
            }
        case "tls_key":
            if let path = keys.single(entry, &errors, ConfigValue.absolutePath) {
                config.tlsKey = path
                config.tlsKeyLine = entry.line
            }
        case "http2":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) {
                if enabled && !ServerConfig.builtWithHTTP2 {
                    errors.add(
                        line: entry.line,
                        "\"http2 = on\" in [server], but this fcgiproxy was built without HTTP/2 (package trait HTTP2)")
                } else {
                    config.http2 = enabled
                }
            }
        case "h2c_upgrade":
            if let enabled = keys.single(entry, &errors, ConfigValue.bool) { config.h2cUpgrade = enabled }
        case "user":
            if let user = keys.single(entry, &errors, SystemAccount.user) { config.user = user }
        case "group":
            if let group = keys.single(entry, &errors, SystemAccount.group) { config.group = group }
        case "server_software":
            if let name = keys.single(entry, &errors, ConfigValue.nonEmpty) { config.serverSoftware = name }
        default:
            keys.unknown(entry, &errors)
        }
    }

    /// The finished section, after the checks that involve several keys.
    func finish(_ errors: inout ConfigErrorList) -> ServerConfig {
        var result = config
        if !listeners.isEmpty {
            result.listen = listeners
        }
        let hasCertificate = keys.line(of: "tls_certificate") != nil
        let hasKey = keys.line(of: "tls_key") != nil
        if !hasCertificate || !hasKey {
            for line in tlsListenLines {
                errors.add(line: line, "a \"tls\" listener needs both \"tls_certificate\" and \"tls_key\" in [server]")
            }
        }
        if result.h2cUpgrade && !result.http2, let line = keys.line(of: "h2c_upgrade") {
            errors.add(line: line, "\"h2c_upgrade = on\" needs HTTP/2 (\"http2 = on\" in [server])")
        }
        // One without the other is always a mistake, even before any TLS listener exists.
        if let line = keys.line(of: "tls_certificate"), !hasKey {
            errors.add(line: line, "\"tls_certificate\" is set but \"tls_key\" is missing in [server]")
        }
        if let line = keys.line(of: "tls_key"), !hasCertificate {
            errors.add(line: line, "\"tls_key\" is set but \"tls_certificate\" is missing in [server]")
        }
        return result
    }

    private static func accessLog(_ value: INIValue) throws(ConfigValue.ValueError) -> AccessLogTarget {
        switch value.text.lowercased() {
        case "off": return .off
        case "stderr": return .stderr
        default:
            guard value.text.first == "/" else {
                throw ConfigValue.ValueError("off, stderr or an absolute file path")
            }
            return .file(value.text)
        }
    }

    private static func logLevel(_ value: INIValue) throws(ConfigValue.ValueError) -> String {
        let level = value.text.lowercased()
        guard logLevels.contains(level) else {
            throw ConfigValue.ValueError("trace, debug, info, notice, warning, error or critical")
        }
        return level
    }
}
