import Foundation
import WinnowCore
import WinnowData

/// Where a Llama model's weights come from: a Hugging Face folder (model.safetensors, or shards listed in
/// model.safetensors.index.json) or a GGUF file (llama.cpp's names, dequantised; a Llama's Q and K rows permuted
/// for llama.cpp's rotation, a Qwen's as Hugging Face has them).
enum LlamaWeights {
    /// The GGUF name of a Hugging Face tensor name, and the head count its rows are permuted by (a Llama's Q and K;
    /// qwen2, qwen3 and gemma3 files keep Hugging Face's order, as their rotation is the NEOX one).
    static func ggufName(_ name: String, config c: LlamaConfig) -> (String, permuteHeads: Int?)? {
        switch name {
        case "model.embed_tokens.weight": return ("token_embd.weight", nil)
        case "model.norm.weight": return ("output_norm.weight", nil)
        case "lm_head.weight": return ("output.weight", nil)
        default: break
        }
        let parts = name.split(separator: ".")
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]) else { return nil }
        let rest = parts[3...].joined(separator: ".")
        let permuted = c.modelType == "llama" || c.modelType == "mistral"
        let qHeads = permuted ? c.numAttentionHeads : nil, kHeads = permuted ? c.numKeyValueHeads : nil
        var map: [String: (String, Int?)] = [
            "input_layernorm.weight": ("attn_norm.weight", nil), "post_attention_layernorm.weight": ("ffn_norm.weight", nil),
            "self_attn.q_proj.weight": ("attn_q.weight", qHeads), "self_attn.k_proj.weight": ("attn_k.weight", kHeads),
            "self_attn.v_proj.weight": ("attn_v.weight", nil), "self_attn.o_proj.weight": ("attn_output.weight", nil),
            "self_attn.q_proj.bias": ("attn_q.bias", qHeads), "self_attn.k_proj.bias": ("attn_k.bias", kHeads),
            "self_attn.v_proj.bias": ("attn_v.bias", nil),
            "self_attn.q_norm.weight": ("attn_q_norm.weight", nil), "self_attn.k_norm.weight": ("attn_k_norm.weight", nil),
            "mlp.gate_proj.weight": ("ffn_gate.weight", nil), "mlp.up_proj.weight": ("ffn_up.weight", nil), "mlp.down_proj.weight": ("ffn_down.weight", nil),
        ]
        if c.gemma {
            // Gemma's norm on the attention's output, and the MLP's norms before (ffn_norm) and after.
            map["post_attention_layernorm.weight"] = ("post_attention_norm.weight", nil)
            map["pre_feedforward_layernorm.weight"] = ("ffn_norm.weight", nil)
            map["post_feedforward_layernorm.weight"] = ("post_ffw_norm.weight", nil)
        }
        guard let (g, heads) = map[rest] else { return nil }
        return ("blk.\(i).\(g)", heads)
    }

    /// Undoes llama.cpp's row permutation of a Q or K projection: Hugging Face row h*hd + s*(hd/2) + d is
    /// GGUF row h*hd + 2d + s (hd rows a head). Rows are `width` floats (1 for a bias).
    static func unpermute(_ t: Tensor, heads: Int) -> Tensor {
        let rows = t.shape[0], width = t.count / max(1, rows), hd = rows / heads, half = hd / 2
        var out = Tensor(uninitializedShape: t.shape)
        let src = t.ptr, dst = out.mptr
        for h in 0..<heads {
            for s in 0..<2 {
                for d in 0..<half {
                    (dst + (h * hd + s * half + d) * width).update(from: src + (h * hd + 2 * d + s) * width, count: width)
                }
            }
        }
        return out
    }

    /// Fills every tensor of `store` from the GGUF file; `optional` names may be absent (left as they are).
    static func load(_ store: inout ParameterStore, gguf f: GGUFFile, config: LlamaConfig, optional: Set<String> = []) throws {
        for (i, name) in store.names.enumerated() {
            guard let (gname, heads) = ggufName(name, config: config), let info = f.info(gname) else {
                if optional.contains(name) { continue }
                throw WinnowError.invalidTensor(path: f.url.path, tensor: ggufName(name, config: config)?.0 ?? name, reason: "missing from the file")
            }
            guard info.shape == store[i].shape else {
                throw WinnowError.invalidTensor(path: f.url.path, tensor: gname, reason:
                    "shape \(info.shape) disagrees with the model's \(store[i].shape) (from the file's metadata)")
            }
            var t = try f.tensor(info)
            if let heads { t = unpermute(t, heads: heads) }
            // llama.cpp's converter stores Gemma's norm weights as 1 + w; 1 is taken off as transformers' GGUF loader does.
            if config.gemma && name.hasSuffix("norm.weight") { t.withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] -= 1 } } }
            store[i] = t
        }
    }

    /// Writes a Hugging Face folder: model.safetensors (F32) and config.json naming `architecture`.
    static func save(_ parameters: ParameterStore, config: LlamaConfig, architecture: String, to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafeTensorsFile.write(parameters.named, to: folder.appendingPathComponent("model.safetensors"))
        try AtomicFile.write(JSONSerialization.data(withJSONObject: config.json(architecture: architecture), options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent("config.json"))
    }

    /// The safetensors files of a Hugging Face folder: model.safetensors, or the shards of its index.
    static func files(in folder: URL) throws -> [SafeTensorsFile] {
        let single = folder.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return [try SafeTensorsFile(url: single)] }
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        guard FileManager.default.fileExists(atPath: index.path) else {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("pytorch_model.bin").path) {
                throw WinnowError.invalidFile(path: folder.appendingPathComponent("pytorch_model.bin").path, line: nil, reason:
                    "pickled PyTorch checkpoints are refused (loading a pickle can run arbitrary code); save it with safe_serialization=True")
            }
            throw WinnowError.missingFile(path: single.path, reason: "no model.safetensors (or model.safetensors.index.json) in this folder")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(contentsOf: index))) as? [String: Any],
              let map = obj["weight_map"] as? [String: String] else {
            throw WinnowError.invalidFile(path: index.path, line: nil, reason: "field 'weight_map': missing or not an object of file names")
        }
        return try Set(map.values).sorted().map { name in
            guard !name.contains("/") else { throw WinnowError.invalidFile(path: index.path, line: nil, reason: "shard '\(name)' is not a file name") }
            return try SafeTensorsFile(url: folder.appendingPathComponent(name))
        }
    }

    /// Fills every tensor of `store` from a folder's safetensors; `optional` names may be absent.
    static func load(_ store: inout ParameterStore, folder: URL, optional: Set<String> = []) throws {
        let files = try files(in: folder)
        for (i, name) in store.names.enumerated() {
            guard let (file, entry) = files.lazy.compactMap({ f in f.entry(name).map { (f, $0) } }).first else {
                if optional.contains(name) { continue }
                throw WinnowError.invalidTensor(path: folder.path, tensor: name, reason: "missing from the checkpoint")
            }
            guard entry.shape == store[i].shape else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason:
                    "shape \(entry.shape) disagrees with config.json, which gives \(store[i].shape)")
            }
            store[i] = try file.tensor(entry)
        }
        // A decoder-layer tensor the config does not build (another layer count, MLP biases) would be
        // silently unused: the model would not be the file's.
        let known = Set(store.names)
        for file in files {
            if let extra = file.entries.map(\.name).sorted().first(where: { $0.hasPrefix("model.layers.") && !known.contains($0)
                                                                         && !$0.hasSuffix("rotary_emb.inv_freq") }) {   // a buffer older checkpoints hold
                throw WinnowError.invalidTensor(path: file.url.path, tensor: extra, reason:
                    "is not a tensor of the model config.json describes (check num_hidden_layers, mlp_bias, attention_bias)")
            }
        }
    }
}

extension LlamaForCausalLM {
    /// Loads a GGUF file (architecture llama, qwen2, qwen3 or gemma3; F32, F16, BF16, Q8_0, Q4_0, Q4_1 tensors, dequantised).
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing or wrong.
    public convenience init(gguf url: URL) throws {
        let f = try GGUFFile(url: url)
        self.init(config: try LlamaConfig(gguf: f), seed: 0)
        try LlamaWeights.load(&parameters, gguf: f, config: config)
    }

    /// Loads a Hugging Face LlamaForCausalLM folder (config.json + model.safetensors or shards), or the
    /// one .gguf file of a folder without config.json.
    ///
    /// - Throws: `WinnowError` naming the file and the field or tensor that is missing or wrong.
    public convenience init(folder: URL) throws {
        try Tokenizers.checkOneGGUF(in: folder)
        if let gguf = Tokenizers.ggufFile(in: folder), !FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) {
            try self.init(gguf: gguf)
            return
        }
        let config = try LlamaConfig(contentsOf: folder.appendingPathComponent("config.json"))
        self.init(config: config, seed: 0)
        try LlamaWeights.load(&parameters, folder: folder)
    }
}

extension LlamaForSequenceClassification {
    /// Loads a LlamaForSequenceClassification folder, or a causal LM's folder or GGUF file with a fresh
    /// score head for `labels` (seeded by `seed`).
    ///
    /// - Throws: `WinnowError` naming the file and the field or tensor that is missing or wrong.
    public convenience init(folder: URL, labels: [String]? = nil, seed: UInt64 = 0) throws {
        let fm = FileManager.default
        try Tokenizers.checkOneGGUF(in: folder)
        if let gguf = Tokenizers.ggufFile(in: folder), !fm.fileExists(atPath: folder.appendingPathComponent("config.json").path) {
            let f = try GGUFFile(url: gguf)
            var c = try LlamaConfig(gguf: f)
            c.labels = try Self.freshLabels(labels, folder: folder)
            c.padTokenID = f.metadata["tokenizer.ggml.padding_token_id"]?.int
            self.init(config: c, seed: seed)
            try LlamaWeights.load(&parameters, gguf: f, config: c, optional: ["score.weight", "lm_head.weight"])
            return
        }
        var c = try LlamaConfig(contentsOf: folder.appendingPathComponent("config.json"))
        let hasHead = c.architecture?.hasSuffix("ForSequenceClassification") == true && !c.labels.isEmpty
        if !hasHead { c.labels = try Self.freshLabels(labels, folder: folder) }
        self.init(config: c, seed: seed)
        try LlamaWeights.load(&parameters, folder: folder, optional: hasHead ? [] : ["score.weight"])
    }

    static func freshLabels(_ labels: [String]?, folder: URL) throws -> [String] {
        guard let labels, !labels.isEmpty else {
            throw WinnowError.invalidFile(path: folder.path, line: nil, reason: "no classification head here; give the labels (training data) to add a fresh one")
        }
        return labels
    }
}
