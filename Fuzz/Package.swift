// swift-tools-version: 6.1
// libFuzzer targets for fcgiproxy's parsers. A separate package so the root package never builds
// them (they only link with `-sanitize=fuzzer`, which provides `main`). Build and run with
// `make fuzz` from the root, or by hand from this folder:
//
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=no .build/release/FuzzHTTP1Parser -dict=Dictionaries/http1.dict CORPUS_DIR
//
// See docs/fuzzing.md.
import Foundation
import PackageDescription

// A path dependency's identity is the name of its folder (the checkout may be called
// fcgiproxy, main, wt-…), so products of the root package are named through it.
let rootDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let root = rootDirectory.lastPathComponent.lowercased()

let package = Package(
    name: "fcgiproxy-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        // HTTP2 for the HTTP/2 target (libnghttp2-dev); not TLS: nothing fuzzed here needs it,
        // and without it the sanitized build does not compile BoringSSL.
        .package(path: "..", traits: ["HTTP2"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzHTTP1Parser",
            dependencies: [
                .product(name: "ProxyCore", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzFastCGIRecords",
            dependencies: [
                .product(name: "FastCGI", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzCGIResponseHead",
            dependencies: [
                .product(name: "ProxyCore", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzConfigParser",
            dependencies: [.product(name: "ProxyConfig", package: root)]
        ),
        .executableTarget(
            name: "FuzzHTTP1Differential",
            dependencies: [
                .product(name: "ProxyCore", package: root),
                .product(name: "HTTPFieldBytes", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzHTTP2Session",
            dependencies: [
                .product(name: "ProxyHTTP2", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
