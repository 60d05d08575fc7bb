import NIOCore
import ProxyConfig

extension LogEscaping {
    /// A backend's STDERR record for the log: trailing line ends dropped (they end the line, they
    /// are not content), the rest escaped.
    static func escape(_ buffer: ByteBuffer, limit: Int) -> String {
        var view = buffer.readableBytesView[...]
        while let last = view.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
            view = view.dropLast()
        }
        return escape(view, limit: limit)
    }
}
