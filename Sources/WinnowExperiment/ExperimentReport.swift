import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

/// The HTML report of an experiment folder: one self-contained file (inline SVG and CSS, one tiny
/// inline script, nothing fetched) with accuracy against keep fraction per method with error bars,
/// score histograms per class, rank correlations between scores (and numeric fields of the training
/// file such as annotator confidence), scores against annotator agreement (SNLI-style `annotator_labels`),
/// the hardest and easiest examples with their text, the label-noise
/// similarity index, and training curves.
///
///     try ExperimentReport(dir: URL(fileURLWithPath: "runs/exp")).write(to: URL(fileURLWithPath: "report.html"))
public struct ExperimentReport: Sendable {
    /// The experiment folder (DIR) the report is made from.
    public let dir: URL
    /// Number of hardest and of easiest training examples listed per score method.
    public var examplesShown = 20

    /// A report of the experiment in `dir`; nothing is read until `html()`.
    public init(dir: URL) { self.dir = dir }

    /// Writes `html()` to `url`, atomically.
    /// - Throws: what `html()` throws, or an error when the file cannot be written.
    public func write(to url: URL) throws { try AtomicFile.write(html(), to: url) }

    /// The report as one HTML page, from what the folder holds so far (missing results or scores leave
    /// their sections short or out).
    /// - Throws: `WinnowError.missingFile` when `dir` has no plan.json; `WinnowError.invalidFile` when
    ///   plan.json, results.csv or a score file cannot be parsed; errors reading the training file.
    public func html() throws -> String {
        let planURL = dir.appendingPathComponent("plan.json")
        guard FileManager.default.fileExists(atPath: planURL.path) else {
            throw WinnowError.missingFile(path: planURL.path, reason: "not an experiment folder (no plan.json); run `winnow experiment --out DIR` first")
        }
        let plan = try ExperimentPlan(contentsOf: planURL)
        let exp = Experiment(plan: plan, dir: dir)
        let results = try ExperimentResults(contentsOf: exp.resultsURL)
        var scores: [(String, ScoreFile)] = []
        for m in plan.methods where FileManager.default.fileExists(atPath: exp.scoreURL(m).path) {
            scores.append((m.rawValue, try ScoreFile(url: exp.scoreURL(m))))
        }
        let flipped = FileManager.default.fileExists(atPath: exp.flipsURL.path) ? try LabelNoise.flippedLines(exp.flipsURL) : []

        var body = ""
        body += "<h1>Winnow experiment: \(e(URL(fileURLWithPath: plan.train).lastPathComponent))</h1>"
        body += "<p class=\"meta\">\(e(describe(plan)))</p><p id=\"status\" class=\"meta\"></p>"
        let nothing = exp.learnedNothingKeys
        if let why = try? String(contentsOf: exp.stoppedURL, encoding: .utf8) {
            body += "<p class=\"warn\">The experiment stopped before pruning: \(e(why.trimmingCharacters(in: .whitespacesAndNewlines))). "
                + (results.rows.isEmpty ? "Nothing below was retrained." : "The \(results.rows.count) retraining(s) below were made before it stopped.") + "</p>"
        }
        let planned = plan.cells.count
        if results.rows.count < planned && !FileManager.default.fileExists(atPath: exp.stoppedURL.path) {
            body += "<p class=\"warn\">Incomplete: \(results.rows.count) of the \(planned) planned retrainings are done "
                + "(rerun the same `winnow experiment` command to finish them); the means below are of what is done.</p>"
        }
        if nothing.contains("full-scoring-run") {
            body += "<p class=\"warn\">The scoring run learned nothing (one class for at least 95 % of the test file, or accuracy at most "
                + "1 point above the majority rate): every score below comes from a model that learned nothing, so the pruned subsets mean nothing.</p>"
        }
        if let why = try? String(contentsOf: exp.cannotTellURL, encoding: .utf8) {
            body += "<p class=\"warn\">The learning check cannot tell from this test file: \(e(why.trimmingCharacters(in: .whitespacesAndNewlines))). "
                + "Neither the scoring run nor the retrainings could be checked for having learned anything.</p>"
        }
        body += section("Accuracy against keep fraction", accuracyCharts(results, oneChart: plan.settings != nil, learnedNothing: nothing)
                        + resultsTable(results, learnedNothing: nothing)
                        + (plan.mergedSettingsNote.map { "<p class=\"meta\">Not in the table: \(e($0)).</p>" } ?? ""))
        if plan.noise > 0, let text = try? String(contentsOf: exp.noiseURL, encoding: .utf8) {
            body += section("Label noise (\(ExperimentPlan.format(plan.noise)) of training labels flipped)", noiseTable(text, fraction: plan.noise))
        }
        if !scores.isEmpty {
            // The training file's texts and fields are read only when it is still the one the experiment ran on.
            var parsed: (text: [Int: String], numeric: [(String, [Double?])], disagreement: [Int: Double]) = ([:], [], [:])
            if let why = try exp.trainingFileProblem() {
                body += "<p class=\"warn\">\(e(why)): the examples' texts, the correlations with its numeric fields and the annotator "
                    + "agreement are left out of this report (put the file back to see them).</p>"
            } else {
                // With flipped labels the annotators are compared with the original file's (when it is still there).
                let original = plan.noise > 0 && (try? exp.trainingFileProblem(original: true)) == .some(nil)
                    ? try? LineFile(url: URL(fileURLWithPath: plan.train)) : nil
                parsed = parseLines(try LineFile(url: exp.trainURL), lines: scores[0].1.lines, plan: plan, gold: original, noisy: plan.noise > 0)
            }
            body += section("Rank correlations (Spearman)", correlations(scores, extra: parsed.numeric))
            if !parsed.disagreement.isEmpty {
                body += section("Scores against annotator agreement", agreementTable(scores.map { m, sf in
                    Self.annotatorAgreement(method: m, lines: sf.lines, scores: sf.scores, disagreement: parsed.disagreement)
                }))
            }
            body += section("Score distributions per class", scores.map { m, sf in
                let labels = Array(Set(sf.labels)).sorted()
                return SVGChart.histogram(labels.map { l in (l, zip(sf.labels, sf.scores).filter { $0.0 == l }.map(\.1)) },
                                          title: "\(m): scores per class", xLabel: "\(m) score (higher = harder)")
            }.joined())
            body += section("Hardest and easiest training examples", scores.map { m, sf in
                extremes(m, sf, text: parsed.text, flipped: flipped)
            }.joined())
        }
        body += section("Training curves", curves(exp))
        return page(body)
    }

    func describe(_ p: ExperimentPlan) -> String {
        let model = p.model.initFrom.map { "pretrained \(URL(fileURLWithPath: $0).lastPathComponent)" }
            ?? "fresh encoder \(p.model.layers) layer\(p.model.layers == 1 ? "" : "s") x \(p.model.hidden), \(p.model.heads) heads"
        return "train \(p.train), test \(p.test); \(model); \(p.training.epochs) epochs\(p.scoringEpochs != p.training.epochs ? " (the scoring run \(p.scoringEpochs))" : ""), lr \(p.training.learningRate), batch \(p.training.batchSize), "
            + "max length \(p.maxLength); methods \(list(p.methods.map(\.rawValue))); "
            + (p.settings.map { "settings \(list($0.map(\.description)))" }
               ?? "select \(list(p.selects.map(\.rawValue))); normalize \(list(p.normalizations.map(\.rawValue))); sampling \(list(p.samplings.map(\.rawValue)))")
            + (p.perLabel == true ? "; every subset selected per label (the training set's class mix)" : "")
            + "; seeds \(p.seeds)" + (p.fullSeeds.map { $0 < p.seeds ? " (full data \($0))" : "" } ?? "")
            + (p.noise > 0 ? "; label noise \(p.noise)" : "")
    }

    func list(_ words: [String]) -> String { words.joined(separator: ", ") }

    /// Accuracy against keep fraction: one chart per (select, normalisation, sampling) group with a line
    /// per method, or with `oneChart` (explicit settings) one chart with a line per setting; random dashed.
    /// Points whose mean includes a retraining that learned nothing are named under their chart.
    func accuracyCharts(_ r: ExperimentResults, oneChart: Bool = false, learnedNothing: Set<String> = []) -> String {
        let sums = r.summaries
        guard !sums.isEmpty else { return "<p>No results yet.</p>" }
        let full = sums.first { $0.cell.isFull }
        let random = sums.filter { $0.cell.isRandom }
        var groups: [String] = []
        var byGroup: [String: [ExperimentResults.Summary]] = [:]
        for s in sums where !s.cell.isFull && !s.cell.isRandom {
            let g = oneChart ? "each setting against random" : "\(s.cell.select), \(s.cell.normalize)-normalised, \(s.cell.sampling)"
            if byGroup[g] == nil { groups.append(g) }
            byGroup[g, default: []].append(s)
        }
        if groups.isEmpty { groups = ["random only"] }
        func points(_ ss: [ExperimentResults.Summary]) -> [(x: Double, y: Double, err: Double)] {
            (full.map { [$0] } ?? []).map { (x: 1.0, y: 100 * $0.accuracyMean, err: 100 * $0.accuracyStd) }
                + ss.map { (x: $0.cell.keep, y: 100 * $0.accuracyMean, err: 100 * $0.accuracyStd) }
        }
        func line(_ c: ExperimentPlan.Cell) -> String {
            oneChart ? "\(c.method) \(c.select) \(c.sampling)" + (c.normalize == "dataset" ? "" : " (\(c.normalize))") : c.method
        }
        // How many of a point's retrainings learned nothing.
        func nothingCount(_ s: ExperimentResults.Summary) -> Int {
            r.rows.filter { $0.cell.config == s.cell.config && learnedNothing.contains($0.cell.key) }.count
        }
        // The keep-1 point of every line is the full-data mean: flagged on every line when it is.
        let fullFlagged: Set<Double> = full.map { nothingCount($0) > 0 ? [1.0] : [] } ?? []
        func flagged(_ ss: [ExperimentResults.Summary]) -> Set<Double> { fullFlagged.union(ss.filter { nothingCount($0) > 0 }.map(\.cell.keep)) }
        return groups.map { g in
            var series: [SVGChart.Series] = []
            let members = byGroup[g] ?? []
            var names: [String] = []
            for s in members where !names.contains(line(s.cell)) { names.append(line(s.cell)) }
            for n in names {
                let ss = members.filter { line($0.cell) == n }
                series.append(.init(name: n, points: points(ss), flagged: flagged(ss)))
            }
            series.append(.init(name: "random", points: points(random), dashed: true, flagged: flagged(random)))
            let marked = ((full.map { [$0] } ?? []) + members + random).compactMap { s -> String? in
                let n = nothingCount(s)
                let who = s.cell.isFull ? "full data (every line's keep-1 point)" : s.cell.isRandom ? "random" : line(s.cell)
                return n > 0 ? "\(who) at keep \(ExperimentPlan.format(s.cell.keep)) (\(n) of \(s.n))" : nil
            }
            return SVGChart.lines(series, title: "Test accuracy (%): \(g)", xLabel: "fraction of training data kept",
                                  yLabel: "accuracy (%), mean ± std over seeds", xDescending: true)
                + (marked.isEmpty ? "" : "<p class=\"warn\">These points (hollow rings) average in retrainings that learned nothing: \(e(marked.joined(separator: "; "))).</p>")
        }.joined()
    }

    func resultsTable(_ r: ExperimentResults, learnedNothing: Set<String> = []) -> String {
        guard !r.summaries.isEmpty else { return "" }   // "No results yet." above says it
        var s = "<table><tr><th>method</th><th>normalize</th><th>select</th><th>sampling</th><th>keep</th><th>accuracy (%)</th><th>macro-F1 (%)</th><th>seeds</th></tr>"
        for x in r.summaries {
            let c = x.cell
            let collapsed = r.rows.filter { $0.cell.config == c.config && learnedNothing.contains($0.cell.key) }.count
            s += "<tr\(c.isRandom || c.isFull ? " class=\"base\"" : "")><td>\(e(c.method))\(collapsed > 0 ? " <span class=\"warn\">* \(collapsed) learned nothing</span>" : "")</td><td>\(e(c.normalize))</td><td>\(e(c.select))</td><td>\(e(c.sampling))</td>"
                + "<td>\(ExperimentPlan.format(c.keep))</td>"
                + "<td>\(ExperimentResults.meanStd(x.accuracyMean, x.accuracyStd, n: x.n))</td>"
                + "<td>\(ExperimentResults.meanStd(x.macroF1Mean, x.macroF1Std, n: x.n))</td><td>\(x.n)</td></tr>"
        }
        if !learnedNothing.subtracting(["full-scoring-run"]).isEmpty {
            s += "</table><p class=\"meta\">* retrainings that learned nothing: one class for at least 95 % of the test file, or accuracy "
                + "at most 1 point above the majority rate.</p>"
            return s
        }
        return s + "</table>"
    }

    func noiseTable(_ csv: String, fraction: Double) -> String {
        var s = "<p>Similarity index: the fraction of flipped examples among the examples each score ranks hardest "
            + "(as many as were flipped). Random scores give \(ExperimentPlan.format(fraction)) on average.</p>"
        s += "<table><tr><th>method</th><th>flipped</th><th>found in top</th><th>similarity</th></tr>"
        for row in csv.textLines().dropFirst() {
            let f = row.split(separator: ",").map(String.init)
            guard f.count == 5 else { continue }
            s += "<tr><td>\(e(f[0]))</td><td>\(f[1])</td><td>\(f[3])</td><td>\(f[4])</td></tr>"
        }
        return s + "</table>"
    }

    /// Text and numeric fields of the scored lines of the training file, and annotator disagreement.
    /// Numeric fields present in at least half the rows are kept (missing values as nil). Rows whose
    /// `annotator_labels` hold at least 4 labels (SNLI's validated pairs) give the share of those labels
    /// that differ from the gold label, by line.
    /// `gold`: the file whose labels annotators are compared with, when it is not `file` (the original of a
    /// training file with flipped labels); with `noisy` and no `gold`, no disagreement is measured.
    func parseLines(_ file: LineFile, lines: [Int], plan: ExperimentPlan, gold goldFile: LineFile? = nil, noisy: Bool = false)
        -> (text: [Int: String], numeric: [(String, [Double?])], disagreement: [Int: Double]) {
        var text: [Int: String] = [:]
        var numeric: [String: [Double?]] = [:]
        var disagreement: [Int: Double] = [:]
        let skip: Set<String> = [plan.labelField ?? "label", "label", "gold_label", "id", "idx"]
        for (i, n) in lines.enumerated() where n >= 1 && n <= file.count {
            guard let obj = JSONLDataset.object(file.line(n), first: n == 1) else { continue }
            let t = [plan.textField, "text", "sentence", "sentence1", "premise"].compactMap { $0 }.compactMap { obj[$0] as? String }.first ?? ""
            let p = [plan.pairField, "text_pair", "sentence2", "hypothesis"].compactMap { $0 }.compactMap { obj[$0] as? String }.first
            text[n] = p.map { "\(t) ‖ \($0)" } ?? t
            // The gold label as the data is read (`--label-field`, else label, else gold_label), from the original
            // file when the training labels were flipped.
            let goldObj = noisy ? goldFile.flatMap { n <= $0.count ? JSONLDataset.object($0.line(n), first: n == 1) : nil } : obj
            if let votes = obj["annotator_labels"] as? [Any], votes.count >= 4, let goldObj,
               let gold = plan.labelField.map({ goldObj[$0] }) ?? goldObj["label"] ?? goldObj["gold_label"] {
                let g = "\(gold)"
                disagreement[n] = Double(votes.filter { "\($0)" != g }.count) / Double(votes.count)
            }
            for (k, v) in obj where !skip.contains(k) {
                guard let num = v as? NSNumber, !JSONLDataset.isBoolean(num), num.doubleValue.isFinite else { continue }
                if numeric[k] == nil { numeric[k] = [Double?](repeating: nil, count: lines.count) }
                numeric[k]![i] = num.doubleValue
            }
        }
        let kept = numeric.keys.sorted().filter { k in numeric[k]!.compactMap { $0 }.count * 2 >= lines.count }.map { ($0, numeric[$0]!) }
        return (text, kept, disagreement)
    }

    /// How one score relates to annotator disagreement, over the scored lines that have annotator labels.
    struct AgreementRow: Equatable {
        var method: String
        /// Scored lines with at least 4 annotator labels.
        var rows: Int
        /// Spearman correlation of the score with the share of annotators who differ from the gold label.
        var spearman: Double
        /// Share of disputed lines (at least 40 % of the annotators differ from gold: 2 of 4 or 5) among the highest-scoring tenth.
        var disputedTop: Double
        /// Share of disputed lines among all of them (what a random tenth gives on average).
        var disputedAll: Double
    }

    /// `AgreementRow` for a score given by lines and values; `disagreement` maps a line to the share of
    /// its annotators who differ from the gold label. The top tenth is ceil(rows / 10) lines, ties by line.
    static func annotatorAgreement(method: String, lines: [Int], scores: [Double], disagreement: [Int: Double]) -> AgreementRow {
        let pairs = zip(lines, scores).compactMap { n, s in disagreement[n].map { (n, s, $0) } }
        guard pairs.count >= 2 else { return AgreementRow(method: method, rows: pairs.count, spearman: .nan, disputedTop: .nan, disputedAll: .nan) }
        // At least 2 of 4 or 5 annotators differ: a share of 0.4 or more (0.5 with 4 labels).
        func disputed(_ d: Double) -> Bool { d >= 0.4 - 1e-9 }
        let order = pairs.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let top = order.prefix((pairs.count + 9) / 10)
        return AgreementRow(method: method, rows: pairs.count,
                            spearman: Statistics.spearman(pairs.map(\.1), pairs.map(\.2)),
                            disputedTop: Double(top.filter { disputed($0.2) }.count) / Double(top.count),
                            disputedAll: Double(pairs.filter { disputed($0.2) }.count) / Double(pairs.count))
    }

    func agreementTable(_ rows: [AgreementRow]) -> String {
        var s = "<p>Training pairs with at least 4 annotator labels: does a high score (hard) go with annotators who "
            + "disagree with the gold label? Spearman of the score with the share of annotators who differ from gold, and the "
            + "share of disputed pairs (at least 40 % of the annotators differ from gold: 2 of 4 or 5) among the tenth each score ranks hardest, beside "
            + "the share among all of them (what a random tenth gives).</p>"
        s += "<table><tr><th>method</th><th>pairs</th><th>Spearman</th><th>disputed in hardest tenth</th><th>disputed overall</th></tr>"
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "n/a" }
        for r in rows {
            s += "<tr><td>\(e(r.method))</td><td>\(r.rows)</td><td>\(f(r.spearman))</td><td>\(f(r.disputedTop))</td><td>\(f(r.disputedAll))</td></tr>"
        }
        return s + "</table>"
    }

    func correlations(_ scores: [(String, ScoreFile)], extra: [(String, [Double?])]) -> String {
        // Align every score on the first file's lines; fields may miss values (pairs use rows with both).
        let lines = scores[0].1.lines
        var cols: [(String, [Double?])] = []
        var left: [String] = []
        for (m, sf) in scores {
            let byLine = Dictionary(sf.lines.indices.map { (sf.lines[$0], sf.scores[$0]) }) { a, _ in a }
            guard lines.allSatisfy({ byLine[$0] != nil }) else { left.append(m); continue }
            cols.append((m, lines.map { byLine[$0]! }))
        }
        cols += extra
        let leftNote = left.isEmpty ? "" : "<p class=\"warn\">Left out of this table: \(e(left.joined(separator: ", "))), whose score file does not "
            + "score every line that \(e(scores[0].0))'s does (scored on another file, or cut short).</p>"
        guard cols.count >= 2 else { return "<p>One score only: nothing to correlate.</p>" + leftNote }
        // A rank correlation is undefined when either side is constant over the pairs (shown as n/a, not as 0).
        func spearman(_ a: [Double?], _ b: [Double?]) -> Double {
            let both = zip(a, b).compactMap { x, y in x.flatMap { x in y.map { (x, $0) } } }
            guard both.count >= 2, Set(both.map(\.0)).count > 1, Set(both.map(\.1)).count > 1 else { return .nan }
            return Statistics.spearman(both.map(\.0), both.map(\.1))
        }
        var s = "<p>Spearman rank correlation between scores (higher = harder for every score)"
            + (extra.isEmpty ? "" : " and numeric fields of the training file (\(extra.map { e($0.0) }.joined(separator: ", ")); rows where a field is missing are left out of its pairs)") + ".</p>"
        s += "<table class=\"corr\"><tr><th></th>" + cols.map { "<th>\(e($0.0))</th>" }.joined() + "</tr>"
        for i in cols.indices {
            s += "<tr><th>\(e(cols[i].0))</th>"
            for j in cols.indices {
                let r = i == j ? 1 : spearman(cols[i].1, cols[j].1)
                guard r.isFinite else { s += "<td title=\"constant over these rows: no rank correlation\">n/a</td>"; continue }
                let a = min(1, abs(r))
                let bg = r >= 0 ? "rgba(31,119,180,\(String(format: "%.2f", 0.7 * a)))" : "rgba(214,39,40,\(String(format: "%.2f", 0.7 * a)))"
                s += "<td style=\"background:\(bg)\">\(String(format: "%.3f", r))</td>"
            }
            s += "</tr>"
        }
        return s + "</table>" + leftNote
    }

    func extremes(_ method: String, _ sf: ScoreFile, text: [Int: String], flipped: Set<Int>) -> String {
        let order = sf.scores.indices.sorted { sf.scores[$0] != sf.scores[$1] ? sf.scores[$0] > sf.scores[$1] : $0 < $1 }
        func table(_ idx: ArraySlice<Int>, _ title: String) -> String {
            var s = "<h4>\(e(title))</h4><table class=\"ex\"><tr><th>line</th><th>label</th><th>score</th><th>text</th></tr>"
            for i in idx {
                let n = sf.lines[i]
                s += "<tr><td>\(n)\(flipped.contains(n) ? " <span class=\"flip\">flipped</span>" : "")</td><td>\(e(sf.labels[i]))</td>"
                    + "<td>\(String(format: "%.4g", sf.scores[i]))</td><td>\(e(text[n] ?? ""))</td></tr>"
            }
            return s + "</table>"
        }
        let k = min(examplesShown, order.count)
        // The score column ranks hardest first; where it is a column of the method reversed (PVI's score is -pvi), say so.
        let base = ScoreMethod(rawValue: String(method.prefix { $0 != "-" && $0 != "." }))
        let (high, low) = base?.columnsOppositeToScore.first.map { c in ("highest score = lowest \(c)", "lowest score = highest \(c)") }
            ?? ("highest \(method)", "lowest \(method)")
        // The easiest: lowest score first, ties in line order as for the hardest.
        let easiest = sf.scores.indices.sorted { sf.scores[$0] != sf.scores[$1] ? sf.scores[$0] < sf.scores[$1] : $0 < $1 }
        return "<details open><summary>\(e(method))</summary>" + table(order.prefix(k), "\(k) hardest (\(high))") + tieNote(sf.scores, order, k)
            + table(easiest.prefix(k), "\(k) easiest (\(low))") + tieNote(sf.scores, easiest, k) + "</details>"
    }

    /// A note when the `k` rows shown of `order` end inside a run of equal scores (a count such as forgetting's):
    /// which of the tied examples are shown is then line order, not the score.
    func tieNote(_ scores: [Double], _ order: [Int], _ k: Int) -> String {
        guard k > 0, k < order.count, scores[order[k - 1]] == scores[order[k]] else { return "" }
        let v = scores[order[k - 1]]
        let tied = scores.filter { $0 == v }.count, shown = order.prefix(k).filter { scores[$0] == v }.count
        return "<p class=\"meta\">\(shown) of the \(tied) examples with the score \(String(format: "%.4g", v)) are shown: "
            + "the score does not order them, so they are shown in line order.</p>"
    }

    func curves(_ exp: Experiment) -> String {
        var series: [SVGChart.Series] = []
        for (name, url) in [("full run (scoring)", exp.fullRunURL), ("null run (PVI)", exp.nullRunURL)] {
            guard let st = try? TrainerState(contentsOf: url.appendingPathComponent("trainer_state.json")) else { continue }
            let pts = st.logHistory.compactMap { l in l.loss.map { (x: Double(l.step), y: $0, err: 0.0) } }
            if !pts.isEmpty { series.append(.init(name: name, points: pts)) }
        }
        let curvesDir = exp.dir.appendingPathComponent("curves")
        // Random's curves first (the baseline is always shown), then the others in name order.
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: curvesDir.path)) ?? []).filter { $0.hasSuffix("-s0.json") }
            .sorted { a, b in a.hasPrefix("random") != b.hasPrefix("random") ? a.hasPrefix("random") : a < b }
        for f in files.prefix(8) {
            guard let st = try? TrainerState(contentsOf: curvesDir.appendingPathComponent(f)) else { continue }
            let pts = st.logHistory.compactMap { l in l.loss.map { (x: Double(l.step), y: $0, err: 0.0) } }
            if !pts.isEmpty { series.append(.init(name: String(f.dropLast(5)), points: pts, dashed: true)) }
        }
        guard !series.isEmpty else { return "<p>No training logs found.</p>" }
        return SVGChart.lines(series, title: "Training loss (mean over each logging window)", xLabel: "step", yLabel: "cross-entropy")
            + "<p class=\"meta\">Solid: the full scoring run (and the PVI null run); dashed: retrainings with seed 0 (at most 8 shown).</p>"
    }

    func section(_ title: String, _ content: String) -> String { "<section><h2>\(e(title))</h2>\(content)</section>" }
    func e(_ s: String) -> String { SVGChart.escape(s) }

    func page(_ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Winnow experiment report</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
        h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h4{margin:12px 0 4px}
        table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
        tr.base td{background:#f6f6f6}.corr td{text-align:right}.ex td:last-child{max-width:720px}
        .meta{color:#666}.warn{color:#b00;font-weight:bold}.flip{color:#d62728;font-size:11px}svg.chart{display:block;margin:8px 0}summary{font-weight:bold;cursor:pointer}
        </style></head>
        <body>
        \(body)
        <script>
        document.addEventListener("DOMContentLoaded", function () {
          var n = document.querySelectorAll("svg.chart").length;
          document.body.setAttribute("data-charts", String(n));
          document.getElementById("status").textContent = n + " charts, generated by winnow";
        });
        </script>
        </body></html>

        """
    }
}
