import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP helpers.
enum Net {
    /// A port that was free a moment ago: bind 127.0.0.1:0, read the port, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        defer { close(fd) }
        var addr = loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("bind: errno \(errno)") }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &out) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw HarnessError("getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: out.sin_port))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// A connected blocking TCP socket to 127.0.0.1:port, or nil.
    /// `receiveBuffer`: SO_RCVBUF, set before connecting (the window scale is agreed then:
    /// shrinking the buffer later makes the kernel drop data and the sender back off).
    static func connect(port: Int, receiveBuffer: Int? = nil) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if let receiveBuffer {
            var size = Int32(receiveBuffer)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = loopback(port: port)
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            close(fd)
            return nil
        }
        return fd
    }

    /// Waits until something accepts TCP connections on the port, while `alive()` holds.
    static func waitUntilAccepting(port: Int, timeout: Duration, alive: () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let fd = connect(port: port) {
                close(fd)
                return true
            }
            if !alive() { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

/// One HTTP response as read off the wire.
struct RawResponse: Sendable {
    var version: String
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    var isInterim: Bool { (100..<200).contains(status) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// What a raw exchange read: the bytes, the complete responses parsed from them, and whether
/// the server closed the connection.
struct RawReply: Sendable {
    var bytes: [UInt8]
    var responses: [RawResponse]
    var closed: Bool

    var text: String { String(decoding: bytes, as: UTF8.self) }
    /// The final (non-1xx) responses.
    var finals: [RawResponse] { responses.filter { !$0.isInterim } }
    /// Status of the first final response, or nil.
    var status: Int? { finals.first?.status }
}

/// A raw TCP client for framing tests: sends exact bytes, reads exactly what comes back.
final class RawHTTP {
    private let fd: Int32

    /// `receiveBuffer`: a small SO_RCVBUF, for a client that reads slowly.
    init(port: Int, receiveBuffer: Int? = nil) throws {
        guard let fd = Net.connect(port: port, receiveBuffer: receiveBuffer) else {
            throw HarnessError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Writes all bytes (false if the peer closed or reset first).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0, errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Half-closes the sending side.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads at most `max` bytes, waiting up to `timeout` for the first: how many came (0: none
    /// in time), or nil once the peer closed or reset.
    func readSome(max: Int, timeout: Duration) -> Int? {
        let ms = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, ms) > 0 else { return 0 }
        var chunk = [UInt8](repeating: 0, count: max)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { return n }
        if n < 0, errno == EINTR || errno == EAGAIN { return 0 }
        return nil
    }

    /// Reads until `count` final responses are complete (interim 1xx ones are kept but not
    /// counted unless `countInterim`), the server closes, or `timeout` passes.
    /// `headRequests` marks responses to HEAD (no body), by position among final responses.
    func readResponses(
        _ count: Int,
        countInterim: Bool = false,
        headRequests: Set<Int> = [],
        timeout: Duration = .seconds(5)
    ) -> RawReply {
        read(timeout: timeout, headRequests: headRequests) { responses in
            (countInterim ? responses.count : responses.filter { !$0.isInterim }.count) >= count
        }
    }

    /// Reads until the server closes the connection or `timeout` passes.
    func readUntilClose(timeout: Duration = .seconds(5), headRequests: Set<Int> = []) -> RawReply {
        read(timeout: timeout, headRequests: headRequests) { _ in false }
    }

    private func read(
        timeout: Duration,
        headRequests: Set<Int>,
        done: ([RawResponse]) -> Bool
    ) -> RawReply {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var buffer: [UInt8] = []
        var closed = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let parsed = HTTPResponseParser.parse(buffer, headRequests: headRequests, closed: false)
            if done(parsed) { return RawReply(bytes: buffer, responses: parsed, closed: false) }
            let left = deadline - clock.now
            if left <= .zero { break }
            let ms = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, ms)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                closed = true
                break
            }
        }
        return RawReply(
            bytes: buffer,
            responses: HTTPResponseParser.parse(buffer, headRequests: headRequests, closed: closed),
            closed: closed
        )
    }
}

/// Parses HTTP/1.x responses from a byte buffer; only complete ones are returned (a response
/// delimited by close counts as complete once `closed`).
enum HTTPResponseParser {
    static func parse(_ bytes: [UInt8], headRequests: Set<Int>, closed: Bool) -> [RawResponse] {
        var responses: [RawResponse] = []
        var pos = 0
        var finalIndex = 0
        let crlfcrlf: [UInt8] = [13, 10, 13, 10]
        while pos < bytes.count {
            guard let headEnd = find(crlfcrlf, in: bytes, from: pos) else { break }
            let head = String(decoding: bytes[pos..<headEnd], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let status = Int(parts[1]) else { break }
            var response = RawResponse(
                version: String(parts[0]),
                status: status,
                reason: parts.count > 2 ? String(parts[2]) : "",
                headers: lines.compactMap { line in
                    guard let colon = line.firstIndex(of: ":") else { return nil }
                    return (
                        String(line[..<colon]),
                        line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    )
                },
                body: []
            )
            var bodyStart = headEnd + 4
            if response.isInterim {
                responses.append(response)
                pos = bodyStart
                continue
            }
            let noBody = headRequests.contains(finalIndex) || status == 204 || status == 304
            if noBody {
                pos = bodyStart
            } else if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
                var body: [UInt8] = []
                var complete = false
                while let lineEnd = find([13, 10], in: bytes, from: bodyStart) {
                    let sizeText = String(decoding: bytes[bodyStart..<lineEnd], as: UTF8.self)
                    guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { break }
                    let dataStart = lineEnd + 2
                    if size == 0 {
                        // Trailer section ends with an empty line.
                        guard let end = find([13, 10], in: bytes, from: dataStart) else { break }
                        if end == dataStart {
                            bodyStart = end + 2
                        } else if let trailerEnd = find(crlfcrlf, in: bytes, from: dataStart) {
                            bodyStart = trailerEnd + 4
                        } else {
                            break
                        }
                        complete = true
                        break
                    }
                    guard dataStart + size + 2 <= bytes.count else { break }
                    body.append(contentsOf: bytes[dataStart..<dataStart + size])
                    bodyStart = dataStart + size + 2
                }
                guard complete else { break }
                response.body = body
                pos = bodyStart
            } else if let lengthText = response.header("Content-Length"), let length = Int(lengthText) {
                guard bodyStart + length <= bytes.count else { break }
                response.body = Array(bytes[bodyStart..<bodyStart + length])
                pos = bodyStart + length
            } else {
                // Delimited by close.
                guard closed else { break }
                response.body = Array(bytes[bodyStart...])
                pos = bytes.count
            }
            responses.append(response)
            finalIndex += 1
        }
        return responses
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard needle.count <= bytes.count - start else { return nil }
        var i = start
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0], Array(bytes[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }
}
