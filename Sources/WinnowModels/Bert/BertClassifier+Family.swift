import Foundation
import WinnowCore
import WinnowData

extension BertClassifier: SequenceClassifier {
    /// Class names in logit order (the config's `id2label`).
    public var labelNames: [String] { config.labels }
    /// Logits [B, L] of the last forward pass.
    public var lastLogits: Tensor { workspace.logits }
    /// Softmax probabilities [B, L] from the last cross-entropy (as in `lossAndGradients`).
    public var lastProbabilities: Tensor { workspace.probs }
    /// Per-example cross-entropy [B] from the last cross-entropy (as in `lossAndGradients`); 0 for unlabelled rows.
    public var lastLosses: Tensor { workspace.losses }

    /// Sizes from the config (`num_hidden_layers`, `hidden_size`, `intermediate_size`, ...).
    public var dimensions: ModelDimensions {
        ModelDimensions(layers: config.numHiddenLayers, hidden: config.hiddenSize, intermediate: config.intermediateSize,
                        heads: config.numAttentionHeads, vocabulary: config.vocabSize, maxPositions: config.maxPositionEmbeddings)
    }

    /// Layers `bert.encoder.layer.<i>.`, embeddings `bert.embeddings.`, head `classifier.`.
    public var parameterLayout: ParameterLayout {
        ParameterLayout(names: parameters.names, layerPrefixes: (0..<config.numHiddenLayers).map { "bert.encoder.layer.\($0)." },
                        embeddingPrefixes: ["bert.embeddings."], headPrefixes: ["classifier."])
    }

    /// Logits [B, L] in inference mode, from `classLogits` (the last layer on the [CLS] rows only).
    public func inferenceLogits(_ batch: Batch) -> Tensor { classLogits(batch) }
}
