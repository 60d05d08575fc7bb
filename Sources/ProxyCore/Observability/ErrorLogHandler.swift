#if canImport(Glibc)
import Glibc
#endif
import Logging

/// The error log: one line per event on stderr, written with one `write(2)`.
///
/// Under systemd (`JOURNAL_STREAM` set, stderr connected to the journal) a line carries no
/// timestamp — journald adds its own — and starts with the kernel-style priority prefix `<N>`
/// that journald turns into the entry's PRIORITY, so `journalctl -p warning` works. Elsewhere a
/// line starts with an ISO 8601 time. Line breaks inside a message or metadata are written as
/// `\n`, so one event never spans two lines.
public struct ErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let journal: Bool

    /// `journal`: format for journald (see above); by default, whether `JOURNAL_STREAM` is set.
    public init(label: String, level: Logger.Level, journal: Bool = getenv("JOURNAL_STREAM") != nil) {
        self.label = label
        self.logLevel = level
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        var line = Self.format(
            level: event.level, label: label, source: event.source, message: "\(event.message)", metadata: merged,
            journal: journal, time: journal ? nil : Self.timestamp())
        line.withUTF8 { bytes in
            _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count)
        }
    }

    /// One line, newline included (for the tests: the handler adds the time).
    static func format(
        level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata, journal: Bool,
        time: String?
    ) -> String {
        var line = journal ? "<\(level.syslogPriority)>" : ""
        if let time {
            line += time
            line += " "
        }
        line += "\(level) \(label): "
        if !metadata.isEmpty {
            // Sorted: the same event always reads the same way.
            line += metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line += " "
        }
        line += "[\(source)] "
        line += message
        return Self.oneLine(line) + "\n"
    }

    private static func oneLine(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else { return text }
        return text.replacingLineBreaks()
    }

    /// `2026-11-27T04:10:00+0000`, local time as StreamLogHandler writes it.
    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Logger.Level {
    /// syslog(3) priorities, as journald reads them from a `<N>` prefix.
    var syslogPriority: Int {
        switch self {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

extension String {
    fileprivate func replacingLineBreaks() -> String {
        var out = ""
        out.reserveCapacity(utf8.count + 8)
        for character in unicodeScalars {
            switch character {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
