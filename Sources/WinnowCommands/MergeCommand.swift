import ArgumentParser
import Foundation
import Winnow

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the outputs of `score --shard I/N` or `predict --shard I/N` into one file with the rows of an unsharded run.",
        discussion: "CSV and JSONL rows are ordered by their index column, which must cover 0..<N exactly once; .npy shards carry no index: they are concatenated and must be given in shard order. Each shard forms its own batches, so a score may differ from an unsharded run's in its last digits (float summation order); the rows, lines, ids and labels are the same.")

    @Argument(help: "Shard outputs (all .csv, all .jsonl, or all .npy).") var files: [String]
    @Option(help: "Merged file (written atomically), in the shards' format: a .csv, .jsonl or .npy name must be theirs.") var out: String
    @Flag(help: "Merge shard outputs that have no manifests (FILE.shard.json): whether every shard is here once, the last one included, is then not checked (manifests that are there are still checked).")
    var noManifests = false

    func validate() throws {
        try refuseOverwriting(out, inputs: files)
        try refuseWritingIntoModel(out, models: [])
    }

    func run() throws {
        let lock = try OutputLock(URL(fileURLWithPath: out))
        defer { lock.release() }
        // Without manifests a missing last shard leaves a file that looks whole: refused unless asked for.
        let urls = files.map { URL(fileURLWithPath: $0) }
        if !noManifests, !urls.contains(where: { FileManager.default.fileExists(atPath: ShardMerge.manifestURL($0).path) }) {
            throw WinnowError.invalidFile(path: urls[0].path, line: nil, reason:
                "has no shard manifest (\(ShardMerge.manifestURL(urls[0]).lastPathComponent), written beside each shard output), nor have the other files: "
                + "without them a missing shard cannot be told; copy the manifests beside the shards, or give --no-manifests to merge what is given")
        }
        let checked = try ShardMerge.merge(urls, to: URL(fileURLWithPath: out))
        printError("merge: joined \(files.count) shard output(s) into \(out)")
        if !checked {
            printError("note: the files carry no shard manifests (FILE.shard.json, written beside each shard output): whether every shard "
                       + "is here once\(files.first.map { $0.lowercased().hasSuffix(".npy") } == true ? ", in shard order," : "") is not checked")
        }
    }
}
