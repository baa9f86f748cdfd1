import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// VoG (Agarwal et al. 2022, on input embeddings as in 2311.16298). For each checkpoint k,
/// G_k = d z_y / d E with E the word-embedding vectors fed to the encoder (`inputs_embeds`), real
/// tokens only. With M the mean over k: VoG = mean over tokens t and dims h of
/// sqrt((1/K) sum_k (G_k[t,h] - M[t,h])^2). All chosen checkpoints stay loaded and each batch
/// accumulates across them (Welford), so the data set is read once and memory does not grow with it.
///
///     let r = try VoG.score(scoringRun)     // a ScoringRun of two or more checkpoints
public enum VoG {
    /// VoG of every used example over the chosen checkpoints (two or more), for the target `options.vogTarget`.
    ///
    /// - Throws: `WinnowError.invalidOption` when the run chose fewer than two checkpoints; `WinnowError` when
    ///   the data file is missing or malformed, or an example has no label.
    public static func score(_ sr: ScoringRun) throws -> ScoreResult {
        try sr.options.inPrecision(.vog) { try scoreF32(sr) }
    }

    static func scoreF32(_ sr: ScoringRun) throws -> ScoreResult {
        let K = sr.models.count, C = sr.models[0].dimensions.hidden, L = sr.models[0].numLabels
        guard K >= 2 else {
            throw WinnowError.invalidOption(name: "checkpoints", reason:
                "VoG is a variance over checkpoints and needs at least two; " + (sr.run.checkpoints.isEmpty
                    ? "\(sr.run.url.path) is one model (score a `winnow train` run with checkpoints)" : "--checkpoints chose one of \(sr.run.url.path)'s"))
        }
        var vog: [Double] = []
        let latest = sr.checkpoints.indices.max { sr.checkpoints[$0].step < sr.checkpoints[$1].step } ?? K - 1
        let table = try sr.stream("vog") { batch in
            ensureCount(&vog, batch.indices.max()! + 1)
            let lengths = (0..<batch.size).map { batch.realLength($0) }
            let rows = lengths.reduce(0, +)
            // Target per example: the label, or the class predicted by the latest chosen checkpoint (the highest
            // step, whatever order --checkpoints lists them in).
            var target = batch.labels
            if sr.options.vogTarget == .predicted {
                let z = sr.models[latest].inferenceLogits(batch)
                for b in 0..<batch.size { target[b] = Int32((0..<L).max { z[b, $0] < z[b, $1] }!) }
            }
            var mean = Tensor(shape: [rows, C]), m2 = Tensor(shape: [rows, C])
            for (k, model) in sr.models.enumerated() {
                let g = model.inputEmbeddingGradients(batch, targets: target)
                ck_vog_accumulate(mean.mptr, m2.mptr, g.ptr, rows * C, Int32(k + 1))
            }
            var r = 0
            for b in 0..<batch.size {
                let cnt = lengths[b] * C
                vog[batch.indices[b]] = cnt > 0 ? ck_vog_sum_std(m2.ptr + r * C, cnt, Int32(K)) / Double(cnt) : 0
                r += lengths[b]
            }
        }
        var res = ScoreResult(method: .vog, scores: vog, table: table)
        res.notes = ["VoG over \(K) checkpoint(s): d z_\(sr.options.vogTarget == .predicted ? "predicted" : "y") / d inputs_embeds, population std over checkpoints, mean over real tokens and dims"]
        return res
    }
}
