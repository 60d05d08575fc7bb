import NIOHTTP1
import ProxyConfig
import Testing

@testable import ProxyCore

/// The known-names table only saves allocations: with or without it, every header gets the CGI
/// name of the general rule (`HTTP_` + uppercased, `-` → `_`).
@Suite struct CGIParametersKnownNamesTests {
    /// The header a CGI name comes from, in the letter case `transform` gives it.
    private func headerName(of cgiName: String, _ transform: (String) -> String) -> String {
        transform(String(cgiName.dropFirst(5)).replacingOccurrences(of: "_", with: "-"))
    }

    private func build(headers: [(String, String)]) throws -> CGIParameters {
        let route = RouteConfig(name: "app", pool: "php", root: "/srv/www", script: "/srv/www/index.php")
        let requestPath = try RequestPath(target: "/")
        let script = try ScriptResolver { _ in true }.resolve(path: requestPath.path, route: route)
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([("Host", "example.com")] + headers))
        var parameters = CGIParameters()
        CGIParameters.emit(
            head: head, requestPath: requestPath, script: script, routeParams: route.params, contentLength: nil,
            connection: .unixSocket(), serverSoftware: "fcgiproxy", into: &parameters)
        return parameters
    }

    @Test func everyKnownNameIsWhatTheRuleBuildsAndNeedsAnAllocation() {
        for known in CGIParameters.knownHeaderNames {
            #expect(known.hasPrefix("HTTP_"))
            #expect(known.utf8.count > 15, "\(known) fits a String inline: listing it saves nothing")
            #expect(
                known.utf8.allSatisfy {
                    (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                        || $0 == UInt8(ascii: "_")
                }, "\(known)")
        }
        #expect(Set(CGIParameters.knownHeaderNames).count == CGIParameters.knownHeaderNames.count)
    }

    @Test func knownNamesAreFoundInAnyLetterCase() {
        for known in CGIParameters.knownHeaderNames {
            for transform: (String) -> String in [{ $0.lowercased() }, { $0 }, { $0.capitalized }] {
                let header = headerName(of: known, transform)
                #expect(CGIParameters.knownCGIName(forHeader: header.utf8) == known, "\(header)")
            }
        }
    }

    @Test func nearMissesAreNotKnown() {
        for header in ["Accept-Languagf", "Accept_Language", "Accept-Languages", "Accept-Languag", "Sec-Fetch-Des7"] {
            #expect(CGIParameters.knownCGIName(forHeader: header.utf8) == nil, "\(header)")
        }
    }

    @Test func paramsCarryTheRuleNamesForKnownAndUnknownHeaders() throws {
        let parameters = try build(headers: [
            ("accept-language", "en"), ("SEC-FETCH-DEST", "document"), ("X-Forwarded-For", "192.0.2.9"),
            ("Accept-Languages", "x"), ("Sec-Fetch-Destiny", "y"), ("Content-Type", "text/plain"),
            ("Accept_Encoding", "dropped: underscore"),
        ])
        let headerParams = parameters.pairs.filter { $0.name.hasPrefix("HTTP_") && $0.name != "HTTP_HOST" }
        #expect(
            headerParams.map { "\($0.name)=\($0.value)" } == [
                "HTTP_ACCEPT_LANGUAGE=en", "HTTP_SEC_FETCH_DEST=document", "HTTP_X_FORWARDED_FOR=192.0.2.9",
                "HTTP_ACCEPT_LANGUAGES=x", "HTTP_SEC_FETCH_DESTINY=y",
            ])
        #expect(parameters["CONTENT_TYPE"] == "text/plain")
    }
}
