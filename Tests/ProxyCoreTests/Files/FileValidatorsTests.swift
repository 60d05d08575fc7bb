import Testing

@testable import ProxyCore

@Suite struct FileValidatorsTests {
    @Test func nginxForm() {
        let validators = FileValidators(size: 500, modified: 784_111_777)
        #expect(validators.size == 500)
        #expect(validators.modified == 784_111_777)
        #expect(validators.etag == "\"2ebc98a1-1f4\"")
        #expect(validators.lastModified == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test func emptyFileAtEpoch() {
        let validators = FileValidators(size: 0, modified: 0)
        #expect(validators.etag == "\"0-0\"")
        #expect(validators.lastModified == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    @Test func largeAndNegative() {
        #expect(FileValidators(size: 1 << 40, modified: 1_700_000_000).etag == "\"6553f100-10000000000\"")
        #expect(FileValidators(size: 1, modified: -1).etag == "\"ffffffffffffffff-1\"")
    }

    @Test func equality() {
        #expect(FileValidators(size: 1, modified: 2) == FileValidators(size: 1, modified: 2))
        #expect(FileValidators(size: 1, modified: 2) != FileValidators(size: 1, modified: 3))
        #expect(FileValidators(size: 1, modified: 2) != FileValidators(size: 2, modified: 2))
    }
}
