import ArgumentParser
import Foundation
import Winnow

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Accuracy, macro-F1, a per-class table and the confusion matrix of a run on a labelled file.")

    @Option(name: .customLong("run"), help: "Run folder (winnow or transformers.Trainer output) or model folder.") var runPath: String
    @Option(help: "Checkpoint: a step, first, last or epochE (the checkpoint nearest the end of epoch E, the earlier at a tie, named in a note when none ends it; default: the final model).") var checkpoint: CheckpointSelection?
    @OptionGroup var dataOptions: DataOptions
    @Option(parsing: .unconditional, help: "Examples per forward pass.") var batchSize: Int = 64
    @Option(help: "The base model of a LoRA adapter folder given as --run (default: its adapter_config.json's base_model_name_or_path, when that is a local path).") var base: String?
    @Option(help: "Arithmetic of the dense products: f32, or bf16 (operands rounded to bf16, F32 accumulation; needs AVX512_BF16).") var precision: ArithmeticPrecision = .f32
    @Flag(help: "Print one JSON object instead of tables.") var json = false

    func validate() throws {
        try validatePrediction(checkpoint: checkpoint, batchSize: batchSize, data: dataOptions)
    }

    mutating func run() throws {
        noteBaseOverride(adapter: runPath, base: base)
        dataOptions.adoptMaxLength(ofRun: runPath)
        dataOptions.adoptFields(ofRun: runPath)
        let r = try predictFile(run: runPath, checkpoint: checkpoint, data: dataOptions, batchSize: batchSize, requireLabels: true, label: "eval", base: base, precision: precision)
        let names = r.labelNames
        guard r.labels.contains(where: { $0 >= 0 }) else {
            throw WinnowError.invalidFile(path: dataOptions.data, line: nil, reason: "no example has a gold label: nothing to evaluate (`winnow predict` predicts unlabelled lines)")
        }
        let m = ClassificationMetrics(labels: r.labels, predictions: r.predictions, classes: names.count)
        // A model that predicts one class for nearly everything, or does no better than the majority label,
        // learned nothing: say so on stderr whatever the output format.
        let check = LearningCheck(labels: r.labels, predictions: r.predictions, labelNames: names)
        if check.learnedNothing {
            printError("winnow: WARNING: this model learned nothing on \(dataOptions.data): it \(check.description)")
        }
        if json {
            let obj: [String: Any] = ["accuracy": m.accuracy, "macro_f1": m.macroF1, "examples": r.labels.count,
                                      "labels": names, "confusion": m.confusion,
                                      "largest_predicted_share": check.dominantShare, "majority_rate": check.majorityRate,
                                      "learned_nothing": check.learnedNothing, "learning_check_can_tell": check.canTell,
                                      "per_class": names.indices.map { ["label": names[$0], "precision": m.precision[$0], "recall": m.recall[$0], "f1": m.f1[$0], "support": m.support[$0]] }]
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
            return
        }
        print("examples: \(r.labels.count)")
        print("accuracy: \(formatPercent(m.accuracy))")
        print("macro-F1: \(formatPercent(m.macroF1))")
        print("learned:  " + (check.learnedNothing ? "NOTHING (\(check.description))" : check.canTell ? "yes (\(check.description))" : "? (\(check.description))"))
        let w = max(8, names.map(\.count).max() ?? 0)
        print("\n" + "label".padding(toLength: w, withPad: " ", startingAt: 0) + "  precision  recall     f1  support")
        for (i, n) in names.enumerated() {
            print(n.padding(toLength: w, withPad: " ", startingAt: 0)
                  + String(format: "  %9.4f  %6.4f  %6.4f  %7d", m.precision[i], m.recall[i], m.f1[i], m.support[i]))
        }
        print("\nconfusion (rows: true, columns: predicted)")
        print("".padding(toLength: w, withPad: " ", startingAt: 0) + names.map { "  " + $0.padding(toLength: w, withPad: " ", startingAt: 0) }.joined())
        for (i, n) in names.enumerated() {
            print(n.padding(toLength: w, withPad: " ", startingAt: 0)
                  + m.confusion[i].map { "  " + String($0).padding(toLength: w, withPad: " ", startingAt: 0) }.joined())
        }
    }
}
