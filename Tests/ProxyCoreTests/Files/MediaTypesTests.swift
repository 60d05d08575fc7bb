#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

@testable import ProxyCore

@Suite struct MediaTypesTests {
    static let sample = """
        ###############
        #  A comment.
        ###############

        application/A2L\t\t\t\t\ta2l
        text/html\t\t\t\t\thtml htm SHTML
        application/json json   # trailing comment
        text/x-empty
        image/svg+xml \t svg svgz\r
        notatype foo
        /nosubtype bar
        nosubtype/ baz
          text/indented  ind
        chemical/x-cif cif
        application/vnd.multiad.creator.cif cif
        # text/commented commented
        """

    @Test func parsesMimeTypesFormat() {
        let types = MediaTypes(mimeTypes: Self.sample)
        #expect(types.types == [
            "a2l": "application/A2L", "html": "text/html", "htm": "text/html", "shtml": "text/html",
            "json": "application/json", "svg": "image/svg+xml", "svgz": "image/svg+xml", "ind": "text/indented",
            "cif": "application/vnd.multiad.creator.cif",
        ])
    }

    @Test func emptyContents() {
        #expect(MediaTypes(mimeTypes: "").types.isEmpty)
        #expect(MediaTypes(mimeTypes: "\n\n# x\n").types.isEmpty)
    }

    @Test(arguments: [
        ("/index.html", "text/html"),
        ("/a/b/INDEX.HTML", "text/html"),
        ("/a.Html", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.mjs", "text/javascript"),
        ("/app.js.map", "application/json"),
        ("/data.json", "application/json"),
        ("/feed.xml", "application/xml"),
        ("/readme.txt", "text/plain"),
        ("/README.md", "text/markdown"),
        ("/logo.svg", "image/svg+xml"),
        ("/a.png", "image/png"),
        ("/a.jpg", "image/jpeg"),
        ("/a.JPEG", "image/jpeg"),
        ("/a.gif", "image/gif"),
        ("/a.webp", "image/webp"),
        ("/a.avif", "image/avif"),
        ("/favicon.ico", "image/vnd.microsoft.icon"),
        ("/f.woff", "font/woff"),
        ("/f.woff2", "font/woff2"),
        ("/f.ttf", "font/ttf"),
        ("/f.otf", "font/otf"),
        ("/f.eot", "application/vnd.ms-fontobject"),
        ("/d.pdf", "application/pdf"),
        ("/d.zip", "application/zip"),
        ("/d.tar.gz", "application/gzip"),
        ("/m.wasm", "application/wasm"),
        ("/v.mp4", "video/mp4"),
        ("/v.webm", "video/webm"),
        ("/s.mp3", "audio/mpeg"),
        ("/s.ogg", "audio/ogg"),
        ("/s.wav", "audio/x-wav"),
        ("/t.csv", "text/csv"),
        ("/s.css", "text/css"),
        ("/app.js.br", "application/octet-stream"),
        ("/noext", "application/octet-stream"),
        ("/a.b/noext", "application/octet-stream"),
        ("/trailing.", "application/octet-stream"),
        ("/.profile", "application/octet-stream"),
        ("/dir/.html", "application/octet-stream"),
        ("/..html", "text/html"),
        ("/a.unknownextension", "application/octet-stream"),
        ("/a.html/", "application/octet-stream"),
        ("/", "application/octet-stream"),
        ("", "application/octet-stream"),
        ("index.html", "text/html"),
        (".html", "application/octet-stream"),
        ("/a.htmlx", "application/octet-stream"),
        ("/a.HTM\u{130}", "application/octet-stream"),
    ])
    func builtIn(path: String, expected: String) {
        #expect(MediaTypes.builtIn.contentType(forPath: path[...]) == expected)
    }

    @Test func longExtensions() {
        let types = MediaTypes(mimeTypes: "application/x-long averyveryverylongextension")
        #expect(types.contentType(forPath: "/f.averyveryverylongextension") == "application/x-long")
        #expect(types.contentType(forPath: "/f.AVeryVeryVeryLongExtension") == "application/x-long")
    }

    @Test func pathIsASubstring() {
        let target = "/x/style.css?v=1"
        let path = target[..<target.firstIndex(of: "?")!]
        #expect(MediaTypes.builtIn.contentType(forPath: path) == "text/css")
    }

    @Test func builtInMatchesTheSystemTable() {
        // Where the machine has Debian's table, the built-in one agrees with it except where
        // it deliberately adds (`map`).
        let system = MediaTypes.load()
        guard access("/etc/mime.types", R_OK) == 0 else { return }
        for (ext, type) in MediaTypes.builtIn.types where ext != "map" {
            #expect(system.types[ext] == type, "\(ext)")
        }
    }

    @Test func loadMergesFileOverBuiltIn() throws {
        let path = try Self.temporaryFile("text/x-mine html mine\n")
        defer { unlink(path) }
        let types = MediaTypes.load(path: path)
        #expect(types.contentType(forPath: "/a.html") == "text/x-mine")
        #expect(types.contentType(forPath: "/a.MINE") == "text/x-mine")
        #expect(types.contentType(forPath: "/a.css") == "text/css")
        #expect(types.types.count == MediaTypes.builtIn.types.count + 1)
    }

    @Test func loadFallsBack() throws {
        #expect(MediaTypes.load(path: "/nonexistent/mime.types").types == MediaTypes.builtIn.types)
        #expect(MediaTypes.load(path: "/").types == MediaTypes.builtIn.types)
        let empty = try Self.temporaryFile("# nothing\n")
        defer { unlink(empty) }
        #expect(MediaTypes.load(path: empty).types == MediaTypes.builtIn.types)
    }

    @Test func loadsALargeFile() throws {
        // More than one read chunk.
        var text = ""
        for index in 0..<10_000 { text += "application/x-test\(index) ext\(index)\n" }
        let path = try Self.temporaryFile(text)
        defer { unlink(path) }
        let types = MediaTypes.load(path: path)
        #expect(types.contentType(forPath: "/a.ext9999") == "application/x-test9999")
        #expect(types.contentType(forPath: "/a.ext0") == "application/x-test0")
    }

    struct TemporaryFileError: Error {}

    static func temporaryFile(_ contents: String) throws -> String {
        var template = Array("/tmp/mediatypes-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw TemporaryFileError() }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw TemporaryFileError() }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
