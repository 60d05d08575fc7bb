#if HTTP2
import NIOCore

/// Chooses a connection's protocol from its first bytes: the HTTP/2 client preface
/// (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`) means HTTP/2 (h2c with prior knowledge, or h2 after a
/// TLS handshake that negotiated it by ALPN: such a client sends the preface first, so the
/// bytes decide in both cases), anything else HTTP/1. It then installs the handlers behind
/// itself, passes the bytes it held on and leaves the pipeline.
///
/// An HTTP/1 request differs from the preface within its first bytes ("GET ", "POST"), so
/// HTTP/1 connections are not delayed; only a prefix of the preface is held back.
final class HTTP2PrefaceDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Choice {
        case http1
        case http2
    }

    static let preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    private let install: (Choice, ChannelPipeline.SynchronousOperations) throws -> Void
    private let timeouts: ConnectionTimeouts?
    private var held: ByteBuffer?

    /// `install` adds the chosen protocol's handlers at the end of the pipeline (behind this one).
    /// `timeouts` are stopped if the connection closes before a protocol was chosen.
    init(
        timeouts: ConnectionTimeouts? = nil,
        install: @escaping (Choice, ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.timeouts = timeouts
        self.install = install
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeouts?.stop()
        context.fireChannelInactive()
    }

    /// Which protocol `bytes` start with; nil while they are a proper prefix of the preface.
    static func choice(for bytes: ByteBuffer) -> Choice? {
        let count = min(bytes.readableBytes, preface.utf8CodeUnitCount)
        let matches = bytes.withUnsafeReadableBytes { raw in
            preface.withUTF8Buffer { preface in
                for i in 0..<count where raw[i] != preface[i] { return false }
                return true
            }
        }
        if !matches { return .http1 }
        return count == preface.utf8CodeUnitCount ? .http2 : nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var held {
            held.writeBuffer(&bytes)
            bytes = held
            self.held = nil
        }
        guard let choice = Self.choice(for: bytes) else {
            held = bytes
            return
        }
        do {
            try install(choice, context.pipeline.syncOperations)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Before any protocol was chosen (a failed TLS handshake, a reset): nothing to answer.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP2PrefaceDetector: Sendable {}
#endif
