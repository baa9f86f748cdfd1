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
///     let summary = try Pruning.prune(data: train, result: scores, options: o, to: URL(fileURLWithPath: "kept.jsonl"))
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
        /// Non-empty lines of the data file (scored or not; 0 when not known).
        public var dataLines = 0
        /// Scored examples left out for having no scored token (`ScoreFile.withoutEmptyRows()`).
        public var withoutTokens = 0

        /// A summary from its parts.
        public init(keptLines: [Int], scored: Int, budget: Int, before: [String: Int], after: [String: Int], dataLines: Int = 0) {
            self.keptLines = keptLines; self.scored = scored; self.budget = budget; self.before = before; self.after = after
            self.dataLines = dataLines
        }

        /// The labels whose share of the kept examples is at least `factor` times, or at most 1/`factor`
        /// times, their share before pruning (a label with none kept included), by label; empty with
        /// fewer than two labels or nothing kept. Retraining on subsets skewed like this is unstable:
        /// one of README's SNLI subsets of this kind gave 35.1 and 58.5 % with two training seeds.
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
    /// `labels`), and writes the kept lines to `out` (atomically) unless `out` is nil; a `.csv` file's
    /// header line comes first.
    ///
    /// - Throws: `WinnowError` when `data` is missing, a line is outside it (scores of another file), the three
    ///   arrays differ in count, `options` fail `SelectionOptions.validate()`, or the selection keeps nothing
    ///   (`invalidOption` naming `keep`: a keep too small for the examples, or stratified sampling's budget).
    @discardableResult
    public static func prune(data: URL, lines: [Int], scores: [Double], labels: [String], options: SelectionOptions,
                             to out: URL?) throws -> Summary {
        try prune(data: data, lines: lines, scores: scores, labels: labels, options: options, to: out, origin: nil)
    }

    /// Prunes `data` by the scores `Scorer.score` returned for it, as `winnow prune` prunes by their file:
    /// a decoder's examples without a scored token (`tokens` 0, score 0) are never kept (`Summary.withoutTokens`).
    ///
    ///     let summary = try Pruning.prune(data: train, result: el2n, options: SelectionOptions(keep: 0.5), to: kept)
    ///
    /// - Throws: `WinnowError.invalidOption` naming `result` when no example has a scored token, and as the
    ///   other `prune`.
    @discardableResult
    public static func prune(data: URL, result: ScoreResult, options: SelectionOptions, to out: URL?) throws -> Summary {
        let tokens = result.components.first { $0.0 == "tokens" }?.1
        let keep = result.scores.indices.filter { i in tokens.map { $0[i] > 0 } ?? true }
        guard !keep.isEmpty else { throw WinnowError.invalidOption(name: "result", reason: "no example has a scored token: nothing to rank") }
        let labels = result.exampleLabels
        var summary = try prune(data: data, lines: keep.map { result.table.lines[$0] }, scores: keep.map { result.scores[$0] },
                                labels: keep.map { labels[$0] }, options: options, to: out)
        summary.withoutTokens = result.scores.count - keep.count
        return summary
    }

    /// Prunes `data` by a scores file written by `winnow score` (CSV or JSONL). Up to 2,000 of its rows,
    /// spread over the file, are checked against the JSONL data lines they name: a row whose `id` differs from
    /// the line's, or whose label is in no field of a line labelled (`label` or `gold_label`) with another of
    /// the file's labels, means the scores were made on another file.
    ///
    /// Rows of a decoder's scores without a scored token (`tokens` 0, score 0) are never kept: they would
    /// rank as the easiest of all (`Summary.withoutTokens` counts them).
    ///
    /// - Throws: `WinnowError` for lines outside `data` or rows that disagree with their line, naming the
    ///   scores file's line, for a file none of whose rows has a scored token, and as the other `prune`
    ///   (options, nothing kept).
    @discardableResult
    public static func prune(data: URL, scoreFile: ScoreFile, options: SelectionOptions, to out: URL?) throws -> Summary {
        let (file, removed) = scoreFile.withoutEmptyRows()
        guard !file.lines.isEmpty else {
            throw WinnowError.invalidFile(path: scoreFile.url.path, line: nil, reason: "no row has a scored token (tokens 0 on every row): nothing to rank")
        }
        var summary = try prune(data: data, lines: file.lines, scores: file.scores, labels: file.labels, options: options, to: out,
                                origin: (file.url, file.url.pathExtension.lowercased() == "jsonl" ? 1 : 2), ids: file.ids)
        summary.withoutTokens = removed
        return summary
    }

    /// Checks sampled rows of a scores file against the data lines they name (see `prune(data:scoreFile:...)`).
    static func checkRows(_ file: LineFile, lines: [Int], labels: [String], ids: [String], origin: (url: URL, firstLine: Int)) throws {
        let n = lines.count, m = min(n, 2000)
        guard m > 0 else { return }
        let labelSet = Set(labels.filter { !$0.isEmpty })
        func text(_ v: Any?) -> String? { v.flatMap { JSONLDataset.scalarString($0) } }
        for j in 0..<m {
            let i = m == 1 ? 0 : j * (n - 1) / (m - 1)
            let line = file.text(lines[i])
            guard line.first == "{", let o = JSONLDataset.object(Data(line.utf8)) else { continue }
            var why: String?
            if i < ids.count, !ids[i].isEmpty, let id = text(o["id"]), id != ids[i] {
                why = "has id '\(ids[i])' for line \(lines[i]), whose id is '\(id)'"
            } else if !labels[i].isEmpty, let l = text(o["label"] ?? o["gold_label"]), !o.values.contains(where: { text($0) == labels[i] }),
                      labelSet.contains(l) || labels[i] != "LABEL_" + l {
                // No field of the line holds the row's label (the scores may read another label field than `label`); an
                // integer label read as LABEL_k is the same label. A label the scores never name is another file's too.
                why = "has label '\(labels[i])' for line \(lines[i]), which is labelled '\(l)'"
            }
            if let why {
                throw WinnowError.invalidFile(path: origin.url.path, line: i + origin.firstLine,
                                              reason: why + " in \(file.url.path): were the scores made on another file?")
            }
        }
    }

    /// `origin`: the file the scores came from and the line of its first score, for error messages.
    static func prune(data: URL, lines: [Int], scores: [Double], labels: [String], options: SelectionOptions,
                      to out: URL?, origin: (url: URL, firstLine: Int)?, ids: [String] = []) throws -> Summary {
        guard lines.count == scores.count && scores.count == labels.count else {
            throw WinnowError.invalidOption(name: "lines", reason: "\(lines.count) lines, \(scores.count) scores and \(labels.count) labels: one of each per example")
        }
        try options.validate()
        guard FileManager.default.fileExists(atPath: data.path) else {
            throw WinnowError.missingFile(path: data.path, reason: "no such data file")
        }
        let file = try LineFile(url: data)
        if let bad = zip(lines.indices, lines).first(where: { $0.1 < 1 || $0.1 > file.count }) {
            let why = "refers to line \(bad.1) but \(data.path) has \(file.count) lines: were the scores made on another file?"
            if let origin { throw WinnowError.invalidFile(path: origin.url.path, line: bad.0 + origin.firstLine, reason: why) }
            throw WinnowError.invalidOption(name: "lines", reason: "score \(bad.0 + 1) " + why)
        }
        if let origin { try checkRows(file, lines: lines, labels: labels, ids: ids, origin: origin) }
        let kept = try Selector.choose(scores: scores, labels: labels, options: options)
        var before: [String: Int] = [:], after: [String: Int] = [:]
        for l in labels { before[l, default: 0] += 1 }
        for i in kept { after[labels[i], default: 0] += 1 }
        let keptLines = kept.map { lines[$0] }.sorted()
        // A CSV file keeps its header line ahead of the kept rows.
        let header = data.pathExtension.lowercased() == "csv" ? [CSVDataset.headerLine(of: file)] : []
        if keptLines.isEmpty {
            throw WinnowError.invalidOption(name: "keep", reason: "the selection keeps no example of the \(scores.count) scored"
                + (options.sampling == .stratified ? " (stratified sampling drops the hardest --beta \(options.beta) first)" : ""))
        }
        if let out { try AtomicFile.write(file.lines(header + keptLines), to: out) }
        return Summary(keptLines: keptLines, scored: scores.count, budget: Selector.budget(scores.count, keep: options.keep),
                       before: before, after: after,
                       dataLines: file.nonBlankCount - (data.pathExtension.lowercased() == "csv" ? 1 : 0))
    }

}

extension ScoreResult {
    /// The label of each scored example as a class name, one per score ("" for an example without one);
    /// `table.labelNames` holds the classes themselves.
    public var exampleLabels: [String] { table.labels.map { $0 >= 0 && Int($0) < table.labelNames.count ? table.labelNames[Int($0)] : "" } }

    /// The label of each scored example, one per score: renamed `exampleLabels`, as `labelNames` names the
    /// classes elsewhere (`ExampleTable.labelNames`).
    @available(*, deprecated, renamed: "exampleLabels")
    public var labelNames: [String] { exampleLabels }
}
