import NIOCore

/// The request body (`FCGI_STDIN`) as an async sequence of buffers, in the order they arrived.
///
/// Single consumer: iterate it at most once. The server buffers only a few records per request ahead of the
/// consumer and then stops reading the connection, so a slow consumer holds back the web server instead of
/// filling memory (see ``FastCGIWorkerConfiguration/bodyHighWatermark`` for what that means for other
/// requests on the same connection). Iteration throws if the request is aborted or the connection closes
/// before the body ended.
public struct FastCGIRequestBody: AsyncSequence, Sendable {
    /// Each element is the content of one `FCGI_STDIN` record, sharing storage with the read buffer.
    public typealias Element = ByteBuffer

    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
        FastCGIRequestBodyDelegate
    >

    private enum Storage: Sendable {
        case streamed(Producer)
        case fixed([ByteBuffer])
    }

    private let storage: Storage

    init(producer: Producer) {
        self.storage = .streamed(producer)
    }

    /// A body that yields `chunks` and ends; for testing responders without a connection.
    public init(_ chunks: [ByteBuffer] = []) {
        self.storage = .fixed(chunks)
    }

    /// Starts the (single) iteration.
    public func makeAsyncIterator() -> AsyncIterator {
        switch self.storage {
        case .streamed(let producer): AsyncIterator(storage: .streamed(producer.makeAsyncIterator()))
        case .fixed(let chunks): AsyncIterator(storage: .fixed(chunks.makeIterator()))
        }
    }

    /// Reads the whole body into one buffer.
    /// - Throws: ``FastCGIWorkerError/bodyTooLarge(limit:)`` once more than `maxBytes` arrived, and whatever
    ///   iteration throws.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        for try await var chunk in self {
            guard result.readableBytes + chunk.readableBytes <= maxBytes else {
                throw FastCGIWorkerError.bodyTooLarge(limit: maxBytes)
            }
            result.writeBuffer(&chunk)
        }
        return result
    }

    /// The iterator of ``FastCGIRequestBody``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate enum Storage {
            case streamed(Producer.AsyncIterator)
            case fixed(IndexingIterator<[ByteBuffer]>)
        }

        fileprivate var storage: Storage

        /// The next chunk, or `nil` once the body has ended.
        public mutating func next() async throws -> ByteBuffer? {
            switch self.storage {
            case .streamed(let iterator):
                return try await iterator.next()
            case .fixed(var iterator):
                let chunk = iterator.next()
                self.storage = .fixed(iterator)
                return chunk
            }
        }
    }
}
