import Foundation
import Testing
@testable import Winnow

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
}
