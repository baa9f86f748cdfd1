// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Winnow",
    products: [
        .library(name: "Winnow", targets: ["Winnow"]),
        .library(name: "CKernels", targets: ["CKernels"]),
        .executable(name: "winnow", targets: ["WinnowCLI"]),
        .executable(name: "winnow-mpi", targets: ["WinnowMPI"]),
        .executable(name: "winnow-fuzz", targets: ["WinnowFuzz"]),
    ],
    // `swift build --traits MPI` builds winnow-mpi against Open MPI (Debian libopenmpi-dev); the default
    // build needs no MPI (winnow-mpi then only says how to get the real one).
    traits: [
        .trait(name: "MPI", description: "Link winnow-mpi against Open MPI"),
        .trait(name: "Fuzz", description: "Build winnow-fuzz as libFuzzer targets (with -sanitize=fuzzer; scripts/fuzz.sh)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            // No unsafe flags (they would stop others from depending on Winnow by version): release builds
            // compile C at -O2; the project's debug builds (Makefile, scripts) add `-Xcc -O2`, since the
            // tests run the kernels on real model shapes (a -O0 GEMM micro-kernel is tens of times slower).
            cSettings: [.headerSearchPath(".")],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("lapacke"), .linkedLibrary("m")]
        ),
        // The library's layers, lowest first; each depends only on those below it (README, "Layout").
        .target(name: "WinnowCore", dependencies: ["CKernels"]),
        .target(name: "WinnowData", dependencies: ["WinnowCore"]),
        .target(name: "WinnowModels", dependencies: ["CKernels", "WinnowCore", "WinnowData"]),
        .target(name: "WinnowTraining", dependencies: ["CKernels", "WinnowCore", "WinnowData", "WinnowModels"]),
        .target(name: "WinnowScores", dependencies: ["CKernels", "WinnowCore", "WinnowData", "WinnowModels", "WinnowTraining"]),
        .target(name: "WinnowExperiment",
                dependencies: ["WinnowCore", "WinnowData", "WinnowModels", "WinnowTraining", "WinnowScores"]),
        .target(name: "Winnow", dependencies: ["CKernels", "WinnowCore", "WinnowData", "WinnowModels", "WinnowTraining",
                                               "WinnowScores", "WinnowExperiment"]),
        .target(
            name: "WinnowCommands",
            dependencies: ["Winnow", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "WinnowCLI", dependencies: ["WinnowCommands"]),
        .target(
            name: "CMPI",
            path: "Sources/CMPI",
            cSettings: [
                .define("WINNOW_MPI", .when(traits: ["MPI"])),
                .unsafeFlags(["-I/usr/lib/x86_64-linux-gnu/openmpi/include", "-I/usr/lib/x86_64-linux-gnu/openmpi/include/openmpi"],
                             .when(traits: ["MPI"])),
            ],
            linkerSettings: [
                .unsafeFlags(["-L/usr/lib/x86_64-linux-gnu/openmpi/lib"], .when(traits: ["MPI"])),
                .linkedLibrary("mpi", .when(traits: ["MPI"])),
            ]
        ),
        .executableTarget(name: "WinnowMPI", dependencies: ["WinnowCommands", "Winnow", "CMPI"]),
        .executableTarget(name: "WinnowFuzz", dependencies: ["Winnow"]),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"]),
        .testTarget(name: "WinnowTests", dependencies: ["Winnow", "CKernels"]),
        .testTarget(name: "WinnowCLITests", dependencies: ["Winnow"]),
        // Plain `import Winnow`: the API a program that embeds the library sees.
        .testTarget(name: "WinnowAPITests", dependencies: ["Winnow"]),
    ]
)

// The documentation build (`make docs`) asks for swift-docc-plugin; everyday builds do not resolve it.
if Context.environment["WINNOW_DOCS"] != nil {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}
