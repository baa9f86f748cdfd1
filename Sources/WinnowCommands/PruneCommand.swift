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
        hardest --beta fraction and fills the budget evenly over --bins equal-width score bins (Zheng et al. 2023; \
        --bins 1: drop the hardest --beta, then sample the rest uniformly; --select hard and easy select alike). \
        Weighted sampling uses Efraimidis-Spirakis keys from --seed. --normalize class ranks every label on its own \
        z-scores, dataset on global z-scores. --per-label selects within each label, keeping its share of the data \
        (quotas floor(n * N_label / N), plus one for the largest remainders). --then-by breaks the ties of --scores by a second scores file \
        (ranks by the pair; --sampling top). Lines of the data file that were not scored (e.g. no gold label) are \
        not kept.
        """)

    @Option(help: "Scores file from `winnow score` (CSV or JSONL).") var scores: String
    @Option(help: "The numeric column of --scores to select by (default score), such as cartography's variability: --select hard keeps the most ambiguous examples (Swayamdipta et al. 2020). A column where higher is easier (aum, margin, pvi, cartography's confidence and correctness) makes --select hard the default, keeping the easiest.")
    var column = "score"
    @Option(help: "The data file the scores were computed on.") var data: String
    @Option(parsing: .unconditional, help: "Fraction of examples to keep, in (0, 1].") var keep: Double
    @Option(name: .customLong("select"), help: "Which examples to prefer: easy (the default: prune the hardest; hard for a file of influence toward a target set, whose higher scores are the more helpful), hard, moderate (scores nearest the median: prune both ends; Xia et al. 2023), or random. The best setting measured here keeps the easiest by forgetting, ties broken by --then-by cartography's --then-column variability (the most ambiguous), --per-label (MiniLM: keep 0.5, 5 seeds, SNLI-20k 78.49 % vs random 77.38 % (per label 77.61 %), CrowdFlower 78.19 % vs 77.04 % (per label 77.08 %), Rotten Tomatoes (3 seeds) 81.45 % vs 81.00 % (per label 80.91 %); keep 0.3, 3 seeds, SNLI-20k 76.77 % vs 74.51 % (random per label), CrowdFlower 77.05 % vs 75.05 %); forgetting alone, easy, top-k, keep 0.5: 78.15, 77.67 and 81.17 %; keeping the hardest with top-k lost 7-26 points on SNLI; README \"Choosing a selection setting\". Influence toward a target set (tracin --aggregate; its toward_target column marks it) takes hard, its default.")
    var selectGiven: SelectionOptions.Preference?
    var select: SelectionOptions.Preference { selectGiven ?? SelectionOptions(keep: 1).preference }
    @Option(help: "How to choose among them.") var sampling: SelectionOptions.Sampling = SelectionOptions(keep: 1).sampling
    @Option(name: .customLong("temperature"), parsing: .unconditional, help: "Softmax temperature (default 1; --sampling softmax).") var temperatureGiven: Double?
    @Option(name: .customLong("beta"), parsing: .unconditional, help: "Stratified: fraction of the hardest examples dropped first (default 0.1; --sampling stratified).")
    var betaGiven: Double?
    @Option(name: .customLong("bins"), parsing: .unconditional, help: "Stratified: number of equal-width score bins (default 50; --sampling stratified).") var binsGiven: Int?
    var temperature: Double { temperatureGiven ?? SelectionOptions(keep: 1).temperature }
    var beta: Double { betaGiven ?? SelectionOptions(keep: 1).beta }
    var bins: Int { binsGiven ?? SelectionOptions(keep: 1).bins }
    @Option(name: .customLong("normalize"), help: "Score normalisation before selecting: dataset z-scores (the default; top-k ranks as the raw scores do), class (z-scores within each label: moves an imbalanced set's class mix less for continuous scores; for a count such as forgetting it can move it more), or none.")
    var normalizeGiven: Normalization?
    var normalize: Normalization { normalizeGiven ?? SelectionOptions(keep: 1).normalization }
    @Flag(help: "Select within each label, keeping every label's share of the data (quota floor(n * N_label / N), plus one for the largest remainders) whatever the scores favour.")
    var perLabel = SelectionOptions(keep: 1).perLabel
    @Option(help: "A second scores file of the same data that breaks the ties of --scores: rank by --scores, and among equal scores prefer --then-select by this one (with --sampling top). For counts with many ties such as forgetting: forgetting, then the highest cartography variability (--then-column variability), per label, is the best setting found (MiniLM, keep 0.5, 5 seeds: SNLI-20k 78.49 % vs random 77.38 % (per label 77.61 %), CrowdFlower 78.19 % vs 77.04 % (per label 77.08 %); keep 0.3: SNLI-20k 76.77 % vs 74.51 % (random per label)); the hardest EL2N (epoch 1) breaking the ties is level at keep 0.5 (78.37 and 78.17 %) and loses to random at keep 0.3 (SNLI-20k 69.03 %); README \"Choosing a selection setting\".")
    var thenBy: String?
    @Option(name: .customLong("then-select"), help: "Among examples with equal --scores, which to prefer by --then-by: hard (its highest; the default) or easy.")
    var thenSelectGiven: TieEnd?
    var thenSelect: TieEnd { thenSelectGiven ?? .hard }
    @Option(name: .customLong("then-column"), help: "The numeric column of --then-by to break the ties by (default score).")
    var thenColumnGiven: String?
    var thenColumn: String { thenColumnGiven ?? "score" }
    @Option(name: .customLong("seed"), parsing: .unconditional, help: "Seed of the sampling (default 0; not with --sampling top, which draws nothing, unless --select random).")
    var seedGiven: UInt64?
    var seed: UInt64 { seedGiven ?? SelectionOptions(keep: 1).seed }
    @Option(help: "Output file (written atomically).") var out: String?
    @Flag(help: "Print the summary only; write nothing.") var dryRun = false

    func validate() throws {
        guard keep > 0 && keep <= 1 else { throw ValidationError("--keep must be in (0, 1]") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard (0..<1).contains(beta) else { throw ValidationError("--beta must be in [0, 1)") }
        guard bins >= 1 else { throw ValidationError("--bins must be at least 1") }
        guard dryRun || out != nil else { throw ValidationError("give --out FILE, or --dry-run") }
        guard !(dryRun && out != nil) else { throw ValidationError("--dry-run writes nothing: give --out FILE or --dry-run, not both") }
        if temperatureGiven != nil && sampling != .softmax { throw ValidationError("--temperature applies to --sampling softmax") }
        if seedGiven != nil && sampling == .top && select != .random { throw ValidationError("--seed seeds a sampled selection; --sampling top with --select \(select) draws nothing") }
        if (betaGiven != nil || binsGiven != nil) && sampling != .stratified {
            throw ValidationError("\(betaGiven != nil ? "--beta" : "--bins") applies to --sampling stratified")
        }
        if select == .moderate && sampling == .stratified {
            throw ValidationError("--select moderate takes --sampling top, softmax or linear (stratified drops one end of the scores itself)")
        }
        // The library's bounds (a temperature below 1e-6, a bin count past 10^6) are usage errors too.
        var bounds = SelectionOptions(keep: keep)
        bounds.temperature = temperature; bounds.beta = beta; bounds.bins = bins
        do { try bounds.validate() } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
        // An option that would change nothing is refused whatever its value (the default's included).
        if thenBy == nil && thenSelectGiven != nil { throw ValidationError("--then-select needs --then-by") }
        if thenBy == nil && thenColumnGiven != nil { throw ValidationError("--then-column needs --then-by") }
        for (flag, c) in [("--column", column), ("--then-column", thenColumn)] where ["line", "index", "id", "label"].contains(c) || c.isEmpty {
            throw ValidationError("\(flag) names the numeric column to select by (such as score or variability), not '\(c)'")
        }
        if let out {
            try refuseOverwriting(out, inputs: [data, scores] + (thenBy.map { [$0] } ?? []))
            try refuseWritingIntoModel(out, models: [])
        }
        // --select random ignores the scores: options that would weigh or rank them would be printed and not applied.
        if select == .random {
            if sampling != .top { throw ValidationError("--select random ignores the scores: --sampling \(sampling) has nothing to weigh (leave it at top)") }
            if let n = normalizeGiven { throw ValidationError("--select random ignores the scores: --normalize \(n) changes nothing") }
            if column != "score" { throw ValidationError("--select random ignores the scores: --column \(column) changes nothing") }
        }
        if let thenBy, thenColumn == column,
           URL(fileURLWithPath: thenBy).standardizedFileURL.resolvingSymlinksInPath() == URL(fileURLWithPath: scores).standardizedFileURL.resolvingSymlinksInPath() {
            throw ValidationError("--then-by \(thenBy) is --scores itself: a score cannot break its own ties (they are equal in it); give --then-column another column or another file")
        }
        if thenBy != nil {
            guard [.hard, .easy].contains(select) else { throw ValidationError("--then-by ranks by two scores: --select must be hard or easy") }
            guard sampling == .top, normalize != .class else {
                throw ValidationError("--then-by ranks by two scores and takes --sampling top with --normalize dataset or none (--per-label balances the labels)")
            }
        }
    }

    func run() throws {
        var sf = try ScoreFile(url: URL(fileURLWithPath: scores), column: column)
        // Influence toward a target set: higher is more helpful, so by default the highest are kept.
        // A column where higher is easier (the method's score reversed: aum, margin, pvi, cartography's confidence;
        // or cartography's correctness).
        let reversedOf = column == "score" ? nil
            : ScoreMethod.allCases.first { $0.columnsHigherIsEasier.contains(column) && Set($0.columns).isSubset(of: Set(sf.columns)) }
        let select = selectGiven ?? (sf.scoresTowardTarget || reversedOf != nil ? .hard : self.select)
        if let m = reversedOf {
            let what = m.columnsOppositeToScore.contains(column) ? "is \(m)'s score reversed" : "is \(m)'s"
            if selectGiven == nil {
                printError("note: --column \(column) \(what) (a higher \(column) is easier): keeping the highest (--select hard), "
                           + "the easiest, as the default keeps the easiest; give --select to choose")
            } else if select == .easy || select == .hard {
                printError("note: --column \(column) \(what) (a higher \(column) is easier): --select \(select) keeps the "
                           + (select == .easy ? "lowest \(column), the hardest by \(m)" : "highest \(column), the easiest by \(m)"))
            }
        }
        if selectGiven == nil && sf.scoresTowardTarget {
            printError("note: \(scores) scores influence toward a target set (higher = more helpful): keeping the highest (--select hard); give --select to choose")
        }
        if (perLabel || normalize == .class) && !sf.hasLabels {
            throw WinnowError.invalidFile(path: scores, line: 1, reason:
                "names no label (no label column, or every label empty): \(perLabel ? "--per-label" : "--normalize class") needs the labels `winnow score` writes")
        }
        let usable = sf.withoutEmptyRows().file.lines.count
        guard usable == 0 || Selector.budget(usable, keep: keep) > 0 else {
            throw WinnowError.invalidOption(name: "keep", reason: "\(keep) of \(usable) scored examples rounds to none kept")
        }
        if let thenBy { sf = try sf.thenBy(ScoreFile(url: URL(fileURLWithPath: thenBy), column: thenColumn), select: select, then: thenSelect.preference) }
        var o = SelectionOptions(keep: keep)
        o.preference = select; o.sampling = sampling; o.temperature = temperature
        o.beta = beta; o.bins = bins; o.normalization = normalize; o.seed = seed
        o.perLabel = perLabel
        let r = try Pruning.prune(data: URL(fileURLWithPath: data), scoreFile: sf, options: o,
                                  to: dryRun ? nil : out.map { URL(fileURLWithPath: $0) })
        let before = r.before, after = r.after
        let w = max(5, before.keys.map(\.count).max() ?? 0)
        print("prune: kept \(r.keptLines.count) of \(r.scored) examples (keep \(keep), \(column == "score" ? "" : "by \(column), ")select \(select), sampling \(sampling), normalize \(normalize)\(perLabel ? ", per label" : "")\(thenBy.map { ", ties by \($0)\(thenColumn == "score" ? "" : " \(thenColumn)") (\(thenSelect))" } ?? ""), seed \(seed))")
        if r.withoutTokens > 0 {
            printError("note: \(r.withoutTokens) example(s) of \(scores) have no scored token (tokens 0, score 0: nothing to predict, such as an empty text) and are not kept")
        }
        if r.dataLines - r.withoutTokens > r.scored {
            printError("note: \(r.dataLines - r.scored - r.withoutTokens) of the \(r.dataLines) lines of \(data) have no score and are not kept (keep \(keep) is a share of "
                  + "the \(r.scored) scored; `winnow score` skips lines without a usable label, such as SNLI's \"-\")")
        }
        if r.keptLines.count < r.budget {
            printError("note: stratified sampling keeps at most (1 - beta) of the examples; \(r.budget) were asked for")
        }
        print("label".padding(toLength: w, withPad: " ", startingAt: 0) + "   before    after")
        for l in before.keys.sorted() {
            print(l.padding(toLength: w, withPad: " ", startingAt: 0) + String(format: " %8d %8d", before[l]!, after[l] ?? 0))
        }
        // Per label every label keeps its share up to rounding (a class of 3 keeping 1 of them is no skew).
        let shifts = perLabel ? [] : r.classMixShifts()
        if !shifts.isEmpty {
            let what = shifts.map { String(format: "%@ %.1f %% -> %.1f %%", $0.label, 100 * $0.before, 100 * $0.after) }.joined(separator: ", ")
            printError("note: the kept examples shift the class mix (\(what)); retraining on subsets skewed like this was unstable "
                  + "on SNLI (one subset gave 35.1 and 58.5 % with two training seeds; README \"Choosing a selection setting\"). "
                  + "--per-label keeps each label's share.")
        }
        if thenBy != nil && select == .easy && thenSelect == .hard && keep < 0.5 && thenColumn != "variability" {
            printError("note: the easiest by --scores with ties by the hardest of --then-by lost to random at keep 0.3 when EL2N broke "
                  + "forgetting's ties (per label: SNLI-20k 69.03 % against 74.51 %, CrowdFlower 63.54 % against 75.05 %), and won with "
                  + "cartography's variability breaking them (--then-column variability: 76.77 and 77.05 %): the fewer examples are "
                  + "kept, the more the hardest of the ties hurt (README \"Choosing a selection setting\").")
        }
        guard !dryRun, let out else { return }
        printError("prune: wrote \(r.keptLines.count) lines to \(out)\(data.lowercased().hasSuffix(".csv") ? " after its header line" : "")")
    }
}
