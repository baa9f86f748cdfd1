import ArgumentParser
import Foundation
import Winnow

/// Where examples come from and how they are read and tokenized.
struct DataOptions: ParsableArguments {
    @Option(help: "JSONL file, one example a line.")
    var data: String

    @Option(help: "Text field (default: first of text, sentence, sentence1, premise).")
    var textField: String?

    @Option(help: "Second-segment field for pairs (default: first of text_pair, sentence2, hypothesis).")
    var pairField: String?

    @Option(help: "Label field (default: label or gold_label).")
    var labelField: String?

    @Option(help: "Truncate sequences to this many tokens, specials included (longest-first for pairs).")
    var maxLength: Int = 128

    var fields: FieldNames { FieldNames(text: textField, pair: pairField, label: labelField) }

    func validate() throws {
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2 (for [CLS] and [SEP])") }
    }

    func read(requireLabels: Bool = true) throws -> JSONLDataset {
        try JSONLDataset(url: URL(fileURLWithPath: data), fields: fields, requireLabels: requireLabels)
    }
}

/// Prints a summary line about skipped examples.
func reportSkipped(_ d: JSONLDataset) {
    if d.skipped > 0 { printError("note: skipped \(d.skipped) example(s) without a gold label in \(d.url.path)") }
}

/// Loads the model of a run folder (a winnow run or a transformers.Trainer output) or a model folder.
func loadModel(_ path: String, checkpoint: String? = nil) throws -> (BertClassifier, BertTokenizer, URL) {
    let url = URL(fileURLWithPath: path)
    let run = try RunFolder(url: url)
    var folder = run.finalModelFolder
    if let checkpoint {
        guard let ck = try run.select(checkpoint).last else { throw WinnowError.invalidOption(name: "--checkpoint", reason: "none chosen") }
        folder = ck.url
    }
    let model = try BertClassifier(folder: folder)
    let tok = try BertTokenizer(folder: run.tokenizerFolder)
    return (model, tok, folder)
}

/// Predictions of a run (BERT or MLP) on a data file (JSONL for BERT, CSV for the MLP).
struct FilePredictions {
    var labelNames: [String]
    var labels: [Int32]
    var lines: [Int]
    var ids: [String?]
    var predictions: [Int32]
    var probabilities: [[Float]]
}

func predictFile(run: String, checkpoint: String?, data dataOptions: DataOptions, batchSize: Int, requireLabels: Bool,
                 label: String) throws -> FilePredictions {
    let runFolder = try RunFolder(url: URL(fileURLWithPath: run))
    if MLPClassifier.isMLPFolder(runFolder.finalModelFolder) {
        let folder = try checkpoint.map { try runFolder.select($0).last!.url } ?? runFolder.finalModelFolder
        let mlp = try MLPClassifier(folder: folder)
        var data = try CSVDataset(url: URL(fileURLWithPath: dataOptions.data), labelColumn: dataOptions.labelField ?? "label",
                                  requireLabels: requireLabels)
        try data.assignLabels(mlp.labelNames)
        let (p, pr) = mlp.predict(data, batchSize: batchSize)
        return FilePredictions(labelNames: mlp.labelNames, labels: data.labels, lines: data.lines, ids: data.ids, predictions: p, probabilities: pr)
    }
    let (model, tok, _) = try loadModel(run, checkpoint: checkpoint)
    let data = try dataOptions.read(requireLabels: requireLabels)
    reportSkipped(data)
    let enc = try EncodedDataset(data, tokenizer: tok, labels: model.config.labels, maxLength: dataOptions.maxLength)
    let (p, pr) = model.predict(enc, batchSize: batchSize, progress: Progress(label: label, total: enc.count, unit: "ex"))
    return FilePredictions(labelNames: model.config.labels, labels: enc.labels, lines: enc.lines, ids: enc.ids, predictions: p, probabilities: pr)
}

func formatPercent(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
