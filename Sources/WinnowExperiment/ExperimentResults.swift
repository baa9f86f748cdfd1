import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

/// `DIR/results.csv` of an experiment: one row per retraining, with columns
/// `method,normalize,select,sampling,keep,seed,accuracy,macro_f1,train_examples`.
public struct ExperimentResults: Sendable {
    /// One retraining's result on the test file.
    public struct Row: Sendable, Equatable {
        /// The configuration and seed of the retraining.
        public var cell: ExperimentPlan.Cell
        /// Test accuracy, a fraction in [0, 1].
        public var accuracy: Double
        /// Test macro-F1 (unweighted mean of per-class F1), in [0, 1].
        public var macroF1: Double
        /// Number of training examples the retraining used.
        public var trainExamples: Int

        /// A row from its fields.
        public init(cell: ExperimentPlan.Cell, accuracy: Double, macroF1: Double, trainExamples: Int) {
            self.cell = cell; self.accuracy = accuracy; self.macroF1 = macroF1; self.trainExamples = trainExamples
        }
    }

    /// The header line of results.csv.
    public static let header = "method,normalize,select,sampling,keep,seed,accuracy,macro_f1,train_examples"
    /// One row per finished retraining (in plan order when written by `Experiment.run()`).
    public var rows: [Row] = []

    /// Results with no rows.
    public init() {}

    /// Reads a results file; a missing file gives no rows.
    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        let lines = text.textLines()
        guard let first = lines.first, first == Self.header else {
            throw WinnowError.invalidFile(path: url.path, line: 1, reason: "expected the header \(Self.header)")
        }
        var seen: [String: Int] = [:]
        for (i, l) in lines.dropFirst().enumerated() {
            let f = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 9, let keep = Double(f[4]), let seed = Int(f[5]), let acc = Double(f[6]), let f1 = Double(f[7]), let n = Int(f[8]) else {
                throw WinnowError.invalidFile(path: url.path, line: i + 2, reason: f.count == 9
                    ? "keep, accuracy and macro_f1 must be numbers and seed and train_examples integers (\(Self.header))"
                    : "expected 9 fields, found \(f.count): \(Self.header)")
            }
            // What a retraining measures: fractions, a keep in (0, 1], counts not negative (an edited file's nan
            // or 1.5 would be charted and averaged as a result).
            for (name, v) in [("accuracy", acc), ("macro_f1", f1)] where !(v.isFinite && (0...1).contains(v)) {
                throw WinnowError.invalidFile(path: url.path, line: i + 2, reason: "\(name) must be a fraction in [0, 1], not \(f[name == "accuracy" ? 6 : 7])")
            }
            guard keep.isFinite, keep > 0, keep <= 1 else {
                throw WinnowError.invalidFile(path: url.path, line: i + 2, reason: "keep must be in (0, 1], not \(f[4])")
            }
            guard seed >= 0, n >= 0 else {
                throw WinnowError.invalidFile(path: url.path, line: i + 2, reason: "seed and train_examples must not be negative")
            }
            let cell = ExperimentPlan.Cell(method: f[0], normalize: f[1], select: f[2], sampling: f[3], keep: keep, seed: seed)
            // A setting and seed measured twice (results files joined by hand) would count as two seeds.
            if let earlier = seen[cell.key] {
                throw WinnowError.invalidFile(path: url.path, line: i + 2, reason:
                    "repeats the setting and seed of line \(earlier) (\(f[0...5].joined(separator: ","))): each seed is one row")
            }
            seen[cell.key] = i + 2
            rows.append(Row(cell: cell, accuracy: acc, macroF1: f1, trainExamples: n))
        }
    }

    /// The row of `cell` (same configuration and seed), or nil when it has not run yet.
    public func row(for cell: ExperimentPlan.Cell) -> Row? { rows.first { $0.cell.key == cell.key } }

    /// Writes results.csv atomically: the header, then one line per row (metrics with six decimals).
    /// - Throws: an error when the file cannot be written.
    public func write(to url: URL) throws {
        var out = TextFileBuilder()
        out.append(Self.header)
        for r in rows {
            let c = r.cell
            out.append([c.method, c.normalize, c.select, c.sampling, ExperimentPlan.format(c.keep), String(c.seed),
                        String(format: "%.6f", r.accuracy), String(format: "%.6f", r.macroF1), String(r.trainExamples)].joined(separator: ","))
        }
        try out.write(to: url)
    }

    /// Mean and sample standard deviation of accuracy and macro-F1 per configuration (over seeds).
    public struct Summary: Sendable {
        /// The configuration; its `seed` is the first row's and means nothing here.
        public var cell: ExperimentPlan.Cell      // seed unused
        /// Number of rows (seeds) summarised.
        public var n: Int
        /// Mean and sample standard deviation of test accuracy over seeds (fractions; the std is 0 for one seed).
        public var accuracyMean: Double, accuracyStd: Double
        /// Mean and sample standard deviation of test macro-F1 over seeds (fractions; the std is 0 for one seed).
        public var macroF1Mean: Double, macroF1Std: Double
    }

    /// One summary per configuration, by keep fraction (largest first), the random baseline first at each
    /// keep fraction.
    public var summaries: [Summary] {
        var order: [String] = []
        var groups: [String: [Row]] = [:]
        for r in rows {
            if groups[r.cell.config] == nil { order.append(r.cell.config) }
            groups[r.cell.config, default: []].append(r)
        }
        return order.map { key in
            let g = groups[key]!
            let (am, asd) = Self.meanStd(g.map(\.accuracy)), (fm, fsd) = Self.meanStd(g.map(\.macroF1))
            return Summary(cell: g[0].cell, n: g.count, accuracyMean: am, accuracyStd: asd, macroF1Mean: fm, macroF1Std: fsd)
        }.sorted { a, b in
            a.cell.keep != b.cell.keep ? a.cell.keep > b.cell.keep
                : a.cell.isRandom != b.cell.isRandom ? a.cell.isRandom : false
        }
    }

    static func meanStd(_ x: [Double]) -> (Double, Double) {
        let n = Double(x.count)
        guard n > 0 else { return (0, 0) }
        let m = x.reduce(0, +) / n
        guard n > 1 else { return (m, 0) }
        return (m, (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1)).squareRoot())
    }

    /// "mean ± std" in percent of a fraction's mean and std over `n` seeds; one seed has no spread ("± -").
    static func meanStd(_ mean: Double, _ std: Double, n: Int, padded: Bool = false) -> String {
        let spread = n > 1 ? String(format: padded ? "%-5.2f" : "%.2f", 100 * std) : (padded ? "-    " : "-")
        return String(format: padded ? "%6.2f" : "%.2f", 100 * mean) + " ± " + spread
    }

    /// The mean ± std table printed at the end of an experiment (percentages).
    public func table(learnedNothing: Set<String> = []) -> String {
        let width = max(12, summaries.map(\.cell.method.count).max() ?? 0)
        var lines = ["method".padding(toLength: width, withPad: " ", startingAt: 0) + " normalize  select   sampling    keep   accuracy (%)      macro-F1 (%)    seeds"]
        for s in summaries {
            let c = s.cell
            let collapsed = rows.filter { $0.cell.config == c.config && learnedNothing.contains($0.cell.key) }.count
            lines.append(c.method.padding(toLength: width, withPad: " ", startingAt: 0) + " "
                + c.normalize.padding(toLength: 10, withPad: " ", startingAt: 0) + " "
                + c.select.padding(toLength: 8, withPad: " ", startingAt: 0) + " "
                + c.sampling.padding(toLength: 10, withPad: " ", startingAt: 0) + " "
                + ExperimentPlan.format(c.keep).padding(toLength: 8, withPad: " ", startingAt: 0) + Self.meanStd(s.accuracyMean, s.accuracyStd, n: s.n, padded: true) + "    "
                + Self.meanStd(s.macroF1Mean, s.macroF1Std, n: s.n, padded: true) + "   \(s.n)"
                + (collapsed > 0 ? "   * \(collapsed) learned nothing" : ""))
        }
        if !learnedNothing.isEmpty {
            lines.append("* a retraining that learned nothing: one class for >= 95 % of the test file, or accuracy at most 1 point above the majority rate")
        }
        if learnedNothing.contains("full-scoring-run") {
            lines.append("WARNING: the scoring run itself learned nothing (run with --force): every score, and so every pruned row, means nothing")
        }
        return lines.joined(separator: "\n")
    }
}
