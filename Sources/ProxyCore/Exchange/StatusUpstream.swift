import NIOCore

/// A fixed answer decided by the route, with no backend and no file: a `status` route (a deny
/// rule, a maintenance 503) or a directory's redirect to its slash form. The answer is the
/// proxy's own response for that status, with the error's extra fields (`Location`).
final class StatusUpstream: Upstream {
    private let answer: HTTPError

    init(_ answer: HTTPError) {
        self.answer = answer
    }

    func start(now: NIODeadline) throws(HTTPError) {
        throw answer
    }
}
