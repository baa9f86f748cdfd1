import ArgumentParser
import Foundation
import Winnow

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Keep a fraction of a data file chosen by scores; writes the kept lines verbatim, in input order.",
        discussion: """
        n = round(keep * N) examples are kept. --select hard prefers high (normalised) scores, easy low ones, random \
        ignores them. --sampling top is deterministic (ties by index); softmax samples without replacement with \
        weight exp(+-s/T); linear with weight s - min + eps (hard) or max - s + eps (easy); stratified drops the \
        hardest --beta fraction and fills the budget evenly over 50 equal-width score bins (Zheng et al. 2023). \
        Weighted sampling uses Efraimidis-Spirakis keys from --seed. --normalize class ranks every label on its own \
        z-scores, dataset on global z-scores. Lines of the data file that were not scored (e.g. no gold label) are \
        not kept.
        """)

    @Option(help: "Scores file from `winnow score` (CSV or JSONL).") var scores: String
    @Option(help: "The data file the scores were computed on.") var data: String
    @Option(help: "Fraction of examples to keep, in [0, 1].") var keep: Double
    @Option(help: "Which examples to prefer.") var select: SelectionOptions.Preference = SelectionOptions(keep: 1).preference
    @Option(help: "How to choose among them.") var sampling: SelectionOptions.Sampling = SelectionOptions(keep: 1).sampling
    @Option(help: "Softmax temperature.") var temperature: Double = SelectionOptions(keep: 1).temperature
    @Option(help: "Stratified: fraction of the hardest examples dropped first.") var beta: Double = SelectionOptions(keep: 1).beta
    @Option(help: "Score normalisation before selecting.") var normalize: Normalization = SelectionOptions(keep: 1).normalization
    @Option(help: "Seed of the sampling.") var seed: UInt64 = SelectionOptions(keep: 1).seed
    @Option(help: "Output file (written atomically).") var out: String?
    @Flag(help: "Print the summary only; write nothing.") var dryRun = false

    func validate() throws {
        guard (0...1).contains(keep) else { throw ValidationError("--keep must be in [0, 1]") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard (0..<1).contains(beta) else { throw ValidationError("--beta must be in [0, 1)") }
        guard dryRun || out != nil else { throw ValidationError("give --out FILE, or --dry-run") }
    }

    func run() throws {
        let sf = try ScoreFile(url: URL(fileURLWithPath: scores))
        let dataURL = URL(fileURLWithPath: data)
        guard FileManager.default.fileExists(atPath: dataURL.path) else { throw WinnowError.missingFile(path: dataURL.path, reason: "no such data file") }
        let file = try LineFile(url: dataURL)
        if let bad = zip(sf.lines.indices, sf.lines).first(where: { $0.1 < 1 || $0.1 > file.count }) {
            throw WinnowError.invalidFile(path: sf.url.path, line: bad.0 + 2, reason:
                "refers to line \(bad.1) but \(dataURL.path) has \(file.count) lines: were the scores made on another file?")
        }
        var o = SelectionOptions(keep: keep)
        o.preference = select; o.sampling = sampling; o.temperature = temperature
        o.beta = beta; o.normalization = normalize; o.seed = seed
        let kept = Selector.choose(scores: sf.scores, labels: sf.labels, options: o)
        let keptLines = kept.map { sf.lines[$0] }.sorted()
        // Summary: label counts before and after.
        var before: [String: Int] = [:], after: [String: Int] = [:]
        for l in sf.labels { before[l, default: 0] += 1 }
        for i in kept { after[sf.labels[i], default: 0] += 1 }
        let w = max(5, before.keys.map(\.count).max() ?? 0)
        print("prune: kept \(kept.count) of \(sf.scores.count) examples (keep \(keep), select \(select), sampling \(sampling), normalize \(normalize), seed \(seed))")
        if kept.count < Selector.budget(sf.scores.count, keep: keep) {
            print("note: stratified sampling keeps at most (1 - beta) of the examples; \(Selector.budget(sf.scores.count, keep: keep)) were asked for")
        }
        print("label".padding(toLength: w, withPad: " ", startingAt: 0) + "   before    after")
        for l in before.keys.sorted() {
            print(l.padding(toLength: w, withPad: " ", startingAt: 0) + String(format: " %8d %8d", before[l]!, after[l] ?? 0))
        }
        guard !dryRun, let out else { return }
        let bytes = file.lines(keptLines)
        try AtomicFile.write(bytes, to: URL(fileURLWithPath: out))
        printError("prune: wrote \(keptLines.count) lines to \(out)")
    }
}
