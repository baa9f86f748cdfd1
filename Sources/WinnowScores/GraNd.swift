import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// GraNd: || d CE / d theta_S ||_2 per example, averaged over the chosen checkpoints, computed from
/// per-layer gradient factors (Gram form) without materialising per-example gradients.
///
///     let r = try GraNd.score(run)
public enum GraNd {
    /// GraNd of every used example over the tensors `options.params` selects (or with respect to the vector the
    /// head reads, when `options.space` is `.lastHidden`).
    ///
    /// - Throws: `WinnowError.invalidOption` when `options.params` matches no tensor; `WinnowError` when the data
    ///   file is missing or malformed, or an example has no label.
    public static func score(_ sr: ScoringRun) throws -> ScoreResult {
        try sr.options.inPrecision(.grand) { try scoreF32(sr) }
    }

    static func scoreF32(_ sr: ScoringRun) throws -> ScoreResult {
        let K = Double(sr.models.count)
        let sel = try ParameterSelection(sr.options.params, layout: sr.models[0].parameterLayout)
        var grand: [Double] = []
        let table = try sr.stream("grand") { batch in
            ensureCount(&grand, batch.indices.max()! + 1)
            for model in sr.models {
                model.perExampleLossBackward(batch)
                let f = model.gradientFactors(batch, selection: sel, space: sr.options.space)
                var sq = [Float](repeating: 0, count: batch.size)
                f.addNorms(into: &sq, scale: 1)
                for b in 0..<batch.size { grand[batch.indices[b]] += Double(sq[b]).squareRoot() / K }
            }
        }
        var r = ScoreResult(method: .grand, scores: grand, table: table)
        r.notes = ["GraNd = ||dCE/dtheta||_2 over \(sr.options.space == .lastHidden ? "the head's input (BERT: the pooled [CLS] vector; a decoder classifier: the last real token's hidden state)" : "\(sel.names.count) tensor(s) (--params \(sel.spec))"), averaged over \(sr.models.count) checkpoint(s)"]
        return r
    }
}
