import FastCGI
import FastCGIClient
import NIOCore
import NIOEmbedded

/// Hands the pool `EmbeddedChannel`s on the test's embedded loop instead of sockets, and keeps
/// them for the test to play the backend: read the records the proxy wrote, write the answer.
final class EmbeddedBackendConnector: FastCGIConnector, @unchecked Sendable {
    // Unchecked: the pool calls it on the embedded loop, which is the test's own thread.
    private let loop: EmbeddedEventLoop
    private(set) var channels: [EmbeddedChannel] = []

    init(loop: EmbeddedEventLoop) {
        self.loop = loop
    }

    func connect(
        to address: SocketAddress,
        on eventLoop: any EventLoop,
        timeout: TimeAmount,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let channel = EmbeddedChannel(loop: loop)
        channels.append(channel)
        return initializer(channel).flatMap {
            channel.connect(to: address)
        }.map { channel as any Channel }
    }

    /// Every record the proxy has written to `channel` since the last call.
    static func records(from channel: EmbeddedChannel) throws -> [FastCGIRecord] {
        var bytes = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) {
            bytes.writeBuffer(&part)
        }
        var decoder = FastCGIRecordDecoder()
        var records: [FastCGIRecord] = []
        while let record = try decoder.decode(buffer: &bytes) {
            records.append(record)
        }
        return records
    }

    /// STDOUT with `output` and END_REQUEST, as one inbound read.
    static func answer(_ output: ByteBuffer, requestID: UInt16, on channel: EmbeddedChannel) throws {
        var bytes = ByteBuffer()
        bytes.writeFastCGIStream(type: .stdout, requestID: requestID, content: output)
        bytes.writeFastCGIStreamEnd(type: .stdout, requestID: requestID)
        bytes.writeFastCGIEndRequest(requestID: requestID, appStatus: 0, protocolStatus: .requestComplete)
        try channel.writeInbound(bytes)
    }
}
