#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole (small) file with plain POSIX calls, keeping this module free of Foundation.
/// Package-wide: ProxyCore reads the TLS certificate and key files with it too.
package enum FileReader {
    /// Why a file could not be read, phrased for a message after the file name.
    package struct ReadError: Error, Sendable, Equatable {
        package var message: String
    }

    /// The file's bytes decoded as UTF-8 (a leading byte-order mark is dropped).
    static func readText(path: String) throws(ReadError) -> String {
        var bytes = try readBytes(path: path)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            bytes.removeFirst(3)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ReadError(message: "not valid UTF-8 text")
        }
        return text
    }

    /// The file's bytes as they are.
    package static func readBytes(path: String) throws(ReadError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            throw ReadError(message: "cannot open: \(describe(errno))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 {
                break
            }
            if count < 0 {
                if errno == EINTR {
                    continue
                }
                throw ReadError(message: "cannot read: \(describe(errno))")
            }
            bytes += chunk[..<count]
        }
        return bytes
    }

    private static func describe(_ code: Int32) -> String {
        guard let message = strerror(code) else {
            return "error \(code)"
        }
        return String(cString: message)
    }
}
