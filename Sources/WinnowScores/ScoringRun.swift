import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Options shared by the scores (the flags of `winnow score`).
public struct ScoreOptions: Sendable {
    /// The checkpoints each score averages over.
    public var checkpoints: CheckpointSelection = .all
    /// The tensors of the gradient scores (GraNd, TracIn).
    public var params: ParameterSelection.Spec = .all
    /// Gradients with respect to parameters, or to the vector the head reads (`lastHidden`).
    public var space: GradientSpace = .params
    /// VoG: the label, or the class predicted by the latest chosen checkpoint (highest step).
    public var vogTarget: VoGTarget = .label
    /// Overrides every checkpoint's learning rate eta_k (TracIn); 1 gives the unweighted sum.
    public var learningRate: Double? = nil
    /// TracIn: project per-example gradients to about this many dimensions per layer (nil: exact).
    public var projectDim: Int? = nil
    /// Seed of the random projection.
    public var seed: UInt64 = 0
    /// Causal language models, `grand` and `tracin` self-influence: scale each example's score by its
    /// number of target tokens n (self-influence by n, GraNd by sqrt(n)). The gradient of a mean loss
    /// averages n token gradients, so its squared norm falls about as 1/n with length; scaled by n it
    /// estimates the squared norm of one token's gradient, and lines of any length compare. Off: the
    /// published definition, ||d loss / d theta||^2 of the mean loss.
    public var lengthNeutral = false
    /// The base model of a LoRA adapter folder given as the run (nil: the adapter's
    /// `base_model_name_or_path` when that is a local path).
    public var adapterBase: URL? = nil
    /// Examples per batch.
    public var batchSize = 32
    /// The arithmetic of the dense products: bf16 is for the forward-only scores (EL2N, loss, margin,
    /// PVI); the others refuse it. It applies to the calling thread while a scoring runs (`ArithmeticPrecision.run`);
    /// work on other threads keeps its own precision.
    public var precision: ArithmeticPrecision = .f32
    /// Tokens per example after truncation, special tokens included; `ScoringRun` lowers it to the model's
    /// maximum positions. A Winnow run's own limit is `RunFolder(url:).trainedMaxLength` (what `winnow score`
    /// uses without `--max-length`).
    public var maxLength = 128
    /// Bytes TracIn's train-to-test influence may hold for the test side's gradients; it works in blocks of
    /// test examples to stay under this bound.
    public var memoryLimit = 2 << 30
    /// Where progress and notes go (nowhere by default).
    public var reporter: any ProgressReporter = .silent
    /// Score only the used examples at these positions (a part of a resumable run, or a shard).
    public var exampleRange: Range<Int>? = nil
    /// A bar over the whole job (resumable parts), advanced by every scored batch instead of a bar per
    /// pass over the file.
    var progress: (any ProgressTask)? = nil

    /// Options with the defaults given on each property.
    public init() {}

    /// Checks every value against its range (every scoring entry point calls it first).
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `batchSize` or `memoryLimit` below 1,
    ///   `maxLength` below 4 (a BERT pair's [CLS], two [SEP] and one token of text) or above 2^20, `batchSize`
    ///   above 10^6, `projectDim` below 1,
    ///   `learningRate` not a positive finite number, or an `exampleRange` starting below 0.
    public func validate() throws {
        guard batchSize >= 1 else { throw WinnowError.invalidOption(name: "batchSize", reason: "must be at least 1, not \(batchSize)") }
        guard batchSize <= 1_000_000 else { throw WinnowError.invalidOption(name: "batchSize", reason: "\(batchSize) is more than 10^6") }
        guard maxLength <= 1 << 20 else { throw WinnowError.invalidOption(name: "maxLength", reason: "\(maxLength) is more than 2^20 tokens") }
        guard maxLength >= 4 else { throw WinnowError.invalidOption(name: "maxLength", reason: "must be at least 4, not \(maxLength)") }
        guard memoryLimit >= 1 else { throw WinnowError.invalidOption(name: "memoryLimit", reason: "must be at least 1 byte, not \(memoryLimit)") }
        if let d = projectDim, d < 1 { throw WinnowError.invalidOption(name: "projectDim", reason: "must be at least 1, not \(d)") }
        if let lr = learningRate, !(lr.isFinite && lr > 0) { throw WinnowError.invalidOption(name: "learningRate", reason: "must be a positive number, not \(lr)") }
        if let r = exampleRange, r.lowerBound < 0 { throw WinnowError.invalidOption(name: "exampleRange", reason: "must start at 0 or later, not \(r.lowerBound)") }
    }

    /// Runs `body` with the dense products in `precision` (F32 leaves the caller's setting as it is), after
    /// `validate()` and the check that `method` may use it: bf16 is for the forward-only scores.
    ///
    /// - Throws: `WinnowError.invalidOption` for bad options or bf16 with a gradient score or on a CPU
    ///   without AVX512_BF16; what `body` throws.
    func inPrecision<T>(_ method: ScoreMethod, _ body: () throws -> T) throws -> T {
        try validate()
        guard precision != .f32 else { return try body() }
        guard method.isForwardOnly else {
            throw WinnowError.invalidOption(name: "precision", reason:
                "\(precision.rawValue) is for the forward-only scores (\(ScoreMethod.allCases.filter(\.isForwardOnly).map(\.rawValue).joined(separator: ", "))); '\(method)' runs gradients in F32")
        }
        return try precision.run(body)
    }
}

/// Who the scored rows are: position, input line, id and label of every used example.
public struct ExampleTable: Sendable, Equatable {
    /// Class names; `labels` index into them.
    public var labelNames: [String]
    /// Class index per example (-1: none, written as an empty label).
    public var labels: [Int32] = []
    /// 1-based input line per example.
    public var lines: [Int] = []
    /// The `id` field per example, nil where the line has none.
    public var ids: [String?] = []
    /// Position of the first row in the whole file (a shard's outputs number rows globally).
    public var indexOffset = 0

    /// An empty table for these class names.
    public init(labelNames: [String]) { self.labelNames = labelNames }

    /// The labels, lines and ids of `d`'s examples (`indexOffset` 0).
    public init(_ d: EncodedDataset) {
        labelNames = d.labelNames
        labels = d.labels
        lines = d.lines
        ids = d.ids
    }

    /// Number of examples (rows).
    public var count: Int { labels.count }

    mutating func append(_ d: EncodedDataset) {
        labels += d.labels
        lines += d.lines
        ids += d.ids
    }
}

/// One score per used example, with named components (e.g. confidence, variability) and flags.
public struct ScoreResult: Sendable {
    /// The method that made the scores.
    public var method: ScoreMethod
    /// One score per row of `table`, in the same order; higher means harder (or more influential), as `Selector`
    /// assumes.
    public var scores: [Double]
    /// Extra columns, in order.
    public var components: [(String, [Double])] = []
    /// Human-readable notes on conventions and what was used (printed by the CLI).
    public var notes: [String] = []
    /// The scored examples.
    public var table: ExampleTable

    /// A result without components or notes.
    public init(method: ScoreMethod, scores: [Double], table: ExampleTable) {
        self.method = method
        self.scores = scores
        self.table = table
    }

    /// Scores that lie within this fraction of their largest magnitude of each other are one value: a
    /// GEMM's rounding (OpenBLAS's kernels sum a row differently by its place in the batch) moves
    /// identical examples' scores by about 1e-7 of their size.
    package static let constantTolerance = 1e-6

    /// A warning when every one of `count` (> 1) scores is the same value, to within `constantTolerance`
    /// of the largest magnitude: such scores rank nothing, and pruning by them keeps the first lines of
    /// the file. Nil otherwise.
    package static func constantWarning(count: Int, lo: Double, hi: Double) -> String? {
        guard count > 1, hi - lo <= constantTolerance * max(abs(lo), abs(hi)) else { return nil }
        let value = lo == hi ? "\(lo)" : "\(lo) to within \(constantTolerance) of its size (\(lo) to \(hi))"
        return "warning: every one of the \(count) scores is \(value): they rank nothing (a learning rate of 0 at the chosen checkpoint "
            + "gives this for tracin: --lr 1 or another checkpoint; identical examples give it for any score)"
    }

    /// A warning when every score is the same value (they rank nothing: a learning rate of 0 at the chosen
    /// checkpoint for TracIn, or identical examples), nil otherwise.
    public var constantWarning: String? {
        ScoreResult.constantWarning(count: scores.count, lo: scores.min() ?? 0, hi: scores.max() ?? 0)
    }
}

/// A run's chosen checkpoints loaded into memory, its tokenizer, and a data file that is streamed in
/// chunks: memory does not grow with the number of examples beyond the per-example outputs.
///
///     let sr = try ScoringRun(run: url, data: URL(fileURLWithPath: "train.jsonl"), options: opts)
///     let table = try sr.stream("vog") { batch in ... }      // batch.indices are global positions
public struct ScoringRun: @unchecked Sendable {
    /// The run folder being scored.
    public let run: RunFolder
    /// The checkpoints `options.checkpoints` chose, one per entry of `models`.
    public let checkpoints: [RunFolder.Checkpoint]
    /// The classifiers of `checkpoints`, in the same order; all have the same labels.
    public let models: [any SequenceClassifier]
    /// The smallest embedding table of `models` (`vocab_size`): token ids run below it.
    public var modelVocabulary: Int { models.map(\.dimensions.vocabulary).min() ?? 0 }
    /// The run's tokenizer (from `run.tokenizerFolder`).
    public let tokenizer: any TextTokenizer
    /// The JSONL data file `stream` reads.
    public let dataURL: URL
    /// Field names for reading `dataURL` (nil ones are detected from its first line).
    public let fields: FieldNames
    /// Encode every input as the empty text (the PVI null model's inputs).
    public let nullInputs: Bool
    /// The options, with `maxLength` capped at the models' maximum positions.
    public var options: ScoreOptions
    /// Examples tokenized per chunk of the stream.
    package var chunkSize = 4096
    /// Reader positions at example indices where a ranged stream stopped, so the next range (the next
    /// resumable part) starts there instead of re-reading the file from its start.
    private let positions = PositionCache()

    /// Loads the checkpoints `options.checkpoints` selects and the run's tokenizer; `data` is only read by `stream`.
    /// `null` encodes every input as the empty text (the PVI null model's inputs).
    ///
    /// - Throws: `WinnowError` when the run has no checkpoints or lacks a listed step, a checkpoint or the tokenizer
    ///   is missing or malformed, or the checkpoints' labels differ.
    public init(run url: URL, data: URL, fields: FieldNames = FieldNames(), options: ScoreOptions, null: Bool = false) throws {
        try options.validate()
        if data.pathExtension.lowercased() == "csv" {
            throw WinnowError.invalidFile(path: data.path, line: nil, reason:
                "is a CSV file: \(url.path) is a text classifier, which reads JSONL (a CSV of numeric features is for an MLP run)")
        }
        guard !options.lengthNeutral else { throw ScoringRun.lengthNeutralRefused(url) }
        run = try RunFolder(url: url)
        try Scorer.checkPairs(run: url, data: data, fields: fields)
        // A model folder (a classifier, or a PEFT adapter of one) without checkpoints is one model, eta 1 (or --lr):
        // all, first and last are that model; listed steps name checkpoints it does not have.
        if run.checkpoints.isEmpty && run.holdsModel {
            if case .list = options.checkpoints { throw ScoringRun.oneModelRefused(url, options.checkpoints) }
            checkpoints = [RunFolder.Checkpoint(step: 0, url: url)]
        } else {
            checkpoints = try run.select(options.checkpoints)
        }
        models = try checkpoints.map { try ModelLoader.classifier(folder: $0.url, base: options.adapterBase) }
        tokenizer = try Tokenizers.load(folder: ModelLoader.tokenizerFolder(run.tokenizerFolder, base: options.adapterBase))
        let labels = models[0].labelNames
        for (m, ck) in zip(models, checkpoints) where m.labelNames != labels {
            throw WinnowError.invalidFile(path: ck.url.appendingPathComponent("config.json").path, line: nil,
                                          reason: "labels \(m.labelNames) differ from the first checkpoint's \(labels)")
        }
        dataURL = data
        self.fields = fields
        nullInputs = null
        var o = options
        let limit = models[0].dimensions.maxPositions
        if o.maxLength > limit {
            // Sequences longer than the position table cannot be encoded; truncate to it, as transformers does.
            o.reporter.note("note: the token limit \(o.maxLength) (--max-length) exceeds the model's max_position_embeddings; using \(limit)")
            o.maxLength = limit
        }
        self.options = o
    }

    /// Listed checkpoints asked of a folder that is one model.
    static func oneModelRefused(_ url: URL, _ c: CheckpointSelection) -> WinnowError {
        .invalidOption(name: "checkpoints", reason: "\(url.path) is one model without checkpoints; '\(c)' chooses among a run's checkpoints")
    }

    /// `ScoreOptions.lengthNeutral` on a classifier, whose loss is one cross-entropy per example.
    static func lengthNeutralRefused(_ run: URL) -> WinnowError {
        .invalidOption(name: "lengthNeutral", reason: "is for causal language models, whose loss is a mean over an example's tokens; \(run.path) is a classifier run")
    }

    /// Convenience: score the file of an already-read data set (its fields are reused).
    public init(run url: URL, data: JSONLDataset, options: ScoreOptions, null: Bool = false) throws {
        try self.init(run: url, data: data.url, fields: data.fields, options: options, null: null)
    }

    /// Class names of the models (the first checkpoint's, shared by all).
    public var labelNames: [String] { models[0].labelNames }

    /// Reads, tokenizes and batches the data file chunk by chunk, calling `body` for every batch in
    /// input order (batch.indices are positions among used examples). Returns the table of examples.
    @discardableResult
    public func stream(_ label: String, _ body: (Batch) throws -> Void) throws -> ExampleTable {
        var reader: JSONLReader
        var seen = 0
        if let r = options.exampleRange, let (start, p) = positions.nearest(atOrBefore: r.lowerBound) {
            reader = try JSONLReader(url: dataURL, resumingAt: p)
            seen = start
        } else {
            reader = try JSONLReader(url: dataURL, fields: fields)
        }
        var table = ExampleTable(labelNames: labelNames)
        let outer = options.progress
        let bar: any ProgressTask = outer != nil ? SilentReporter().start(label, total: 1, unit: "B")
            : options.reporter.start(label, total: max(reader.fileSize, 1), unit: "B")
        var lastBytes = reader.bytesRead
        // With a range, chunks end exactly at its bounds, so the reader's position there can be kept.
        func want() -> Int {
            guard let r = options.exampleRange else { return chunkSize }
            return max(1, min(chunkSize, (seen < r.lowerBound ? r.lowerBound : r.upperBound) - seen))
        }
        while let all = try reader.next(upTo: want()) {
            var chunk = all
            if let r = options.exampleRange {
                let lo = max(0, r.lowerBound - seen), hi = min(all.count, max(0, r.upperBound - seen))
                seen += all.count
                if seen == r.lowerBound || seen == r.upperBound { positions.keep(seen, reader.position) }
                bar.advance(by: reader.bytesRead - lastBytes, note: "\(table.count) examples")
                lastBytes = reader.bytesRead
                if lo >= hi { if seen >= r.upperBound { break } else { continue } }
                chunk = Array(all[lo..<hi])
            }
            var part = try EncodedDataset(examples: chunk, url: dataURL, tokenizer: tokenizer, labels: labelNames,
                                          maxLength: options.maxLength, null: nullInputs, modelVocabulary: modelVocabulary)
            if let i = part.labels.firstIndex(where: { $0 < 0 }) {
                throw WinnowError.invalidFile(path: dataURL.path, line: part.lines[i], reason: "no label; scores need labels")
            }
            let offset = table.count
            table.append(part)
            part.indexOffset = offset
            for batch in part.batches(size: options.batchSize, order: part.sequentialOrder) {
                try body(batch)
                outer?.advance(by: batch.size)
            }
            bar.advance(by: reader.bytesRead - lastBytes, note: "\(table.count) examples")
            lastBytes = reader.bytesRead
        }
        bar.finish(note: "\(table.count) examples")
        // A range (a part or shard) is one of several reads of the file: the whole file's count is noted once, by its caller.
        if reader.skipped > 0 && options.exampleRange == nil {
            options.reporter.note("note: skipped \(reader.skipped) example(s) without a gold label in \(dataURL.path)")
            if let w = JSONLDataset.minusOneWarning(reader.skippedMinusOne, of: table.count + reader.skipped, path: dataURL.path) { options.reporter.note(w) }
        }
        return table
    }

    /// What is about to be scored: checkpoints and the estimate of the memory the models and one batch's
    /// activations take (every sequence at the maximum length), one line. It is not a bound on the process:
    /// the runtime, BLAS buffers and the data read come on top.
    public func summary(_ method: ScoreMethod) -> String {
        String(format: "score %@: %d checkpoint(s) [%@], the models and one batch take about %.0f MiB (every sequence at %d tokens; --batch-size lowers the batch's share)",
               method.rawValue, checkpoints.count, checkpoints.map { String($0.step) }.joined(separator: ","),
               Double(memoryEstimate()) / 1048576, options.maxLength)
    }

    /// eta_k per chosen checkpoint (or the --lr override). A folder that is one model has eta 1, unless it is a
    /// checkpoint of a run (its trainer_state.json logs the rate its step used).
    public func learningRates() throws -> [Double] {
        if let lr = options.learningRate { return Array(repeating: lr, count: checkpoints.count) }
        if run.checkpoints.isEmpty {
            let state = run.url.appendingPathComponent("trainer_state.json")
            if FileManager.default.fileExists(atPath: state.path), let s = try? TrainerState(contentsOf: state),
               let lr = s.learningRate(atStep: s.globalStep) {
                return Array(repeating: lr, count: checkpoints.count)
            }
            return Array(repeating: 1, count: checkpoints.count)     // a model folder
        }
        return try checkpoints.map { try run.learningRate(of: $0) }
    }

    /// Rough peak memory: the K models and the activations of one batch and one chunk.
    public func memoryEstimate() -> Int {
        let c = models[0].dimensions
        let params = models[0].parameters.scalarCount * 4 * models.count
        let N = options.batchSize * options.maxLength
        let acts = N * (16 * c.hidden + 5 * c.intermediate) * 4 * max(1, c.layers)
            + options.batchSize * c.heads * options.maxLength * options.maxLength * 4 * max(1, c.layers)
        return params + acts + chunkSize * (options.maxLength * 8 + 256)
    }
}

/// Grows `a` with zeros to at least `n` elements.
@inline(__always)
func ensureCount(_ a: inout [Double], _ n: Int) {
    if a.count < n { a += [Double](repeating: 0, count: n - a.count) }
}

/// Reader positions by example index (a reference, so a `ScoringRun` copy shares what it learned).
final class PositionCache: @unchecked Sendable {
    private var byIndex: [Int: JSONLReader.Position] = [:]
    private let lock = NSLock()

    func keep(_ index: Int, _ p: JSONLReader.Position) {
        lock.lock(); byIndex[index] = p; lock.unlock()
    }

    /// The kept position with the largest index <= `index`.
    func nearest(atOrBefore index: Int) -> (Int, JSONLReader.Position)? {
        lock.lock(); defer { lock.unlock() }
        guard let k = byIndex.keys.filter({ $0 <= index }).max() else { return nil }
        return (k, byIndex[k]!)
    }
}
