import Foundation
import Winnow

// Scores every example of a data file with one method and writes the scores as `winnow score` does.
//   embed-winnow --run RUN --data FILE.jsonl --method el2n --out OUT.csv [--max-length N] [--null-run RUN] [--keep F --pruned OUT.jsonl]
// With --keep it also writes the easiest fraction F of the data file (the lines, byte for byte) to --pruned.
// Build and run (from the repository): swift run --package-path Examples/EmbedWinnow embed-winnow ...;
// `make example` checks its output against `winnow score`.

var flags: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let key = args.popFirst() {
    guard key.hasPrefix("--"), let value = args.popFirst() else {
        FileHandle.standardError.write(Data("embed-winnow: expected --flag VALUE pairs, got '\(key)'\n".utf8))
        exit(2)
    }
    flags[String(key.dropFirst(2))] = value
}
func usage(_ why: String) -> Never {
    let text = "embed-winnow: \(why)\nusage: embed-winnow --run RUN --data FILE.jsonl --method \(ScoreMethod.names) --out OUT.csv "
        + "[--max-length N] [--null-run RUN] [--keep F --pruned OUT.jsonl]\n"
    FileHandle.standardError.write(Data(text.utf8))
    exit(2)
}
let known: Set<String> = ["run", "data", "method", "out", "max-length", "null-run", "keep", "pruned"]
if let unknown = flags.keys.sorted().first(where: { !known.contains($0) }) { usage("unknown option --\(unknown)") }
if let v = flags["max-length"], Int(v) == nil { usage("--max-length takes an integer, not '\(v)'") }
if let v = flags["keep"], Double(v) == nil { usage("--keep takes a number, not '\(v)'") }
if (flags["keep"] == nil) != (flags["pruned"] == nil) { usage("--keep and --pruned go together") }
guard let run = flags["run"], let data = flags["data"], let name = flags["method"], let out = flags["out"] else {
    usage("--run, --data, --method and --out are required")
}
guard let method = ScoreMethod(rawValue: name) else { usage("unknown method '\(name)'") }

do {
    var options = ScoreOptions()                                  // Winnow's defaults: every checkpoint, every parameter
    if let n = flags["max-length"].flatMap(Int.init) { options.maxLength = n }
    let dataURL = URL(fileURLWithPath: data)
    let result = try Scorer.score(method, run: URL(fileURLWithPath: run), data: dataURL, options: options,
                                  nullRun: flags["null-run"].map { URL(fileURLWithPath: $0) })
    try ScoreWriter.write(result, format: .csv, to: URL(fileURLWithPath: out))

    if let keep = flags["keep"].flatMap(Double.init), let pruned = flags["pruned"] {
        var selection = SelectionOptions(keep: keep)
        selection.preference = .easy
        let summary = try Pruning.prune(data: dataURL, result: result, options: selection, to: URL(fileURLWithPath: pruned))
        print("kept \(summary.keptLines.count) of \(summary.scored) examples in \(pruned)")
    }
    print("wrote \(result.scores.count) \(method) scores to \(out)")
} catch {
    FileHandle.standardError.write(Data("embed-winnow: \(error)\n".utf8))
    exit(1)
}
