import FastCGIWorker
import Logging

/// Sends each request to the endpoint for its path.
struct DemoApp: FastCGIResponder {
    private struct Route {
        var endpoint: any FastCGIResponder
        /// Methods the endpoint answers; `nil` for any.
        var methods: Set<String>? = ["GET", "HEAD"]
    }

    private let routes: [String: Route]

    init(logger: Logger) {
        self.routes = [
            "/": Route(endpoint: ParamsPage()),
            "/echo": Route(endpoint: EchoEndpoint(), methods: nil),
            "/stream": Route(endpoint: StreamEndpoint(logger: logger)),
            "/slow": Route(endpoint: SlowEndpoint()),
            "/bytes": Route(endpoint: BytesEndpoint()),
        ]
    }

    func respond(to request: FastCGIRequest, writer: FastCGIResponseWriter) async throws {
        guard let route = self.routes[request.path] else {
            try await writer.writeText(status: 404, "not found\n")
            return
        }
        if let methods = route.methods, !methods.contains(request.method) {
            try await writer.writeText(status: 405, "method not allowed\n", headers: [("Allow", methods.sorted().joined(separator: ", "))])
            return
        }
        try await route.endpoint.respond(to: request, writer: writer)
    }
}
