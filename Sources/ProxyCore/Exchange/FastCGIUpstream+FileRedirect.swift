import NIOCore

/// X-Accel-Redirect (a path routed again, `internal` routes included) and X-Sendfile (a file
/// under the pool's `x_sendfile`): the backend's body is dropped and the exchange goes on with
/// another upstream.
extension FastCGIUpstream {
    /// The backend's fields an X-Accel-Redirect or X-Sendfile response keeps (nginx's list).
    static let keptByFileRedirect: Set<String> = [
        "content-type", "content-disposition", "cache-control", "expires", "set-cookie",
    ]

    /// Hands the exchange on when the head asks for a file; false when it asks for neither.
    func fileRedirect(_ cgiHead: CGIResponseHead) -> Bool {
        var accel: String?
        var sendfile: String?
        for field in cgiHead.headers {
            switch field.name.utf8.count {
            case 16 where field.name.equalsLowercasedASCII("x-accel-redirect"): accel = field.value
            case 10 where field.name.equalsLowercasedASCII("x-sendfile"): sendfile = field.value
            default: break
            }
        }
        guard accel != nil || sendfile != nil else { return false }
        let kept = cgiHead.headers.filter { Self.keptByFileRedirect.contains($0.name.lowercased()) }
        if let accel {
            guard accel.first == "/" else {
                abandon()
                exchange.fail(HTTPError(502, "X-Accel-Redirect is not a path: \(accel)"))
                return true
            }
            exchange.redirect(to: accel, internal: true, keeping: kept)
            return true
        }
        let directory = poolConfig.xSendfile
        guard let sendfile, let directory, StaticPathPolicy.isFile(sendfile, inside: directory) else {
            abandon()
            let reason =
                directory == nil
                ? "X-Sendfile from pool \(poolConfig.name) without x_sendfile"
                : "X-Sendfile outside x_sendfile: \(sendfile ?? "")"
            exchange.shared.logger.error("\(reason)", metadata: exchange.logMetadata)
            exchange.fail(HTTPError(500, reason))
            return true
        }
        exchange.sendFile(at: sendfile, keeping: kept)
        return true
    }
}
