import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// The Gram-form per-example gradient norms and dot products equal the materialised per-example
/// gradients (one backward per example), and both equal finite differences.
@Suite(.serialized) struct PerExampleGradientTests {
    let model: BertClassifier
    let data: EncodedDataset

    init() throws {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        model = try BertClassifier(folder: run.checkpoints.last!.url)
        let raw = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        data = try EncodedDataset(raw, tokenizer: BertTokenizer(folder: run.tokenizerFolder), labels: model.config.labels, maxLength: 32)
    }

    /// Materialised gradient of example i's own loss (batch of one, unit weight).
    func materialised(_ i: Int) -> ParameterStore {
        var g = model.parameters.zeros()
        model.lossAndGradients(data.batch([i]), grads: &g, weights: [1])
        return g
    }

    static func dot(_ a: ParameterStore, _ b: ParameterStore, _ names: [String]) -> Double {
        var s = 0.0
        for n in names {
            let x = a[n]!.values, y = b[n]!.values
            for k in x.indices { s += Double(x[k]) * Double(y[k]) }
        }
        return s
    }

    /// After a full forward and after the scores' pass (`perExampleLossBackward`: the last layer's dense
    /// parts on the [CLS] rows only).
    @Test(arguments: ["all", "classifier", "last-layer", "embeddings", "bert.encoder.layer.0.attention.output"], [false, true])
    func gramFormEqualsMaterialisedGradients(params: String, clsOnly: Bool) throws {
        let sel = try ParameterSelection(ParameterSelection.Spec(parsing: params)!, layout: model.parameterLayout)
        let idx = [3, 17, 42, 5, 99, 120, 7]          // different lengths, so the batch is padded
        let batch = data.batch(idx)
        if clsOnly {
            model.perExampleLossBackward(batch)
        } else {
            model.forward(batch)
            model.backwardPerExampleLosses(batch)
        }
        let f = model.gradientFactors(batch, selection: sel)
        var norms = [Float](repeating: 0, count: idx.count)
        f.addNorms(into: &norms, scale: 1)
        var dots = [Float](repeating: 0, count: idx.count * idx.count)
        dots.withUnsafeMutableBufferPointer { f.addDots(with: f, into: $0.baseAddress!, ldo: idx.count, scale: 1) }
        let g = idx.map { materialised($0) }
        for a in idx.indices {
            let want = Self.dot(g[a], g[a], sel.names)
            #expect(abs(Double(norms[a]) - want) <= 1e-4 * want + 1e-12, "\(params) norm of example \(idx[a]): \(norms[a]) vs \(want)")
            for b in idx.indices {
                let wd = Self.dot(g[a], g[b], sel.names)
                let got = Double(dots[a * idx.count + b])
                let scale = (Self.dot(g[a], g[a], sel.names) * Self.dot(g[b], g[b], sel.names)).squareRoot()
                #expect(abs(got - wd) <= 1e-4 * scale + 1e-12, "\(params) dot (\(idx[a]), \(idx[b])): \(got) vs \(wd)")
            }
        }
    }

    @Test func lastHiddenSpaceIsTheGradientOfThePooledVector() throws {
        let idx = [0, 1, 2]
        let batch = data.batch(idx)
        model.forward(batch)
        model.backwardPerExampleLosses(batch)
        let f = model.gradientFactors(batch, selection: nil, space: .lastHidden)
        var norms = [Float](repeating: 0, count: 3)
        f.addNorms(into: &norms, scale: 1)
        let d = model.workspace.dPooledDrop.values
        let C = model.config.hiddenSize
        for b in 0..<3 {
            let want = (0..<C).reduce(0.0) { $0 + Double(d[b * C + $1]) * Double(d[b * C + $1]) }
            #expect(abs(Double(norms[b]) - want) <= 1e-5 * want + 1e-12)
        }
    }

    @Test func materialisedGradientsEqualFiniteDifferences() throws {
        let i = 11
        let g = materialised(i)
        let batch = data.batch([i])
        // The largest-magnitude coordinates of a few tensors (float rounding swamps tiny ones).
        for name in ["classifier.weight", "bert.pooler.dense.weight", "bert.encoder.layer.1.output.dense.weight",
                     "bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.LayerNorm.weight"] {
            let t = model.parameters.index(of: name)!
            let vals = g[t].values
            let k = vals.indices.max { abs(vals[$0]) < abs(vals[$1]) }!
            let h: Float = 1e-2
            let orig = model.parameters.tensors[t].mptr[k]
            var scratch = model.parameters.zeros()
            model.parameters.tensors[t].mptr[k] = orig + h
            let lp = model.lossAndGradients(batch, grads: &scratch, weights: [1])
            model.parameters.tensors[t].mptr[k] = orig - h
            let lm = model.lossAndGradients(batch, grads: &scratch, weights: [1])
            model.parameters.tensors[t].mptr[k] = orig
            let fd = (lp - lm) / Double(2 * h)
            #expect(abs(fd - Double(vals[k])) <= 2e-3 * abs(fd) + 1e-5, "\(name)[\(k)]: backward \(vals[k]), finite difference \(fd)")
        }
    }
}
