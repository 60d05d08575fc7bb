#if HTTP2
import ProxyHTTP2
import Testing

@Suite struct HTTP2SupportTests {
    @Test func reportsTheLibraryVersion() {
        // "1.52.0" and the like: the library was found and linked.
        #expect(HTTP2Support.libraryVersion.split(separator: ".").count == 3)
    }
}
#endif
