import Foundation
import WinnowCore

/// The configuration of a Llama-architecture decoder (Llama, SmolLM2; Qwen2's q/k/v biases with
/// `attentionBias`; Qwen3's per-head q and k norms with `qkNorm`; Gemma 3's conventions with `gemma`), read from
/// a Hugging Face `config.json` or a GGUF file's `llama.*` metadata.
///
///     let c = try LlamaConfig(contentsOf: folder.appendingPathComponent("config.json"))
public struct LlamaConfig: Sendable, Equatable {
    /// Number of tokens (`vocab_size`).
    public var vocabSize = 32000
    /// Width of the residual stream (`hidden_size`).
    public var hiddenSize = 4096
    /// Width of the SwiGLU feed-forward (`intermediate_size`).
    public var intermediateSize = 11008
    /// Decoder layers (`num_hidden_layers`).
    public var numHiddenLayers = 32
    /// Query heads (`num_attention_heads`).
    public var numAttentionHeads = 32
    /// Key/value heads (`num_key_value_heads`); fewer than the query heads is grouped-query attention.
    public var numKeyValueHeads = 32
    /// Dimensions per head (`head_dim`; hidden / heads when absent).
    public var headDim = 128
    /// RMSNorm epsilon (`rms_norm_eps`).
    public var rmsNormEps: Float = 1e-6
    /// RoPE base (`rope_theta`, or `rope_parameters.rope_theta`).
    public var ropeTheta: Float = 10000
    /// Longest sequence (`max_position_embeddings`).
    public var maxPositionEmbeddings = 2048
    /// The attention window (`sliding_window`; Mistral's on every layer, Gemma 3's on its local layers), nil when
    /// there is none: a query sees itself and the window - 1 keys before it.
    public var slidingWindow: Int?
    /// The longest sequence Winnow runs: the position table.
    public var maxSequenceLength: Int { maxPositionEmbeddings }
    /// The attention window of layer `i`: Mistral's on every layer, Gemma's and Qwen's on their local layers; nil for
    /// full causal attention.
    public func attentionWindow(_ i: Int) -> Int? { slidingLayers.isEmpty ? slidingWindow : (isSliding(i) ? slidingWindow : nil) }
    /// Whether the LM head shares the embedding matrix (`tie_word_embeddings`).
    public var tieWordEmbeddings = false
    /// Biases on the q, k and v projections (`attention_bias`; Qwen2 has them).
    public var attentionBias = false
    /// An RMSNorm over each query and key head before the rotation (Qwen3's `q_norm` and `k_norm`, weights of
    /// `head_dim`).
    public var qkNorm = false
    /// Gemma 3's conventions (`model_type` gemma3_text): every RMSNorm scales by 1 + weight, the embeddings are
    /// multiplied by sqrt(hidden), the MLP gates with GELU in tanh form (`gelu_pytorch_tanh`), the attention's and
    /// the MLP's outputs are RMS-normalised before the residual (`post_attention_layernorm`,
    /// `post_feedforward_layernorm`; the MLP's input norm is `pre_feedforward_layernorm`), q and k per head too.
    public var gemma = false
    /// The attention's scores are scaled by 1 / sqrt of this (Gemma's `query_pre_attn_scalar`; head_dim otherwise).
    public var queryPreAttnScalar: Float?
    /// The local layers (`layer_types` "sliding_attention": Gemma 3's, and Qwen's with `use_sliding_window`), one flag
    /// per layer; empty when every layer is global (or, with a window, every layer local: Mistral).
    public var slidingLayers: [Bool] = []
    /// RoPE base of the local layers (Gemma 3's `rope_local_base_freq`, or `rope_parameters.sliding_attention`).
    public var localRopeTheta: Float = 10000
    /// The padding id (`pad_token_id`), which sequence classification pools before.
    public var padTokenID: Int?
    /// Class names of a sequence classifier (`id2label` in id order); empty for a language model.
    public var labels: [String] = []
    /// `architectures[0]` as read.
    public var architecture: String?
    /// `model_type` as read (llama, mistral, qwen2, qwen3 or gemma3_text); written back, with the family's class names.
    public var modelType = "llama"
    /// `bos_token_id` as read, written back unchanged.
    public var bosTokenID: Int?
    /// Whether config.json gave `bos_token_id` as null (written back as null, not left to the family's default).
    public var nullBOS = false
    /// `eos_token_id` as read (one id or several), written back unchanged.
    public var eosTokenIDs: [Int] = []

    /// The `model_type`s of config.json read as this architecture.
    public static let modelTypes = ["llama", "mistral", "qwen2", "qwen3", "gemma3_text"]

    /// What sets apart a near family Winnow does not read, by `model_type` (said with the refusal).
    public static let familyHints: [String: String] = [
        "gemma3": "the multimodal Gemma 3 (Gemma3ForConditionalGeneration, 4B and up: its language model's tensors are under language_model.*, and its global layers scale RoPE); the text-only Gemma 3 models (gemma3_text: 270M, 1B) are read",
        "gemma2": "Gemma 2 soft-caps its attention scores and logits, which Winnow does not implement; Gemma 3 (gemma3_text) is read",
        "gemma": "Gemma 1 is not implemented; Gemma 3 (gemma3_text) is read",
        "phi3": "Phi-3's fused qkv_proj and gate_up_proj are not implemented",
    ]

    /// A configuration with the defaults above.
    public init() {}

    /// Query width: heads x head dimension.
    public var queryWidth: Int { numAttentionHeads * headDim }
    /// Key/value width: key/value heads x head dimension.
    public var keyValueWidth: Int { numKeyValueHeads * headDim }
    /// The factor on q . k: 1 / sqrt(query_pre_attn_scalar) for Gemma, 1 / sqrt(head_dim) otherwise.
    public var attentionScale: Float { 1 / (queryPreAttnScalar ?? Float(headDim)).squareRoot() }
    /// The embeddings' factor: sqrt(hidden) rounded to F32 for Gemma (as transformers' `embed_scale`), else 1.
    public var embeddingScale: Float { gemma ? Float(Double(hiddenSize).squareRoot()) : 1 }
    /// Whether layer `i` is a local (sliding-window) layer; a Gemma's rotates with `localRopeTheta`.
    public func isSliding(_ i: Int) -> Bool { i < slidingLayers.count && slidingLayers[i] }

    /// Reads a Hugging Face `config.json` of `model_type` llama, mistral, qwen2, qwen3 or gemma3_text.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the field that is missing or wrong.
    public init(contentsOf url: URL) throws {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw WinnowError.missingFile(path: path, reason: "no config.json here") }
        guard let d = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not a JSON object")
        }
        func bad(_ key: String, _ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: "field '\(key)': \(why)") }
        func int(_ key: String, _ def: Int? = nil) throws -> Int {
            guard let v = d[key], !(v is NSNull) else {
                if let def { return def }
                throw bad(key, "missing")
            }
            guard let i = JSONObjectFile.integer(v, in: 1...Int(Int32.max)) else { throw bad(key, "expected an integer in 1...\(Int32.max), got \(v)") }
            return i
        }
        func float(_ v: Any?, _ key: String) throws -> Float? {
            guard let v, !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, n.doubleValue.isFinite, n.doubleValue > 0 else { throw bad(key, "expected a positive number, got \(v)") }
            return n.floatValue
        }
        if let mt = d["model_type"] as? String, !Self.modelTypes.contains(mt) {
            throw bad("model_type", "'\(mt)' is not a Llama-architecture model (\(Self.modelTypes.joined(separator: ", ")))" + (Self.familyHints[mt].map { ": " + $0 } ?? ""))
        }
        let isGemma = d["model_type"] as? String == "gemma3_text"
        vocabSize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = try int("num_key_value_heads", numAttentionHeads)
        // Gemma3TextConfig's defaults where config.json leaves a key out.
        headDim = try int("head_dim", isGemma ? 256 : hiddenSize / numAttentionHeads)
        maxPositionEmbeddings = try int("max_position_embeddings", isGemma ? 131_072 : 2048)
        rmsNormEps = try float(d["rms_norm_eps"], "rms_norm_eps") ?? 1e-6
        if isGemma {
            try readGemma(d, bad: bad, int: int, float: float)
        } else {
            ropeTheta = try float(d["rope_theta"] ?? (d["rope_parameters"] as? [String: Any])?["rope_theta"], "rope_theta") ?? 10000
            if let rp = d["rope_parameters"] as? [String: Any], let t = rp["rope_type"] as? String, t != "default" {
                throw bad("rope_parameters", "rope_type '\(t)' is not supported (default is)")
            }
        }
        if let rs = d["rope_scaling"] as? [String: Any], !rs.isEmpty, (rs["rope_type"] as? String ?? rs["type"] as? String) != "default" {
            throw bad("rope_scaling", "RoPE scaling is not supported")
        }
        if d["use_sliding_window"] as? Bool == true {
            // Qwen2's and Qwen3's: a window of sliding_window keys on the layers from max_window_layers up (or as
            // layer_types says).
            guard ["qwen2", "qwen3"].contains(d["model_type"] as? String ?? "") else {
                throw bad("use_sliding_window", "is Qwen2's and Qwen3's key; on a \(d["model_type"] as? String ?? "llama") model it is not read")
            }
            slidingWindow = try int("sliding_window", 4096)
            guard slidingWindow! >= 2 else { throw bad("sliding_window", "must be at least 2") }
            if let types = d["layer_types"] as? [String] {
                guard types.count == numHiddenLayers else { throw bad("layer_types", "\(types.count) entries for \(numHiddenLayers) layers") }
                if let other = types.first(where: { $0 != "full_attention" && $0 != "sliding_attention" }) {
                    throw bad("layer_types", "'\(other)' layers are not supported (full_attention and sliding_attention are)")
                }
                slidingLayers = types.map { $0 == "sliding_attention" }
            } else {
                let first = (d["max_window_layers"] as? NSNumber)?.intValue ?? 28
                guard first >= 0 else { throw bad("max_window_layers", "must be at least 0") }
                slidingLayers = (0..<numHiddenLayers).map { $0 >= first }
            }
        }
        if d["model_type"] as? String == "mistral", d["sliding_window"] != nil, !(d["sliding_window"] is NSNull) {
            slidingWindow = try int("sliding_window")
            guard slidingWindow! >= 2 else { throw bad("sliding_window", "must be at least 2") }
        }
        if d["mlp_bias"] as? Bool == true { throw bad("mlp_bias", "biases on the MLP projections are not supported") }
        tieWordEmbeddings = d["tie_word_embeddings"] as? Bool ?? isGemma
        modelType = d["model_type"] as? String ?? "llama"
        // Qwen2 has q/k/v biases and none on o_proj; Llama's and Mistral's attention_bias puts one on all four.
        attentionBias = modelType == "qwen2"
        qkNorm = modelType == "qwen3" || gemma
        if !isGemma, d["use_sliding_window"] as? Bool != true, let types = d["layer_types"] as? [String],
           let other = types.first(where: { $0 != "full_attention" }) {
            throw bad("layer_types", "'\(other)' layers are not supported (full_attention is)")
        }
        if modelType != "qwen2" && d["attention_bias"] as? Bool == true {
            throw bad("attention_bias", "on a \(modelType) model it also puts a bias on o_proj, which Winnow does not implement (Qwen2's q/k/v biases it does)")
        }
        bosTokenID = (d["bos_token_id"] as? NSNumber)?.intValue
        nullBOS = d["bos_token_id"] is NSNull
        if let e = d["eos_token_id"] as? NSNumber { eosTokenIDs = [e.intValue] } else if let e = d["eos_token_id"] as? [NSNumber] { eosTokenIDs = e.map(\.intValue) }
        if isGemma {
            let key = d["hidden_activation"] is String ? "hidden_activation" : "hidden_act"
            if let act = d[key] as? String, act != "gelu_pytorch_tanh" { throw bad(key, "'\(act)' is not supported on Gemma 3 (gelu_pytorch_tanh is)") }
        } else if let act = d["hidden_act"] as? String, act != "silu" { throw bad("hidden_act", "'\(act)' is not supported (silu is)") }
        padTokenID = (d["pad_token_id"] as? NSNumber)?.intValue
        architecture = (d["architectures"] as? [String])?.first
        if let id2label = d["id2label"] as? [String: Any], architecture?.hasSuffix("ForSequenceClassification") == true {
            labels = try (0..<id2label.count).map { i in
                guard let name = id2label[String(i)] as? String else { throw bad("id2label", "no label for id \(i)") }
                return name
            }
        }
        try validate(path: path)
    }

    /// Reads the `ARCH.*` metadata of a GGUF file of architecture llama, qwen2, qwen3 or gemma3 (as transformers maps
    /// it to LlamaConfig; Qwen2's q/k/v biases and Qwen3's q and k norms by the architecture, the head dimension from
    /// `ARCH.attention.key_length`; Gemma 3 as llama.cpp runs it: every sixth layer global, the others local with
    /// RoPE base 10000 and a window of `gemma3.attention.sliding_window`, scores scaled by 1 / sqrt(head_dim), or by
    /// 1 / sqrt(hidden / heads) for the 62-layer model).
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or wrong.
    package init(gguf f: GGUFFile) throws {
        let path = f.url.path
        let arch = f.metadata["general.architecture"]?.string ?? ""
        guard ["llama", "qwen2", "qwen3", "gemma3"].contains(arch) else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "key 'general.architecture': '\(arch)' is not supported (llama, qwen2, qwen3 and gemma3 are)")
        }
        func int(_ key: String) throws -> Int {
            guard let v = f.metadata[arch + "." + key]?.int, v > 0 else {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "key '\(arch).\(key)': missing or not a positive integer")
            }
            return v
        }
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        numHiddenLayers = try int("block_count")
        numAttentionHeads = try int("attention.head_count")
        numKeyValueHeads = (try? int("attention.head_count_kv")) ?? numAttentionHeads
        maxPositionEmbeddings = try int("context_length")
        headDim = (try? int("attention.key_length")) ?? (try? int("rope.dimension_count")) ?? hiddenSize / numAttentionHeads
        vocabSize = (try? int("vocab_size")) ?? f.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        rmsNormEps = Float(f.metadata[arch + ".attention.layer_norm_rms_epsilon"]?.double ?? 1e-6)
        ropeTheta = Float(f.metadata[arch + ".rope.freq_base"]?.double ?? 10000)
        modelType = arch
        attentionBias = arch == "qwen2"
        qkNorm = arch == "qwen3"
        tieWordEmbeddings = f.info("output.weight") == nil
        if arch == "gemma3" {
            modelType = "gemma3_text"
            gemma = true
            qkNorm = true
            ropeTheta = Float(f.metadata["gemma3.rope.freq_base"]?.double ?? 1_000_000)
            localRopeTheta = 10000
            queryPreAttnScalar = Float(numHiddenLayers == 62 ? hiddenSize / numAttentionHeads : headDim)
            slidingLayers = (0..<numHiddenLayers).map { ($0 + 1) % 6 != 0 }
            slidingWindow = max(2, f.metadata["gemma3.attention.sliding_window"]?.int ?? 4096)
            if let t = f.metadata["gemma3.rope.scaling.type"]?.string, t != "none" {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "key 'gemma3.rope.scaling.type': RoPE scaling '\(t)' is not supported")
            }
        }
        bosTokenID = f.metadata["tokenizer.ggml.bos_token_id"]?.int
        eosTokenIDs = f.metadata["tokenizer.ggml.eos_token_id"]?.int.map { [$0] } ?? []
        architecture = "LlamaForCausalLM"
        try validate(path: path)
    }

    /// Gemma 3's keys (Gemma3TextConfig): local and global layers, each kind's RoPE base (`rope_parameters` by layer
    /// type, or the older `rope_theta` and `rope_local_base_freq`), `query_pre_attn_scalar`; the soft-capping,
    /// bidirectional and RoPE-scaling variants are refused by name.
    private mutating func readGemma(_ d: [String: Any], bad: (String, String) -> WinnowError, int: (String, Int?) throws -> Int,
                                    float: (Any?, String) throws -> Float?) throws {
        gemma = true
        qkNorm = true
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] where d[key] != nil && !(d[key] is NSNull) {
            throw bad(key, "soft-capping is not supported (Gemma 3 has none: null)")
        }
        if d["use_bidirectional_attention"] as? Bool == true {
            throw bad("use_bidirectional_attention", "bidirectional attention (EmbeddingGemma) is not supported")
        }
        queryPreAttnScalar = try float(d["query_pre_attn_scalar"], "query_pre_attn_scalar") ?? 256
        ropeTheta = 1_000_000
        localRopeTheta = 10000
        if let rp = d["rope_parameters"] as? [String: Any] {
            for (kind, key) in [("full_attention", "global"), ("sliding_attention", "local")] {
                guard let p = rp[kind] as? [String: Any] else { continue }
                if let t = p["rope_type"] as? String, t != "default" {
                    throw bad("rope_parameters", "\(kind): rope_type '\(t)' is not supported (default is)")
                }
                if let t = try float(p["rope_theta"], "rope_parameters.\(kind).rope_theta") { if key == "global" { ropeTheta = t } else { localRopeTheta = t } }
            }
        } else {
            ropeTheta = try float(d["rope_theta"], "rope_theta") ?? 1_000_000
            localRopeTheta = try float(d["rope_local_base_freq"], "rope_local_base_freq") ?? 10000
        }
        if let rs = d["rope_scaling"] as? [String: Any], !rs.isEmpty, (rs["rope_type"] as? String ?? rs["type"] as? String) != "default" {
            throw bad("rope_scaling", "RoPE scaling is not supported")
        }
        if let types = d["layer_types"] as? [String] {
            guard types.count == numHiddenLayers else { throw bad("layer_types", "\(types.count) entries for \(numHiddenLayers) layers") }
            if let other = types.first(where: { $0 != "full_attention" && $0 != "sliding_attention" }) {
                throw bad("layer_types", "'\(other)' layers are not supported (full_attention and sliding_attention are)")
            }
            slidingLayers = types.map { $0 == "sliding_attention" }
        } else {
            // Gemma3TextConfig's rule: every sliding_window_pattern-th layer is global.
            let pattern = try int(d["sliding_window_pattern"] != nil ? "sliding_window_pattern" : "_sliding_window_pattern", 6)
            slidingLayers = (0..<numHiddenLayers).map { ($0 + 1) % pattern != 0 }
        }
        // Local layers see a window of sliding_window tokens (the query and the window - 1 before it).
        if slidingLayers.contains(true), d["sliding_window"] != nil, !(d["sliding_window"] is NSNull) {
            slidingWindow = try int("sliding_window", nil)
            guard slidingWindow! >= 2 else { throw bad("sliding_window", "must be at least 2") }
        }
        if slidingLayers.contains(true) && slidingWindow == nil { slidingWindow = 4096 }
    }

    func validate(path: String) throws {
        func bad(_ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: why) }
        guard vocabSize > 0 else { throw bad("the vocabulary size is unknown") }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw bad("\(numAttentionHeads) attention heads are not a multiple of \(numKeyValueHeads) key/value heads")
        }
        guard headDim % 2 == 0, headDim <= 1024 else { throw bad("head dimension \(headDim) is not even (or above 1024)") }
    }

    /// The `config.json` Winnow writes (transformers' LlamaConfig keys).
    public func json(architecture arch: String) -> [String: Any] {
        var d: [String: Any] = [
            "architectures": [arch], "model_type": "llama", "vocab_size": vocabSize, "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize, "num_hidden_layers": numHiddenLayers, "num_attention_heads": numAttentionHeads,
            "num_key_value_heads": numKeyValueHeads, "head_dim": headDim, "rms_norm_eps": jsonNumber(rmsNormEps),
            "rope_theta": jsonNumber(ropeTheta), "max_position_embeddings": maxPositionEmbeddings, "tie_word_embeddings": tieWordEmbeddings,
            "attention_bias": attentionBias, "hidden_act": "silu", "mlp_bias": false, "torch_dtype": "float32",
        ]
        // A Mistral without a window says so (MistralConfig's default is a window of 4096).
        if modelType == "mistral" { d["sliding_window"] = slidingWindow.map { $0 as Any } ?? NSNull() }
        // The family's own names, so transformers builds the same model (a Qwen2 written as a Llama would get an o_proj bias).
        d["model_type"] = modelType
        let family = ["mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"][modelType] ?? "Llama"
        d["architectures"] = [arch.replacingOccurrences(of: "Llama", with: family)]
        if modelType == "qwen2" { d["attention_bias"] = nil }
        if !gemma && !slidingLayers.isEmpty {
            // Qwen's window, with the layers it covers as transformers 5 writes them.
            d["use_sliding_window"] = true
            d["sliding_window"] = slidingWindow
            d["layer_types"] = (0..<numHiddenLayers).map { isSliding($0) ? "sliding_attention" : "full_attention" }
            d["max_window_layers"] = slidingLayers.firstIndex(of: true) ?? numHiddenLayers
        }
        if gemma {
            // Gemma3TextConfig's keys, the RoPE bases both as transformers 5 and as 4.x read them.
            d["architectures"] = [arch.replacingOccurrences(of: "LlamaForSequenceClassification", with: "Gemma3TextForSequenceClassification")
                                      .replacingOccurrences(of: "LlamaForCausalLM", with: "Gemma3ForCausalLM")]
            d["hidden_act"] = nil
            d["hidden_activation"] = "gelu_pytorch_tanh"
            d["query_pre_attn_scalar"] = jsonNumber(queryPreAttnScalar ?? Float(headDim))
            d["layer_types"] = (0..<numHiddenLayers).map { isSliding($0) ? "sliding_attention" : "full_attention" }
            d["sliding_window"] = slidingWindow.map { $0 as Any } ?? NSNull()
            d["rope_local_base_freq"] = jsonNumber(localRopeTheta)
            d["rope_parameters"] = ["full_attention": ["rope_type": "default", "rope_theta": jsonNumber(ropeTheta)],
                                    "sliding_attention": ["rope_type": "default", "rope_theta": jsonNumber(localRopeTheta)]]
            d["final_logit_softcapping"] = NSNull()
            d["attn_logit_softcapping"] = NSNull()
            d["use_bidirectional_attention"] = false
        }
        if let bosTokenID { d["bos_token_id"] = bosTokenID } else if nullBOS { d["bos_token_id"] = NSNull() }
        if !eosTokenIDs.isEmpty { d["eos_token_id"] = eosTokenIDs.count == 1 ? eosTokenIDs[0] as Any : eosTokenIDs as Any }
        if let padTokenID { d["pad_token_id"] = padTokenID }
        if !labels.isEmpty {
            d["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0.offset), $0.element) })
            d["label2id"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.element, $0.offset) })
        }
        return d
    }
}
