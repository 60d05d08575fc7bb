import Logging
import Testing

@testable import ProxyCore

@Suite struct ErrorLogHandlerTests {
    @Test func journalLinesCarryThePriorityAndNoTime() {
        let line = ErrorLogHandler.format(
            level: .warning, label: "fcgiproxy", source: "ProxyCore", message: "backend stderr: oops", metadata: [:],
            journal: true, time: nil)
        #expect(line == "<4>warning fcgiproxy: [ProxyCore] backend stderr: oops\n")
        for (level, priority) in [(Logger.Level.debug, 7), (.info, 6), (.notice, 5), (.error, 3), (.critical, 2)] {
            #expect(ErrorLogHandler.format(level: level, label: "l", source: "s", message: "m", metadata: [:], journal: true, time: nil)
                .hasPrefix("<\(priority)>"))
        }
    }

    @Test func terminalLinesStartWithTheTimeAndSortMetadata() {
        let line = ErrorLogHandler.format(
            level: .error, label: "fcgiproxy", source: "ProxyCore", message: "backend failed",
            metadata: ["uri": "/x", "pool": "php"], journal: false, time: "2026-11-27T04:10:00+0000")
        #expect(line == "2026-11-27T04:10:00+0000 error fcgiproxy: pool=php uri=/x [ProxyCore] backend failed\n")
    }

    @Test func oneEventIsOneLine() {
        let line = ErrorLogHandler.format(
            level: .warning, label: "fcgiproxy", source: "ProxyCore", message: "PHP Warning: a\nPHP Notice: b\r\n",
            metadata: ["uri": "/a\nb"], journal: true, time: nil)
        #expect(line == "<4>warning fcgiproxy: uri=/a\\nb [ProxyCore] PHP Warning: a\\nPHP Notice: b\\r\\n\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }
}
