import CKernels
import WinnowCore

/// Per-example cross-entropy [B] and softmax probabilities [B, L] of logits [B, L]; a label < 0 gives 0.
func crossEntropy(logits z: Tensor, labels: [Int32]) -> (losses: Tensor, probs: Tensor) {
    let B = z.shape[0], L = z.shape[1]
    precondition(labels.count == B, "crossEntropy: \(labels.count) labels for \(B) rows")
    var losses = Tensor(shape: [B]), probs = Tensor(shape: [B, L])
    labels.withUnsafeBufferPointer { y in
        ck_softmax_xent_forward(losses.mptr, probs.mptr, z.ptr, y.baseAddress, Int32(B), Int32(L))
    }
    return (losses, probs)
}
