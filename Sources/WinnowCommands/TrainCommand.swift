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

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var trainingFlags: TrainingFlags
    @Flag(help: "Train the PVI null model: every input is empty ([CLS] [SEP]).") var null = false
    @Flag(help: "Do not record training dynamics.") var noDynamics = false
    @Flag(help: "Continue an interrupted run in --out from its latest checkpoint (same options and data); the result equals an uninterrupted run.") var resume = false

    func validate() throws {
        guard !dataOptions.data.lowercased().hasSuffix(".csv") else { return }
        do { try modelOptions.spec.validate() } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
    }

    func run() throws {
        if dataOptions.data.lowercased().hasSuffix(".csv") { return try trainMLP() }
        let data = try dataOptions.read()
        reportSkipped(data)
        let spec = modelOptions.spec
        let tokenizer = try spec.tokenizer()
        let model = try spec.makeModel(labels: data.sortedLabels, maxLength: dataOptions.maxLength, seed: trainingFlags.seed)
        let encoded = try EncodedDataset(data, tokenizer: tokenizer, labels: model.config.labels, maxLength: dataOptions.maxLength, null: null)
        let o = trainingOptions()
        let runURL = URL(fileURLWithPath: out)
        printError("train: \(encoded.count) examples, labels [\(model.config.labels.joined(separator: ", "))], "
                   + "\(model.parameters.scalarCount) parameters, \(model.config.numHiddenLayers) layers x \(model.config.hiddenSize)")
        var info = ["data": URL(fileURLWithPath: dataOptions.data).path]
        if let t = data.fields.text { info["text_field"] = t }
        if let p = data.fields.pair { info["pair_field"] = p }
        if let l = data.fields.label { info["label_field"] = l }
        if let i = spec.initFrom { info["init"] = URL(fileURLWithPath: i).path }
        let summary = try Trainer(options: o).train(model, on: encoded, run: runURL, extraFiles: spec.extraFiles, runInfo: info,
                                                    reporter: TerminalReporter(), resume: resume)
        print(String(format: "trained %d steps in %.1f s (%.1f examples/s), final loss %.4f; run written to %@",
                     summary.steps, summary.seconds, summary.examplesPerSecond, summary.finalLoss, runURL.path))
    }

    /// Numeric CSV features: an MLP with `--layers` hidden layers of `--hidden` units.
    func trainMLP() throws {
        var data = try CSVDataset(url: URL(fileURLWithPath: dataOptions.data), labelColumn: dataOptions.labelField ?? "label")
        let labels = data.sortedLabels
        try data.assignLabels(labels)
        let mlp = MLPClassifier(inputSize: data.featureNames.count, hidden: Array(repeating: modelOptions.hidden, count: modelOptions.layers), labels: labels,
                                seed: trainingFlags.seed, featureNames: data.featureNames)
        mlp.fitStandardization(data.features)
        var o = trainingOptions()
        o.maxLength = 0
        printError("train: \(data.count) rows, \(data.featureNames.count) features, labels [\(labels.joined(separator: ", "))], MLP \(([data.featureNames.count] + mlp.hidden + [labels.count]).map(String.init).joined(separator: "-"))")
        let runURL = URL(fileURLWithPath: out)
        let summary = try Trainer(options: o).train(mlp, on: data, run: runURL, runInfo: ["data": URL(fileURLWithPath: dataOptions.data).path, "model": "mlp"],
                                                    reporter: TerminalReporter(), resume: resume)
        print(String(format: "trained %d steps in %.1f s, final loss %.4f; run written to %@", summary.steps, summary.seconds, summary.finalLoss, runURL.path))
    }

    func trainingOptions() -> TrainingOptions {
        var o = trainingFlags.options(maxLength: dataOptions.maxLength, pretrained: modelOptions.initFrom != nil
                                      && !dataOptions.data.lowercased().hasSuffix(".csv"))
        o.null = null; o.recordDynamics = !noDynamics
        return o
    }
}
