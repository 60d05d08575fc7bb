/// A violation of the FastCGI 1.0 wire format found while decoding or encoding.
public enum FastCGIProtocolError: Error, Sendable, Equatable {
    /// A record header carried a version other than `FastCGIConstants.version`.
    case unsupportedVersion(UInt8)
    /// A fixed-size record body (BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE) had the wrong length;
    /// the associated value is the raw record type.
    case malformedBody(type: UInt8)
    /// Name-value pair content ended inside a length field, a name or a value.
    case malformedNameValuePair
    /// One encoded pair of this many bytes cannot fit a single PARAMS record, and peers such as PHP-FPM
    /// parse each PARAMS record on its own, so it cannot be split either.
    case nameValuePairTooLarge(Int)
}
