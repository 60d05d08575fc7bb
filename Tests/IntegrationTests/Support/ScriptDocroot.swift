import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A document root of small PHP scripts written for one test suite (the example app lacks
/// scripts that die mid-response, read their whole body, or stream on demand).
enum ScriptDocroot {
    /// Writes `scripts` (name → PHP source) into `dir/www` and returns that folder.
    static func make(in dir: TempDir, _ scripts: [String: String]) throws -> String {
        let root = dir.file("www")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
        for (name, text) in scripts {
            try text.write(toFile: root + "/" + name, atomically: true, encoding: .utf8)
        }
        return root
    }
}
