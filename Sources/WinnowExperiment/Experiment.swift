import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

/// Runs an `ExperimentPlan` into a folder, resuming where a previous (killed) run stopped:
///
///     DIR/plan.json            the plan (a rerun with another plan is refused); written once every input is checked
///     DIR/data.json            size and digest of the training and test files (a rerun on changed files is refused)
///     DIR/train-noisy.jsonl    with --noise: the training file with flipped labels; flips.csv lists them
///     DIR/init/                the one initialisation every run starts from
///     DIR/full/                the scoring run (seed 0, checkpoints, dynamics); DIR/null/ for PVI
///     DIR/scores/METHOD.csv    the scores of every training example
///     DIR/noise.csv            with --noise: overlap of the flipped examples with the top-scored ones
///     DIR/subsets/NAME.jsonl   the kept lines of each pruned set, verbatim
///     DIR/curves/NAME.json     trainer_state.json of each retraining (loss curve)
///     DIR/results.csv          one row per retraining (rewritten atomically after each)
///
///     let results = try Experiment(plan: plan, dir: URL(fileURLWithPath: "runs/exp")).run()
public struct Experiment: Sendable {
    /// The plan being run (stored as `DIR/plan.json`).
    public let plan: ExperimentPlan
    /// The experiment folder (DIR).
    public let dir: URL
    /// Keep each retraining's model folder in DIR/runs (by default only its loss curve is kept).
    public var keepRuns = false
    /// Where progress and notes go (nowhere by default).
    public var reporter: any ProgressReporter = .silent
    /// Continue when the scoring run learned nothing (its scores then mean nothing; the report says so).
    public var force = false

    /// An experiment of `plan` in folder `dir`; nothing is read or written until `run()`.
    public init(plan: ExperimentPlan, dir: URL) {
        self.plan = plan
        self.dir = dir
    }

    /// `DIR/plan.json`: the plan a rerun must match.
    public var planURL: URL { dir.appendingPathComponent("plan.json") }
    /// `DIR/results.csv`: one row per finished retraining.
    public var resultsURL: URL { dir.appendingPathComponent("results.csv") }
    /// `DIR/init/`: the one initialisation every run starts from.
    public var initURL: URL { dir.appendingPathComponent("init") }
    /// `DIR/full/`: the scoring run on the full training set (seed 0, checkpoints, dynamics).
    public var fullRunURL: URL { dir.appendingPathComponent("full") }
    /// `DIR/null/`: the run on empty inputs that PVI needs.
    public var nullRunURL: URL { dir.appendingPathComponent("null") }
    /// `DIR/scores/`: one CSV of scores per method.
    public var scoresURL: URL { dir.appendingPathComponent("scores") }
    /// `DIR/noise.csv`: with label noise, the similarity index of each method.
    public var noiseURL: URL { dir.appendingPathComponent("noise.csv") }
    /// `DIR/flips.csv`: with label noise, the flipped lines (`line,label,noisy_label`).
    public var flipsURL: URL { dir.appendingPathComponent("flips.csv") }
    /// Retrainings (cell keys; `full-scoring-run` for the run the scores come from) whose model learned
    /// nothing on the test file: one class for >= 95 % of it, or accuracy at most 1 point above the majority rate.
    public var learnedNothingURL: URL { dir.appendingPathComponent("learned-nothing.txt") }
    /// `DIR/cannot-tell.txt`: why the learning check could not tell whether the scoring run learned (one label
    /// is 95 % or more of the test file); absent when it could.
    public var cannotTellURL: URL { dir.appendingPathComponent("cannot-tell.txt") }
    /// `DIR/train-noisy.jsonl`: with label noise, the training file with the flipped labels.
    public var noisyTrainURL: URL { dir.appendingPathComponent("train-noisy.jsonl") }
    /// The training file the runs use (the noisy copy when --noise is given).
    public var trainURL: URL { plan.noise > 0 ? noisyTrainURL : URL(fileURLWithPath: plan.train) }
    /// `DIR/scores/METHOD.csv`: the scores of every training example by `method`.
    public func scoreURL(_ method: ScoreMethod) -> URL { scoresURL.appendingPathComponent("\(method).csv") }
    /// The scores file of a second score that breaks ties (`DIR/scores/el2n-epoch1.csv`; a column tie-break such as `cartography.variability` reads `DIR/scores/cartography.csv`).
    public func tieBreakURL(_ t: ExperimentPlan.TieBreak) -> URL { scoresURL.appendingPathComponent("\(t.scoreName).csv") }

    func say(_ s: String) { reporter.note(s) }

    /// Runs the plan, or resumes it: steps whose output exists (initialisation, full and null runs, score files,
    /// rows of results.csv) are skipped. Each finished retraining is evaluated on the test file and
    /// `results.csv` is rewritten; rows of results.csv that are not cells of the plan are dropped.
    ///
    /// - Returns: every retraining's test accuracy and macro-F1, in plan order.
    /// - Throws: `WinnowError.invalidOption` when the plan is invalid or `dir` holds another plan;
    ///   `WinnowError.invalidFile` when a training example has no label or a file is malformed; errors of
    ///   reading the data, training, scoring and writing files.
    @discardableResult
    public func run() throws -> ExperimentResults {
        try plan.validate()
        let fm = FileManager.default
        let fresh = !fm.fileExists(atPath: planURL.path)
        var isDir: ObjCBool = false
        let existed = fm.fileExists(atPath: dir.path, isDirectory: &isDir), initExisted = fm.fileExists(atPath: initURL.path)
        if existed && !isDir.boolValue {
            throw WinnowError.invalidOption(name: "dir", reason: "\(dir.path) is a file; an experiment is written into a folder")
        }
        if fresh && existed {
            // A folder of something else (a run, an adapter) is not taken over: its files would sit among the
            // experiment's, and deleting the experiment would delete them. What a start that was stopped leaves is.
            // The experiment's own input files may sit in it, and hidden files (.DS_Store, a temporary file of a write
            // that was stopped).
            let own = Set([initURL, noisyTrainURL, flipsURL, noiseURL].map(\.lastPathComponent))
            let inputs = Set(([plan.train, plan.test] + [plan.model.vocab, plan.model.initFrom].compactMap { $0 })
                .map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path })
            let other = (try? fm.contentsOfDirectory(atPath: dir.path))?.filter {
                !$0.hasPrefix(".") && !own.contains($0) && !inputs.contains(dir.appendingPathComponent($0).standardizedFileURL.resolvingSymlinksInPath().path)
            }.sorted() ?? []
            if let first = other.first {
                throw WinnowError.invalidOption(name: "dir", reason:
                    "\(dir.path) holds files that are not an experiment's ('\(first)'\(other.count > 1 ? " and \(other.count - 1) more" : "")) and no plan.json; "
                    + "give a new or empty folder")
            }
        }
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        // What a start stopped before plan.json was written left behind may come from other options: made anew.
        if fresh && initExisted { try fm.removeItem(at: initURL) }
        if !fresh {
            // A plan written before the scoring run had epochs of its own trained it for `training.epochs`.
            var old = try ExperimentPlan(contentsOf: planURL), now = plan
            old.scoreEpochs = old.scoringEpochs; now.scoreEpochs = now.scoringEpochs
            guard old == now else {
                // Settings read as the command line writes them (an experiment begun under another default is resumed by naming it).
                var parts: [String] = []
                if old.settings != plan.settings {
                    func names(_ s: [ExperimentPlan.Setting]?) -> String { s.map { $0.map(\.description).joined(separator: ",") } ?? "none (the cross product)" }
                    parts.append("settings: \(names(old.settings)) there, \(names(plan.settings)) now"
                                 + (old.settings.map { " (--settings \($0.map(\.description).joined(separator: ",")) names the first)" } ?? ""))
                }
                var a = old, b = now
                a.settings = nil; b.settings = nil
                if let d = Differences.describe(a, b) { parts.append(d) }
                if old.scoreEpochs != now.scoreEpochs {
                    parts.append("--score-epochs \(old.scoringEpochs) resumes it")
                }
                let what = parts.isEmpty ? "" : ": " + parts.joined(separator: "; ")
                throw WinnowError.invalidOption(name: "dir", reason:
                    "\(dir.path) holds an experiment with other options (plan.json\(what)); give another --out, or delete it to start over")
            }
            try checkDataFiles()
            say("experiment: resuming in \(dir.path)")
        }
        // Every input is read and checked before plan.json is written: a start that fails leaves nothing behind.
        let trainData: JSONLDataset, labels: [String], tokenizer: any TextTokenizer, trainEnc: EncodedDataset, testEnc: EncodedDataset
        do {
            try makeNoisyTrainingFile()
            trainData = try JSONLDataset(url: trainURL, fields: plan.fields)
            if let w = JSONLDataset.minusOneWarning(trainData.skippedMinusOne, of: trainData.examples.count + trainData.skipped, path: trainURL.path) { say(w) }
            let found = trainData.sortedLabels
            guard found.count >= 2 else {
                throw WinnowError.invalidFile(path: trainURL.path, line: nil, reason:
                    "has \(found.isEmpty ? "no label" : "one label ('\(found[0])')"); a classifier needs two or more")
            }
            let model0 = try makeInitialisation(labels: trainData.sortedLabels)
            labels = model0.labelNames
            tokenizer = try Tokenizers.load(folder: initURL)
            trainEnc = try EncodedDataset(trainData, tokenizer: tokenizer, labels: labels, maxLength: plan.maxLength,
                                          modelVocabulary: model0.dimensions.vocabulary)
            let testData = try JSONLDataset(url: URL(fileURLWithPath: plan.test), fields: plan.fields)
            testEnc = try EncodedDataset(testData, tokenizer: tokenizer, labels: labels, maxLength: plan.maxLength,
                                         modelVocabulary: model0.dimensions.vocabulary)
            if let i = trainEnc.labels.firstIndex(of: -1) {
                throw WinnowError.invalidFile(path: trainURL.path, line: trainEnc.lines[i], reason: "no label; an experiment needs labelled training data")
            }
            if let k = plan.keeps.first(where: { Selector.budget(trainEnc.count, keep: $0) == 0 }) {
                throw WinnowError.invalidOption(name: "keep", reason: "\(ExperimentPlan.format(k)) of the \(trainEnc.count) training examples keeps none")
            }
            if (plan.methods + plan.tieBreaks.map(\.method)).contains(where: { $0 == .grand || $0 == .tracin }) {
                _ = try ParameterSelection(plan.scoreParams, layout: model0.parameterLayout)
            }
            let saved = scoringCheckpointCount(examples: trainEnc.count)
            if saved < 2 && (plan.methods + plan.tieBreaks.map(\.method)).contains(.vog) {
                throw WinnowError.invalidOption(name: "scoreCheckpoints", reason: "VoG is a variance over checkpoints and the scoring run "
                    + "of \(trainEnc.count) examples saves only \(saved) (more examples or epochs, or a smaller batch size, give more)")
            }
        } catch {
            if fresh {
                for u in [initURL, noisyTrainURL, flipsURL, noiseURL, dir.appendingPathComponent(".init.partial")]
                where fm.fileExists(atPath: u.path) {
                    try? fm.removeItem(at: u)
                }
                if !existed, (try? fm.contentsOfDirectory(atPath: dir.path))?.isEmpty == true { try? fm.removeItem(at: dir) }
            }
            throw error
        }
        if fresh {
            try plan.write(to: planURL)
            try writeDataFiles()
        }
        say("experiment: \(trainEnc.count) training and \(testEnc.count) test examples, labels [\(labels.joined(separator: ", "))], "
            + "\(plan.cells.count) retrainings")

        let saved = scoringCheckpointCount(examples: trainEnc.count)
        if saved < plan.scoreCheckpoints {
            say("experiment: note: the scoring run has \(saved) step\(saved == 1 ? "" : "s"), so it saves \(saved) of the \(plan.scoreCheckpoints) checkpoints asked for")
        }
        try trainIfNeeded(fullRunURL, data: trainEnc, seed: 0, scoring: true,
                          label: "full run (seed 0, \(plan.scoringEpochs != plan.training.epochs ? "\(plan.scoringEpochs) epochs, " : "")\(saved) checkpoint\(saved == 1 ? "" : "s"), dynamics)")
        // Scores from a model that learned nothing mean nothing: check the scoring run on the test file first.
        let fullCheck = try learningCheck(ModelLoader.classifier(folder: fullRunURL), on: testEnc)
        if !fullCheck.canTell {
            // Whether the scores mean anything cannot be told from such a test file: said, and kept for the report.
            let why = "the test file \(plan.test) cannot tell whether the scoring run learned: \(fullCheck.description)"
            say("experiment: note: " + why)
            try AtomicFile.write(Data((why + "\n").utf8), to: cannotTellURL)
        } else if FileManager.default.fileExists(atPath: cannotTellURL.path) {
            try FileManager.default.removeItem(at: cannotTellURL)
        }
        if fullCheck.learnedNothing {
            let why = "the scoring run \(fullRunURL.path) learned nothing: it \(fullCheck.description) on \(plan.test)"
            // Continued once with --force, the experiment goes on with those scores (its retrainings already use them).
            guard force || learnedNothingKeys.contains("full-scoring-run") else {
                // The report says why the experiment stopped (a rerun that gets past this point removes it).
                try? AtomicFile.write(Data((why + "\n").utf8), to: stoppedURL)
                throw WinnowError.learnedNothing(reason: why + "; its scores would mean nothing. Train it better (it ran at --lr \(plan.training.learningRate) for "
                    + "\(plan.scoringEpochs) epoch\(plan.scoringEpochs == 1 ? "" : "s"): more \(plan.scoreEpochs == nil ? "--epochs" : "--score-epochs"), or another --lr; 1e-3 suits a small encoder from scratch, "
                    + "2e-5 to 1e-4 fine-tuning --init) into another --out (or delete \(dir.path)), "
                    + "or rerun this command with --force to continue with these scores anyway")
            }
            say("experiment: WARNING: " + why + (force ? "; continuing (--force)" : "; continuing (an earlier run of this experiment was forced on)")
                + ", but its scores mean nothing")
            try markLearnedNothing("full-scoring-run")
        }
        if fm.fileExists(atPath: stoppedURL.path) { try fm.removeItem(at: stoppedURL) }
        if plan.methods.contains(.pvi) {
            let nullEnc = try EncodedDataset(trainData, tokenizer: tokenizer, labels: labels, maxLength: plan.maxLength, null: true)
            try trainIfNeeded(nullRunURL, data: nullEnc, seed: 0, scoring: false, label: "null run for PVI")
        }
        try fm.createDirectory(at: scoresURL, withIntermediateDirectories: true)
        for m in plan.methods where !fm.fileExists(atPath: scoreURL(m).path) {
            var o = ScoreOptions()
            o.params = plan.scoreParams; o.batchSize = plan.scoreBatchSize; o.maxLength = plan.maxLength; o.reporter = reporter
            let r = try Scorer.score(m, run: fullRunURL, data: trainURL, fields: plan.fields, options: o, nullRun: nullRunURL)
            try ScoreWriter.write(r, format: .csv, to: scoreURL(m))
            say("experiment: scored \(r.scores.count) examples with \(m)")
        }
        for t in plan.tieBreaks where !fm.fileExists(atPath: tieBreakURL(t).path) {
            var o = ScoreOptions()
            o.params = plan.scoreParams; o.batchSize = plan.scoreBatchSize; o.maxLength = plan.maxLength; o.reporter = reporter
            if t.last { o.checkpoints = .last }
            if t.epoch1 {
                o.checkpoints = .list([.epoch(1)])
                // "epoch 1" is the nearest score checkpoint to the end of the first epoch: say so when it is far from it.
                let run = try RunFolder(url: fullRunURL)
                let state = try run.trainerState()
                if let ck = try run.select(o.checkpoints).first, state.maxSteps > 0, state.numTrainEpochs > 0 {
                    let epoch = Double(ck.step) * Double(state.numTrainEpochs) / Double(state.maxSteps)
                    if abs(epoch - 1) > 0.25 {
                        say(String(format: "experiment: note: %@ reads checkpoint-%d, epoch %.2f, the score checkpoint nearest the end of epoch 1 "
                                   + "(more --score-checkpoints put one nearer)", t.scoreName, ck.step, epoch))
                    }
                }
            }
            let r = try Scorer.score(t.method, run: fullRunURL, data: trainURL, fields: plan.fields, options: o)
            try ScoreWriter.write(r, format: .csv, to: tieBreakURL(t))
            say("experiment: scored \(r.scores.count) examples with \(t.scoreName) (to break ties)")
        }
        if plan.noise > 0 { try writeNoiseSimilarity() }

        var results = try ExperimentResults(contentsOf: resultsURL)
        let cells = plan.cells
        let wanted = Set(cells.map(\.key))
        results.rows.removeAll { !wanted.contains($0.cell.key) }
        var scoreFiles = try Dictionary(uniqueKeysWithValues: plan.methods.map { ($0.rawValue, try ScoreFile(url: scoreURL($0))) })
        for t in plan.tieBreaks where scoreFiles[t.key] == nil { scoreFiles[t.key] = try ScoreFile(url: tieBreakURL(t), column: t.column ?? "score") }
        // A score file found on resuming must score every training example once: a subset of another size would
        // be written under this keep.
        let trainLines = Set(trainEnc.lines)
        for (_, f) in scoreFiles.sorted(by: { $0.key < $1.key }) where f.lines.count != trainEnc.count || Set(f.lines) != trainLines {
            throw WinnowError.invalidFile(path: f.url.path, line: nil, reason:
                "scores \(f.lines.count) example(s), not the \(trainEnc.count) of the training file \(trainURL.path) once each: delete it and rerun to score again")
        }
        let indexOfLine = Dictionary(uniqueKeysWithValues: trainEnc.lines.enumerated().map { ($0.element, $0.offset) })
        for (i, cell) in cells.enumerated() where results.row(for: cell) == nil {
            let start = Date()
            let kept = try chosen(cell, trainEnc: trainEnc, scores: scoreFiles, indexOfLine: indexOfLine)
            let model: any SequenceClassifier
            if cell.isFull && cell.seed == 0 && plan.scoringEpochs == plan.training.epochs {
                model = try ModelLoader.classifier(folder: fullRunURL)      // the scoring run is this retraining
            } else {
                model = try retrain(cell, data: trainEnc.subset(kept))
            }
            let (pred, _) = try model.predict(testEnc, batchSize: plan.scoreBatchSize)
            let m = ClassificationMetrics(labels: testEnc.labels, predictions: pred, classes: labels.count)
            let check = LearningCheck(labels: testEnc.labels, predictions: pred, labelNames: labels)
            if check.learnedNothing {
                try markLearnedNothing(cell.key)
                say("experiment: retraining \(cell.name) learned nothing: it \(check.description)")
            }
            results.rows.append(.init(cell: cell, accuracy: m.accuracy, macroF1: m.macroF1, trainExamples: kept.count))
            let order = Dictionary(uniqueKeysWithValues: cells.enumerated().map { ($0.element.key, $0.offset) })
            results.rows.sort { order[$0.cell.key]! < order[$1.cell.key]! }
            try results.write(to: resultsURL)
            say(String(format: "[%d/%d] %@ %@ %@ %@ keep %@ seed %d: %d examples, accuracy %.2f%%, macro-F1 %.2f%% (%.0f s)",
                       i + 1, cells.count, cell.method, cell.normalize, cell.select, cell.sampling, ExperimentPlan.format(cell.keep),
                       cell.seed, kept.count, 100 * m.accuracy, 100 * m.macroF1, Date().timeIntervalSince(start)))
        }
        return results
    }

    /// The learning check of `model` on `data` (predictions in inference mode).
    func learningCheck(_ model: any SequenceClassifier, on data: EncodedDataset) throws -> LearningCheck {
        let (pred, _) = try model.predict(data, batchSize: plan.scoreBatchSize)
        return LearningCheck(labels: data.labels, predictions: pred, labelNames: model.labelNames)
    }

    /// Why the last run stopped early (the scoring run learned nothing), when it did.
    public var stoppedURL: URL { dir.appendingPathComponent("stopped.txt") }

    /// Keys in `learned-nothing.txt`.
    public var learnedNothingKeys: Set<String> {
        guard let text = try? String(contentsOf: learnedNothingURL, encoding: .utf8) else { return [] }
        return Set(text.textLines().map(String.init))
    }

    func markLearnedNothing(_ key: String) throws {
        var keys = learnedNothingKeys
        guard !keys.contains(key) else { return }
        keys.insert(key)
        var out = TextFileBuilder()
        for k in keys.sorted() { out.append(k) }
        try out.write(to: learnedNothingURL)
    }

    /// Training-set indices kept by a cell, ascending.
    func chosen(_ cell: ExperimentPlan.Cell, trainEnc: EncodedDataset, scores: [String: ScoreFile], indexOfLine: [Int: Int]) throws -> [Int] {
        if cell.isFull { return Array(0..<trainEnc.count) }
        var o = SelectionOptions(keep: cell.keep)
        o.seed = UInt64(cell.seed)
        o.temperature = plan.temperature
        o.beta = plan.beta
        o.perLabel = plan.perLabel ?? false
        if cell.isRandom {
            o.preference = .random
            let labels = trainEnc.labels.map { trainEnc.labelNames[Int($0)] }
            return try Selector.choose(scores: [Double](repeating: 0, count: trainEnc.count), labels: labels, options: o)
        }
        // `forgetting+cartography.variability-hard`: the score, then the second score (a column of its file after `.`) and the end it prefers among ties.
        let parts = cell.method.split(separator: "+", maxSplits: 1).map(String.init)
        let tie = parts.count > 1 ? parts[1].lastIndex(of: "-").map { (String(parts[1][..<$0]), String(parts[1][parts[1].index(after: $0)...])) } : nil
        guard var sf = scores[parts[0]] else {
            throw WinnowError.missingFile(path: scoresURL.appendingPathComponent("\(parts[0]).csv").path, reason: "no scores")
        }
        guard let preference = SelectionOptions.Preference(rawValue: cell.select),
              let sampling = SelectionOptions.Sampling(rawValue: cell.sampling),
              let normalization = Normalization(rawValue: cell.normalize),
              parts.count == 1 || tie.flatMap({ SelectionOptions.Preference(rawValue: $0.1) }) != nil else {
            throw WinnowError.invalidFile(path: planURL.path, line: nil, reason: "retraining \(cell.key) names an unknown selection")
        }
        let ranks: [SelectionOptions.Preference] = [.hard, .easy]
        guard !(preference == .moderate && sampling == .stratified),
              tie == nil || (ranks.contains(preference) && tie.flatMap({ SelectionOptions.Preference(rawValue: $0.1) }).map(ranks.contains) == true) else {
            throw WinnowError.invalidFile(path: planURL.path, line: nil, reason: "retraining \(cell.key): moderate takes no stratified sampling, and a tie-break goes with hard or easy")
        }
        if let (name, select) = tie {
            guard let second = scores[name] else {
                // `cartography.variability` reads a column of scores/cartography.csv.
                let stem = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
                throw WinnowError.missingFile(path: scoresURL.appendingPathComponent("\(stem).csv").path, reason: "no scores")
            }
            sf = try sf.thenBy(second, select: preference, then: SelectionOptions.Preference(rawValue: select)!)
        }
        o.preference = preference
        o.sampling = sampling
        o.normalization = normalization
        let picked = try Selector.choose(scores: sf.scores, labels: sf.labels, options: o)
        var idx: [Int] = []
        for p in picked {
            guard let i = indexOfLine[sf.lines[p]] else {
                throw WinnowError.invalidFile(path: sf.url.path, line: p + 2, reason: "scores line \(sf.lines[p]), which is not a training example")
            }
            idx.append(i)
        }
        return idx.sorted()
    }

    /// Trains a cell's subset from the shared initialisation; writes the subset file and the loss curve.
    func retrain(_ cell: ExperimentPlan.Cell, data: EncodedDataset) throws -> any SequenceClassifier {
        let fm = FileManager.default
        if !cell.isFull {
            let subsets = dir.appendingPathComponent("subsets")
            try fm.createDirectory(at: subsets, withIntermediateDirectories: true)
            let file = try LineFile(url: trainURL)
            try AtomicFile.write(file.lines(data.lines), to: subsets.appendingPathComponent(cell.name + ".jsonl"))
        }
        let runs = dir.appendingPathComponent("runs")
        let runURL = runs.appendingPathComponent(cell.name)
        if fm.fileExists(atPath: runURL.path) { try fm.removeItem(at: runURL) }
        let model = try ModelLoader.classifier(folder: initURL)
        var o = plan.training
        o.seed = UInt64(cell.seed); o.checkpoints = nil; o.checkpointPerEpoch = false; o.recordDynamics = false
        o.maxLength = plan.maxLength
        try Trainer(options: o).train(model, on: data, run: runURL, extraFiles: initFiles,
                                      runInfo: ["data": trainURL.path, "subset": cell.name], reporter: reporter)
        let curves = dir.appendingPathComponent("curves")
        try fm.createDirectory(at: curves, withIntermediateDirectories: true)
        try AtomicFile.write(Data(contentsOf: runURL.appendingPathComponent("trainer_state.json")),
                             to: curves.appendingPathComponent(cell.name + ".json"))
        if !keepRuns { try fm.removeItem(at: runURL) }
        return model
    }

    /// The checkpoints the scoring run really saves: fewer than `scoreCheckpoints` when the run has fewer steps.
    func scoringCheckpointCount(examples n: Int) -> Int {
        var o = plan.training
        o.checkpoints = plan.scoreCheckpoints; o.checkpointPerEpoch = false
        o.epochs = plan.scoringEpochs
        let t = Trainer(options: o), spe = t.stepsPerEpoch(n)
        return t.checkpointSteps(totalSteps: spe * o.epochs, stepsPerEpoch: spe).count
    }

    /// Trains `url` from the initialisation unless a finished run (trainer_state.json at its root) is there.
    func trainIfNeeded(_ url: URL, data: EncodedDataset, seed: Int, scoring: Bool, label: String) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("trainer_state.json").path) { return }
        if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
        say("experiment: training the \(label)")
        let model = try ModelLoader.classifier(folder: initURL)
        var o = plan.training
        o.seed = UInt64(seed); o.maxLength = plan.maxLength
        o.checkpoints = scoring ? plan.scoreCheckpoints : nil
        if scoring { o.epochs = plan.scoringEpochs }
        o.checkpointPerEpoch = false
        o.recordDynamics = scoring
        o.null = !scoring
        let tmp = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial")
        if fm.fileExists(atPath: tmp.path) { try fm.removeItem(at: tmp) }
        try Trainer(options: o).train(model, on: data, run: tmp, extraFiles: initFiles,
                                      runInfo: ["data": trainURL.path].merging(FileFingerprint.isRegularFile(trainURL)
                                          ? [FileFingerprint.runInfoKey: try FileFingerprint.fnv1a64(trainURL)] : [:]) { a, _ in a },
                                      reporter: reporter)
        try fm.moveItem(at: tmp, to: url)
    }

    /// Tokenizer files of the initialisation, copied into every run.
    var initFiles: [URL] {
        ["vocab.txt", "tokenizer.json", "tokenizer_config.json"].map { initURL.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The one initialisation every run starts from (DIR/init: config.json, model.safetensors, vocab.txt).
    /// `DIR/data.json`: the size and a 64-bit FNV-1a digest of the training and test files, so that resuming
    /// refuses files changed since the experiment started.
    var dataFilesURL: URL { dir.appendingPathComponent("data.json") }

    func dataFileStamps() throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for (key, path) in [("train", plan.train), ("test", plan.test)] {
            let url = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: path) else {
                throw WinnowError.missingFile(path: path, reason: "the \(key) file of the experiment in \(dir.path) is gone (moved or deleted)")
            }
            let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            out[key] = ["path": path, "bytes": String(bytes), "fnv1a64": try Self.stampHash(url)]
        }
        return out
    }

    /// Why the report cannot read the training file as the experiment saw it (gone, or changed since data.json
    /// recorded it), or nil when it can. The noisy copy inside the folder is the experiment's own.
    /// `original`: the check of `plan.train` itself, also when labels were flipped (the report compares annotators
    /// with its labels).
    func trainingFileProblem(original: Bool = false) throws -> String? {
        if !original && plan.noise > 0 && FileManager.default.fileExists(atPath: noisyTrainURL.path) { return nil }
        guard FileManager.default.fileExists(atPath: plan.train) else { return "The training file \(plan.train) is gone" }
        guard FileManager.default.fileExists(atPath: dataFilesURL.path) else { return nil }
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: dataFilesURL)) as? [String: [String: String]] ?? [:]
        guard let stamp = saved["train"] else { return nil }
        let url = URL(fileURLWithPath: plan.train)
        let bytes = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? -1
        let hash = try Self.stampHash(url)
        if stamp["bytes"] != String(bytes) || stamp["fnv1a64"] != hash {
            return "The training file \(plan.train) changed since the experiment ran (size or contents differ from data.json)"
        }
        return nil
    }

    /// data.json's form of a file's FNV-1a fingerprint: hexadecimal without leading zeros.
    static func stampHash(_ url: URL) throws -> String {
        String(UInt64(try FileFingerprint.fnv1a64(url), radix: 16) ?? 0, radix: 16)
    }

    func writeDataFiles() throws {
        try AtomicFile.write(JSONSerialization.data(withJSONObject: try dataFileStamps(), options: [.prettyPrinted, .sortedKeys]), to: dataFilesURL)
    }

    /// Refuses to resume when the training or test file differs from the one the experiment started with (an
    /// experiment folder without data.json is taken as it is).
    func checkDataFiles() throws {
        guard FileManager.default.fileExists(atPath: dataFilesURL.path) else { return }
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: dataFilesURL)) as? [String: [String: String]] ?? [:]
        let now = try dataFileStamps()
        for key in ["train", "test"] where saved[key] != nil && saved[key] != now[key] {
            throw WinnowError.invalidOption(name: "dir", reason:
                "the \(key) file \(now[key]!["path"]!) changed since \(dir.path) started (size or contents differ from data.json); "
                + "give another --out, or delete it to start over")
        }
    }

    func makeInitialisation(labels: [String]) throws -> any SequenceClassifier {
        let fm = FileManager.default
        if fm.fileExists(atPath: initURL.appendingPathComponent("model.safetensors").path),
           ["vocab.txt", "tokenizer.json"].contains(where: { fm.fileExists(atPath: initURL.appendingPathComponent($0).path) }) {
            return try ModelLoader.classifier(folder: initURL)
        }
        let model = try plan.model.makeModel(labels: labels, maxLength: plan.maxLength, seed: plan.initSeed)
        let tmp = dir.appendingPathComponent(".init.partial")
        if fm.fileExists(atPath: tmp.path) { try fm.removeItem(at: tmp) }
        try model.save(to: tmp)
        for f in plan.model.extraFiles { try AtomicFile.write(Data(contentsOf: f), to: tmp.appendingPathComponent(f.lastPathComponent)) }
        if fm.fileExists(atPath: initURL.path) { try fm.removeItem(at: initURL) }
        try fm.moveItem(at: tmp, to: initURL)
        return model
    }
}
