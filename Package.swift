// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Winnow",
    products: [
        .library(name: "Winnow", targets: ["Winnow"]),
        .library(name: "CKernels", targets: ["CKernels"]),
        .executable(name: "winnow", targets: ["WinnowCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            cSettings: [.headerSearchPath(".")],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("lapacke"), .linkedLibrary("m")]
        ),
        .target(name: "Winnow", dependencies: ["CKernels"]),
        .executableTarget(
            name: "WinnowCLI",
            dependencies: ["Winnow", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"]),
        .testTarget(name: "WinnowTests", dependencies: ["Winnow", "CKernels"]),
        .testTarget(name: "WinnowCLITests", dependencies: ["Winnow"]),
    ]
)
