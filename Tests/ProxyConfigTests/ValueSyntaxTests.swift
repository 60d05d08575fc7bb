import ProxyConfig
import Testing

/// Sizes, durations and booleans, through keys that use them.
@Suite struct ValueSyntaxTests {
    @Test(arguments: [
        ("0", 0), ("1234", 1234), ("1k", 1024), ("2K", 2048), ("3m", 3 * 1024 * 1024),
        ("3M", 3 * 1024 * 1024), ("1g", 1024 * 1024 * 1024), ("4G", 4 * 1024 * 1024 * 1024),
    ])
    func sizes(text: String, bytes: Int) {
        #expect(parseServer("max_body_size = \(text)")?.maxBodySize == bytes)
    }

    @Test(arguments: ["", "k", "-1", "1.5m", "1 k", "1kb", "1t", "ten", "99999999999999999999", "9999999999999g"])
    func badSizes(text: String) {
        let errors = parseErrors("[server]\nmax_body_size = \(text)\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.contains("expected a size in bytes") == true, "\(errors)")
    }

    @Test(arguments: [
        ("30", Duration.seconds(30)), ("30s", .seconds(30)), ("30S", .seconds(30)), ("1500ms", .milliseconds(1500)),
        ("1500MS", .milliseconds(1500)), ("2m", .seconds(120)), ("2h", .seconds(7200)), ("1H", .seconds(3600)),
    ])
    func durations(text: String, duration: Duration) {
        #expect(parseServer("header_timeout = \(text)")?.headerTimeout == duration)
    }

    @Test(arguments: ["0", "0s", "0ms", "", "s", "-5s", "1.5s", "5 s", "5d", "5sec", "99999999999999999999h"])
    func badDurations(text: String) {
        let errors = parseErrors("[server]\nkeepalive_timeout = \(text)\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.contains("expected a duration above 0") == true, "\(errors)")
    }

    @Test(arguments: [
        ("on", true), ("off", false), ("yes", true), ("no", false), ("true", true), ("false", false),
        ("1", true), ("0", false), ("ON", true), ("False", false),
    ])
    func booleans(text: String, value: Bool) {
        // A pool key: `http2 = on` is an error in a build without HTTP/2.
        #expect(parsePool("backend = 127.0.0.1:9000\nkeepalive = \(text)")?.keepalive == value)
    }

    @Test(arguments: ["", "enabled", "2", "y", "of"])
    func badBooleans(text: String) {
        let errors = parseErrors("[server]\nhttp2 = \(text)\n")
        #expect(errors.map(\.line) == [2])
        #expect(errors.first?.message.hasSuffix("expected on/off, yes/no, true/false or 1/0") == true, "\(errors)")
    }

    @Test func badValueMessageShowsTheValueAsWritten() {
        expectOneError(
            "[server]\nmax_header_size = \"12 q\"\n",
            line: 2,
            startingWith: "invalid value \"\"12 q\"\" for \"max_header_size\" in [server]: expected"
        )
    }
}
