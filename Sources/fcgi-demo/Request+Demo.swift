import FastCGIWorker

extension FastCGIRequest {
    var method: String { self.params["REQUEST_METHOD"] ?? "GET" }

    /// The path the client asked for: REQUEST_URI up to the query. Web servers set REQUEST_URI to the
    /// original request target (nginx and fcgiproxy alike), while SCRIPT_NAME and DOCUMENT_URI depend on
    /// their configuration.
    var path: String {
        let uri = self.params["REQUEST_URI"] ?? self.params["DOCUMENT_URI"] ?? "/"
        return String(uri.prefix { $0 != "?" })
    }

    /// QUERY_STRING, or else the part of REQUEST_URI after the `?`.
    var query: Substring {
        if let query = self.params["QUERY_STRING"] {
            return query[...]
        }
        guard let uri = self.params["REQUEST_URI"], let mark = uri.firstIndex(of: "?") else { return "" }
        return uri[uri.index(after: mark)...]
    }

    /// The raw value of query parameter `name` (not percent-decoded: the demo only takes numbers).
    func queryValue(_ name: String) -> Substring? {
        for pair in self.query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts[0] == name {
                return parts.count > 1 ? parts[1] : ""
            }
        }
        return nil
    }

    /// Query parameter `name` as an integer in `range`, `defaultValue` when absent, `nil` when invalid.
    func integerQuery(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) -> Int? {
        guard let text = self.queryValue(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else { return nil }
        return value
    }
}

extension FastCGIResponseWriter {
    /// A complete plain-text response.
    func writeText(status: Int, _ text: String, headers: [(String, String)] = []) async throws {
        try await self.writeHead(
            status: status,
            headers: [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(text.utf8.count)")] + headers
        )
        try await self.write(text)
    }

    /// The answer to a query parameter outside its range.
    func badParameter(_ name: String, _ range: ClosedRange<Int>) async throws {
        try await self.writeText(status: 400, "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)\n")
    }
}
