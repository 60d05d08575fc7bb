// swift-tools-version: 6.1
// Micro-benchmarks of fcgiproxy's hot paths with ordo-one/benchmark. A separate package so the
// root package never builds (or resolves) the benchmark dependencies. Run from this folder:
//
//   swift package benchmark                        # all benchmarks
//   swift package benchmark --filter "PARAMS.*"    # some
//
// See Benchmarks/README.md.
import Foundation
import PackageDescription

// A path dependency's identity is the name of its folder (the checkout may be called
// fcgiproxy, main, wt-…), so products of the root package are named through it.
let rootDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let root = rootDirectory.lastPathComponent.lowercased()

let package = Package(
    name: "fcgiproxy-micro",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "FastCGIMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FastCGI", package: root),
                .product(name: "ProxyCore", package: root),
                .product(name: "ProxyConfig", package: root),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/FastCGIMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
