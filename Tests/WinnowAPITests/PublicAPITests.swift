import Foundation
import Testing
import Winnow

// The library as a program that embeds it sees it: plain `import Winnow`, public declarations only.

enum Fixture {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tinyBert = repo.appendingPathComponent("Tests/Fixtures/tiny-bert")
    static let run = tinyBert.appendingPathComponent("run")
    static let train = tinyBert.appendingPathComponent("train.jsonl")

    static func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("winnow-api-\(name)-\(UUID().uuidString.prefix(8))")
    }
}

/// Records what the library reports.
final class RecordingReporter: ProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var tasks: [String] = []
    private(set) var notes: [String] = []
    private(set) var units = 0

    final class Task: ProgressTask, @unchecked Sendable {
        let owner: RecordingReporter
        init(_ owner: RecordingReporter) { self.owner = owner }
        func advance(by n: Int, note: String) { owner.lock.lock(); owner.units += n; owner.lock.unlock() }
        func finish(note: String) {}
    }

    func start(_ label: String, total: Int, unit: String) -> any ProgressTask {
        lock.lock(); tasks.append(label); lock.unlock()
        return Task(self)
    }

    func note(_ message: String) { lock.lock(); notes.append(message); lock.unlock() }
}

@Suite struct PublicAPITests {
    @Test func scoreWriteAndPruneThroughThePublicAPI() throws {
        var o = ScoreOptions()
        o.maxLength = 32
        let r = try Scorer.score(.el2n, run: Fixture.run, data: Fixture.train, options: o)
        #expect(r.method == .el2n)
        #expect(r.scores.count == 150 && r.table.lines.count == 150)
        #expect(r.scores.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 2.0.squareRoot() })
        // One label per score, as the data file writes it; the table's labelNames are the classes.
        let gold = try JSONLDataset(url: Fixture.train).examples.map(\.label)
        #expect(r.exampleLabels == gold.map { $0 ?? "" } && Set(r.exampleLabels) == Set(r.table.labelNames))
        let csv = Fixture.temporary("el2n.csv")
        let kept = Fixture.temporary("kept.jsonl")
        defer { try? FileManager.default.removeItem(at: csv); try? FileManager.default.removeItem(at: kept) }
        try ScoreWriter.write(r, format: .csv, to: csv)
        var selection = SelectionOptions(keep: 0.5)
        selection.preference = .easy
        let summary = try Pruning.prune(data: Fixture.train, scoreFile: ScoreFile(url: csv), options: selection, to: kept)
        #expect(summary.keptLines.count == 75 && summary.budget == 75 && summary.scored == 150)
        // The kept lines are the data file's lines, verbatim and in order, and are the lowest scores.
        let lines = try String(contentsOf: Fixture.train, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let written = try String(contentsOf: kept, encoding: .utf8).split(separator: "\n")
        #expect(written == summary.keptLines.map { lines[$0 - 1] })
        let threshold = r.scores.sorted()[74]
        for line in summary.keptLines { #expect(r.scores[r.table.lines.firstIndex(of: line)!] <= threshold) }
    }

    @Test func classMixShiftsNameTheLabelsWhoseShareMoved() {
        let s = Pruning.Summary(keptLines: [], scored: 300, budget: 100, before: ["a": 100, "b": 100, "c": 100],
                                after: ["a": 55, "b": 30, "c": 15])
        let shifts = s.classMixShifts()   // a: 1/3 -> 0.55 (x1.65), b: 1/3 -> 0.3 (x0.9), c: 1/3 -> 0.15 (x0.45)
        #expect(shifts.map(\.label) == ["a", "c"])
        #expect(abs(shifts[0].before - 1.0 / 3) < 1e-12 && abs(shifts[0].after - 0.55) < 1e-12)
        #expect(abs(shifts[1].after - 0.15) < 1e-12)
        // A label with nothing kept is a shift; an even subset or a single label is not.
        #expect(Pruning.Summary(keptLines: [], scored: 4, budget: 2, before: ["a": 2, "b": 2], after: ["a": 2]).classMixShifts().map(\.label) == ["a", "b"])
        #expect(Pruning.Summary(keptLines: [], scored: 4, budget: 2, before: ["a": 2, "b": 2], after: ["a": 1, "b": 1]).classMixShifts().isEmpty)
        #expect(Pruning.Summary(keptLines: [], scored: 4, budget: 2, before: ["": 4], after: ["": 2]).classMixShifts().isEmpty)
    }

    @Test func aScoresFileWithWindowsLineBreaksReads() throws {
        let url = Fixture.temporary("crlf").appendingPathExtension("csv")
        defer { try? FileManager.default.removeItem(at: url) }
        try "index,line,id,label,score\r\n0,1,,pos,0.5\r\n1,3,,neg,-1.25\r\n".write(to: url, atomically: true, encoding: .utf8)
        let f = try ScoreFile(url: url)
        #expect(f.lines == [1, 3] && f.labels == ["pos", "neg"] && f.scores == [0.5, -1.25])
        // A header without the columns is named in one short line, not dumped whole.
        try ("a,b\n" + String(repeating: "1,2\n", count: 500)).replacingOccurrences(of: "a,b", with: String(repeating: "x", count: 200))
            .write(to: url, atomically: true, encoding: .utf8)
        #expect { try ScoreFile(url: url) } throws: { e in
            let d = "\(e)"
            return d.contains(":1: the header needs 'line' and 'score' columns") && d.count < 250 && !d.contains("\n")
        }
    }

    @Test func aLargeFileStreamsInChunksAsTheDatasetReadsIt() throws {
        let whole = try JSONLDataset(url: Fixture.train)
        var reader = try JSONLReader(url: Fixture.train)
        var lines: [Int] = [], labels: [String?] = [], chunks = 0
        while let chunk = try reader.next(upTo: 7) {
            #expect(chunk.count <= 7)
            chunks += 1
            lines += chunk.map(\.line); labels += chunk.map(\.label)
        }
        #expect(lines == whole.examples.map(\.line) && labels == whole.examples.map(\.label))
        #expect(chunks == (whole.examples.count + 6) / 7 && reader.bytesRead == reader.fileSize && reader.fields.label == "label")
        // A bad line is named when its chunk is read, after the good chunks before it.
        let url = Fixture.temporary("stream").appendingPathExtension("jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n{\"text\": 3, \"label\": \"x\"}\n".write(to: url, atomically: true, encoding: .utf8)
        var bad = try JSONLReader(url: url)
        #expect(try bad.next(upTo: 2)?.count == 2)
        #expect { _ = try bad.next(upTo: 2) } throws: { "\($0)".contains("stream") && "\($0)".contains(":3:") }
    }

    @Test func theLibraryReportsOnlyToTheReporterItIsGiven() throws {
        let reporter = RecordingReporter()
        var o = ScoreOptions()
        o.maxLength = 32
        o.reporter = reporter
        _ = try Scorer.score(.grand, run: Fixture.run, data: Fixture.train, options: o)
        #expect(reporter.tasks == ["grand"])
        #expect(reporter.notes.contains { $0.hasPrefix("score grand: 4 checkpoint(s)") })
        #expect(reporter.units > 0)
    }

    @Test func modelsLoadByFamilyAndPredict() throws {
        let model = try ModelLoader.classifier(folder: Fixture.run)
        let tokenizer = try Tokenizers.load(folder: Fixture.run)
        let data = try EncodedDataset(JSONLDataset(url: Fixture.train), tokenizer: tokenizer, labels: model.labelNames, maxLength: 32)
        let (predicted, probabilities) = try model.predict(data)
        #expect(predicted.count == 150 && probabilities.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-5 })
        let accuracy = ClassificationMetrics(labels: data.labels, predictions: predicted, classes: model.numLabels).accuracy
        #expect(accuracy > 0.6, "the fixture run learned its training data: accuracy \(accuracy)")
        #expect(model.dimensions.layers == model.parameterLayout.layerPrefixes.count)
        let last = try ParameterSelection(.lastLayer, layout: model.parameterLayout)
        #expect(!last.names.isEmpty && last.names.allSatisfy { $0.hasPrefix(model.parameterLayout.layerPrefixes.last!) })
    }

    @Test(arguments: ["all", "first", "last", "25,last", "first,50"])
    func checkpointSelectionsRoundTrip(_ text: String) throws {
        let selection = try #require(CheckpointSelection(parsing: text))
        #expect(selection.description == text)
        let chosen = try RunFolder(url: Fixture.run).select(selection)
        #expect(!chosen.isEmpty)
    }

    @Test func badSelectionsAreRefusedInLibraryTerms() throws {
        #expect(CheckpointSelection(parsing: "1,a") == nil)
        #expect(ParameterSelection.Spec(parsing: "") == nil)
        let model = try ModelLoader.classifier(folder: Fixture.run)
        #expect(throws: WinnowError.self) { try ParameterSelection(.prefixes(["nope."]), layout: model.parameterLayout) }
        do {
            _ = try RunFolder(url: Fixture.run).select(.list([.step(999)]))
            Issue.record("a missing step was accepted")
        } catch let WinnowError.invalidOption(name, reason) {
            #expect(name == "checkpoints" && reason.contains("checkpoint-999"))
        }
    }

    @Test func everyScoreMethodHasADefinitionAndRoundTrips() {
        for m in ScoreMethod.allCases {
            #expect(ScoreMethod(rawValue: m.rawValue) == m)
            #expect(!m.definition.isEmpty)
        }
        #expect(ScoreMethod.allCases.filter(\.readsDynamics) == [.forgetting, .cartography, .aum])
    }
}

@Suite struct LearningCheckTests {
    @Test func oneClassOrMajorityAccuracyIsLearningNothing() {
        let y: [Int32] = [0, 0, 0, 1, 1, 0, 0, 1, 0, 0]        // majority rate 0.7
        let allZero = LearningCheck(labels: y, predictions: [Int32](repeating: 0, count: 10), labelNames: ["a", "b"])
        #expect(allZero.learnedNothing && allZero.dominantClass == "a" && allZero.dominantShare == 1 && allZero.majorityRate == 0.7)
        let good = LearningCheck(labels: y, predictions: y, labelNames: ["a", "b"])
        #expect(!good.learnedNothing && good.accuracy == 1)
        // Mixed predictions no better than always answering "a": accuracy 0.7 <= 0.7 + 0.01.
        let chance = LearningCheck(labels: y, predictions: [0, 1, 0, 1, 0, 0, 1, 1, 0, 0], labelNames: ["a", "b"])
        #expect(chance.dominantShare < 0.95 && chance.accuracy <= 0.71 && chance.learnedNothing)
        #expect(allZero.description.contains("predicts 'a' for 100.0%"))
    }

    /// When one label is 95 % of the held-out examples (or there are none), a perfect model and a one-class one look
    /// alike: nothing is flagged, and the description says the check cannot tell.
    @Test func aHeldOutSetOfOneLabelCannotTell() {
        let skewed = [Int32](repeating: 0, count: 20) + [1]
        let perfect = LearningCheck(labels: skewed, predictions: skewed, labelNames: ["neg", "pos"])
        #expect(!perfect.canTell && !perfect.learnedNothing && perfect.description.contains("cannot tell: one label is 95.2%"))
        let none = LearningCheck(labels: [-1, -1], predictions: [0, 1], labelNames: ["neg", "pos"])
        #expect(none.examples == 0 && !none.canTell && !none.learnedNothing)
        let balanced = LearningCheck(labels: [0, 1, 0, 1], predictions: [0, 0, 0, 0], labelNames: ["neg", "pos"])
        #expect(balanced.canTell && balanced.learnedNothing)
    }

    /// A prediction reads one checkpoint: `all` or a list of several is refused, not read as its last.
    @Test func predictionOptionsNameOneCheckpoint() throws {
        var o = PredictOptions()
        for c in [CheckpointSelection.all, CheckpointSelection(parsing: "25,50")!] {
            o.checkpoint = c
            #expect(throws: WinnowError.self) { try o.validate() }
        }
        for c in [CheckpointSelection.last, .first, CheckpointSelection(parsing: "25")!] {
            o.checkpoint = c
            try o.validate()
        }
    }
}

/// Bad options and inputs a program passes to the library throw a `WinnowError` naming the property,
/// instead of trapping, and what the library documents for each entry point holds.
@Suite struct LibraryInputTests {
    func names(_ name: String) -> @Sendable (any Error) -> Bool {
        { e in if case let .invalidOption(n, _)? = e as? WinnowError { n == name } else { false } }
    }

    @Test func scoreAndTrainingOptionsAreCheckedAtEveryEntryPoint() throws {
        let bad: [(String, (inout ScoreOptions) -> Void)] = [
            ("batchSize", { $0.batchSize = 0 }), ("maxLength", { $0.maxLength = 2 }), ("projectDim", { $0.projectDim = -3 }),
            ("learningRate", { $0.learningRate = 0 }), ("memoryLimit", { $0.memoryLimit = 0 }),
        ]
        let parts = Fixture.temporary("parts")
        defer { try? FileManager.default.removeItem(at: parts) }
        for (name, change) in bad {
            var o = ScoreOptions()
            change(&o)
            #expect(performing: { try o.validate() }, throws: names(name))
            #expect(performing: { try Scorer.score(.el2n, run: Fixture.run, data: Fixture.train, options: o) }, throws: names(name))
            #expect(performing: { try ScoringRun(run: Fixture.run, data: Fixture.train, options: o) }, throws: names(name))
            #expect(performing: { try ScoreParts.score(.grand, run: Fixture.run, data: Fixture.train, options: o, parts: parts, resume: false) },
                    throws: names(name))
        }
        #expect(performing: { try ScoreParts.score(.el2n, run: Fixture.run, data: Fixture.train, options: ScoreOptions(), parts: parts, resume: false, partSize: 0) },
                throws: names("partSize"))
        var gradientBF16 = ScoreOptions()
        gradientBF16.precision = .bf16
        let sr = try ScoringRun(run: Fixture.run, data: Fixture.train, options: gradientBF16)
        #expect(performing: { try GraNd.score(sr) }, throws: names("precision"))
        let trainingBad: [(String, (inout TrainingOptions) -> Void)] = [
            ("epochs", { $0.epochs = 0 }), ("batchSize", { $0.batchSize = 0 }), ("learningRate", { $0.learningRate = .nan }),
            ("warmupRatio", { $0.warmupRatio = 2 }), ("maxGradNorm", { $0.maxGradNorm = 0 }), ("momentum", { $0.momentum = -1 }),
        ]
        let model = try ModelLoader.classifier(folder: Fixture.run) as! BertClassifier
        let tokenizer = try Tokenizers.load(folder: Fixture.run)
        let data = try EncodedDataset(JSONLDataset(url: Fixture.train), tokenizer: tokenizer, labels: model.labelNames, maxLength: 32)
        let run = Fixture.temporary("train")
        defer { try? FileManager.default.removeItem(at: run) }
        for (name, change) in trainingBad {
            var o = TrainingOptions()
            change(&o)
            #expect(performing: { try Trainer(options: o).train(model, on: data, run: run) }, throws: names(name))
            #expect(!FileManager.default.fileExists(atPath: run.path), "\(name): a refused run left files")
        }
        var p = PretrainOptions()
        p.steps = 0
        #expect(performing: { try p.validate() }, throws: names("steps"))
    }

    @Test func predictorPredictsAFileAsTheCLIDoes() throws {
        let model = try ModelLoader.classifier(folder: Fixture.run)
        let tokenizer = try Tokenizers.load(folder: Fixture.run)
        let data = try EncodedDataset(JSONLDataset(url: Fixture.train), tokenizer: tokenizer, labels: model.labelNames, maxLength: 32)
        let (expected, _) = try model.predict(data)
        var o = PredictOptions()
        o.maxLength = 32
        let p = try Predictor.predict(run: Fixture.run, data: Fixture.train, options: o)
        #expect(p.predictions == expected && p.labels == data.labels && p.lines == data.lines && p.total == 150)
        o.shard = try Shard(index: 1, count: 3)
        let s = try Predictor.predict(run: Fixture.run, data: Fixture.train, options: o)
        #expect(s.indexOffset == 50 && s.predictions == Array(expected[50..<100]))
        // An unknown gold label is predicted with an empty label and a note; evaluation refuses it.
        let file = Fixture.temporary("unknown.jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("{\"text\": \"a good film\", \"label\": \"maybe\"}\n".utf8).write(to: file)
        let reporter = RecordingReporter()
        o.shard = nil
        o.reporter = reporter
        let u = try Predictor.predict(run: Fixture.run, data: file, options: o)
        #expect(u.labels == [-1] && reporter.notes.contains { $0.contains("label(s) maybe") })
        o.requireLabels = true
        #expect(throws: WinnowError.self) { try Predictor.predict(run: Fixture.run, data: file, options: o) }
        o.batchSize = 0
        #expect(performing: { try Predictor.predict(run: Fixture.run, data: Fixture.train, options: o) }, throws: names("batchSize"))
    }

    @Test func loraSettingsAreCheckedForTheFamily() throws {
        let decoder = try LlamaForCausalLM(folder: Fixture.repo.appendingPathComponent("Tests/Fixtures/decoder/tied"))
        #expect(performing: { try decoder.addLoRA(LoRAConfig(rank: 0, alpha: 1, targets: [.q]), seed: 0) }, throws: names("rank"))
        #expect(performing: { try decoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, targets: [.query]), seed: 0) }, throws: names("targets"))
        #expect(performing: { try decoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, dropout: 1, targets: [.q]), seed: 0) }, throws: names("dropout"))
        try decoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), seed: 0)
        #expect(performing: { try decoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, targets: [.q]), seed: 0) }, throws: names("lora"))
        let encoder = try ModelLoader.classifier(folder: Fixture.run) as! BertClassifier
        #expect(performing: { try encoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, targets: [.q]), seed: 0) }, throws: names("targets"))
        // An adapter saved through the library names the folder its base was read from.
        try encoder.addLoRA(LoRAConfig(rank: 2, alpha: 4, targets: [.query, .value]), seed: 0)
        let adapter = Fixture.temporary("adapter")
        defer { try? FileManager.default.removeItem(at: adapter) }
        try encoder.save(to: adapter)
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: adapter.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect(written?["base_model_name_or_path"] as? String == Fixture.run.standardizedFileURL.path)
        #expect(try ModelLoader.classifier(folder: adapter).labelNames == encoder.labelNames)
        // A decoder folder opens as a language model of its own family, causal only.
        let folder = Fixture.repo.appendingPathComponent("Tests/Fixtures/decoder/tied")
        #expect(try ModelLoader.languageModel(folder: folder) is LlamaForCausalLM)
        #expect(performing: { try ModelLoader.languageModel(folder: folder, objective: .mlm) }, throws: names("objective"))
    }

    @Test func scoringInPartsKeepsOtherFoldersAndAppliesItsPrecision() throws {
        let dir = Fixture.temporary("own")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let mine = dir.appendingPathComponent("notes.txt")
        try Data("mine".utf8).write(to: mine)
        var o = ScoreOptions()
        o.maxLength = 32
        #expect(performing: { try ScoreParts.score(.el2n, run: Fixture.run, data: Fixture.train, options: o, parts: dir, resume: false) },
                throws: names("parts"))
        #expect(FileManager.default.fileExists(atPath: mine.path), "a folder that is not a parts folder was removed")
        // Parts read by other fields are another scoring: resuming them is refused, naming the fields.
        let byFields = Fixture.temporary("fields-parts")
        defer { try? FileManager.default.removeItem(at: byFields) }
        _ = try ScoreParts.score(.el2n, run: Fixture.run, data: Fixture.train, options: o, parts: byFields, resume: false, partSize: 64)
        #expect(performing: {
            try ScoreParts.score(.el2n, run: Fixture.run, data: Fixture.train, fields: FieldNames(text: "text"), options: o, parts: byFields, resume: true, partSize: 64)
        }, throws: { e in "\(e)".contains("fields") })
        guard ArithmeticPrecision.bf16.isAvailable else { return }
        o.precision = .bf16
        let parts = Fixture.temporary("bf16-parts")
        defer { try? FileManager.default.removeItem(at: parts) }
        let inParts = try ScoreParts.score(.el2n, run: Fixture.run, data: Fixture.train, options: o, parts: parts, resume: false, partSize: 64)
        let whole = try Scorer.score(.el2n, run: Fixture.run, data: Fixture.train, options: o)
        o.precision = .f32
        let f32 = try Scorer.score(.el2n, run: Fixture.run, data: Fixture.train, options: o)
        #expect(inParts.scores == whole.scores, "parts scored in another precision than one pass")
        #expect(inParts.scores != f32.scores, "bf16 gave the F32 scores: the precision was not applied")
    }

    /// Mistakes an embedder can make at the public entry points throw naming the property, never trap.
    @Test func mistakesAtTheLowerEntryPointsThrowInsteadOfTrapping() throws {
        let dir = Fixture.temporary("traps")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A sequence longer than the model's 64 positions: predict throws naming maxLength.
        let model = try ModelLoader.classifier(folder: Fixture.run)
        let tokenizer = try Tokenizers.load(folder: Fixture.run)
        let long = dir.appendingPathComponent("long.jsonl")
        try Data(("{\"text\": \"" + Array(repeating: "the film", count: 60).joined(separator: " ") + "\", \"label\": \"pos\"}\n").utf8).write(to: long)
        let encoded = try EncodedDataset(JSONLDataset(url: long), tokenizer: tokenizer, labels: model.labelNames, maxLength: 200)
        #expect(performing: { try model.predict(encoded) }, throws: names("maxLength"))
        #expect(performing: { try model.predict(encoded, batchSize: 0) }, throws: names("batchSize"))
        let fits = try EncodedDataset(JSONLDataset(url: long), tokenizer: tokenizer, labels: model.labelNames, maxLength: 64)
        #expect(try model.predict(fits).predictions.count == 1)
        // Language-model windows too short to hold a token and its target.
        let corpus = dir.appendingPathComponent("corpus.txt")
        try Data("the film was good\n".utf8).write(to: corpus)
        let vocab = try BertTokenizer(vocabulary: Vocabulary(contentsOf: Fixture.tinyBert.appendingPathComponent("vocab.txt")))
        #expect(performing: { try LMCorpus(url: corpus, tokenizer: vocab, seqLen: 2) }, throws: names("seqLen"))
        #expect(performing: { try LMCorpus(url: corpus, causalTokenizer: vocab, seqLen: 1) }, throws: names("seqLen"))
        let windows = try LMCorpus(url: corpus, tokenizer: vocab, seqLen: 3).windows
        #expect(!windows.isEmpty && windows.allSatisfy { $0.count == 3 })
        // A result whose scores and table differ in length: nothing written.
        var o = ScoreOptions(); o.maxLength = 32
        var r = try Scorer.score(.el2n, run: Fixture.run, data: Fixture.train, options: o)
        r.scores.removeLast()
        let out = dir.appendingPathComponent("el2n.csv")
        for format in [ScoreWriter.Format.csv, .jsonl, .npy] {
            #expect(performing: { try ScoreWriter.write(r, format: format, to: out) }, throws: names("scores"))
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Parts that add up to fewer examples than announced: nothing written either.
        r.scores.append(0)
        for format in [ScoreWriter.Format.csv, .jsonl, .npy] {
            #expect(performing: { try ScoreWriter.write(format: format, count: r.scores.count + 1, components: r.components.map(\.0), to: out) { emit in try emit(r) } },
                    throws: names("count"))
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Influence rows of different lengths, or groups that do not match the rows.
        #expect(performing: { try TargetInfluence.aggregate([[1, 2], [3]], mode: .mean) }, throws: names("matrix"))
        #expect(performing: { try TargetInfluence.aggregate([[1, 2], [3, 4]], groups: ["a"], mode: .max) }, throws: names("groups"))
    }

    /// The train-to-test entry point as an embedder calls it (the doc comment's snippet), toward a target file.
    @Test func targetInfluenceScoresTrainingExamplesTowardATargetFile() throws {
        var o = ScoreOptions()
        o.params = .lastLayer; o.projectDim = 64; o.maxLength = 32; o.checkpoints = .last
        let test = Fixture.tinyBert.appendingPathComponent("test.jsonl")
        let toward = try TargetInfluence.scores(run: Fixture.run, train: Fixture.train, test: test, options: o, similarity: .cosine, mode: .max)
        #expect(toward.method == .tracin && toward.scores.count == 150 && toward.scores.allSatisfy(\.isFinite))
        let m = try TargetInfluence.matrix(run: Fixture.run, train: Fixture.train, test: test, options: o, similarity: .cosine)
        #expect(try toward.scores == TargetInfluence.aggregate(m.matrix, mode: .max))
        #expect(m.matrix.allSatisfy { $0.allSatisfy { abs($0) <= 1 + 1e-4 } }, "cosine similarities lie in [-1, 1] (times the learning rates)")
    }
}
