import Foundation
import WinnowCore
import WinnowData

/// The fields of a Hugging Face BERT `config.json` that shape the model, plus Winnow's head choice.
///
///     let config = try BertConfig(contentsOf: run.appendingPathComponent("config.json"))
public struct BertConfig: Sendable, Equatable {
    /// Which classifier head sits on the pooled vector.
    public enum Head: String, Sendable, CaseIterable, Codable {
        /// Hugging Face's single linear layer (`classifier.weight/bias`).
        case huggingFace = "hf"
        /// The paper's head: Linear(H,64), GELU, Linear(64,64), GELU, Linear(64,L) (`classifier.0/2/4`).
        case paper
    }

    /// Number of tokens in the vocabulary (`vocab_size`; default 30522).
    public var vocabSize = 30522
    /// Width of the hidden states (`hidden_size`; default 768), a multiple of `numAttentionHeads`.
    public var hiddenSize = 768
    /// Number of transformer layers (`num_hidden_layers`; default 12).
    public var numHiddenLayers = 12
    /// Attention heads per layer (`num_attention_heads`; default 12).
    public var numAttentionHeads = 12
    /// Width of the feed-forward layer (`intermediate_size`; default 3072).
    public var intermediateSize = 3072
    /// Activation (`hidden_act`): `gelu` or `gelu_python`, both the erf form.
    public var hiddenAct = "gelu"
    /// Dropout probability on hidden states (`hidden_dropout_prob`; default 0.1).
    public var hiddenDropoutProb: Float = 0.1
    /// Dropout probability on attention probabilities (`attention_probs_dropout_prob`; default 0.1).
    public var attentionProbsDropoutProb: Float = 0.1
    /// Dropout probability before the classifier head (`classifier_dropout`); nil: `hiddenDropoutProb`.
    public var classifierDropout: Float? = nil
    /// Longest sequence in tokens: rows of the position table (`max_position_embeddings`; default 512).
    public var maxPositionEmbeddings = 512
    /// Number of token types (segments) (`type_vocab_size`; default 2).
    public var typeVocabSize = 2
    /// Standard deviation of the normal initialisation of weights (`initializer_range`; default 0.02).
    public var initializerRange: Float = 0.02
    /// Epsilon of every LayerNorm (`layer_norm_eps`; default 1e-12).
    public var layerNormEps: Float = 1e-12
    /// Token id of padding, whose word-embedding row is initialised to zero (`pad_token_id`; default 0).
    public var padTokenID = 0
    /// Class names in index order (from `id2label`); empty for a bare encoder.
    public var labels: [String] = []
    /// Classifier head (`winnow_head`, written only for `paper`; default `huggingFace`).
    public var head: Head = .huggingFace
    /// `architectures[0]` as read (e.g. BertForSequenceClassification, BertModel, BertForMaskedLM).
    public var architecture: String? = nil
    /// Causal self-attention (transformers' `is_decoder`, as in BertLMHeadModel).
    public var isDecoder = false

    /// The defaults of transformers' `BertConfig` (BERT-base sizes), with no labels.
    public init() {}

    /// Head size of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// A small configuration convenient for tests and demos.
    public static func small(vocabSize: Int, hidden: Int = 128, layers: Int = 2, heads: Int = 4,
                             intermediate: Int? = nil, maxPositions: Int = 512) -> BertConfig {
        var c = BertConfig()
        c.vocabSize = vocabSize
        c.hiddenSize = hidden
        c.numHiddenLayers = layers
        c.numAttentionHeads = heads
        c.intermediateSize = intermediate ?? 4 * hidden
        c.maxPositionEmbeddings = maxPositions
        return c
    }

    /// Reads and validates a Hugging Face config.json.
    public init(contentsOf url: URL) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw WinnowError.missingFile(path: path, reason: "no config.json here")
        }
        let data = try Data(contentsOf: url)
        guard let obj = try? JSONSerialization.jsonObject(with: data), let d = obj as? [String: Any] else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not a JSON object")
        }
        try self.init(json: d, path: path)
    }

    init(json d: [String: Any], path: String) throws {
        func bad(_ key: String, _ why: String) -> WinnowError {
            .invalidFile(path: path, line: nil, reason: "field '\(key)': \(why)")
        }
        func int(_ key: String, _ def: Int) throws -> Int {
            guard let v = d[key], !(v is NSNull) else { return def }
            guard let n = v as? NSNumber, let x = Int(exactly: n.doubleValue) else { throw bad(key, "expected an integer, got \(v)") }
            guard let i = JSONObjectFile.integer(n) else { throw bad(key, "must be in 0...\(Int32.max), got \(x)") }
            return i
        }
        func float(_ key: String, _ def: Float?) throws -> Float? {
            guard let v = d[key], !(v is NSNull) else { return def }
            guard let n = v as? NSNumber else { throw bad(key, "expected a number, got \(v)") }
            return n.floatValue
        }
        if d["model_type"] as? String == "roberta" {
            throw bad("model_type", "'roberta' is not read: its tensors (roberta.*), positions (offset by the padding id) and byte-level tokenizer differ from BERT's")
        }
        if let mt = d["model_type"] as? String, mt != "bert" {
            throw bad("model_type", "'\(mt)' is not a model Winnow reads (bert for encoders; \(LlamaConfig.modelTypes.joined(separator: ", ")) for decoders)"
                      + (LlamaConfig.familyHints[mt].map { ": " + $0 } ?? ""))
        }
        vocabSize = try int("vocab_size", vocabSize)
        hiddenSize = try int("hidden_size", hiddenSize)
        numHiddenLayers = try int("num_hidden_layers", numHiddenLayers)
        numAttentionHeads = try int("num_attention_heads", numAttentionHeads)
        intermediateSize = try int("intermediate_size", intermediateSize)
        maxPositionEmbeddings = try int("max_position_embeddings", maxPositionEmbeddings)
        typeVocabSize = try int("type_vocab_size", typeVocabSize)
        padTokenID = try int("pad_token_id", padTokenID)
        hiddenDropoutProb = try float("hidden_dropout_prob", hiddenDropoutProb)!
        attentionProbsDropoutProb = try float("attention_probs_dropout_prob", attentionProbsDropoutProb)!
        classifierDropout = try float("classifier_dropout", nil)
        initializerRange = try float("initializer_range", initializerRange)!
        layerNormEps = try float("layer_norm_eps", layerNormEps)!
        if let act = d["hidden_act"] {
            guard let s = act as? String else { throw bad("hidden_act", "expected a string") }
            guard ["gelu", "gelu_python"].contains(s) else {
                throw bad("hidden_act", "'\(s)' is not supported; Winnow implements 'gelu' (erf form)")
            }
            hiddenAct = s
        }
        if let pe = d["position_embedding_type"] as? String, pe != "absolute" {
            throw bad("position_embedding_type", "'\(pe)' is not supported; only 'absolute'")
        }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw bad("hidden_size", "\(hiddenSize) must be a positive multiple of num_attention_heads (\(numAttentionHeads))")
        }
        if let archs = d["architectures"] as? [String] { architecture = archs.first }
        isDecoder = (d["is_decoder"] as? Bool) ?? false
        if let h = d["winnow_head"] as? String {
            guard let head = Head(rawValue: h) else { throw bad("winnow_head", "expected 'hf' or 'paper', got '\(h)'") }
            self.head = head
        }
        // Winnow's classifiers are single-label (softmax cross-entropy): another head would be read wrong.
        if let p = d["problem_type"] as? String, p == "regression" || p == "multi_label_classification" {
            throw bad("problem_type", "'\(p)' is not read: Winnow's classifiers are single-label (softmax cross-entropy over id2label)")
        }
        if let id2label = d["id2label"] {
            guard let m = id2label as? [String: Any] else { throw bad("id2label", "expected an object") }
            var pairs: [(Int, String)] = []
            for (k, v) in m {
                guard let i = Int(k), i >= 0 else { throw bad("id2label", "key '\(k)' is not an index") }
                guard let s = v as? String else { throw bad("id2label", "value for \(k) is not a string") }
                pairs.append((i, s))
            }
            pairs.sort { $0.0 < $1.0 }
            guard pairs.enumerated().allSatisfy({ $0.offset == $0.element.0 }) else {
                throw bad("id2label", "indices must be 0..<\(pairs.count)")
            }
            labels = pairs.map(\.1)
            if let twice = labels.first(where: { l in labels.filter { $0 == l }.count > 1 }) {
                throw bad("id2label", "the class name '\(twice)' is given twice: the classes could not be told apart")
            }
        } else if let n = d["num_labels"] as? Int {
            labels = (0..<n).map { "LABEL_\($0)" }
        }
    }

    /// The JSON object written as config.json; loads in transformers as `architecture`.
    public func json(architecture arch: String) -> [String: Any] {
        var d: [String: Any] = [
            "architectures": [arch],
            "is_decoder": isDecoder,
            "model_type": "bert",
            "vocab_size": vocabSize,
            "hidden_size": hiddenSize,
            "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads,
            "intermediate_size": intermediateSize,
            "hidden_act": hiddenAct,
            "hidden_dropout_prob": jsonNumber(hiddenDropoutProb),
            "attention_probs_dropout_prob": jsonNumber(attentionProbsDropoutProb),
            "max_position_embeddings": maxPositionEmbeddings,
            "type_vocab_size": typeVocabSize,
            "initializer_range": jsonNumber(initializerRange),
            "layer_norm_eps": jsonNumber(layerNormEps),
            "pad_token_id": padTokenID,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
            "classifier_dropout": classifierDropout.map { jsonNumber($0) as Any } ?? NSNull(),
        ]
        if !labels.isEmpty {
            d["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0.offset), $0.element) })
            d["label2id"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.element, $0.offset) })
        }
        if head == .paper { d["winnow_head"] = "paper" }
        return d
    }

    /// Writes config.json atomically.
    public func write(to url: URL, architecture: String = "BertForSequenceClassification") throws {
        let data = try JSONSerialization.data(withJSONObject: json(architecture: architecture), options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: url)
    }
}
