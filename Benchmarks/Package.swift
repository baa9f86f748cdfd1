// swift-tools-version: 6.1
// Benchmarks live in their own package so CI never compiles the benchmark harness.
// Run: cd Benchmarks && swift package benchmark            (all)
//      swift package benchmark --target Kernels --filter "gemm.*"
import PackageDescription

let package = Package(
    name: "WinnowBenchmarks",
    dependencies: [
        .package(name: "Winnow", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // cblas_sgemm without the ck_gemm wrapper, for the wrapper-vs-raw benchmark.
        .target(name: "RawBLAS", path: "Sources/RawBLAS", linkerSettings: [.linkedLibrary("openblas")]),
        .executableTarget(
            name: "Kernels",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CKernels", package: "Winnow"),
                "RawBLAS",
            ],
            path: "Benchmarks/Kernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "EndToEnd",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Winnow", package: "Winnow"),
            ],
            path: "Benchmarks/EndToEnd",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
