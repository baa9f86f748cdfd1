import ArgumentParser
import Foundation
import Winnow

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a BERT-style classifier and write a run folder (Hugging Face Trainer layout).",
        discussion: """
        Starts from a fresh model (--vocab plus --layers/--hidden/--heads) or from a pretrained folder (--init, \
        e.g. models/minilm) with a fresh head. Writes RUN/config.json, vocab.txt, winnow.json, \
        checkpoint-<step>/ (model.safetensors, config.json, trainer_state.json) and dynamics.safetensors \
        (per presentation of each example: loss, p_y, margin, correctness, recorded in training mode before \
        the update, for the forgetting, cartography and AUM scores).
        """)

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Run folder to write.")
    var out: String

    @Option(name: .customLong("init"), help: "Start the encoder from this pretrained folder (config.json, model.safetensors, vocab.txt).")
    var initFrom: String?

    @Option(help: "vocab.txt for a fresh model (default: the --init folder's).")
    var vocab: String?

    @Option(help: "Encoder layers of a fresh model.") var layers: Int = 2
    @Option(help: "Hidden size of a fresh model.") var hidden: Int = 128
    @Option(help: "Attention heads of a fresh model.") var heads: Int = 2
    @Option(help: "Intermediate (feed-forward) size of a fresh model (default 4 x hidden).") var intermediate: Int?
    @Option(help: "Classifier head: hf (one linear layer) or paper (3 layers, 64 wide, GELU).") var head: String = "hf"
    @Option(help: "Dropout on hidden states and attention probabilities.") var dropout: Float?

    @Option(help: "Epochs.") var epochs: Int = 3
    @Option(help: "Examples per step.") var batchSize: Int = 32
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Float = 5e-5
    @Option(help: "Weight decay (not on biases and LayerNorm weights).") var weightDecay: Float = 0.01
    @Option(help: "Linear warm-up over this fraction of the steps, then linear decay to 0.") var warmupRatio: Float = 0.1
    @Option(help: "adamw or sgd (with momentum).") var optimizer: String = "adamw"
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(help: "Clip the global gradient norm (0 disables).") var maxGradNorm: Float = 1.0
    @Option(help: "Seed of every random choice: init, shuffling, dropout.") var seed: UInt64 = 0
    @Option(help: "Save K evenly spaced checkpoints (default: one per epoch).") var checkpoints: Int?
    @Flag(help: "Train the PVI null model: every input is empty ([CLS] [SEP]).") var null = false
    @Flag(help: "Do not record training dynamics.") var noDynamics = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard learningRate > 0 else { throw ValidationError("--lr must be positive") }
        guard Optimizer.Kind(rawValue: optimizer) != nil else { throw ValidationError("--optimizer must be adamw or sgd") }
        guard BertConfig.Head(rawValue: head) != nil else { throw ValidationError("--head must be hf or paper") }
        guard hidden > 0, heads > 0, hidden % heads == 0 else { throw ValidationError("--hidden must be a multiple of --heads") }
        if initFrom == nil && vocab == nil && !dataOptions.data.lowercased().hasSuffix(".csv") { throw ValidationError("a fresh model needs --vocab FILE (or start from --init DIR)") }
        if let k = checkpoints, k < 1 { throw ValidationError("--checkpoints must be at least 1") }
    }

    func run() throws {
        if dataOptions.data.lowercased().hasSuffix(".csv") { return try trainMLP() }
        let data = try dataOptions.read()
        reportSkipped(data)
        let headKind = BertConfig.Head(rawValue: head)!
        let model: BertClassifier
        let tokenizer: BertTokenizer
        var vocabURL: URL
        if let initFrom {
            let dir = URL(fileURLWithPath: initFrom)
            vocabURL = vocab.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("vocab.txt")
            tokenizer = try vocab == nil ? BertTokenizer(folder: dir) : BertTokenizer(vocabulary: Vocabulary(contentsOf: vocabURL))
            var pretrainedLabels: [String] = []
            if let cfg = try? BertConfig(contentsOf: dir.appendingPathComponent("config.json")),
               !cfg.labels.isEmpty, !cfg.labels.allSatisfy({ $0.hasPrefix("LABEL_") }) {
                pretrainedLabels = cfg.labels
            }
            let labels = pretrainedLabels.isEmpty ? data.sortedLabels : pretrainedLabels
            model = try BertClassifier(folder: dir, labels: labels, head: headKind, seed: seed)
            if let dropout { model.setDropout(dropout) }
        } else {
            vocabURL = URL(fileURLWithPath: vocab!)
            tokenizer = BertTokenizer(vocabulary: try Vocabulary(contentsOf: vocabURL))
            var config = BertConfig.small(vocabSize: tokenizer.vocabulary.count, hidden: hidden, layers: layers, heads: heads,
                                          intermediate: intermediate, maxPositions: max(512, dataOptions.maxLength))
            config.labels = data.sortedLabels
            config.head = headKind
            if let dropout { config.hiddenDropoutProb = dropout; config.attentionProbsDropoutProb = dropout }
            model = BertClassifier(config: config, seed: seed)
        }
        guard model.config.maxPositionEmbeddings >= dataOptions.maxLength else {
            throw WinnowError.invalidOption(name: "--max-length", reason: "\(dataOptions.maxLength) exceeds the model's max_position_embeddings \(model.config.maxPositionEmbeddings)")
        }
        let encoded = try EncodedDataset(data, tokenizer: tokenizer, labels: model.config.labels, maxLength: dataOptions.maxLength, null: null)
        let o = trainingOptions()
        let runURL = URL(fileURLWithPath: out)
        printError("train: \(encoded.count) examples, labels [\(model.config.labels.joined(separator: ", "))], "
                   + "\(model.parameters.scalarCount) parameters, \(model.config.numHiddenLayers) layers x \(model.config.hiddenSize)")
        var info = ["data": URL(fileURLWithPath: dataOptions.data).path]
        if let t = data.fields.text { info["text_field"] = t }
        if let p = data.fields.pair { info["pair_field"] = p }
        if let l = data.fields.label { info["label_field"] = l }
        if let initFrom { info["init"] = URL(fileURLWithPath: initFrom).path }
        var extra = [vocabURL]
        if let initFrom {
            let tc = URL(fileURLWithPath: initFrom).appendingPathComponent("tokenizer_config.json")
            if FileManager.default.fileExists(atPath: tc.path) { extra.append(tc) }
        }
        vocabURL = vocabURL.standardizedFileURL
        let summary = try Trainer(options: o).train(model, on: encoded, run: runURL, extraFiles: extra, runInfo: info)
        print(String(format: "trained %d steps in %.1f s (%.1f examples/s), final loss %.4f; run written to %@",
                     summary.steps, summary.seconds, summary.examplesPerSecond, summary.finalLoss, runURL.path))
    }

    /// Numeric CSV features: an MLP with `--layers` hidden layers of `--hidden` units.
    func trainMLP() throws {
        var data = try CSVDataset(url: URL(fileURLWithPath: dataOptions.data), labelColumn: dataOptions.labelField ?? "label")
        let labels = data.sortedLabels
        try data.assignLabels(labels)
        let mlp = MLPClassifier(inputSize: data.featureNames.count, hidden: Array(repeating: hidden, count: layers), labels: labels,
                                seed: seed, featureNames: data.featureNames)
        mlp.fitStandardization(data.features)
        var o = trainingOptions()
        o.maxLength = 0
        printError("train: \(data.count) rows, \(data.featureNames.count) features, labels [\(labels.joined(separator: ", "))], MLP \(([data.featureNames.count] + mlp.hidden + [labels.count]).map(String.init).joined(separator: "-"))")
        let runURL = URL(fileURLWithPath: out)
        let summary = try Trainer(options: o).train(mlp, on: data, run: runURL, runInfo: ["data": URL(fileURLWithPath: dataOptions.data).path, "model": "mlp"])
        print(String(format: "trained %d steps in %.1f s, final loss %.4f; run written to %@", summary.steps, summary.seconds, summary.finalLoss, runURL.path))
    }

    func trainingOptions() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batchSize = batchSize; o.learningRate = learningRate; o.weightDecay = weightDecay
        o.warmupRatio = warmupRatio; o.optimizer = Optimizer.Kind(rawValue: optimizer)!; o.momentum = momentum
        o.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil; o.seed = seed; o.checkpoints = checkpoints
        o.maxLength = dataOptions.maxLength; o.null = null; o.recordDynamics = !noDynamics
        return o
    }
}
