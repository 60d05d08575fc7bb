/// The protocol-level outcome of a request, as sent in `FCGI_END_REQUEST`.
public enum FastCGIProtocolStatus: UInt8, Sendable {
    case requestComplete = 0, cantMultiplexConnection = 1, overloaded = 2, unknownRole = 3
}
