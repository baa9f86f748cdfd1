import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

/// What `winnow experiment` runs (the pipeline of 2311.16298): train on the full set with checkpoints
/// and dynamics (plus a null run for PVI), score, prune at each keep fraction with each method and with
/// random, retrain with every seed from one saved initialisation, and evaluate on the test file.
/// Stored as `DIR/plan.json`; a rerun with the same plan resumes, a different plan is refused.
public struct ExperimentPlan: Codable, Sendable, Equatable {
    /// Path of the training JSONL file.
    public var train: String
    /// Path of the test JSONL file every retrained model is evaluated on.
    public var test: String
    /// JSON field of the text; nil: detected (`text`, `sentence`, `sentence1`, `premise`).
    public var textField: String?
    /// JSON field of the second text of a pair; nil: detected (`text_pair`, `sentence2`, `hypothesis`).
    public var pairField: String?
    /// JSON field of the label; nil: detected (`label`, `gold_label`).
    public var labelField: String?
    /// Maximum tokens per example for training, scoring and evaluation.
    public var maxLength = 128
    /// Score methods; the random baseline is always run. Forgetting by default, for `recommended`.
    public var methods: [ScoreMethod] = [.forgetting]
    /// Keep fractions; 1.0 gives the full-data rows (method `full`).
    public var keeps: [Double] = [1.0, 0.7, 0.5]
    /// Score preferences tried for each method; `.random` is skipped here (the random baseline always runs).
    public var selects: [SelectionOptions.Preference] = [.easy]
    /// Score normalisations tried for each method.
    public var normalizations: [Normalization] = [.dataset]
    /// Sampling schemes tried for each method.
    public var samplings: [SelectionOptions.Sampling] = [.top]
    /// Explicit selection settings, each a method with its own preference, sampling and normalisation;
    /// when given they replace the cross product of `methods` x `normalizations` x `selects` x `samplings`
    /// (and `methods` should list their methods). Nil: the cross product. `[recommended]` by default.
    public var settings: [Setting]? = [ExperimentPlan.recommended]
    /// Select within each label (`SelectionOptions.perLabel`) for every subset, random included, so every
    /// subset keeps the training set's class mix; true by default (as `recommended` was measured). Nil
    /// (plans written before the option) or false: one selection over all examples.
    public var perLabel: Bool? = true

    /// The best-supported setting measured here (README "Choosing a selection setting"; MiniLM, per label): keep
    /// the fewest forgetting events, top-k, and among equal counts the most ambiguous, the highest variability of
    /// p_y over the training presentations (dataset cartography's, read from the scoring run's dynamics: no
    /// model pass). Keep 0.5, 5 seeds: SNLI-20k 78.49 % against random's 77.38 % (+1.11, two standard errors
    /// 0.45), CrowdFlower 78.19 % against 77.04 % (+1.15, 0.27); Rotten Tomatoes (3 seeds) 81.45 % against
    /// 81.00 % (+0.44, 0.22). Keep 0.3, 3 seeds, against random per label: SNLI-20k 76.77 % against 74.51 %
    /// (+2.27), CrowdFlower 77.05 % against 75.05 % (+2.00), where EL2N breaking the same ties lost 5.5 and 11.5
    /// points.
    public static let recommended = Setting(method: .forgetting, select: .easy, sampling: .top, normalization: .dataset,
                                            thenBy: TieBreak(method: .cartography, epoch1: false, column: "variability", select: .hard))
    /// Temperature T of softmax sampling.
    public var temperature = 1.0
    /// Stratified sampling: the fraction of hardest examples dropped first.
    public var beta = 0.1
    /// Training seeds 0..<seeds (data order, dropout and sampled selections).
    public var seeds = 3
    /// Full-data rows (keep 1.0): seeds 0..<fullSeeds, at most `seeds`; nil: `seeds`. Seed 0's is the scoring run
    /// itself when it trains the retrainings' epochs (no retraining then), so 1 gives the full-data row for nothing but its spread.
    public var fullSeeds: Int?
    /// Fraction of training labels flipped first (0: none).
    public var noise = 0.0
    /// Seed of the label noise (which examples are flipped, and to which label).
    public var noiseSeed: UInt64 = 0
    /// The model to initialise: a fresh encoder, or a pretrained one with a fresh head.
    public var model = ModelSpec()
    /// Training options of every run; the experiment sets `seed`, `maxLength`, the checkpoints, dynamics
    /// and `null` per run.
    public var training = TrainingOptions()
    /// Seed of the one initialisation every run starts from.
    public var initSeed: UInt64 = 0
    /// Evenly spaced checkpoints of the full run (VoG, EL2N, GraNd and TracIn average over them).
    public var scoreCheckpoints = 4
    /// Epochs of the scoring run; nil: the retrainings' (`training.epochs`). More epochs give the training
    /// dynamics (forgetting, cartography, AUM) more presentations of each example than two epochs' two.
    /// With another value the full-data row of seed 0 is retrained like the others.
    public var scoreEpochs: Int? = nil
    /// The scoring run's epochs: `scoreEpochs`, or `training.epochs` when that is nil.
    public var scoringEpochs: Int { scoreEpochs ?? training.epochs }
    /// Parameters of the gradient scores (GraNd, TracIn).
    public var scoreParams: ParameterSelection.Spec = .all
    /// Examples per batch when scoring.
    public var scoreBatchSize = 32

    /// A second score that breaks the ties of a setting's score (as `winnow prune --then-by`), written
    /// `METHOD[-epoch1|-last][.COLUMN]:SELECT` (`cartography.variability:hard`, `el2n-epoch1:hard`): the score read
    /// at the scoring run's checkpoint nearest the end of its first epoch (`-epoch1`) or at its last checkpoint
    /// (`-last`; scores that read checkpoints: el2n, loss, margin, grand, tracin), or as the experiment's other
    /// scores are read; `.COLUMN` reads another numeric column of its score file (``/WinnowScores/ScoreMethod/columns``, such as
    /// cartography's variability), preferring its hard (highest) or easy end among the ties.
    public struct TieBreak: Codable, Sendable, Equatable, CustomStringConvertible {
        /// The second score.
        public var method: ScoreMethod
        /// Read at the checkpoint that ends the first epoch, not over all score checkpoints.
        public var epoch1: Bool
        /// Read at the scoring run's last checkpoint, not over all score checkpoints.
        public var last: Bool
        /// The column of the score's file read (one of `method.columns`); nil: the score itself.
        public var column: String?
        /// Which end of the second score is preferred among ties.
        public var select: SelectionOptions.Preference

        /// A tie-break from its parts; the column `score` is the score itself (nil).
        public init(method: ScoreMethod, epoch1: Bool, last: Bool = false, column: String? = nil, select: SelectionOptions.Preference) {
            self.method = method; self.epoch1 = epoch1; self.last = last; self.column = column == "score" ? nil : column; self.select = select
        }

        /// The same ranking read from the score itself where the column is the score reversed
        /// (`ScoreMethod.columnsOppositeToScore`: `cartography.confidence:hard` is `cartography:easy`); else self.
        public var canonical: TieBreak {
            guard let column, method.columnsOppositeToScore.contains(column) else { return self }
            return TieBreak(method: method, epoch1: epoch1, last: last, select: select == .hard ? .easy : .hard)
        }

        enum CodingKeys: String, CodingKey { case method, epoch1, last, column, select }

        /// Decodes a tie-break; a plan written before `last` or `column` existed reads them as false and nil.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(method: try c.decode(ScoreMethod.self, forKey: .method), epoch1: try c.decode(Bool.self, forKey: .epoch1),
                      last: try c.decodeIfPresent(Bool.self, forKey: .last) ?? false,
                      column: try c.decodeIfPresent(String.self, forKey: .column),
                      select: try c.decode(SelectionOptions.Preference.self, forKey: .select))
        }

        /// Parses `METHOD[-epoch1|-last][.COLUMN]:SELECT`.
        ///
        /// - Throws: `WinnowError.invalidOption` naming the part that is not understood.
        public init(parsing text: String) throws {
            func bad(_ why: String) -> WinnowError { .invalidOption(name: "settings", reason: "tie-break '\(text)': \(why) (METHOD[-epoch1|-last][.COLUMN]:SELECT)") }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw bad("give a score and hard or easy") }
            let named = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let score = named[0], column = named.count > 1 ? named[1] : nil
            if column?.isEmpty == true { throw bad("the column after '.' is empty") }
            let epoch1 = score.hasSuffix("-epoch1"), last = score.hasSuffix("-last")
            let name = epoch1 ? String(score.dropLast("-epoch1".count)) : last ? String(score.dropLast("-last".count)) : score
            guard let m = ScoreMethod(rawValue: name) else { throw bad("'\(name)' is not a score method") }
            guard let p = SelectionOptions.Preference(rawValue: parts[1]), [.hard, .easy].contains(p) else { throw bad("'\(parts[1])' is not hard or easy") }
            self.init(method: m, epoch1: epoch1, last: last, column: column == "score" ? nil : column, select: p)
            try validate()
        }

        /// Checks that the score can be read as asked.
        ///
        /// - Throws: `WinnowError.invalidOption` for `-epoch1` or `-last` with a score that does not read checkpoints,
        ///   for both at once, for pvi (it needs a null run), and for a column the score's file does not have.
        public func validate() throws {
            guard method != .pvi else { throw WinnowError.invalidOption(name: "settings", reason: "pvi cannot break ties (it needs a null run)") }
            if epoch1 && last { throw WinnowError.invalidOption(name: "settings", reason: "a tie-break is read at the end of epoch 1 or at the last checkpoint, not both") }
            if (epoch1 || last) && ![.el2n, .loss, .margin, .grand, .tracin].contains(method) {
                throw WinnowError.invalidOption(name: "settings", reason: "\(scoreName): only el2n, loss, margin, grand and tracin are read at one checkpoint")
            }
            if let column, !method.columns.contains(column) {
                let has = method.columns.isEmpty ? "has only its score" : "has score, " + method.columns.joined(separator: ", ")
                throw WinnowError.invalidOption(name: "settings", reason: "tie-break '\(description)': \(method.rawValue)'s score file has no column '\(column)' (it \(has))")
            }
        }

        /// The score's name and the stem of its file in DIR/scores: `el2n-epoch1`, `el2n-last` or `el2n`.
        public var scoreName: String { method.rawValue + (epoch1 ? "-epoch1" : last ? "-last" : "") }
        /// The values it reads: `scoreName`, then `.COLUMN` for another column (`cartography.variability`).
        public var key: String { scoreName + (column.map { ".\($0)" } ?? "") }
        /// `METHOD[-epoch1|-last][.COLUMN]:SELECT`.
        public var description: String { "\(key):\(select.rawValue)" }
    }

    /// One selection setting: a score, the examples preferred, how they are chosen, the score's
    /// normalisation and optionally a second score for its ties, written
    /// `METHOD:SELECT[:SAMPLING[:NORMALIZE]][+TIEBREAK]` (`forgetting:easy:top:dataset+cartography.variability:hard`).
    public struct Setting: Codable, Sendable, Equatable {
        /// The score.
        public var method: ScoreMethod
        /// Which examples are preferred (hard, easy or moderate).
        public var select: SelectionOptions.Preference
        /// How they are chosen.
        public var sampling: SelectionOptions.Sampling
        /// The score's normalisation.
        public var normalization: Normalization
        /// A second score that breaks the ties of the first (top-k with dataset or no normalisation only); nil:
        /// ties are broken by input order.
        public var thenBy: TieBreak?

        /// A setting from its parts.
        public init(method: ScoreMethod, select: SelectionOptions.Preference, sampling: SelectionOptions.Sampling = .top,
                    normalization: Normalization = .dataset, thenBy: TieBreak? = nil) {
            self.method = method; self.select = select; self.sampling = sampling; self.normalization = normalization
            self.thenBy = thenBy
        }

        /// Settings with one key select the same examples: a tie-break by a column that is its score reversed
        /// (`cartography.confidence:hard`) is that score's other end (`cartography:easy`); with stratified sampling hard and easy select alike;
        /// without normalisation top-k and stratified sampling rank as dataset z-scores do (an increasing
        /// affine map of the scores); and within each label (`perLabel`) class z-scores are such a map too,
        /// so the three normalisations rank alike there for top-k and stratified sampling (moderate included).
        public func subsetKey(perLabel: Bool) -> String {
            let sel = sampling == .stratified ? SelectionOptions.Preference.hard : select
            let ranks = sampling == .top || sampling == .stratified   // softmax and linear weights depend on the scale
            let norm = (normalization == .none && (sampling == .top || sampling == .stratified)) || (perLabel && ranks) ? Normalization.dataset : normalization
            return Setting(method: method, select: sel, sampling: sampling, normalization: norm, thenBy: thenBy?.canonical).description
        }

        /// Parses `METHOD:SELECT[:SAMPLING[:NORMALIZE]][+TIEBREAK]` (sampling top and normalisation dataset by
        /// default; TIEBREAK as `TieBreak(parsing:)`).
        ///
        /// - Throws: `WinnowError.invalidOption` naming the part that is not understood.
        public init(parsing whole: String) throws {
            let halves = whole.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let text = halves[0]
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func bad(_ why: String) -> WinnowError { .invalidOption(name: "settings", reason: "'\(whole)': \(why) (METHOD:SELECT[:SAMPLING[:NORMALIZE]][+METHOD[-epoch1|-last][.COLUMN]:SELECT])") }
            guard (2...4).contains(parts.count) else { throw bad("give 2 to 4 parts") }
            guard !parts.contains(where: \.isEmpty) else { throw bad("a part is empty") }
            guard let m = ScoreMethod(rawValue: parts[0]) else { throw bad("'\(parts[0])' is not a score method") }
            guard let p = SelectionOptions.Preference(rawValue: parts[1]), p != .random else { throw bad("'\(parts[1])' is not hard, easy or moderate") }
            let s = parts.count > 2 ? SelectionOptions.Sampling(rawValue: parts[2]) : .top
            guard let s else { throw bad("'\(parts[2])' is not top, softmax, linear or stratified") }
            let n = parts.count > 3 ? Normalization(rawValue: parts[3]) : .dataset
            guard let n else { throw bad("'\(parts[3])' is not none, dataset or class") }
            self.init(method: m, select: p, sampling: s, normalization: n, thenBy: try halves.count > 1 ? TieBreak(parsing: halves[1]) : nil)
            try validate()
        }

        /// Checks that moderate selection is not stratified and that a tie-break comes with a hard or easy
        /// selection that reads ranks.
        ///
        /// - Throws: `WinnowError.invalidOption` for moderate with stratified sampling; for a tie-break that is the
        ///   score itself (or its reversed column, `ScoreMethod.columnsOppositeToScore`); for a tie-break with
        ///   moderate or sampled selections or class z-scores; and for what `TieBreak.validate()` refuses.
        public func validate() throws {
            if select == .moderate && sampling == .stratified {
                throw WinnowError.invalidOption(name: "settings", reason: "\(description): moderate takes top, softmax or linear sampling")
            }
            guard let thenBy else { return }
            guard thenBy.canonical.key != method.rawValue else {
                let reversed = thenBy.column != nil ? " (its \(thenBy.column!) column is the score reversed)" : ""
                throw WinnowError.invalidOption(name: "settings", reason: "\(description): a score cannot break its own ties (they are equal in it\(reversed))")
            }
            guard select != .moderate else {
                throw WinnowError.invalidOption(name: "settings", reason: "\(description): a tie-break goes with hard or easy")
            }
            try thenBy.validate()
            guard sampling == .top, normalization != .class else {
                throw WinnowError.invalidOption(name: "settings", reason: "\(description): a tie-break ranks by two scores and takes top-k with dataset or no normalisation")
            }
        }

        /// `METHOD:SELECT:SAMPLING:NORMALIZE[+TIEBREAK]`.
        public var description: String {
            "\(method.rawValue):\(select.rawValue):\(sampling.rawValue):\(normalization.rawValue)" + (thenBy.map { "+\($0)" } ?? "")
        }

        /// The method column of its retrainings: the score, then `+TIEBREAK-SELECT` (`forgetting+cartography.variability-hard`).
        public var methodName: String { method.rawValue + (thenBy.map { "+\($0.key)-\($0.select.rawValue)" } ?? "") }
    }

    /// The second scores of the settings, each once.
    public var tieBreaks: [TieBreak] {
        var out: [TieBreak] = []
        for t in selectionSettings.compactMap(\.thenBy) where !out.contains(where: { $0.key == t.key }) { out.append(t) }
        return out
    }

    /// The settings each keep fraction retrains: `settings`, else the cross product (without moderate with
    /// stratified sampling, which has no meaning, and without a setting that selects the same examples as one
    /// before it: see `Setting.subsetKey(perLabel:)`).
    public var selectionSettings: [Setting] { crossProduct.kept }

    /// The settings of the cross product left out because they select the same examples as one kept before
    /// them (`selectionSettings`), each with that one; empty when `settings` are given.
    public var mergedSettings: [(setting: Setting, sameAs: Setting)] { crossProduct.merged }

    /// One sentence naming every merged setting and the one it is retrained and reported as; nil when none is.
    public var mergedSettingsNote: String? {
        let merged = mergedSettings
        guard !merged.isEmpty else { return nil }
        return "\(merged.count) setting(s) select the same examples as one before them and are retrained and reported as that one ("
            + merged.map { "\($0.setting.description) as \($0.sameAs.description)" }.joined(separator: ", ")
            + "): within each label class z-scores rank as dataset z-scores, without normalisation top-k ranks as with it, "
            + "and stratified sampling selects hard and easy alike"
    }

    var crossProduct: (kept: [Setting], merged: [(setting: Setting, sameAs: Setting)]) {
        if let settings { return (settings, []) }
        var out: [Setting] = [], merged: [(setting: Setting, sameAs: Setting)] = [], first: [String: Setting] = [:]
        for m in methods {
            for n in normalizations { for p in selects where p != .random { for s in samplings where !(p == .moderate && s == .stratified) {
                let x = Setting(method: m, select: p, sampling: s, normalization: n)
                let key = x.subsetKey(perLabel: perLabel ?? false)
                if let same = first[key] { merged.append((x, same)) } else { first[key] = x; out.append(x) }
            } } }
        }
        return (out, merged)
    }

    /// A plan with default options for the training and test JSONL files at these paths.
    public init(train: String, test: String) {
        self.train = train
        self.test = test
    }

    /// The field names the JSONL files are read with.
    public var fields: FieldNames { FieldNames(text: textField, pair: pairField, label: labelField) }

    /// Checks keep fractions in (0, 1], each once, a maximum length of at least 4, at least one seed, noise in
    /// [0, 1), at least one score checkpoint (two for VoG), and the model spec.
    /// - Throws: `WinnowError.invalidOption` naming the first bad option.
    public func validate() throws {
        guard !keeps.isEmpty, keeps.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
            throw WinnowError.invalidOption(name: "keep", reason: "give fractions in (0, 1]")
        }
        // Keeps are named by four decimals (cells, files, tables): two that read alike are one.
        if let twice = keeps.first(where: { k in keeps.filter { Self.format($0) == Self.format(k) }.count > 1 }) {
            throw WinnowError.invalidOption(name: "keep", reason: "\(Self.format(twice)) is given twice (keeps are told apart to four decimals)")
        }
        guard maxLength >= 4 else { throw WinnowError.invalidOption(name: "maxLength", reason: "must be at least 4 (a BERT pair's [CLS], two [SEP] and one token of text)") }
        guard seeds >= 1 else { throw WinnowError.invalidOption(name: "seeds", reason: "must be at least 1") }
        if let f = fullSeeds, !(1...seeds).contains(f) {
            throw WinnowError.invalidOption(name: "fullSeeds", reason: "must be from 1 to --seeds (\(seeds)), not \(f)")
        }
        guard (0..<1).contains(noise) else { throw WinnowError.invalidOption(name: "noise", reason: "must be in [0, 1)") }
        guard scoreCheckpoints >= 1 else { throw WinnowError.invalidOption(name: "scoreCheckpoints", reason: "must be at least 1") }
        if let e = scoreEpochs, !(1...1000).contains(e) { throw WinnowError.invalidOption(name: "scoreEpochs", reason: "must be from 1 to 1000, not \(e)") }
        if methods.contains(.vog) && scoreCheckpoints < 2 {
            throw WinnowError.invalidOption(name: "scoreCheckpoints", reason: "VoG is a variance over checkpoints and needs at least 2 (one gives every example 0)")
        }
        if let twice = methods.first(where: { m in methods.filter { $0 == m }.count > 1 }) {
            throw WinnowError.invalidOption(name: "methods", reason: "\(twice.rawValue) is given twice")
        }
        if let m = settings?.first(where: { !methods.contains($0.method) }) {
            throw WinnowError.invalidOption(name: "settings", reason: "\(m.description) uses \(m.method.rawValue), which is not among the methods scored")
        }
        for x in selectionSettings { try x.validate() }
        // The sampling parameters within the bounds every selection takes (checked here, before plan.json is written).
        var sampling = SelectionOptions(keep: 0.5)
        sampling.temperature = temperature; sampling.beta = beta
        try sampling.validate()
        if selectionSettings.contains(where: { $0.sampling == .stratified }) {
            guard (0..<1).contains(beta) else { throw WinnowError.invalidOption(name: "beta", reason: "must be in [0, 1), not \(beta)") }
            // Stratified sampling keeps at most 1 - beta: a larger keep would train on fewer and be charted as the keep.
            if let k = keeps.first(where: { $0 < 1 && $0 > 1 - beta + 1e-9 }) {
                throw WinnowError.invalidOption(name: "keep", reason: "\(Self.format(k)) is more than stratified sampling keeps after dropping the "
                    + "hardest --beta \(Self.format(beta)) (at most \(Self.format(1 - beta))): lower the keep or --beta")
            }
        }
        let names = selectionSettings.map(\.description)
        if let twice = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw WinnowError.invalidOption(name: "settings", reason: "\(twice) is given twice")
        }
        let keys = selectionSettings.map { $0.subsetKey(perLabel: perLabel ?? false) }
        if let i = keys.indices.first(where: { i in keys[..<i].contains(keys[i]) }), let j = keys.firstIndex(of: keys[i]) {
            throw WinnowError.invalidOption(name: "settings", reason:
                "\(selectionSettings[j].description) and \(selectionSettings[i].description) select the same examples "
                + "(stratified sampling selects hard and easy alike; without normalisation top-k and stratified rank as dataset z-scores do; "
                + "within each label, --per-label's default, class z-scores rank as they do too)")
        }
        try model.validate()
    }

    /// One retraining: which subset (method, normalisation, preference, sampling, keep) and which seed.
    public struct Cell: Sendable, Hashable {
        /// Score method (a `ScoreMethod` raw value, followed by `+TIEBREAK-SELECT` when a second score breaks
        /// its ties: `forgetting+cartography.variability-hard`), or `full` or `random` for the baselines.
        public var method: String
        /// `Normalization` raw value; `-` for the baselines.
        public var normalize: String
        /// `SelectionOptions.Preference` raw value; `random` for random, `-` for full.
        public var select: String
        /// `SelectionOptions.Sampling` raw value; `-` for the baselines.
        public var sampling: String
        /// Fraction of the training set kept, in (0, 1]; 1 for full.
        public var keep: Double
        /// Training seed; also seeds the sampled selections.
        public var seed: Int

        /// A cell from its fields (raw values as stored in results.csv).
        public init(method: String, normalize: String, select: String, sampling: String, keep: Double, seed: Int) {
            self.method = method; self.normalize = normalize; self.select = select; self.sampling = sampling
            self.keep = keep; self.seed = seed
        }

        /// The configuration without the seed (what mean and std are taken over).
        public var config: String { "\(method)|\(normalize)|\(select)|\(sampling)|\(ExperimentPlan.format(keep))" }
        /// The configuration and the seed: identifies the cell's row in results.csv.
        public var key: String { config + "|\(seed)" }
        /// A file-name-safe name.
        public var name: String {
            let k = ExperimentPlan.format(keep)
            if isFull { return "full-s\(seed)" }
            if isRandom { return "random-k\(k)-s\(seed)" }
            return "\(method)-\(normalize)-\(select)-\(sampling)-k\(k)-s\(seed)"
        }
        /// Whether this is the full-data baseline (method `full`).
        public var isFull: Bool { method == "full" }
        /// Whether this is the random-pruning baseline (method `random`).
        public var isRandom: Bool { method == "random" }
    }

    /// Every retraining in the order they run: for each seed, the full set, then every keep fraction
    /// with random first and each method's configurations after it.
    public var cells: [Cell] {
        var out: [Cell] = []
        for seed in 0..<seeds {
            for keep in keeps {
                if keep >= 1 {
                    if seed < fullSeeds ?? seeds { out.append(Cell(method: "full", normalize: "-", select: "-", sampling: "-", keep: 1, seed: seed)) }
                    continue
                }
                out.append(Cell(method: "random", normalize: "-", select: "random", sampling: "-", keep: keep, seed: seed))
                for x in selectionSettings {
                    out.append(Cell(method: x.methodName, normalize: x.normalization.rawValue, select: x.select.rawValue,
                                    sampling: x.sampling.rawValue, keep: keep, seed: seed))
                }
            }
        }
        return out
    }

    static func format(_ x: Double) -> String {
        var s = String(format: "%.4f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// Reads a plan written by `write(to:)`.
    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw WinnowError.missingFile(path: url.path, reason: "no experiment plan") }
        do { self = try JSONDecoder().decode(ExperimentPlan.self, from: Data(contentsOf: url)) } catch let DecodingError.keyNotFound(key, _) {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not an experiment plan: key '\(key.stringValue)' is missing")
        } catch let DecodingError.typeMismatch(_, c), let DecodingError.valueNotFound(_, c) {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason:
                "not an experiment plan: key '\(c.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not an experiment plan (not the JSON `winnow experiment` writes)")
        }
    }

    /// Writes the plan as pretty-printed JSON with sorted keys, atomically.
    /// - Throws: an error when the plan cannot be encoded or the file cannot be written.
    public func write(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(enc.encode(self), to: url)
    }
}
