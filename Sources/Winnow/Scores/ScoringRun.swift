import Foundation

/// Options shared by the scores (the flags of `winnow score`).
public struct ScoreOptions: Sendable {
    /// all | first | last | STEP,STEP,...
    public var checkpoints = "all"
    /// all | classifier | first-layer | last-layer | embeddings | PREFIX,...
    public var params = "all"
    /// Gradients with respect to parameters, or to the pooled [CLS] vector (`last-hidden`).
    public var lastHidden = false
    /// VoG: use the class predicted by the last chosen checkpoint instead of the label.
    public var targetPredicted = false
    /// Overrides every checkpoint's learning rate eta_k (TracIn); 1 gives the unweighted sum.
    public var learningRate: Double? = nil
    /// TracIn: project per-example gradients to about this many dimensions per layer (nil: exact).
    public var projectDim: Int? = nil
    /// Seed of the random projection.
    public var seed: UInt64 = 0
    public var batchSize = 32
    public var maxLength = 128
    /// Bytes the scorer may use; it splits its work to stay under this bound.
    public var memoryLimit = 2 << 30
    public var quiet = false

    public init() {}
}

/// One score per used example, with named components (e.g. confidence, variability) and flags.
public struct ScoreResult: Sendable {
    public var method: String
    public var scores: [Double]
    /// Extra columns, in order.
    public var components: [(String, [Double])] = []
    /// Human-readable notes on conventions and what was used (printed by the CLI).
    public var notes: [String] = []

    public init(method: String, scores: [Double]) {
        self.method = method
        self.scores = scores
    }
}

/// A run's chosen checkpoints loaded into memory, its tokenizer and an encoded data file.
///
///     let sr = try ScoringRun(run: url, data: jsonl, options: opts)
public struct ScoringRun: @unchecked Sendable {
    public let run: RunFolder
    public let checkpoints: [RunFolder.Checkpoint]
    public let models: [BertClassifier]
    public let tokenizer: BertTokenizer
    public let data: EncodedDataset
    public let options: ScoreOptions

    public init(run url: URL, data: JSONLDataset, options: ScoreOptions, null: Bool = false) throws {
        run = try RunFolder(url: url)
        checkpoints = try run.select(options.checkpoints)
        models = try checkpoints.map { try BertClassifier(folder: $0.url) }
        tokenizer = try BertTokenizer(folder: run.tokenizerFolder)
        let labels = models[0].config.labels
        for (m, ck) in zip(models, checkpoints) where m.config.labels != labels {
            throw WinnowError.invalidFile(path: ck.url.appendingPathComponent("config.json").path, line: nil,
                                          reason: "labels \(m.config.labels) differ from the first checkpoint's \(labels)")
        }
        self.data = try EncodedDataset(data, tokenizer: tokenizer, labels: labels, maxLength: options.maxLength, null: null)
        self.options = options
        let missing = self.data.labels.filter { $0 < 0 }.count
        if missing > 0 {
            throw WinnowError.invalidFile(path: data.url.path, line: nil, reason: "\(missing) example(s) have no label; scores need labels")
        }
    }

    /// eta_k per chosen checkpoint (or the --lr override).
    public func learningRates() throws -> [Double] {
        if let lr = options.learningRate { return Array(repeating: lr, count: checkpoints.count) }
        return try checkpoints.map { try run.learningRate(of: $0) }
    }

    /// Rough peak memory: the K models, the activations of one batch, and per-example buffers.
    public func memoryEstimate(extraPerExample: Int = 0) -> Int {
        let c = models[0].config
        let params = models[0].parameters.scalarCount * 4 * models.count
        let N = options.batchSize * options.maxLength
        let acts = N * (14 * c.hiddenSize + 4 * c.intermediateSize) * 4 * c.numHiddenLayers
            + options.batchSize * c.numAttentionHeads * options.maxLength * options.maxLength * 4 * c.numHiddenLayers
        return params + acts + data.count * (8 + extraPerExample)
    }

    /// Batches in input order.
    public var batches: [Batch] { data.batches(size: options.batchSize, order: data.sequentialOrder) }

    public func progress(_ label: String, total: Int) -> Progress {
        Progress(label: label, total: total, unit: "ex", quiet: options.quiet)
    }
}
