/// `Date` and `Server` of a response, for both front ends: RFC 9110 §6.6.1 has an origin with a
/// clock send Date, and to the client the proxy is the origin. A backend's own fields are kept
/// (a script may date its response); the proxy's answers always carry ours.
struct OriginFields {
    /// nil: the response has its own.
    let date: String?
    let server: String?

    /// For a backend's (or a static file's) head.
    init(for head: CGIResponseHead, resources: LoopResources, serverSoftware: String) {
        let (hasDate, hasServer) = head.sendsDateAndServer
        date = hasDate ? nil : resources.httpDate()
        server = hasServer ? nil : serverSoftware
    }

    /// For the proxy's own answer (an error page).
    init(resources: LoopResources, serverSoftware: String) {
        date = resources.httpDate()
        server = serverSoftware
    }
}
