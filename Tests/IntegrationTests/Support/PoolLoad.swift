import Foundation

/// Many requests from one curl process (`curl -Z --parallel-max N` or sequential on one
/// keep-alive connection): one process per request would be far too slow for load tests.
enum PoolLoad {
    /// One transfer as curl reported it.
    struct Result: Sendable, CustomStringConvertible {
        /// `%{http_code}` (0: no response).
        var status: Int
        var url: String
        /// The response's `X-Backend` header ("" when absent).
        var backend: String
        /// The response's `X-Path` header ("" when absent).
        var path: String
        /// The response's `Retry-After` header ("" when absent).
        var retryAfter: String
        /// `%{time_total}` in seconds.
        var seconds: Double
        /// `%{exitcode}`.
        var exitCode: Int
        /// The response body, when the load kept bodies ("" otherwise).
        var body: String = ""
        /// Where curl wrote the body (`%{filename_effective}`).
        var bodyFile: String = ""

        var description: String { "\(status) \(backend.isEmpty ? "-" : backend) \(url) \(seconds)s exit \(exitCode)" }
    }

    /// Fetches `urls`, `parallel` at a time (nil: one after the other on one connection), with
    /// bodies discarded unless `keepBodies`. Results are in completion order. `maxTime` bounds
    /// each transfer (seconds).
    static func run(
        _ urls: [String], parallel: Int? = nil, maxTime: Int = 20, timeout: Duration = .seconds(60),
        keepBodies: Bool = false
    ) async throws -> [Result] {
        let dir = try TempDir("fcgiproxy-load")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        var config = ""
        config.reserveCapacity(urls.count * 80)
        for (index, url) in urls.enumerated() {
            let output = keepBodies ? dir.file("body-\(index)") : "/dev/null"
            config += "url = \"\(url)\"\noutput = \"\(output)\"\n"
        }
        let configPath = try dir.write("urls.curlrc", config)
        var args = [
            // Per transfer: a single stuck request shows up as its own failure (status 000, curl
            // exit 28, with its URL), not as a timeout of the whole load that hides which one.
            "-s", "--max-time", String(maxTime), "-K", configPath,
            "-w", "%{http_code} %{exitcode} %{time_total} %{url} B=%header{x-backend} P=%header{x-path} R=%header{retry-after} F=%{filename_effective}\\n",
        ]
        if let parallel {
            // --parallel-immediate: open `parallel` connections at once instead of waiting to see
            // whether the first one multiplexes (HTTP/1.1 does not: that would serialize the start).
            args += ["-Z", "--parallel-immediate", "--parallel-max", String(parallel)]
        }
        let result = try await ChildProcess.run(Paths.curl, args, timeout: timeout)
        if result.timedOut { throw HarnessError("curl load of \(urls.count) URLs timed out after \(timeout)") }
        var results = result.stdoutText.split(separator: "\n").compactMap(parse)
        if keepBodies {
            for index in results.indices {
                let file = results[index].bodyFile
                results[index].body = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            }
        }
        guard results.count == urls.count else {
            throw HarnessError(
                "curl reported \(results.count) of \(urls.count) transfers (exit \(result.exitCode)): \(result.stderrText.prefix(2000))"
            )
        }
        return results
    }

    private static func parse(_ line: Substring) -> Result? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 7, let status = Int(fields[0]), let exitCode = Int(fields[1]),
            let seconds = Double(fields[2])
        else { return nil }
        return Result(
            status: status,
            url: String(fields[3]),
            backend: String(fields[4].dropFirst(2)),
            path: String(fields[5].dropFirst(2)),
            retryAfter: String(fields[6].dropFirst(2)),
            seconds: seconds,
            exitCode: exitCode,
            bodyFile: fields.count >= 8 ? String(fields[7].dropFirst(2)) : ""
        )
    }

    /// Occurrences of each value.
    static func histogram<T: Hashable>(_ values: some Sequence<T>) -> [T: Int] {
        values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }
}
