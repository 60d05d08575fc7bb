#if HTTP2

/// The request head of one stream, validated by nghttp2's HTTP messaging rules (pseudo-headers
/// present and in front, no connection-specific fields, lowercase names, content-length numeric).
public struct HTTP2RequestHead: Sendable, Equatable {
    public var method: String
    public var scheme: String
    public var path: String
    /// `:authority`, which takes the part of the Host header (HTTP_HOST).
    public var authority: String?
    /// Regular fields in arrival order, names lowercase; `cookie` crumbs are joined into one
    /// field with "; " (RFC 9113 §8.2.3) where the first crumb was.
    public var headers: [(name: String, value: String)]
    /// The request ended with its header block: no body follows (no STDIN beyond the empty one).
    public var endStream: Bool

    public init(
        method: String, scheme: String, path: String, authority: String?,
        headers: [(name: String, value: String)], endStream: Bool
    ) {
        self.method = method
        self.scheme = scheme
        self.path = path
        self.authority = authority
        self.headers = headers
        self.endStream = endStream
    }

    /// The value of `content-length`, when the client sent one (nghttp2 checked it matches the DATA).
    public var contentLength: Int? {
        headers.first { $0.name == "content-length" }.flatMap { Int($0.value) }
    }

    public static func == (lhs: HTTP2RequestHead, rhs: HTTP2RequestHead) -> Bool {
        lhs.method == rhs.method && lhs.scheme == rhs.scheme && lhs.path == rhs.path
            && lhs.authority == rhs.authority && lhs.endStream == rhs.endStream
            && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}
#endif
