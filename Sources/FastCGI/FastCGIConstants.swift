/// Fixed numbers and names of the FastCGI 1.0 wire protocol.
public enum FastCGIConstants {
    /// The only protocol version this codec speaks (`FCGI_VERSION_1`).
    public static let version: UInt8 = 1
    /// Bytes in every record header.
    public static let headerLength = 8
    /// The largest content a single record can carry (the header field is 16 bits).
    public static let maxContentLength = 65535
    /// The largest multiple of 8 not above `maxContentLength`: stream chunks of this size need no padding, so
    /// content plus padding never exceeds what peers such as PHP-FPM accept in one record.
    public static let maxAlignedContentLength = 65528
    /// `FCGI_KEEP_CONN`: the application must not close the connection after the request.
    public static let keepConnectionFlag: UInt8 = 1
    /// The request ID of management records (`FCGI_GET_VALUES`, `FCGI_UNKNOWN_TYPE`, ...).
    public static let managementRequestID: UInt16 = 0
    /// `FCGI_GET_VALUES` variable: concurrent transport connections the application accepts.
    public static let maxConns = "FCGI_MAX_CONNS"
    /// `FCGI_GET_VALUES` variable: concurrent requests the application accepts.
    public static let maxReqs = "FCGI_MAX_REQS"
    /// `FCGI_GET_VALUES` variable: "1" if the application multiplexes requests on one connection.
    public static let mpxsConns = "FCGI_MPXS_CONNS"
}
