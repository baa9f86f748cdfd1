import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// The inference forward (`logits`, `predict`: attention probabilities kept only in scratch, GELU input
/// not written back) gives the same logits, bit for bit, as the forward that keeps everything for a
/// backward, and a forward that keeps them still back-propagates the same way after it.
@Suite struct InferenceForwardTests {
    @Test func inferenceLogitsEqualTheKeepingForwardAndBackwardStillWorks() throws {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        let model = try BertClassifier(folder: run.checkpoints.last!.url)
        let raw = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        let data = try EncodedDataset(raw, tokenizer: BertTokenizer(folder: run.tokenizerFolder), labels: model.config.labels, maxLength: 32)
        let batch = data.batch(Array(0..<min(9, data.count)))   // padded: lengths differ
        let L = model.config.labels.count
        func gradient() -> [Float] {
            model.forward(batch)
            var dl = Tensor(shape: [batch.size, L])
            for b in 0..<batch.size { dl[b, Int(batch.labels[b])] = 1 }
            var none: ParameterStore? = nil
            model.backward(dlogits: dl, grads: &none)
            return Array(UnsafeBufferPointer(start: model.workspace.dInputsEmbeds.ptr, count: model.workspace.dInputsEmbeds.count))
        }
        let before = gradient()
        let kept = Array(UnsafeBufferPointer(start: model.forward(batch).ptr, count: batch.size * L))
        #expect(model.workspace.backwardReady)
        let inferred = Array(UnsafeBufferPointer(start: model.logits(batch).ptr, count: batch.size * L))
        #expect(!model.workspace.backwardReady)
        #expect(inferred == kept)
        // A keeping forward after an inference one restores everything the backward reads.
        #expect(gradient() == before)
    }

    /// `classLogits` runs the last layer after its attention on the [CLS] rows only: the same logits and
    /// pooled vectors as the full forward to float rounding (the GEMMs see B rows instead of B*T), for a
    /// padded batch; a full forward after it reads its own rows again (the row stride is reset).
    @Test func classLogitsEqualTheFullForward() throws {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        let model = try BertClassifier(folder: run.checkpoints.last!.url)
        #expect(model.config.numHiddenLayers >= 2)
        let raw = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        let data = try EncodedDataset(raw, tokenizer: BertTokenizer(folder: run.tokenizerFolder), labels: model.config.labels, maxLength: 32)
        let batch = data.batch(Array(0..<min(9, data.count)))
        let L = model.config.labels.count, C = model.config.hiddenSize
        let full = model.logits(batch).values, fullPooled = model.lastPooled.values
        let cls = model.classLogits(batch).values, clsPooled = model.lastPooled.values
        #expect(model.workspace.clsRowStride == C)
        #expect(full.count == batch.size * L && cls.count == full.count)
        expectClose(cls, full, atol: 1e-5, rtol: 1e-5, "logits")
        expectClose(clsPooled, fullPooled, atol: 1e-5, rtol: 1e-5, "pooled")
        #expect(cls != Array(repeating: 0, count: cls.count))
        #expect(model.logits(batch).values == full)
        #expect(model.workspace.clsRowStride == batch.length * C)
    }

    /// A training step whose last layer runs on the [CLS] rows only (forward and backward, dropout on,
    /// the masks of the rows' full positions) gives the full step's loss and every parameter gradient
    /// to rounding.
    @Test func clsOnlyTrainingGradientsEqualTheFullStep() throws {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        let model = try BertClassifier(folder: run.checkpoints.last!.url)
        let raw = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        let data = try EncodedDataset(raw, tokenizer: BertTokenizer(folder: run.tokenizerFolder), labels: model.config.labels, maxLength: 32)
        let batch = data.batch(Array(0..<min(9, data.count)))
        #expect(model.config.hiddenDropoutProb > 0)
        let L = model.config.labels.count
        func step(clsOnly: Bool) -> (logits: [Float], grads: ParameterStore) {
            let logits = model.forward(batch, training: true, seed: 11, clsOnly: clsOnly).values
            #expect(model.workspace.clsRowStride == (clsOnly ? model.config.hiddenSize : batch.length * model.config.hiddenSize))
            var dl = Tensor(shape: [batch.size, L])
            for b in 0..<batch.size { dl[b, Int(batch.labels[b])] = 1; dl[b, (Int(batch.labels[b]) + 1) % L] = -0.5 }
            var g: ParameterStore? = model.parameters.zeros()
            model.backward(dlogits: dl, grads: &g, training: true, seed: 11)
            return (logits, g!)
        }
        let full = step(clsOnly: false), cls = step(clsOnly: true)
        expectClose(cls.logits, full.logits, atol: 1e-5, rtol: 1e-5, "training logits")
        for name in full.grads.names {
            let a = cls.grads[name]!.values, b = full.grads[name]!.values
            let scale = b.map { abs($0) }.max() ?? 0
            expectClose(a, b, atol: max(1e-7, 1e-4 * scale), rtol: 1e-4, name)
        }
        #expect(full.grads.names.contains { $0.contains("layer.\(model.config.numHiddenLayers - 1).output.dense.weight") })
    }
}
