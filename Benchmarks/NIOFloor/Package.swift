// swift-tools-version:6.1
// NIO's own cost per proxied request, for Benchmarks/compare: see Sources/nio-floor/main.swift.
// A package of its own so that it stays out of fcgiproxy's build graph.
import PackageDescription

let package = Package(
    name: "NIOFloor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
    ]
)
