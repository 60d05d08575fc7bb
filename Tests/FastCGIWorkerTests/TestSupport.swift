import FastCGI
import NIOCore

/// A one-shot flag a test can wait on from any task.
actor Signal {
    private var fired = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func fire() {
        self.fired = true
        for waiter in self.waiters { waiter.resume() }
        self.waiters = []
    }

    var isFired: Bool { self.fired }

    func wait() async {
        if self.fired { return }
        await withCheckedContinuation { self.waiters.append($0) }
    }
}

/// A counter shared between a responder task and the test.
actor Counter {
    private(set) var value = 0
    func add(_ amount: Int) { self.value += amount }
}

/// The response of one request, reassembled from records.
struct CollectedResponse {
    var stdout = ByteBuffer()
    var stderr = ByteBuffer()
    var stdoutEnded = false
    var end: FastCGIEndRequestBody?

    var text: String { String(buffer: self.stdout) }
    /// The body after the CGI head.
    var body: String {
        let bytes = Array(self.stdout.readableBytesView)
        let separator = Array("\r\n\r\n".utf8)
        guard let start = (0...max(0, bytes.count - 4)).first(where: { bytes[$0..<min($0 + 4, bytes.count)].elementsEqual(separator) })
        else { return "" }
        return String(decoding: bytes[(start + 4)...], as: UTF8.self)
    }

    mutating func add(_ record: FastCGIRecord) throws {
        switch record.recordType {
        case .stdout:
            if record.content.readableBytes == 0 {
                self.stdoutEnded = true
            } else {
                self.stdout.writeImmutableBuffer(record.content)
            }
        case .stderr:
            self.stderr.writeImmutableBuffer(record.content)
        case .endRequest:
            self.end = try FastCGIEndRequestBody(parsing: record.content)
        default:
            break
        }
    }
}

extension ByteBuffer {
    /// BEGIN_REQUEST, PARAMS and STDIN of a whole request, as a web server would send them.
    mutating func writeWholeRequest(
        id: UInt16,
        params: [(String, String)] = [],
        body: String? = "",
        keepConn: Bool = true,
        role: FastCGIRole = .responder
    ) {
        self.writeFastCGIBeginRequest(requestID: id, role: role, flags: keepConn ? FastCGIConstants.keepConnectionFlag : 0)
        var writer = FastCGIParamsWriter(requestID: id, buffer: self)
        for (name, value) in params {
            try! writer.append(name: name, value: value)
        }
        self = writer.finish()
        if let body {
            self.writeFastCGIStream(type: .stdin, requestID: id, content: ByteBuffer(string: body))
            self.writeFastCGIStreamEnd(type: .stdin, requestID: id)
        }
    }
}
