import Foundation
import WinnowCore
import WinnowData

/// What `Trainer` needs of a model: parameters, a loss with gradients, the last forward's outputs, saving.
public protocol ClassifierModel: AnyObject {
    associatedtype Input: ClassifierBatch
    var parameters: ParameterStore { get set }
    var labelNames: [String] { get }
    /// Mean cross-entropy over labelled rows (or the weighted sum with `weights` as dloss per row);
    /// accumulates parameter gradients.
    @discardableResult
    func lossAndGradients(_ batch: Input, grads: inout ParameterStore, training: Bool, seed: UInt64, weights: [Float]?) -> Double
    /// Logits [B, L], probabilities and per-row losses of the last `lossAndGradients`.
    var lastLogits: Tensor { get }
    var lastProbabilities: Tensor { get }
    var lastLosses: Tensor { get }
    /// Writes config.json and model.safetensors.
    func save(to folder: URL) throws
}

extension BertClassifier: ClassifierModel {
    public var labelNames: [String] { config.labels }
    public var lastLogits: Tensor { workspace.logits }
    public var lastProbabilities: Tensor { workspace.probs }
    public var lastLosses: Tensor { workspace.losses }
}
