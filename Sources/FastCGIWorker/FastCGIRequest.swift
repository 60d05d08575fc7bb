import FastCGI

/// One request as the web server opened it: who it is, what role the worker plays, its CGI variables and
/// its body.
public struct FastCGIRequest: Sendable {
    /// The request ID on its connection; unique only among the connection's active requests.
    public var requestID: UInt16
    /// The role the web server asked for (``FastCGIRole/responder`` or ``FastCGIRole/authorizer``).
    public var role: FastCGIRole
    /// The CGI variables (`FCGI_PARAMS`).
    public var params: FastCGIParams
    /// The request body (`FCGI_STDIN`), streamed as it arrives. Empty for the Authorizer role.
    public var body: FastCGIRequestBody

    /// Creates a request; the server does this, tests may too.
    public init(requestID: UInt16, role: FastCGIRole, params: FastCGIParams, body: FastCGIRequestBody) {
        self.requestID = requestID
        self.role = role
        self.params = params
        self.body = body
    }
}
