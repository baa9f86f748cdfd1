import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// PVI (Ethayarajh et al. 2022): PVI(x -> y) = -log2 p_null(y | empty) + log2 p(y | x), with the null
/// model trained on the same labels and empty inputs (`winnow train --null`): `[CLS] [SEP]`, or
/// `[CLS] [SEP] [SEP]` for pairs. Uses the final model of each run. Its score is -PVI (higher = harder:
/// little usable information); the `pvi` column holds PVI itself.
///
///     let r = try PVI.score(run: runURL, nullRun: nullURL, data: jsonl, options: opts)
/// `nullInputs: false` feeds the null model the real inputs (a check: PVI of a run against itself is 0).
public enum PVI {
    /// PVI of every used example of `data`, from the final models of `run` and `nullRun`; the null model reads
    /// empty inputs unless `nullInputs` is false.
    ///
    /// - Throws: `WinnowError` when a run or the data file is missing or malformed, the runs' labels differ, or an
    ///   example has no label.
    public static func score(run: URL, nullRun: URL, data: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                             nullInputs: Bool = true) throws -> ScoreResult {
        try score(Runs(run: run, nullRun: nullRun, data: data, fields: fields, options: options, nullInputs: nullInputs))
    }

    /// What PVI reads, built once: the two scoring runs (the null one with empty inputs) and their final
    /// models. Scoring in parts keeps one and sets `exampleRange` per part, so each part continues
    /// from the reader position where the previous one stopped instead of re-reading the file.
    package final class Runs {
        /// The scoring run of the model, and that of the null model (empty inputs).
        package private(set) var full: ScoringRun, null: ScoringRun
        let fullModel: any SequenceClassifier, nullModel: any SequenceClassifier

        /// Loads both runs (their last checkpoints) and their final models; `nullInputs` false feeds the null
        /// model the real inputs.
        ///
        /// - Throws: `WinnowError.invalidOption` when the two runs' labels differ or the null run's winnow.json says it was
        ///   trained on the inputs; `WinnowError` for a missing or
        ///   malformed run or tokenizer.
        package init(run: URL, nullRun: URL, data: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                    nullInputs: Bool = true) throws {
            // A winnow run records whether it was trained on empty inputs (a run of another tool is taken as given):
            // checked before either run reads the data, whose fields a run of another data set would not find.
            if PVI.trainedNull(run) == true {
                throw WinnowError.invalidOption(name: "run", reason:
                    "\(run.path) is a null run (its winnow.json says null true): give the run trained on the inputs, and the null run as --null-run")
            }
            // (A decoder classifier is refused below for what it is.)
            if nullInputs, PVI.trainedNull(nullRun) == false, !ModelLoader.isDecoderClassifier(nullRun) {
                throw WinnowError.invalidOption(name: "nullRun", reason:
                    "\(nullRun.path) was trained on the inputs (its winnow.json says null false): PVI's null model is trained with `winnow train --null`")
            }
            var o = options
            o.checkpoints = .last
            full = try ScoringRun(run: run, data: data, fields: fields, options: o)
            null = try ScoringRun(run: nullRun, data: data, fields: fields, options: o, null: nullInputs)
            guard full.labelNames == null.labelNames else {
                throw WinnowError.invalidOption(name: "nullRun", reason:
                    "its labels \(null.labelNames) differ from the run's \(full.labelNames)")
            }
            fullModel = try ModelLoader.classifier(folder: full.run.finalModelFolder, base: options.adapterBase)
            nullModel = try ModelLoader.classifier(folder: null.run.finalModelFolder)
            // A byte-level BPE encodes the empty input as no token at all: a decoder classifier's head would
            // read a padding position, and `winnow train --null` is not offered for decoders.
            if nullInputs, nullModel is LlamaForSequenceClassification {
                throw WinnowError.invalidOption(name: "nullRun", reason:
                    "\(nullRun.path) is a decoder classifier: PVI's null model (`winnow train --null`) is available for BERT encoders only")
            }
        }

        /// The examples both runs score (nil: all).
        package var exampleRange: Range<Int>? {
            get { full.options.exampleRange }
            set { full.options.exampleRange = newValue; null.options.exampleRange = newValue }
        }
    }

    /// Whether a run was trained on empty inputs (`winnow train --null`), as its winnow.json records; nil for a
    /// run without one (another tool's).
    static func trainedNull(_ run: URL) -> Bool? {
        guard let d = try? Data(contentsOf: run.appendingPathComponent("winnow.json")),
              let info = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
              let opts = info["options"] as? [String: Any] else { return nil }
        return opts["null"] as? Bool
    }

    /// The null run PVI needs, or the error that says how to make one.
    static func requireNullRun(_ nullRun: URL?) throws -> URL {
        guard let nullRun else { throw WinnowError.invalidOption(name: "nullRun", reason: "pvi needs a null run (`winnow train --null`)") }
        return nullRun
    }

    /// PVI of the examples in `runs.exampleRange` (all when nil), reading the data once per run.
    ///
    /// - Throws: `WinnowError` when the data file is missing or malformed, or an example has no label.
    package static func score(_ runs: Runs) throws -> ScoreResult {
        try runs.full.options.inPrecision(.pvi) { try scoreInPrecision(runs) }
    }

    static func scoreInPrecision(_ runs: Runs) throws -> ScoreResult {
        let (lp, table) = try logProbabilities(runs.full, finalModel: runs.fullModel)
        let (lpNull, _) = try logProbabilities(runs.null, finalModel: runs.nullModel)
        let pvi = zip(lp, lpNull).map { $0 - $1 }
        var r = ScoreResult(method: .pvi, scores: pvi.map { -$0 }, table: table)
        r.components = [("pvi", pvi), ("log2p", lp), ("log2p_null", lpNull)]
        r.notes = ["score = -PVI (higher = harder); PVI = log2 p(y|x) - log2 p_null(y|empty), final models of both runs"]
        return r
    }

    /// log2 p(y | input) per example, in inference mode.
    static func logProbabilities(_ sr: ScoringRun, finalModel model: any SequenceClassifier) throws -> ([Double], ExampleTable) {
        var out: [Double] = []
        let table = try sr.stream(sr.nullInputs ? "pvi (null model)" : "pvi") { batch in
            ensureCount(&out, batch.indices.max()! + 1)
            let (losses, _) = crossEntropy(logits: model.inferenceLogits(batch), labels: batch.labels)
            for b in 0..<batch.size { out[batch.indices[b]] = -Double(losses[b]) / M_LN2 }
        }
        return (out, table)
    }
}
