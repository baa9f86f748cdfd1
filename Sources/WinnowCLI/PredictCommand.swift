import ArgumentParser
import Foundation
import Winnow

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict every example of a file: CSV columns index,line,id,label,predicted,p_<label>...")

    @Option(name: .customLong("run"), help: "Run folder (winnow or transformers.Trainer output) or model folder.") var runPath: String
    @Option(help: "Checkpoint step, first or last (default: the final model).") var checkpoint: String?
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Output CSV (written atomically).") var out: String
    @Option(help: "Examples per forward pass.") var batchSize: Int = 64

    func run() throws {
        let (model, tok, _) = try loadModel(runPath, checkpoint: checkpoint)
        let data = try dataOptions.read(requireLabels: false)
        reportSkipped(data)
        let enc = try EncodedDataset(data, tokenizer: tok, labels: model.config.labels, maxLength: dataOptions.maxLength)
        let (pred, probs) = model.predict(enc, batchSize: batchSize, progress: Progress(label: "predict", total: enc.count, unit: "ex"))
        let names = model.config.labels
        var out = TextFileBuilder()
        out.append((["index", "line", "id", "label", "predicted"] + names.map { "p_" + csvField($0) }).joined(separator: ","))
        for i in 0..<enc.count {
            let label = enc.labels[i] >= 0 ? names[Int(enc.labels[i])] : ""
            var row = [String(i), String(enc.lines[i]), csvField(enc.ids[i] ?? ""), csvField(label), csvField(names[Int(pred[i])])]
            row += probs[i].map { String(format: "%.6g", $0) }
            out.append(row.joined(separator: ","))
        }
        try out.write(to: URL(fileURLWithPath: self.out))
        printError("predict: wrote \(enc.count) rows to \(self.out)")
    }
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
func csvField(_ s: String) -> String {
    if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}
