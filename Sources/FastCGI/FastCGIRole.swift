/// The role an application plays for one request, as sent in `FCGI_BEGIN_REQUEST`.
public enum FastCGIRole: UInt16, Sendable {
    case responder = 1, authorizer = 2, filter = 3
}
