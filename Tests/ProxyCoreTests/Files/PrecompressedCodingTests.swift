import Testing

@testable import ProxyCore

@Suite struct PrecompressedCodingTests {
    @Test func suffixes() {
        #expect(PrecompressedCoding.br.fileSuffix == ".br")
        #expect(PrecompressedCoding.gzip.fileSuffix == ".gz")
        #expect(PrecompressedCoding.br.rawValue == "br")
        #expect(PrecompressedCoding.gzip.rawValue == "gzip")
    }

    @Test(arguments: [
        ("gzip, deflate, br, zstd", [PrecompressedCoding.br, .gzip]),
        ("gzip, deflate, br", [.br, .gzip]),
        ("gzip, deflate", [.gzip]),
        ("br", [.br]),
        ("gzip", [.gzip]),
        ("GZIP", [.gzip]),
        ("Br", [.br]),
        ("x-gzip", [.gzip]),
        // Server order, whatever the client's preference.
        ("gzip;q=1.0, br;q=0.1", [.br, .gzip]),
        ("br;q=0, gzip", [.gzip]),
        ("br;q=0.0, gzip;q=0.000", []),
        ("br;Q=0, gzip;q=0.001", [.gzip]),
        ("br ; q = 0 , gzip ;q=0.5", [.gzip]),
        ("br;q=1, gzip;q=1.000", [.br, .gzip]),
        ("br;level=5;q=0.5", [.br]),
        ("br;q=0.5;level=5", [.br]),
        // `*`
        ("*", [.br, .gzip]),
        ("*;q=0.5", [.br, .gzip]),
        ("*;q=0", []),
        ("*;q=0, gzip", [.gzip]),
        ("*, gzip;q=0", [.br]),
        ("gzip;q=0, *", [.br]),
        ("br, *;q=0", [.br]),
        // `identity` plays no part.
        ("identity", []),
        ("identity;q=0", []),
        ("identity;q=0, *", [.br, .gzip]),
        ("deflate, zstd", []),
        ("", []),
        (" , ,", []),
        // A refusal wins over an acceptance of the same coding.
        ("gzip, gzip;q=0", []),
        ("gzip;q=0, x-gzip", []),
        // Invalid q-values: the element is ignored.
        ("br;q=2, gzip", [.gzip]),
        ("br;q=1.5, gzip", [.gzip]),
        ("br;q=0.12345, gzip", [.gzip]),
        ("br;q=.5, gzip", [.gzip]),
        ("br;q=, gzip", [.gzip]),
        ("br;q=-1, gzip", [.gzip]),
        ("br;q=0.5x", []),
        ("*;q=abc, br;q=0.1", [.br]),
        // Names must match exactly.
        ("brotli, gzip2, xgzip, gzi, b", []),
        ("br gzip", []),
    ])
    func accepted(header: String, expected: [PrecompressedCoding]) {
        #expect(PrecompressedCoding.accepted(acceptEncoding: header) == expected)
    }

    @Test func absent() {
        #expect(PrecompressedCoding.accepted(acceptEncoding: nil) == [])
    }

    @Test func qParameterNamePrefixIsNotQ() {
        // Only a parameter named `q` is a weight.
        #expect(PrecompressedCoding.accepted(acceptEncoding: "br;qq=0") == [.br])
        #expect(PrecompressedCoding.accepted(acceptEncoding: "br;x=0") == [.br])
    }
}
