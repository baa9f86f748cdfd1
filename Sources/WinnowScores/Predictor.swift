import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// How to predict a file (the options of `winnow predict` and `winnow eval`).
public struct PredictOptions: Sendable {
    /// The checkpoint to read (nil: the run's final model): one step, first or last.
    public var checkpoint: CheckpointSelection? = nil
    /// Field names of a JSONL file (the label field names the label column of a CSV file).
    public var fields = FieldNames()
    /// Tokens per example after truncation, special tokens included; lowered to the model's positions. A
    /// Winnow run's own limit is `RunFolder(url:).trainedMaxLength` (what `winnow predict` uses without `--max-length`).
    public var maxLength = 128
    /// Examples per forward pass.
    public var batchSize = 64
    /// Every example must carry a known gold label (evaluation); otherwise lines without one, or with a
    /// label the model does not know, are predicted with an empty gold label.
    public var requireLabels = false
    /// Predict only this block of the examples.
    public var shard: Shard? = nil
    /// The base model of a PEFT adapter run whose adapter_config.json does not name a local folder.
    public var adapterBase: URL? = nil
    /// The arithmetic of the dense products (bf16 needs AVX512_BF16), on the calling thread while the prediction runs.
    public var precision: ArithmeticPrecision = .f32
    /// Where progress and notes go (nowhere by default).
    public var reporter: any ProgressReporter = .silent
    /// The progress bar's label.
    public var label = "predict"

    /// Options with the defaults given on each property.
    public init() {}

    /// Checks every value against its range.
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `batchSize` below 1, `maxLength` below 4, or a
    ///   `checkpoint` that names more than one checkpoint (`all`, a list of several).
    public func validate() throws {
        switch checkpoint {
        case nil, .first?, .last?: break
        case let .list(refs)? where refs.count == 1: break
        case let c?: throw WinnowError.invalidOption(name: "checkpoint", reason: "'\(c)' names several checkpoints; a prediction reads one: a step, first or last")
        }
        guard batchSize >= 1 else { throw WinnowError.invalidOption(name: "batchSize", reason: "must be at least 1, not \(batchSize)") }
        guard maxLength >= 4 else { throw WinnowError.invalidOption(name: "maxLength", reason: "must be at least 4, not \(maxLength)") }
    }
}

/// A classifier's predictions on the examples of a file, in file order.
public struct Predictions: Sendable {
    /// Class names; `labels` and `predictions` index into them.
    public var labelNames: [String]
    /// Gold class per example, -1 where the line has none (or one the model does not know).
    public var labels: [Int32]
    /// 1-based line of each example.
    public var lines: [Int]
    /// The `id` field per example, nil where the line has none.
    public var ids: [String?]
    /// Predicted class per example.
    public var predictions: [Int32]
    /// Class probabilities per example.
    public var probabilities: [[Float]]
    /// Position of the first example in the whole file (a shard's rows number globally).
    public var indexOffset = 0
    /// Examples in the whole file (every shard).
    public var total = 0
}

/// Predicts a data file with a classifier run: a BERT or decoder classifier (JSONL), a PEFT adapter of
/// one, or the MLP of numeric features (CSV). What `winnow predict` writes and `winnow eval` measures.
///
///     var o = PredictOptions(); o.maxLength = 64
///     let p = try Predictor.predict(run: URL(fileURLWithPath: "runs/rt"), data: URL(fileURLWithPath: "test.jsonl"), options: o)
///     let acc = ClassificationMetrics(labels: p.labels, predictions: p.predictions, classes: p.labelNames.count).accuracy
public enum Predictor {
    /// Predictions of every example of `data` (of `options.shard`'s block). Notes (skipped lines, unknown
    /// labels, a lowered `maxLength`) go to `options.reporter`.
    ///
    /// - Throws: `WinnowError.invalidOption` for bad options, a causal language model given as `run`, or
    ///   `adapterBase` with a run that is no adapter; `WinnowError` naming the file and line of a bad
    ///   example, an unknown gold label with `requireLabels`, or a missing or malformed run.
    public static func predict(run: URL, data: URL, options o: PredictOptions) throws -> Predictions {
        try o.validate()
        return try o.precision == .f32 ? predictF32(run: run, data: data, options: o) : o.precision.run { try predictF32(run: run, data: data, options: o) }
    }

    static func predictF32(run: URL, data dataURL: URL, options o: PredictOptions) throws -> Predictions {
        if o.adapterBase != nil && !ModelLoader.isAdapter(run) {
            throw WinnowError.invalidOption(name: "adapterBase", reason: "is the base model of a LoRA adapter; \(run.path) is not an adapter folder or run")
        }
        // An adapter whose config does not parse is left to the loader, which names what is wrong with it.
        let unreadableAdapter = ModelLoader.isAdapter(run) && (try? LoRAConfig(contentsOf: run.appendingPathComponent("adapter_config.json"))) == nil
        if ModelLoader.isCausalLM(run) && !unreadableAdapter {
            throw WinnowError.invalidOption(name: "run", reason:
                "\(run.path) is a causal language model, not a classifier: \(o.label) reads classifier runs (score a causal language model with `winnow score loss`)")
        }
        let runFolder = try RunFolder(url: run)
        var folder = runFolder.finalModelFolder
        if let checkpoint = o.checkpoint {
            let chosen: [RunFolder.Checkpoint]
            do { chosen = try runFolder.select(checkpoint) } catch let WinnowError.invalidOption(_, reason) {
                throw WinnowError.invalidOption(name: "checkpoint", reason: reason)
            }
            guard let ck = chosen.last else { throw WinnowError.invalidOption(name: "checkpoint", reason: "none chosen") }
            folder = ck.url
        }
        let isCSV = dataURL.pathExtension.lowercased() == "csv"
        if MLPClassifier.isMLPFolder(runFolder.finalModelFolder) {
            guard isCSV else {
                throw WinnowError.invalidFile(path: dataURL.path, line: nil, reason:
                    "is not a .csv file: \(run.path) is an MLP of numeric features, which reads a CSV with a header (label and feature columns)")
            }
            let mlp = try MLPClassifier(folder: folder)
            var data = try CSVDataset(url: dataURL, labelColumn: o.fields.label ?? "label", requireLabels: o.requireLabels)
            try mlp.checkFeatures(data)
            if data.skipped > 0 { o.reporter.note("note: skipped \(data.skipped) row(s) without a label in \(data.url.path)") }
            // As for JSONL: predictions cover every row, a label the model does not know left empty.
            let unknown = try data.assignLabels(mlp.labelNames, unknownAsNone: !o.requireLabels)
            if !unknown.isEmpty {
                o.reporter.note("note: label(s) \(unknown.prefix(5).joined(separator: ", ")) of \(data.url.path) are not the model's "
                                + "[\(mlp.labelNames.joined(separator: ", "))]; those rows are predicted with an empty gold label")
            }
            let (p, pr) = try mlp.predict(data, batchSize: o.batchSize)
            let s = o.shard?.range(of: p.count) ?? 0..<p.count
            return Predictions(labelNames: mlp.labelNames, labels: Array(data.labels[s]), lines: Array(data.lines[s]), ids: Array(data.ids[s]),
                               predictions: Array(p[s]), probabilities: Array(pr[s]), indexOffset: s.lowerBound, total: p.count)
        }
        if isCSV {
            throw WinnowError.invalidFile(path: dataURL.path, line: nil, reason:
                "is a CSV file: \(run.path) is a text classifier, which reads JSONL (a CSV of numeric features is for an MLP run)")
        }
        try Scorer.checkPairs(run: run, data: dataURL, fields: o.fields)
        // The data first: a file with nothing to evaluate is named before the model is loaded.
        let data = try JSONLDataset(url: dataURL, fields: o.fields, requireLabels: o.requireLabels, keepUnlabelled: !o.requireLabels)
        if data.skipped > 0 { o.reporter.note("note: skipped \(data.skipped) example(s) without a gold label in \(data.url.path)") }
        if let w = JSONLDataset.minusOneWarning(data.skippedMinusOne, of: data.examples.count + data.skipped, path: data.url.path) { o.reporter.note(w) }
        if o.requireLabels && data.examples.isEmpty {
            throw WinnowError.invalidFile(path: dataURL.path, line: nil, reason:
                "no example has a gold label: nothing to evaluate (`winnow predict` predicts unlabelled lines)")
        }
        let model = try ModelLoader.classifier(folder: folder, base: o.adapterBase)
        let tok = try Tokenizers.load(folder: ModelLoader.tokenizerFolder(runFolder.tokenizerFolder, base: o.adapterBase))
        var maxLength = o.maxLength
        if maxLength > model.dimensions.maxPositions {
            // Longer sequences cannot be encoded: truncate to the position table, as `winnow score` and transformers do.
            let limit = model is LlamaForSequenceClassification ? "longest sequence (max_position_embeddings)" : "max_position_embeddings"
            o.reporter.note("note: the token limit \(maxLength) (--max-length) exceeds the model's \(limit); using \(model.dimensions.maxPositions)")
            maxLength = model.dimensions.maxPositions
        }
        // Predictions cover every example: a gold label the model does not know is left empty (evaluation,
        // which needs gold labels, refuses it).
        var examples = data.examples
        if !o.requireLabels {
            let known = Set(model.labelNames)
            let unknown = Set(examples.compactMap(\.label).filter { !known.contains($0) && !(Int($0) != nil && known.contains("LABEL_" + $0)) })
            if !unknown.isEmpty {
                for i in examples.indices where examples[i].label.map({ unknown.contains($0) }) == true { examples[i].label = nil }
                o.reporter.note("note: label(s) \(unknown.sorted().prefix(5).joined(separator: ", ")) of \(data.url.path) are not the model's "
                                + "[\(model.labelNames.joined(separator: ", "))]; those examples are predicted with an empty gold label")
            }
        }
        var enc = try EncodedDataset(examples: examples, url: data.url, tokenizer: tok, labels: model.labelNames, maxLength: maxLength,
                                     modelVocabulary: model.dimensions.vocabulary)
        let total = enc.count
        let s = o.shard?.range(of: total) ?? 0..<total
        if o.shard != nil { enc = enc.subset(Array(s)) }
        let (p, pr) = try model.predict(enc, batchSize: o.batchSize, progress: o.reporter.start(o.label, total: enc.count, unit: "ex"))
        return Predictions(labelNames: model.labelNames, labels: enc.labels, lines: enc.lines, ids: enc.ids, predictions: p, probabilities: pr,
                           indexOffset: s.lowerBound, total: total)
    }
}
