import ProxyCore
import Testing

/// Asserts that `body` throws an ``HTTPError`` with `status`; the reason text is for logs only,
/// the status is the contract.
func expectStatus(
    _ status: Int, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: HTTPError.self, sourceLocation: sourceLocation) {
        try body()
    }
    #expect(error?.status == status, sourceLocation: sourceLocation)
}
