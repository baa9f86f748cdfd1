import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Gradient factors of a batch without padding are views of the model's workspace (no copies); they
/// equal the materialised gradients, survive later passes of the same model (copy-on-write), and the
/// stacked Q/K/V entry equals the three layers taken one by one.
@Suite(.serialized) struct GradientFactorViewTests {
    let model: BertClassifier
    let data: EncodedDataset
    /// Examples that all have the same length (a batch of them has no padding).
    let sameLength: [Int]

    init() throws {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        model = try BertClassifier(folder: run.checkpoints.last!.url)
        let raw = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        data = try EncodedDataset(raw, tokenizer: BertTokenizer(folder: run.tokenizerFolder), labels: model.config.labels, maxLength: 32)
        var byLength: [Int: [Int]] = [:]
        for i in 0..<data.count { byLength[data.batch([i]).length, default: []].append(i) }
        sameLength = Array(byLength.values.filter { $0.count >= 3 }.max { $0.count < $1.count }!.prefix(5))
    }

    func norms(_ idx: [Int], _ sel: ParameterSelection) -> ([Float], GradientFactors) {
        let batch = data.batch(idx)
        model.forward(batch)
        model.backwardPerExampleLosses(batch)
        let f = model.gradientFactors(batch, selection: sel)
        var out = [Float](repeating: 0, count: idx.count)
        f.addNorms(into: &out, scale: 1)
        return (out, f)
    }

    func materialisedNorm(_ i: Int, _ sel: ParameterSelection) -> Double {
        var g = model.parameters.zeros()
        model.lossAndGradients(data.batch([i]), grads: &g, weights: [1])
        return PerExampleGradientTests.dot(g, g, sel.names)
    }

    @Test(arguments: ["all", "bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.1.attention.self"])
    func viewsOfAnUnpaddedBatchEqualMaterialisedGradients(params: String) throws {
        let sel = try ParameterSelection(ParameterSelection.Spec(parsing: params)!, layout: model.parameterLayout)
        let batch = data.batch(sameLength)
        #expect((0..<batch.size).allSatisfy { batch.realLength($0) == batch.length }, "the batch has no padding")
        let (got, f) = norms(sameLength, sel)
        let ws = model.workspace
        let inputs = [ws.x0.buffer] + ws.layers.map { $0.out.buffer }
        guard case let .linear(a, _, _, _, _)? = f.entries.first(where: { if case .linear = $0 { return true }; return false }) else {
            Issue.record("\(params): no linear entry"); return
        }
        #expect(inputs.contains { $0 === a.storage.buffer }, "an unpadded batch gives views of the workspace, not copies")
        for (k, i) in sameLength.enumerated() {
            let want = materialisedNorm(i, sel)
            #expect(abs(Double(got[k]) - want) <= 1e-4 * want + 1e-12, "\(params) example \(i): \(got[k]) vs \(want)")
        }
    }

    @Test func keptFactorsSurviveTheNextPass() throws {
        let sel = try ParameterSelection(ParameterSelection.Spec(parsing: "all")!, layout: model.parameterLayout)
        let (before, f) = norms(sameLength, sel)
        _ = norms([0, 1, 2, 3], sel)       // another batch through the same workspace
        var after = [Float](repeating: 0, count: sameLength.count)
        f.addNorms(into: &after, scale: 1)
        #expect(after == before)
    }
}
