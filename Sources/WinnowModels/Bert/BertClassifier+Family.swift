import Foundation
import WinnowCore
import WinnowData

extension BertClassifier: SequenceClassifier {
    public var labelNames: [String] { config.labels }
    public var lastLogits: Tensor { workspace.logits }
    public var lastProbabilities: Tensor { workspace.probs }
    public var lastLosses: Tensor { workspace.losses }

    public var dimensions: ModelDimensions {
        ModelDimensions(layers: config.numHiddenLayers, hidden: config.hiddenSize, intermediate: config.intermediateSize,
                        heads: config.numAttentionHeads, vocabulary: config.vocabSize, maxPositions: config.maxPositionEmbeddings)
    }

    public var parameterLayout: ParameterLayout {
        ParameterLayout(names: parameters.names, layerPrefixes: (0..<config.numHiddenLayers).map { "bert.encoder.layer.\($0)." },
                        embeddingPrefixes: ["bert.embeddings."], headPrefixes: ["classifier."])
    }

    public func inferenceLogits(_ batch: Batch) -> Tensor { classLogits(batch) }
}
