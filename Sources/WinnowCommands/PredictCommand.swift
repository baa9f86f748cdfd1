import ArgumentParser
import Foundation
import Winnow

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict every example of a file: CSV columns index,line,id,label,predicted,p_<label>...")

    @Option(name: .customLong("run"), help: "Run folder (winnow or transformers.Trainer output) or model folder.") var runPath: String
    @Option(help: "Checkpoint: a step, first, last or epochE (the checkpoint nearest the end of epoch E, the earlier at a tie, named in a note when none ends it; default: the final model).") var checkpoint: CheckpointSelection?
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Output CSV (written atomically).") var out: String
    @Option(parsing: .unconditional, help: "Examples per forward pass.") var batchSize: Int = 64
    @Option(help: "The base model of a LoRA adapter folder given as --run (default: its adapter_config.json's base_model_name_or_path, when that is a local path).") var base: String?
    @Option(help: "Arithmetic of the dense products: f32, or bf16 (operands rounded to bf16, F32 accumulation; needs AVX512_BF16).") var precision: ArithmeticPrecision = .f32
    @Option(help: "Predict only shard I of N (0-based; contiguous blocks of examples); join shards with `winnow merge`.", transform: parseShard) var shard: Shard?

    func validate() throws {
        try validatePrediction(checkpoint: checkpoint, batchSize: batchSize, data: dataOptions)
        try refuseOverwriting(out, inputs: [dataOptions.data])
        if ["jsonl", "npy"].contains(URL(fileURLWithPath: out).pathExtension.lowercased()) {
            throw ValidationError("predict writes CSV (index, line, id, label, predicted, p_LABEL...): give --out a .csv name")
        }
        try refuseWritingIntoModel(out, models: modelsRead(run: runPath, base: base))
    }

    mutating func run() throws {
        let lock = try OutputLock(URL(fileURLWithPath: out))
        defer { lock.release() }
        noteBaseOverride(adapter: runPath, base: base)
        dataOptions.adoptMaxLength(ofRun: runPath)
        dataOptions.adoptFields(ofRun: runPath)
        // The weights this prediction reads (the chosen checkpoint, else the final model), as they are before the work.
        let folder = try? RunFolder(url: URL(fileURLWithPath: runPath))
        let read = folder.flatMap { f in checkpoint.flatMap { try? f.select($0).map(\.url) } ?? [f.finalModelFolder] } ?? [URL(fileURLWithPath: runPath)]
        let models = shardModels(read.map(\.path) + [base], sharded: shard != nil)
        let r = try predictFile(run: runPath, checkpoint: checkpoint, data: dataOptions, batchSize: batchSize, requireLabels: false, label: "predict",
                                shard: shard, base: base, precision: precision)
        let names = r.labelNames, pred = r.predictions, probs = r.probabilities
        try AtomicFile.writeLines(to: URL(fileURLWithPath: self.out)) { emit in
            try emit((["index", "line", "id", "label", "predicted"] + names.map { csvField("p_" + $0) }).joined(separator: ","))
            for i in 0..<r.labels.count {
                let label = r.labels[i] >= 0 ? names[Int(r.labels[i])] : ""
                var row = [String(i + r.indexOffset), String(r.lines[i]), csvField(r.ids[i] ?? ""), csvField(label), csvField(names[Int(pred[i])])]
                row += probs[i].map { String(format: "%.6g", $0) }
                try emit(row.joined(separator: ","))
            }
        }
        let f = dataOptions.fields
        let job = ["predict", "run \(URL(fileURLWithPath: runPath).standardizedFileURL.path)", "checkpoint \(checkpoint.map { "\($0)" } ?? "final")",
                   shardData(dataOptions.data, sharded: shard != nil), models,
                   "max-length \(dataOptions.maxLength)",
                   "fields \(f.text ?? "-")/\(f.pair ?? "-")/\(f.label ?? "-")", "precision \(precision.rawValue)",
                   "base \(base.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? "-")"].joined(separator: ", ")
        try ShardMerge.recordShard(shard, examples: r.total, job: job, output: URL(fileURLWithPath: self.out))
        printError("predict: wrote \(r.labels.count) rows to \(self.out)")
        // With gold labels (a whole file, not a shard of it), a model that learned nothing is named as `eval` names it.
        if shard == nil, r.labels.contains(where: { $0 >= 0 }) {
            let check = LearningCheck(labels: r.labels, predictions: pred, labelNames: names)
            if check.learnedNothing { printError("winnow: WARNING: this model learned nothing on \(dataOptions.data): it \(check.description)") }
        }
    }
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
func csvField(_ s: String) -> String {
    if s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}

extension WinnowMain {
    /// The warning `predict` prints for a whole file with gold labels when the model learned nothing, read
    /// back from a predictions CSV (winnow-mpi's merged file: each rank predicted a shard, which gets none).
    public static func learnedNothingWarning(predictions url: URL, data: String) -> String? {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        let records = text.csvRecords()
        guard let head = records.first, let header = try? CSVDataset.split(String(head), path: url.path, line: 1),
              let li = header.firstIndex(of: "label"), let pi = header.firstIndex(of: "predicted") else { return nil }
        let names = header.filter { $0.hasPrefix("p_") }.map { String($0.dropFirst(2)) }
        let index = Dictionary(names.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { a, _ in a })
        var labels: [Int32] = [], predictions: [Int32] = []
        for (n, r) in records.dropFirst().enumerated() {
            guard let f = try? CSVDataset.split(String(r), path: url.path, line: n + 2), f.count == header.count,
                  let p = index[f[pi]] else { return nil }
            labels.append(index[f[li]] ?? -1); predictions.append(p)
        }
        guard labels.contains(where: { $0 >= 0 }) else { return nil }
        let check = LearningCheck(labels: labels, predictions: predictions, labelNames: names)
        return check.learnedNothing ? "winnow: WARNING: this model learned nothing on \(data): it \(check.description)" : nil
    }
}
