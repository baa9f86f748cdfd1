import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Keeps a fraction of a data file chosen by per-example scores: the kept lines, byte for byte, in
/// input order (what `winnow prune` writes).
///
///     let scores = try Scorer.score(.el2n, run: run, data: train, options: ScoreOptions())
///     var o = SelectionOptions(keep: 0.5); o.preference = .easy
///     let summary = try Pruning.prune(data: train, lines: scores.table.lines, scores: scores.scores,
///                                     labels: scores.labelNames, options: o, to: URL(fileURLWithPath: "kept.jsonl"))
public enum Pruning {
    /// What a pruning kept.
    public struct Summary: Sendable, Equatable {
        /// 1-based lines of the data file that were kept, ascending.
        public var keptLines: [Int]
        /// Examples scored.
        public var scored: Int
        /// Examples asked for: round(keep * N).
        public var budget: Int
        /// Examples per label before pruning.
        public var before: [String: Int]
        /// Examples per label after pruning.
        public var after: [String: Int]

        /// A summary from its parts.
        public init(keptLines: [Int], scored: Int, budget: Int, before: [String: Int], after: [String: Int]) {
            self.keptLines = keptLines; self.scored = scored; self.budget = budget; self.before = before; self.after = after
        }

        /// The labels whose share of the kept examples is at least `factor` times, or at most 1/`factor`
        /// times, their share before pruning (a label with none kept included), by label; empty with
        /// fewer than two labels or nothing kept. Retraining on subsets skewed like this is unstable:
        /// README's SNLI subsets of this kind gave 35-62 % over training seeds.
        public func classMixShifts(factor: Double = 1.5) -> [(label: String, before: Double, after: Double)] {
            let n = before.values.reduce(0, +), k = after.values.reduce(0, +)
            guard before.count >= 2, n > 0, k > 0 else { return [] }
            return before.keys.sorted().compactMap { l in
                let b = Double(before[l]!) / Double(n), a = Double(after[l] ?? 0) / Double(k)
                return a >= b * factor || a * factor <= b ? (l, b, a) : nil
            }
        }
    }

    /// Chooses by `options` among the examples at 1-based `lines` of `data` (with their `scores` and
    /// `labels`), and writes the kept lines to `out` (atomically) unless `out` is nil.
    ///
    /// - Throws: `WinnowError` when `data` is missing, or a line is outside it (scores of another file).
    @discardableResult
    public static func prune(data: URL, lines: [Int], scores: [Double], labels: [String], options: SelectionOptions,
                             to out: URL?) throws -> Summary {
        try prune(data: data, lines: lines, scores: scores, labels: labels, options: options, to: out, origin: nil)
    }

    /// Prunes `data` by a scores file written by `winnow score` (CSV or JSONL).
    ///
    /// - Throws: `WinnowError` for lines outside `data`, naming the scores file's line.
    @discardableResult
    public static func prune(data: URL, scoreFile: ScoreFile, options: SelectionOptions, to out: URL?) throws -> Summary {
        try prune(data: data, lines: scoreFile.lines, scores: scoreFile.scores, labels: scoreFile.labels, options: options, to: out,
                  origin: (scoreFile.url, 2))
    }

    /// `origin`: the file the scores came from and the line of its first score, for error messages.
    static func prune(data: URL, lines: [Int], scores: [Double], labels: [String], options: SelectionOptions,
                      to out: URL?, origin: (url: URL, firstLine: Int)?) throws -> Summary {
        precondition(lines.count == scores.count && scores.count == labels.count, "prune: lines, scores and labels differ in count")
        guard FileManager.default.fileExists(atPath: data.path) else {
            throw WinnowError.missingFile(path: data.path, reason: "no such data file")
        }
        let file = try LineFile(url: data)
        if let bad = zip(lines.indices, lines).first(where: { $0.1 < 1 || $0.1 > file.count }) {
            let why = "refers to line \(bad.1) but \(data.path) has \(file.count) lines: were the scores made on another file?"
            if let origin { throw WinnowError.invalidFile(path: origin.url.path, line: bad.0 + origin.firstLine, reason: why) }
            throw WinnowError.invalidOption(name: "lines", reason: "score \(bad.0 + 1) " + why)
        }
        let kept = Selector.choose(scores: scores, labels: labels, options: options)
        var before: [String: Int] = [:], after: [String: Int] = [:]
        for l in labels { before[l, default: 0] += 1 }
        for i in kept { after[labels[i], default: 0] += 1 }
        let keptLines = kept.map { lines[$0] }.sorted()
        if let out { try AtomicFile.write(file.lines(keptLines), to: out) }
        return Summary(keptLines: keptLines, scored: scores.count, budget: Selector.budget(scores.count, keep: options.keep),
                       before: before, after: after)
    }

}

extension ScoreResult {
    /// Class names of the scored examples, one per score.
    public var labelNames: [String] { table.labels.map { $0 >= 0 && Int($0) < table.labelNames.count ? table.labelNames[Int($0)] : "" } }
}
