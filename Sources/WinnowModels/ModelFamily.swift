import CKernels
import Foundation
import WinnowCore
import WinnowData

// What the layers above (training, scores, reweighting, the experiment) need of a model. A model family
// is a set of files in this layer that conforms to these protocols, plus its tokenizer in the data layer;
// nothing above names a family's own types. Two families conform today: the BERT encoder (classifier and
// language models) and the MLP over numeric features (training only).

/// Sizes of a transformer, for memory estimates and reports.
public struct ModelDimensions: Sendable, Equatable {
    /// Number of transformer layers (`num_hidden_layers`).
    public var layers: Int
    /// Width of the hidden states (`hidden_size`).
    public var hidden: Int
    /// Width of the feed-forward layer (`intermediate_size`).
    public var intermediate: Int
    /// Attention heads per layer (`num_attention_heads`).
    public var heads: Int
    /// Number of tokens in the vocabulary (`vocab_size`).
    public var vocabulary: Int
    /// Longest sequence the model accepts (its position table).
    public var maxPositions: Int

    /// Creates dimensions from the given sizes.
    public init(layers: Int, hidden: Int, intermediate: Int, heads: Int, vocabulary: Int, maxPositions: Int) {
        self.layers = layers
        self.hidden = hidden
        self.intermediate = intermediate
        self.heads = heads
        self.vocabulary = vocabulary
        self.maxPositions = maxPositions
    }
}

/// Where a family's tensors live, by their Hugging Face names: what `first-layer`, `last-layer`,
/// `embeddings` and `classifier` of a `ParameterSelection` mean for this model.
public struct ParameterLayout: Sendable, Equatable {
    /// Every tensor name, in model order.
    public var names: [String]
    /// The name prefix of each transformer layer, first to last (`bert.encoder.layer.3.`).
    public var layerPrefixes: [String]
    /// Prefixes of the embedding tensors (`bert.embeddings.`).
    public var embeddingPrefixes: [String]
    /// Prefixes of the task head (`classifier.`); empty for a model without one.
    public var headPrefixes: [String]

    /// Creates a layout from the tensor names and the name prefixes of each role.
    public init(names: [String], layerPrefixes: [String], embeddingPrefixes: [String], headPrefixes: [String]) {
        self.names = names
        self.layerPrefixes = layerPrefixes
        self.embeddingPrefixes = embeddingPrefixes
        self.headPrefixes = headPrefixes
    }
}

/// Which gradient the per-example gradient scores take.
public enum GradientSpace: String, Sendable, CaseIterable, Codable {
    /// With respect to the selected parameters.
    case params
    /// With respect to the sequence representation the head reads (BERT: the pooled [CLS] vector; a decoder
    /// classifier: the last real token's hidden state).
    case lastHidden = "last-hidden"
}

/// A model the training loop can update and save.
public protocol TrainableModel: AnyObject {
    /// Every parameter under its Hugging Face name.
    var parameters: ParameterStore { get set }
    /// Writes config.json and model.safetensors into `folder`.
    func save(to folder: URL) throws
    /// The tensors training updates, by name; nil: every one (a LoRA adapter freezes the rest).
    var trainableTensors: ((String) -> Bool)? { get }
    /// Zeroed gradient buffers for training (empty ones for tensors that get no gradient).
    func gradientBuffers() -> ParameterStore
}

extension TrainableModel {
    /// Every tensor is trained.
    public var trainableTensors: ((String) -> Bool)? { nil }
    /// A zero gradient for every tensor.
    public func gradientBuffers() -> ParameterStore { parameters.zeros() }
}

/// A classifier that can be trained: parameters, a loss with gradients, the outputs of its last
/// forward, saving. The trainer speaks to this; the BERT classifier, the MLP and
/// `LlamaForSequenceClassification` conform.
public protocol ClassifierModel: TrainableModel {
    /// The batch type the model reads.
    associatedtype Input: ClassifierBatch
    /// Class names, in the order of the logits.
    var labelNames: [String] { get }
    /// Mean cross-entropy over labelled rows (or the weighted sum with `weights` as dloss per row);
    /// accumulates parameter gradients.
    @discardableResult
    func lossAndGradients(_ batch: Input, grads: inout ParameterStore, training: Bool, seed: UInt64, weights: [Float]?) -> Double
    /// Logits [B, L], probabilities and per-row losses of the last `lossAndGradients`.
    var lastLogits: Tensor { get }
    /// Softmax probabilities [B, L] of the last `lossAndGradients`.
    var lastProbabilities: Tensor { get }
    /// Per-row cross-entropy [B] of the last `lossAndGradients`.
    var lastLosses: Tensor { get }
}

/// A classifier that predicts classes in inference mode: every sequence classifier, and a decoder
/// classifier (`LlamaForSequenceClassification`), which `winnow eval` and `predict` read.
public protocol ClassPredictor: AnyObject, Sendable {
    /// Class names, in the order of the logits.
    var labelNames: [String] { get }
    /// Logits [B, L] in inference mode.
    func inferenceLogits(_ batch: Batch) -> Tensor
}

/// A classifier over token sequences: everything the per-example scores need of a model family.
///
/// Scores run it in inference mode (no dropout). The gradient scores call `perExampleLossBackward`, which
/// back-propagates each example's own cross-entropy computing data gradients only, then read the
/// per-layer factors A (inputs) and G (output gradients) of the selected tensors from `gradientFactors`:
/// norms and dot products of per-example gradients follow from them without materialising any.
///
///     let model = try ModelLoader.classifier(folder: URL(fileURLWithPath: "runs/rt/checkpoint-100"))
///     let logits = model.inferenceLogits(batch)                     // [B, L]
///
/// A model object owns the workspace its passes write into: use one model from one task at a time (load
/// another copy for concurrent work); Winnow itself splits each pass across the cores.
public protocol SequenceClassifier: ClassifierModel, ClassPredictor, Sendable where Input == Batch {
    /// Layer count and widths (memory estimates, reports).
    var dimensions: ModelDimensions { get }
    /// Where the family's tensors live (what `first-layer` etc. select).
    var parameterLayout: ParameterLayout { get }
    /// Logits [B, L] in inference mode, by the cheapest pass that gives them.
    func inferenceLogits(_ batch: Batch) -> Tensor
    /// Back-propagates the sum of per-example cross-entropies (each example's gradient is its own) in
    /// inference mode, computing data gradients only; `gradientFactors` reads what it leaves.
    func perExampleLossBackward(_ batch: Batch)
    /// Gradient factors of the selected tensors (`space` params) or of the head's input vector
    /// (`lastHidden`) after `perExampleLossBackward` on the same batch.
    func gradientFactors(_ batch: Batch, selection: ParameterSelection?, space: GradientSpace) -> GradientFactors
    /// d z_{targets[b]} / d inputs_embeds on the real tokens of each example, packed [tokens, hidden] in
    /// batch order (VoG's gradient), in inference mode.
    func inputEmbeddingGradients(_ batch: Batch, targets: [Int32]) -> Tensor
}

extension SequenceClassifier {
    /// Number of classes.
    public var numLabels: Int { labelNames.count }
}

extension ClassPredictor {
    /// Predicted class and probabilities for every example, in inference mode. Batches run longest
    /// first (less padding); the results are in input order.
    ///
    ///     let (predicted, probabilities) = try model.predict(encoded)
    ///
    /// - Throws: `WinnowError.invalidOption` naming `maxLength` when an example is longer than the model's
    ///   positions (`dimensions.maxPositions`: encode with a `maxLength` at most that), `data` when a token id
    ///   is outside its vocabulary (`EncodedDataset.checkFits`), or `batchSize` when it is not positive.
    public func predict(_ data: EncodedDataset, batchSize: Int = 64,
                        progress: (any ProgressTask)? = nil) throws -> (predictions: [Int32], probabilities: [[Float]]) {
        guard batchSize > 0 else { throw WinnowError.invalidOption(name: "batchSize", reason: "\(batchSize) is not positive") }
        if let m = self as? any SequenceClassifier { try data.checkFits(vocabulary: m.dimensions.vocabulary, positions: m.dimensions.maxPositions) }
        var preds = [Int32](repeating: 0, count: data.count)
        var probs = [[Float]](repeating: [], count: data.count)
        for batch in data.batches(size: batchSize, order: data.longestFirstOrder) {
            let p = softmax(inferenceLogits(batch))
            let L = p.shape[1]
            for b in 0..<batch.size {
                let row = (0..<L).map { p[b, $0] }
                probs[batch.indices[b]] = row
                preds[batch.indices[b]] = Int32(row.indices.max { row[$0] < row[$1] }!)
            }
            progress?.advance(by: batch.size)
        }
        progress?.finish()
        return (preds, probs)
    }
}

/// A language model that can be pre-trained plainly or with PRESENCE: per-sample losses, a data-only
/// backward, parameter gradients of any per-sample weighting of the losses from that one backward, and
/// the self-influence of sample groups from the same pass (Gram form).
public protocol LanguageModel: TrainableModel, Sendable {
    /// Masked or causal language modelling.
    var objective: LMObjective { get }
    /// Where the family's tensors live (what `first-layer` etc. select).
    var parameterLayout: ParameterLayout { get }
    /// Rows of the embedding table (`vocab_size`): token ids run below it.
    var vocabularySize: Int { get }
    /// Longest sequence the model accepts (its position table, or a decoder's context).
    var maxSequenceLength: Int { get }
    /// Per-sample mean token loss of the last forward (0 for samples without targets).
    var sampleLosses: [Double] { get }
    /// Number of target tokens per sample in the last forward.
    var sampleTargets: [Int] { get }
    /// Forward pass; returns the mean over samples (with targets) of their mean token loss.
    @discardableResult
    func forward(_ batch: LMBatch, training: Bool, seed: UInt64) -> Double
    /// Data-only backward of the unweighted per-sample losses of the last forward.
    func backwardPerSample(training: Bool, seed: UInt64)
    /// Adds the parameter gradients of sum_b v_b L_b to `grads` from the last `backwardPerSample`.
    func accumulateGradients(sampleWeights: [Float], into grads: inout ParameterStore)
    /// Squared gradient norm of each group's mean loss over the selected tensors, from the last
    /// `backwardPerSample`; group g holds samples groups[g]..<groups[g+1].
    func groupGradientNorms(_ batch: LMBatch, selection: ParameterSelection, groups: [Int]) -> [Double]
    /// The tensors `spec` selects, refusing those the Gram form cannot use for self-influence.
    func selfInfluenceSelection(_ spec: ParameterSelection.Spec) throws -> ParameterSelection
}

/// A causal language model the perplexity-style scores read: each example's mean next-token loss.
/// Llama-architecture decoders conform.
public protocol CausalLanguageModel: AnyObject, Sendable {
    /// Longest sequence the model accepts.
    var maxSequenceLength: Int { get }
    /// Rows of the embedding table (`vocab_size`): token ids run below it.
    var vocabularySize: Int { get }
    /// Each example's mean next-token cross-entropy (nats) over its real tokens, and its number of
    /// predicted tokens, in inference mode.
    func sampleLosses(_ batch: Batch) -> (losses: [Double], targets: [Int])
}

/// Row-wise softmax of logits [B, L].
func softmax(_ z: Tensor) -> Tensor {
    var p = Tensor(uninitializedShape: z.shape)
    ck_softmax_forward(p.mptr, z.ptr, Int32(z.shape[0]), Int32(z.shape[1]))
    return p
}

/// A Float config value as the JSON number that reads back as it (0.1, not 0.10000000149011612).
func jsonNumber(_ f: Float) -> Double { Double(f.description) ?? Double(f) }
