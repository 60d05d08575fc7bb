import ProxyConfig
import Testing

/// The keys that bound what slow clients can hold: buffering, spill limits, body and send clocks.
@Suite struct BufferingKeyTests {
    @Test func serverKeys() throws {
        let server = try #require(
            parseServer(
                """
                body_timeout = 20s
                min_send_rate = 0
                min_body_rate = 2k
                connection_buffer = 2m
                connection_spill = 100m
                max_buffer_memory = 64m
                max_spill = 10g
                """
            ))
        #expect(server.bodyTimeout == .seconds(20))
        #expect(server.minSendRate == 0)
        #expect(server.minBodyRate == 2048)
        #expect(try #require(parseServer("min_body_rate = 0")).minBodyRate == 0)
        #expect(try #require(parseServer("")).minBodyRate == 1024)
        #expect(server.connectionBuffer == 2 * 1024 * 1024)
        #expect(server.connectionSpill == 100 * 1024 * 1024)
        #expect(server.maxBufferMemory == 64 * 1024 * 1024)
        #expect(server.maxSpill == 10 * 1024 * 1024 * 1024)
    }

    @Test func poolKeysAndTheirOlderNames() throws {
        let pool = try #require(parsePool("backend = unix:/x.sock\nresponse_buffer = 64k\nresponse_spill = 0\nabort_grace = 2s"))
        #expect(pool.responseBuffer == 64 * 1024)
        #expect(pool.responseSpill == 0)
        #expect(pool.abortGrace == .seconds(2))
        let old = try #require(parsePool("backend = unix:/x.sock\nmultiplex_buffer = 128k\nmultiplex_spill = 2m"))
        #expect(old.responseBuffer == 128 * 1024)
        #expect(old.responseSpill == 2 * 1024 * 1024)
    }

    @Test func routeKeys() throws {
        let route = try #require(
            parseRoute("request_buffering = off\nresponse_buffering = no\nbody_timeout = 5m"))
        #expect(route.requestBuffering == false)
        #expect(route.responseBuffering == false)
        #expect(route.bodyTimeout == .seconds(300))
        let defaults = try #require(parseRoute(""))
        #expect(defaults.requestBuffering && defaults.responseBuffering && defaults.bodyTimeout == nil)
    }

    @Test func badValuesNameTheLine() {
        for (section, line) in [
            ("[server]", "body_timeout = soon"), ("[server]", "max_spill = lots"), ("[route:r]", "request_buffering = maybe"),
            ("[server]", "min_body_rate = fast"), ("[server]", "min_body_rate = -1k"),
        ] {
            let text = "[pool:php]\nbackend = unix:/x.sock\n\(section)\n\(section == "[route:r]" ? "pool = php\nroot = /srv\n" : "")\(line)\n"
            do {
                _ = try ConfigParser.parse(text, fileName: "t.ini")
                Issue.record("\(line) accepted")
            } catch {
                // The offending line is the file's last.
                #expect(error.description.contains("t.ini:\(text.split(separator: "\n").count):"), "\(error)")
                #expect(error.description.contains(String(line.prefix { $0 != " " })), "\(error)")
            }
        }
    }
}
