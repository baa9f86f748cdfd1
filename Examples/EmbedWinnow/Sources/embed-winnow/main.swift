import Foundation
import Winnow

// Scores every example of a data file with one method and writes the scores as `winnow score` does.
//   embed-winnow --run RUN --data FILE.jsonl --method el2n --out OUT.csv [--max-length N] [--keep F --pruned OUT.jsonl]
// With --keep it also writes the easiest fraction F of the data file (the lines, byte for byte) to --pruned.

var flags: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let key = args.popFirst() {
    guard key.hasPrefix("--"), let value = args.popFirst() else {
        FileHandle.standardError.write(Data("embed-winnow: expected --flag VALUE pairs, got '\(key)'\n".utf8))
        exit(2)
    }
    flags[String(key.dropFirst(2))] = value
}
guard let run = flags["run"], let data = flags["data"], let name = flags["method"], let out = flags["out"],
      let method = ScoreMethod(rawValue: name) else {
    FileHandle.standardError.write(Data("usage: embed-winnow --run RUN --data FILE.jsonl --method \(ScoreMethod.names) --out OUT.csv\n".utf8))
    exit(2)
}

do {
    var options = ScoreOptions()                                  // Winnow's defaults: every checkpoint, every parameter
    if let n = flags["max-length"].flatMap(Int.init) { options.maxLength = n }
    let dataURL = URL(fileURLWithPath: data)
    let result = try Scorer.score(method, run: URL(fileURLWithPath: run), data: dataURL, options: options)
    try ScoreWriter.write(result, format: .csv, to: URL(fileURLWithPath: out))

    if let keep = flags["keep"].flatMap(Double.init), let pruned = flags["pruned"] {
        var selection = SelectionOptions(keep: keep)
        selection.preference = .easy
        let summary = try Pruning.prune(data: dataURL, lines: result.table.lines, scores: result.scores,
                                        labels: result.labelNames, options: selection, to: URL(fileURLWithPath: pruned))
        print("kept \(summary.keptLines.count) of \(summary.scored) examples in \(pruned)")
    }
    print("wrote \(result.scores.count) \(method) scores to \(out)")
} catch {
    FileHandle.standardError.write(Data("embed-winnow: \(error)\n".utf8))
    exit(1)
}
