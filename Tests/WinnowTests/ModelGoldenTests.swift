import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// The tiny BERT classifier against PyTorch/transformers golden values
/// (scripts/reference/make_model_golden.py; see Tests/Fixtures/README.md).
@Suite struct ModelGoldenTests {
    let golden: SafeTensorsFile
    let batch: Batch
    let checkpoint: URL

    init() throws {
        golden = try SafeTensorsFile(url: Paths.tinyBert.appendingPathComponent("golden.safetensors"))
        batch = try goldenBatch(golden)
        checkpoint = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run")).checkpoints.last!.url   // the golden values come from the last checkpoint
    }

    @Test func logitsPooledAndHiddenStatesMatchTransformers() throws {
        let model = try BertClassifier(folder: checkpoint)
        let logits = model.logits(batch)
        expectClose(logits.values, try golden.tensor("logits").values, atol: 1e-4, rtol: 0, "logits")
        expectClose(model.lastPooled.values, try golden.tensor("pooled").values, atol: 1e-4, rtol: 0, "pooled")
        expectClose(model.workspace.x0.values, try golden.tensor("hidden.0").values, atol: 1e-4, rtol: 0, "hidden.0")
        for l in 0..<model.config.numHiddenLayers {
            expectClose(model.workspace.layers[l].out.values, try golden.tensor("hidden.\(l + 1)").values, atol: 1e-4, rtol: 0, "hidden.\(l + 1)")
        }
    }

    @Test func parameterGradientsMatchTransformers() throws {
        let model = try BertClassifier(folder: checkpoint)
        var grads = model.parameters.zeros()
        let loss = model.lossAndGradients(batch, grads: &grads)
        #expect(abs(loss - Double(try golden.tensor("loss").values[0])) < 1e-5)
        for (name, g) in grads.named {
            let expected = try golden.tensor("grad.\(name)").values
            // The attention key bias has an exactly-zero gradient (softmax is shift-invariant), so both
            // sides are rounding noise there: compare such tensors absolutely.
            let err = relativeError(g.values, expected)
            #expect(err <= 1e-3 || maxAbs(expected) < 1e-6, "grad.\(name): relative error \(err)")
            expectClose(g.values, expected, atol: 1e-6, rtol: 1e-2, "grad.\(name)")
        }
    }

    @Test func inputsEmbedsGradientOfTrueLogitMatchesTransformers() throws {
        let model = try BertClassifier(folder: checkpoint)
        model.forward(batch)
        var dlogits = Tensor(shape: [batch.size, model.numLabels])
        for b in 0..<batch.size { dlogits[b, Int(batch.labels[b])] = 1 }
        var none: ParameterStore? = nil
        model.backward(dlogits: dlogits, grads: &none)
        let expected = try golden.tensor("inputs_embeds_grad").values
        let err = relativeError(model.inputsEmbedsGrad.values, expected)
        #expect(err <= 1e-3, "inputs_embeds_grad: relative error \(err)")
    }

    @Test(arguments: [Optimizer.Kind.adamw, .sgd])
    func threeOptimizerStepsMatchPyTorch(kind: Optimizer.Kind) throws {
        let model = try BertClassifier(folder: checkpoint)
        var opt = kind == .adamw
            ? Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
            : Optimizer(kind: .sgd, parameters: model.parameters, weightDecay: 0.01, momentum: 0.9, decayAll: true)
        var grads = model.parameters.zeros()
        for _ in 0..<3 {
            grads.zeroAll()
            model.lossAndGradients(batch, grads: &grads)
            opt.step(&model.parameters, grads: grads, lr: kind == .adamw ? 1e-3 : 0.1)
        }
        let prefix = kind == .adamw ? "adamw." : "sgd."
        let start = try BertClassifier(folder: checkpoint).parameters
        for (name, p) in model.parameters.named {
            if kind == .adamw && name.hasSuffix("attention.self.key.bias") {
                // The key bias has an exactly-zero gradient (softmax is shift-invariant): both sides hold
                // rounding noise, which AdamW's m / sqrt(v) turns into steps of up to lr in either
                // direction. What must hold is the bound: three steps move it by at most 3 lr.
                let moved = zip(p.values, start[name]!.values).map { abs($0 - $1) }.max()!
                #expect(moved <= 3 * 1e-3 * 1.001, "\(name) moved \(moved) in three steps of lr 1e-3")
                continue
            }
            expectClose(p.values, try golden.tensor(prefix + name).values, atol: 2e-5, rtol: 1e-3, prefix + name)
        }
    }

    @Test func paperHeadMatchesTransformers() throws {
        let dir = Paths.tinyBert.appendingPathComponent("paperhead")
        let g = try SafeTensorsFile(url: dir.appendingPathComponent("golden.safetensors"))
        let model = try BertClassifier(folder: dir)
        #expect(model.config.head == .paper)
        let b = try goldenBatch(g)
        expectClose(model.logits(b).values, try g.tensor("logits").values, atol: 1e-4, rtol: 0, "paper head logits")
        var grads = model.parameters.zeros()
        model.lossAndGradients(b, grads: &grads)
        for (name, t) in grads.named {
            let expected = try g.tensor("grad.\(name)").values
            let err = relativeError(t.values, expected)
            #expect(err <= 1e-3 || maxAbs(expected) < 1e-6, "paper head grad.\(name): relative error \(err)")
        }
    }

    @Test func halfPrecisionCheckpointsLoadAsFloat32() throws {
        let f32 = try SafeTensorsFile(url: checkpoint.appendingPathComponent("model.safetensors"))
        for dtype in ["f16", "bf16"] {
            let f = try SafeTensorsFile(url: Paths.tinyBert.appendingPathComponent("dtypes/model-\(dtype).safetensors"))
            let name = "bert.encoder.layer.0.attention.self.query.weight"
            let tol: Float = dtype == "f16" ? 1e-3 : 8e-3
            expectClose(try f.tensor(name).values, try f32.tensor(name).values, atol: 1e-4, rtol: tol, "\(dtype) \(name)")
        }
    }
}
