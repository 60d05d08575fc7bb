// swift-tools-version:6.1
import PackageDescription

// Our own targets: Swift 6 mode (strict concurrency) for all; warnings are kept at zero by review and CI.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "fcgiproxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fcgiproxy", targets: ["fcgiproxy"]),
        .executable(name: "fcgi-demo", targets: ["fcgi-demo"]),
        .library(name: "FastCGI", targets: ["FastCGI"]),
        .library(name: "FastCGIWorker", targets: ["FastCGIWorker"]),
        // For Benchmarks/Micro (a separate package): the request mapping measured there is ProxyCore's
        // public API (RequestPath, Router, ScriptResolver, CGIParameters, CGIResponseHeadParser).
        .library(name: "ProxyCore", targets: ["ProxyCore"]),
        .library(name: "ProxyConfig", targets: ["ProxyConfig"]),
        .library(name: "HTTPFieldBytes", targets: ["HTTPFieldBytes"]),
        // For Fuzz (a separate package): its HTTP/2 target drives HTTP2ServerSession.
        .library(name: "ProxyHTTP2", targets: ["ProxyHTTP2"]),
    ],
    traits: [
        .trait(
            name: "HTTP2",
            description: "HTTP/2 front end (h2c, h2 by ALPN) on libnghttp2; needs libnghttp2-dev to build."
        ),
        .trait(
            name: "TLS",
            description: "TLS listeners (`listen = ADDR tls`) on swift-nio-ssl (BoringSSL, built from source)."
        ),
        .default(enabledTraits: ["HTTP2", "TLS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "FastCGI",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "FastCGIClient",
            dependencies: [
                "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "FastCGIWorker",
            dependencies: [
                "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "fcgi-demo",
            dependencies: [
                "FastCGIWorker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(name: "ProxyConfig", swiftSettings: strict),
        .target(name: "HTTPFieldBytes", swiftSettings: strict),
        // Only built and linked when a target that needs it is built with the HTTP2 trait: without
        // the trait, neither the headers nor libnghttp2.so are needed.
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .target(
            name: "ProxyHTTP2",
            dependencies: [
                "HTTPFieldBytes",
                .target(name: "CNGHTTP2", condition: .when(traits: ["HTTP2"])),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CSpawn"),
        .target(name: "CDropPrivileges"),
        .target(
            name: "WorkerSupervisor",
            dependencies: [
                "CSpawn", "ProxyConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ProxyCore",
            dependencies: [
                "FastCGI", "FastCGIClient", "ProxyConfig",
                // The HTTP/2 front end (HTTP2FrontendHandler) drives ProxyHTTP2's nghttp2 session.
                "HTTPFieldBytes",
                .target(name: "ProxyHTTP2", condition: .when(traits: ["HTTP2"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // Without the TLS trait BoringSSL is neither compiled nor linked.
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "fcgiproxy",
            dependencies: [
                "ProxyCore", "ProxyConfig", "WorkerSupervisor", "ProxyHTTP2", "CDropPrivileges",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FastCGITests",
            dependencies: [
                "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FastCGIClientTests",
            dependencies: [
                "FastCGIClient", "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FastCGIWorkerTests",
            dependencies: [
                "FastCGIWorker", "FastCGI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ProxyConfigTests", dependencies: ["ProxyConfig"]),
        .testTarget(
            name: "ProxyHTTP2Tests",
            dependencies: [
                "ProxyHTTP2",
                .target(name: "CNGHTTP2", condition: .when(traits: ["HTTP2"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WorkerSupervisorTests",
            dependencies: [
                "WorkerSupervisor", "CSpawn", "ProxyConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ProxyCoreTests",
            dependencies: [
                "ProxyCore", "ProxyConfig", "FastCGIClient", "HTTPFieldBytes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ProxyCore", "ProxyConfig", "FastCGI", "FastCGIWorker",
                // The request id stride, for a backend that guesses the next id.
                "FastCGIClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // Helper scripts the tests run (h2abuse.py) and the Go backend they build with
            // `go build`: not Swift sources.
            exclude: ["Scripts", "Support/gofcgi"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
