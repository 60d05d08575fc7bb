#if HTTP2
import CNGHTTP2

/// What the HTTP/2 support of this build is made of.
public enum HTTP2Support {
    /// The libnghttp2 version the process runs with (it may differ from the headers the build saw).
    public static var libraryVersion: String {
        guard let info = nghttp2_version(0) else { return "unknown" }
        return String(cString: info.pointee.version_str)
    }
}
#endif
