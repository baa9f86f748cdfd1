import CKernels
import Foundation
import WinnowCore
import WinnowData

extension BertClassifier {
    /// Predicted class and probabilities for every example, in inference mode.
    public func predict(_ data: EncodedDataset, batchSize: Int = 64, progress: ProgressBar? = nil) -> (predictions: [Int32], probabilities: [[Float]]) {
        var preds = [Int32](repeating: 0, count: data.count)
        var probs = [[Float]](repeating: [], count: data.count)
        let L = numLabels
        for batch in data.batches(size: batchSize, order: data.sequentialOrder) {
            forward(batch, training: false, keepForBackward: false, clsOnly: true)
            ck_softmax_forward(workspace.probs.mptr, workspace.logits.ptr, Int32(batch.size), Int32(L))
            for b in 0..<batch.size {
                let row = (0..<L).map { workspace.probs[b, $0] }
                probs[batch.indices[b]] = row
                preds[batch.indices[b]] = Int32(row.indices.max { row[$0] < row[$1] }!)
            }
            progress?.advance(by: batch.size)
        }
        progress?.finish()
        return (preds, probs)
    }
}
