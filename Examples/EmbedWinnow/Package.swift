// swift-tools-version: 6.1
// A program that embeds Winnow through its public API only (`import Winnow`), as a user's would.
//   swift run --package-path Examples/EmbedWinnow embed-winnow --run RUN --data FILE.jsonl --method el2n --out OUT.csv
import PackageDescription

let package = Package(
    name: "EmbedWinnow",
    dependencies: [.package(name: "Winnow", path: "../..")],
    targets: [
        .executableTarget(name: "embed-winnow", dependencies: [.product(name: "Winnow", package: "Winnow")]),
    ]
)
