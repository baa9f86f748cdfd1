import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// EL2N (Paul et al. 2021): || softmax(z) - onehot(y) ||_2, averaged over the chosen checkpoints,
/// in inference mode. The same pass gives the mean cross-entropy (`loss`) and the mean margin
/// z_y - max_{j != y} z_j (`margin`; its score is -margin so that higher means harder).
///
///     let (el2n, loss, margin) = try EL2N.score(scoringRun)   // three ScoreResults from one pass
public enum EL2N {
    /// EL2N, loss and margin of every used example of the run's data, from one inference pass per checkpoint.
    ///
    /// - Throws: `WinnowError` when the data file is missing or malformed, or an example has no label.
    public static func score(_ sr: ScoringRun) throws -> (el2n: ScoreResult, loss: ScoreResult, margin: ScoreResult) {
        try sr.options.inPrecision(.el2n) { try scoreInPrecision(sr) }
    }

    static func scoreInPrecision(_ sr: ScoringRun) throws -> (el2n: ScoreResult, loss: ScoreResult, margin: ScoreResult) {
        let K = Double(sr.models.count), L = sr.models[0].numLabels
        var el2n: [Double] = [], loss: [Double] = [], margin: [Double] = []
        let table = try sr.stream("el2n") { batch in
            let n = batch.indices.max()! + 1
            ensureCount(&el2n, n); ensureCount(&loss, n); ensureCount(&margin, n)
            for model in sr.models {
                let z = model.inferenceLogits(batch)
                let (losses, probs) = crossEntropy(logits: z, labels: batch.labels)
                for b in 0..<batch.size {
                    let i = batch.indices[b], y = Int(batch.labels[b])
                    var s = 0.0, other = -Double.infinity
                    for j in 0..<L {
                        let d = Double(probs[b, j]) - (j == y ? 1 : 0)
                        s += d * d
                        if j != y { other = max(other, Double(z[b, j])) }
                    }
                    el2n[i] += s.squareRoot() / K
                    loss[i] += Double(losses[b]) / K
                    margin[i] += (Double(z[b, y]) - (L > 1 ? other : 0)) / K
                }
            }
        }
        var r1 = ScoreResult(method: .el2n, scores: el2n, table: table)
        r1.notes = ["EL2N = ||p - onehot(y)||_2 averaged over \(sr.models.count) checkpoint(s), inference mode"]
        var r2 = ScoreResult(method: .loss, scores: loss, table: table)
        r2.notes = ["loss = cross-entropy averaged over \(sr.models.count) checkpoint(s)"]
        var r3 = ScoreResult(method: .margin, scores: margin.map { -$0 }, table: table)
        r3.components = [("margin", margin)]
        r3.notes = ["score = -margin (higher = harder); margin = z_y - max_{j != y} z_j averaged over checkpoints"]
        return (r1, r2, r3)
    }
}
