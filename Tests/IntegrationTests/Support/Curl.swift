import Foundation

/// The outcome of one curl run (the last response when curl fetched several).
struct CurlResponse: Sendable {
    /// `%{http_code}` of the last transfer (0 when there was no response).
    var status: Int
    /// Header lines of the last response (after any 1xx interim ones).
    var headers: [(name: String, value: String)]
    /// All response head blocks in order, interim ones included (raw text).
    var headBlocks: [String]
    var body: Data
    /// `%{size_download}` of the last transfer.
    var sizeDownload: Int
    var exitCode: Int32
    var stderr: String

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? { headers(name).first }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    func json() throws -> [String: Any] { try Util.json(body) }
}

/// /usr/bin/curl through Foundation's Process.
enum Curl {
    /// Runs `curl -sS ARGS` with the response head and body captured; with `discardBody` the
    /// body goes to /dev/null (for large downloads; `sizeDownload` still counts it).
    static func run(
        _ arguments: [String],
        discardBody: Bool = false,
        timeout: Duration = .seconds(60)
    ) async throws -> CurlResponse {
        let dir = try TempDir("fcgiproxy-curl")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let headPath = dir.file("head")
        let bodyPath = discardBody ? "/dev/null" : dir.file("body")
        let args = ["-sS", "-D", headPath, "-o", bodyPath, "-w", "\n%{http_code} %{size_download}\n"] + arguments
        let result = try await ChildProcess.run(Paths.curl, args, timeout: timeout)
        if result.timedOut {
            throw HarnessError("curl \(arguments.joined(separator: " ")) timed out after \(timeout)")
        }
        let lastLine = result.stdoutText.split(separator: "\n").last.map(String.init) ?? ""
        let fields = lastLine.split(separator: " ")
        let headText = (try? String(contentsOfFile: headPath, encoding: .utf8)) ?? ""
        let blocks = headText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        let lastBlock = blocks.last ?? ""
        let headers: [(name: String, value: String)] = lastBlock.components(separatedBy: "\r\n").dropFirst()
            .compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        return CurlResponse(
            status: fields.first.flatMap { Int($0) } ?? 0,
            headers: headers,
            headBlocks: blocks,
            body: discardBody ? Data() : (FileManager.default.contents(atPath: bodyPath) ?? Data()),
            sizeDownload: fields.count > 1 ? Int(fields[1]) ?? 0 : 0,
            exitCode: result.exitCode,
            stderr: result.stderrText
        )
    }
}
