import ArgumentParser
import Foundation
import Winnow

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Train, score, prune at each keep fraction, retrain with several seeds, and compare with random.",
        discussion: """
        The pipeline of 2311.16298: train on the full set from one saved initialisation (seed 0, with \
        --score-checkpoints checkpoints and dynamics; a null run too when pvi is asked for), score every \
        training example with each method, then for every keep fraction < 1 prune with each method, \
        normalisation, preference and sampling, and with random, retrain each subset with seeds 0..S-1 from \
        the same initialisation and evaluate on --test. Keep 1.0 gives the full-data rows. Writes \
        DIR/results.csv (method,normalize,select,sampling,keep,seed,accuracy,macro_f1,train_examples) after \
        every retraining, prints mean ± std per configuration, and writes DIR/report.html. Rerun the same \
        command to resume after a kill. --noise F flips a seeded fraction F of the training labels first and \
        reports each score's similarity index (flipped examples among its top F).
        """)

    @Option(help: "Training file (JSONL).") var train: String
    @Option(help: "Test file (JSONL).") var test: String
    @Option(help: "Score methods, comma-separated: \(ScoreMethod.allCases.map(\.rawValue).joined(separator: ",")); each is tried with every --normalize, --select and --sampling, settings that select the same examples once (by default: the setting \(ExperimentPlan.recommended.description), per label, the best-supported one measured here, MiniLM per label: keep 0.5, 5 seeds, SNLI-20k 78.49 % vs random 77.38 % (per label 77.61 %), CrowdFlower 78.19 % vs 77.04 % (per label 77.08 %), Rotten Tomatoes (3 seeds) 81.45 % vs 81.00 % (per label 80.91 %); keep 0.3, 3 seeds, SNLI-20k 76.77 % vs 74.51 %, CrowdFlower 77.05 % vs 75.05 % (random per label); README \"Choosing a selection setting\")", transform: commaList)
    var methods: [ScoreMethod]?
    @Option(help: "Explicit settings instead of methods x --normalize x --select x --sampling, comma-separated METHOD:SELECT[:SAMPLING[:NORMALIZE]][+METHOD[-epoch1|-last][.COLUMN]:SELECT] (sampling top, normalisation dataset by default; after +, a second score breaks the first's ties as `winnow prune --then-by` does, read at the end of the first epoch with -epoch1, at the scoring run's last checkpoint with -last, from another column of its score file with .COLUMN such as cartography.variability), e.g. forgetting:easy:top,vog:hard:top,forgetting:easy+el2n-epoch1:hard; --methods beside it adds scores to the report's comparisons (correlations, annotators, noise) without subsets of their own. (default: \(ExperimentPlan.recommended.description) unless --methods, --select, --normalize or --sampling is given)", transform: { s in
        let entries = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !entries.contains(where: \.isEmpty) else { throw ValidationError("--settings '\(s)' has an empty entry (settings are comma-separated)") }
        do { return try entries.map { try ExperimentPlan.Setting(parsing: $0) } } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
    })
    var settings: [ExperimentPlan.Setting]?
    @Option(help: "Keep fractions, comma-separated (1.0 = the full set).") var keep: String = "1.0,0.7,0.5"
    @Option(help: "Preferences, comma-separated: hard, easy, moderate (scores nearest the median; not with stratified) (default: easy).", transform: commaList)
    var select: [SelectionOptions.Preference]?
    @Option(help: "Normalisations, comma-separated: none, dataset, class (default: dataset).", transform: commaList)
    var normalize: [Normalization]?
    @Option(help: "Samplings, comma-separated: top, softmax, linear, stratified (default: top).", transform: commaList)
    var sampling: [SelectionOptions.Sampling]?
    @Option(name: .customLong("temperature"), parsing: .unconditional, help: "Softmax temperature (default 1; with softmax sampling).") var temperatureGiven: Double?
    @Option(name: .customLong("beta"), parsing: .unconditional, help: "Stratified: fraction of the hardest examples dropped first (default 0.1; with stratified sampling).")
    var betaGiven: Double?
    var temperature: Double { temperatureGiven ?? ExperimentPlan(train: "", test: "").temperature }
    var beta: Double { betaGiven ?? ExperimentPlan(train: "", test: "").beta }
    @Flag(inversion: .prefixedNo, help: "Select within each label for every subset, random included (as `winnow prune --per-label`): each keeps the training set's class mix (the default; --no-per-label: one selection over all examples).")
    var perLabel = true
    @Option(parsing: .unconditional, help: "Retrain with seeds 0..S-1.") var seeds: Int = ExperimentPlan(train: "", test: "").seeds
    @Option(parsing: .unconditional, help: "Full-data rows (keep 1.0) with seeds 0..F-1 only (default: --seeds); seed 0's is the scoring run itself (without --score-epochs), so 1 adds no retraining (make demo).") var fullSeeds: Int?
    @Option(parsing: .unconditional, help: "Flip this fraction of the training labels first (seeded by --noise-seed).") var noise: Double = 0
    @Option(name: .customLong("noise-seed"), parsing: .unconditional, help: "Seed of the label noise (default 0; with --noise).") var noiseSeedGiven: UInt64?
    var noiseSeed: UInt64 { noiseSeedGiven ?? 0 }
    @Option(parsing: .unconditional, help: "Seed of the shared initialisation.") var initSeed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Checkpoints of the full run used by the scores.") var scoreCheckpoints: Int = ExperimentPlan(train: "", test: "").scoreCheckpoints
    @Option(parsing: .unconditional, help: "Epochs of the scoring run (default: --epochs); the retrainings keep --epochs. More epochs give forgetting, cartography and AUM more presentations of each example, at the scoring run's cost: with --epochs 2, a 4-epoch scoring run gave the default setting +1.27 over random on SNLI-20k (0.36 more than the 2-epoch run), +1.12 on CrowdFlower (level) and +0.60 on Rotten Tomatoes (0.15 more), but 1.03 less on make demo's 3,000 reviews (MiniLM, keep 0.5, 3 seeds; 2 in the demo), so it is not the default (README \"Choosing a selection setting\").") var scoreEpochs: Int?
    @Option(name: .customLong("params"), help: "Parameters for GraNd and TracIn: all (the default), classifier, first-layer, last-layer, embeddings, or comma-separated tensor-name prefixes.")
    var paramsGiven: ParameterSelection.Spec?
    var params: ParameterSelection.Spec { paramsGiven ?? ExperimentPlan(train: "", test: "").scoreParams }
    @Option(help: "Text field (default: first of text, sentence, sentence1, premise).") var textField: String?
    @Option(help: "Second-segment field for pairs.") var pairField: String?
    @Option(help: "Label field (default: label or gold_label).") var labelField: String?
    @Option(parsing: .unconditional, help: "Truncate sequences to this many tokens.") var maxLength: Int = ExperimentPlan(train: "", test: "").maxLength
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var trainingFlags: TrainingFlags
    @Option(help: "Experiment folder (rerun to resume).") var out: String
    @Flag(help: "Keep every retrained model in DIR/runs (only loss curves are kept by default).") var keepRuns = false
    @Flag(help: "Do not write DIR/report.html at the end.") var noReport = false
    @Flag(help: "Continue when the scoring run learned nothing (one class for >= 95 % of the test file, or accuracy at most 1 point above the majority rate); its scores then mean nothing, and the table and report say so.")
    var force = false

    func plan() throws -> ExperimentPlan {
        var p = ExperimentPlan(train: URL(fileURLWithPath: train).path, test: URL(fileURLWithPath: test).path)
        func list(_ s: String) throws -> [String] {
            let items = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !items.contains(where: \.isEmpty) else { throw ValidationError("--keep '\(s)' has an empty entry") }
            return items
        }
        if let settings {
            p.settings = settings
            var ms = methods ?? []
            for x in settings where !ms.contains(x.method) { ms.append(x.method) }
            p.methods = ms
        } else if methods != nil || select != nil || normalize != nil || sampling != nil {
            p.settings = nil      // the cross product, each part defaulting as the plan does
            if let methods { p.methods = methods }
            if let select { p.selects = select }
            if let normalize { p.normalizations = normalize }
            if let sampling { p.samplings = sampling }
        }
        p.keeps = try list(keep).map {
            guard let x = Double($0) else { throw ValidationError("--keep: '\($0)' is not a number") }
            return x
        }
        if settings == nil && methods == nil && select == nil && normalize == nil && sampling == nil {
            p.settings = [ExperimentPlan.recommended]
        }
        p.perLabel = perLabel
        p.temperature = temperature; p.beta = beta; p.seeds = seeds; p.fullSeeds = fullSeeds; p.noise = noise; p.noiseSeed = noiseSeed
        p.initSeed = initSeed; p.scoreCheckpoints = scoreCheckpoints; p.scoreEpochs = scoreEpochs; p.scoreParams = params
        p.textField = textField; p.pairField = pairField; p.labelField = labelField; p.maxLength = maxLength
        var spec = modelOptions.spec
        spec.initFrom = spec.initFrom.map { URL(fileURLWithPath: $0).path }
        spec.vocab = spec.vocab.map { URL(fileURLWithPath: $0).path }
        p.model = spec
        p.training = trainingFlags.options(maxLength: maxLength, pretrained: modelOptions.initFrom != nil)
        p.scoreBatchSize = trainingFlags.batchSize
        return p
    }

    func validate() throws {
        if let i = modelOptions.initFrom, ModelLoader.isCausalLM(URL(fileURLWithPath: i)) {
            throw ValidationError("--init \(i) is a decoder: experiment scores, prunes and retrains BERT classifiers; for a decoder, run "
                                  + "`winnow score`, `winnow prune` and `winnow train --init` (README, \"Decoder models\")")
        }
        let p: ExperimentPlan
        do { p = try plan(); try p.validate() } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
        guard temperature > 0, (0..<1).contains(beta) else { throw ValidationError("--temperature must be positive and --beta in [0, 1)") }
        // Options no retraining would read are refused rather than recorded and ignored.
        if settings != nil && (select != nil || normalize != nil || sampling != nil) {
            throw ValidationError("--settings lists whole settings; --select, --normalize and --sampling build them otherwise (give one or the other)")
        }
        let samplings = Set(p.settings?.map(\.sampling) ?? p.samplings)
        if temperatureGiven != nil && !samplings.contains(.softmax) { throw ValidationError("--temperature applies to softmax sampling") }
        if betaGiven != nil && !samplings.contains(.stratified) { throw ValidationError("--beta applies to stratified sampling") }
        if noiseSeedGiven != nil && noise == 0 { throw ValidationError("--noise-seed is the seed of --noise") }
        if paramsGiven != nil && !(p.methods + p.tieBreaks.map(\.method)).contains(where: { $0 == .grand || $0 == .tracin }) {
            throw ValidationError("--params applies to the gradient scores grand and tracin, which this experiment does not run")
        }
        if p.settings == nil && p.selects.contains(.moderate) && p.samplings.contains(.stratified) {
            throw ValidationError("--select moderate with --sampling stratified is no setting (stratified drops one end itself); give them in --settings instead")
        }
    }

    func run() throws {
        let lock = try OutputLock(URL(fileURLWithPath: out))
        defer { lock.release() }
        let dir = URL(fileURLWithPath: out)
        let plan = try plan()
        // Settings of the cross product that select the same examples retrain once: say which stand for which.
        if let note = plan.mergedSettingsNote { printError("note: " + note) }
        var exp = Experiment(plan: plan, dir: dir)
        exp.keepRuns = keepRuns
        exp.reporter = TerminalReporter()
        exp.force = force
        let results = try exp.run()
        print(results.table(learnedNothing: exp.learnedNothingKeys))
        // Said again under the table, which has no rows of its own for them.
        if let note = plan.mergedSettingsNote { print("\nnote: " + note) }
        if noise > 0, let text = try? String(contentsOf: exp.noiseURL, encoding: .utf8) {
            print("\nlabel noise \(noise): similarity index (flipped examples among each score's top \(noise))")
            print(text, terminator: "")
        }
        print("\nresults: \(exp.resultsURL.path)")
        if !noReport {
            let reportURL = dir.appendingPathComponent("report.html")
            try ExperimentReport(dir: dir).write(to: reportURL)
            print("report: \(reportURL.path)")
        }
    }
}
