import FastCGI
import NIOCore

/// The decision of a ``FastCGIAuthorizer``.
public enum FastCGIAuthorization: Sendable {
    /// Let the request through. The web server adds each variable to the request it passes on (as the
    /// environment variable `NAME` for CGI-like back ends), taken from the `Variable-NAME` response headers.
    case allow(variables: [(name: String, value: String)] = [])
    /// Refuse the request: the web server sends this response to the client instead. `status` must not be 200,
    /// which means "allow" to the web server.
    case deny(status: Int = 403, headers: [(String, String)] = [], body: ByteBuffer = ByteBuffer())
}

/// The application code behind a worker in the Authorizer role: it decides whether the web server may serve
/// a request, from its CGI variables alone (an authorizer gets no body).
public protocol FastCGIAuthorizer: Sendable {
    /// Decides about `request`. Throwing answers 500, which the web server treats as a refusal.
    func authorize(_ request: FastCGIRequest) async throws -> FastCGIAuthorization
}

/// Runs an authorizer behind the responder machinery: allow becomes status 200 with `Variable-*` headers.
struct FastCGIAuthorizerResponder: FastCGIResponder {
    let authorizer: any FastCGIAuthorizer

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        switch try await self.authorizer.authorize(request) {
        case .allow(let variables):
            try await writer.writeHead(status: 200, headers: variables.map { ("Variable-\($0.name)", $0.value) })
        case .deny(let status, let headers, let body):
            // A refusal that reads as 200 would let the request through.
            try await writer.writeHead(status: status == 200 ? 403 : status, headers: headers)
            try await writer.write(body)
        }
        try await writer.finish()
    }
}
