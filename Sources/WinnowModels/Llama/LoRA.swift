import Foundation
import WinnowCore

/// A linear layer a LoRA adapter can target, by its PEFT `target_modules` name: a Llama decoder's
/// projections (`q_proj` ... `down_proj`) or a BERT encoder's (`query`, `key`, `value`, and `dense`,
/// which as in PEFT means every layer named dense: attention output, intermediate, output and pooler).
public enum LoRAModule: String, CaseIterable, Sendable, Codable {
    /// A Llama decoder layer's attention projections (query, key, value, output) and MLP projections (gate, up, down).
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj", gate = "gate_proj", up = "up_proj", down = "down_proj"
    /// A BERT layer's attention projections, and every layer named `dense` (attention output, intermediate, output, pooler).
    case query, key, value, dense

    /// The modules of a Llama-family decoder.
    public static let decoderModules: [LoRAModule] = [.q, .k, .v, .o, .gate, .up, .down]
    /// The modules of a BERT encoder.
    public static let encoderModules: [LoRAModule] = [.query, .key, .value, .dense]
    /// The default targets of a new adapter: q_proj and v_proj for a decoder, query and value for an encoder.
    public static func defaultTargets(decoder: Bool) -> [LoRAModule] { decoder ? [.q, .v] : [.query, .value] }

    /// The module's Hugging Face path in layer `i` (`model.layers.i.self_attn.q_proj`, ...).
    func path(layer i: Int) -> String {
        "model.layers.\(i).\([.gate, .up, .down].contains(self) ? "mlp" : "self_attn").\(rawValue)"
    }

    /// Input and output widths of the module in a model of `c`.
    func dims(_ c: LlamaConfig) -> (din: Int, dout: Int) {
        switch self {
        case .q: (c.hiddenSize, c.queryWidth)
        case .k, .v: (c.hiddenSize, c.keyValueWidth)
        case .o: (c.queryWidth, c.hiddenSize)
        case .gate, .up: (c.hiddenSize, c.intermediateSize)
        case .down: (c.intermediateSize, c.hiddenSize)
        case .query, .key, .value, .dense: preconditionFailure("\(rawValue) is a BERT module, not a Llama one")
        }
    }
}

/// A LoRA adapter's settings in PEFT's `adapter_config.json` terms: the update of a target module's
/// weight is scale * B A with A [r, d_in], B [d_out, r] and scale = alpha / r (alpha / sqrt(r) with rsLoRA).
public struct LoRAConfig: Sendable, Equatable {
    /// Rank r.
    public var rank: Int
    /// lora_alpha.
    public var alpha: Double
    /// Dropout on the adapter's input during training (none in inference).
    public var dropout: Double = 0
    /// Target modules, in every decoder layer.
    public var targets: [LoRAModule]
    /// rsLoRA scaling (alpha / sqrt(r)).
    public var useRSLoRA = false
    /// `base_model_name_or_path` as written.
    public var baseModel: String?
    /// PEFT's `task_type` (`CAUSAL_LM`, `SEQ_CLS`), nil when the file names none.
    public var taskType: String?
    /// Modules trained in full beside the adapter and saved with it (`modules_to_save`; a sequence
    /// classifier's head, `classifier`).
    public var modulesToSave: [String] = []

    /// A configuration from its parts.
    public init(rank: Int, alpha: Double, dropout: Double = 0, targets: [LoRAModule], useRSLoRA: Bool = false, baseModel: String? = nil,
                taskType: String? = nil, modulesToSave: [String] = []) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets
        self.useRSLoRA = useRSLoRA; self.baseModel = baseModel; self.taskType = taskType; self.modulesToSave = modulesToSave
    }

    /// Whether the adapter belongs to a causal language model (its task type, else its targets).
    public var isCausalLM: Bool {
        if let t = taskType { return t == "CAUSAL_LM" }
        return targets.allSatisfy { LoRAModule.decoderModules.contains($0) }
    }

    /// Checks the settings against a model family whose modules are `modules` (`LoRAModule.decoderModules`
    /// or `encoderModules`; `family` names it in the message).
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `rank` below 1, `alpha` not a positive
    ///   number, `dropout` outside [0, 1), no target, or a target that is not one of `modules`.
    public func check(modules: [LoRAModule], family: String) throws {
        guard rank >= 1 else { throw WinnowError.invalidOption(name: "rank", reason: "must be at least 1, not \(rank)") }
        guard alpha.isFinite, alpha > 0 else { throw WinnowError.invalidOption(name: "alpha", reason: "must be a positive number, not \(alpha)") }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw WinnowError.invalidOption(name: "dropout", reason: "must be in [0, 1), not \(dropout)") }
        guard !targets.isEmpty else { throw WinnowError.invalidOption(name: "targets", reason: "name at least one module") }
        if let m = targets.first(where: { !modules.contains($0) }) {
            throw WinnowError.invalidOption(name: "targets", reason:
                "'\(m.rawValue)' is not a module of \(family) (\(modules.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    /// The factor of B A in the update.
    public var scale: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }

    /// Reads PEFT's `adapter_config.json`, refusing what Winnow does not implement (DoRA, adapter biases,
    /// per-module ranks or alphas, layer subsets, fan_in_fan_out, other PEFT types). `modules_to_save` is
    /// read; the model the adapter is loaded onto says which it supports.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and key.
    public init(contentsOf url: URL) throws {
        let path = url.path
        guard let d = try JSONObjectFile.read(url) else { throw WinnowError.missingFile(path: path, reason: "no adapter_config.json here") }
        func bad(_ key: String, _ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: "key '\(key)': \(why)") }
        guard (d["peft_type"] as? String ?? "LORA") == "LORA" else { throw bad("peft_type", "'\(d["peft_type"]!)' is not LORA") }
        guard let r = JSONObjectFile.integer(d["r"], in: 1...Int(Int32.max)) else { throw bad("r", "missing or not a positive integer") }
        guard let alpha = (d["lora_alpha"] as? NSNumber)?.doubleValue, alpha.isFinite, alpha > 0 else {
            throw bad("lora_alpha", "missing or not a positive number")
        }
        let dropout = (d["lora_dropout"] as? NSNumber)?.doubleValue ?? 0
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw bad("lora_dropout", "\(dropout) is not in [0, 1)") }
        let taskType = d["task_type"] as? String
        if let t = taskType, !["CAUSAL_LM", "SEQ_CLS"].contains(t) {
            throw bad("task_type", "'\(t)': Winnow reads CAUSAL_LM and SEQ_CLS adapters")
        }
        let names: [String]
        if let list = d["target_modules"] as? [String] { names = list } else if let one = d["target_modules"] as? String { names = [one] } else {
            throw bad("target_modules", "missing, or not a list of module names")
        }
        // peft matches a name by its last components: "q_proj", "self_attn.q_proj" and the full paths it
        // writes for "all-linear" ("model.layers.0.self_attn.q_proj") all name q_proj (a layer a path
        // leaves out has no tensors, which loading then names). A regular expression is not read.
        if d["target_modules"] is String, LoRAModule(rawValue: names[0]) == nil {
            throw bad("target_modules", "'\(names[0])' is a pattern; Winnow reads a list of module names (peft writes one when it saves)")
        }
        var targets: [LoRAModule] = []
        for n in names {
            guard let m = LoRAModule(rawValue: String(n.split(separator: ".").last ?? "")) else {
                throw bad("target_modules", "'\(n)' is not one of \(LoRAModule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if !targets.contains(m) { targets.append(m) }
        }
        if d["use_dora"] as? Bool == true { throw bad("use_dora", "DoRA is not supported") }
        // Variants that change the update or the modules adapted: refused rather than read as plain LoRA.
        for (key, why) in [("alora_invocation_tokens", "activated LoRA (aLoRA) is not supported"),
                           ("exclude_modules", "excluding modules is not supported (every target module of every layer is adapted)"),
                           ("layer_replication", "layer replication is not supported"),
                           ("target_parameters", "adapting parameters rather than modules is not supported"),
                           ("trainable_token_indices", "trainable tokens are not supported")] {
            if let v = d[key], !(v is NSNull), !((v as? [Any])?.isEmpty ?? false), !((v as? [String: Any])?.isEmpty ?? false) { throw bad(key, why) }
        }
        if d["lora_bias"] as? Bool == true { throw bad("lora_bias", "a bias on lora_B is not supported") }
        if let b = d["bias"] as? String, b != "none" { throw bad("bias", "'\(b)': adapter biases are not supported") }
        if d["fan_in_fan_out"] as? Bool == true { throw bad("fan_in_fan_out", "is not supported (Llama layers are not Conv1D)") }
        var save: [String] = []
        if let m = d["modules_to_save"], !(m is NSNull) {
            guard let list = m as? [String] else { throw bad("modules_to_save", "not a list of module names") }
            save = list
        }
        if let l = d["layers_to_transform"], !(l is NSNull) { throw bad("layers_to_transform", "is not supported (every layer is adapted)") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let p = d[key] as? [String: Any], !p.isEmpty { throw bad(key, "per-module ranks and alphas are not supported") }
        }
        self.init(rank: r, alpha: alpha, dropout: dropout, targets: targets,
                  useRSLoRA: d["use_rslora"] as? Bool ?? false, baseModel: d["base_model_name_or_path"] as? String,
                  taskType: taskType, modulesToSave: save)
    }

    /// Writes PEFT's `adapter_config.json` for this adapter atomically: peft_type LORA, task_type,
    /// r, lora_alpha, lora_dropout, target_modules, modules_to_save (null when empty), use_rslora, bias
    /// none, and `base` as base_model_name_or_path.
    ///
    /// - Throws: errors of writing the file.
    public func writePEFTConfig(to url: URL, base: String) throws {
        let json: [String: Any] = [
            "peft_type": "LORA", "task_type": taskType ?? "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": dropout,
            "target_modules": targets.map(\.rawValue), "use_rslora": useRSLoRA, "use_dora": false, "bias": "none",
            "fan_in_fan_out": false, "modules_to_save": modulesToSave.isEmpty ? NSNull() : modulesToSave as Any,
            "layers_to_transform": NSNull(), "rank_pattern": [String: Any](), "alpha_pattern": [String: Any](),
            "init_lora_weights": true, "inference_mode": true, "base_model_name_or_path": base,
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data, to: url)
    }

    /// The base model of the adapter in `folder`: `base_model_name_or_path` when it is a local path
    /// (absolute, or relative to the adapter folder), else nil.
    public func baseFolder(adapter folder: URL) -> URL? {
        guard let b = baseModel, !b.isEmpty else { return nil }
        let url = b.hasPrefix("/") ? URL(fileURLWithPath: b) : folder.appendingPathComponent(b).standardizedFileURL
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
}

extension LoRAConfig {
    /// Why adapter tensor `name` of shape `got` does not fit `want`: a rank other than `rank` (the one
    /// dimension of lora_A or lora_B that r sets differs, the other fits), or else `otherwise`.
    static func shapeMismatch(_ name: String, got: [Int], want: [Int], rank: Int, otherwise: String) -> String {
        let rankAxis = name.contains("lora_A") ? 0 : name.contains("lora_B") ? 1 : -1
        if rankAxis >= 0, got.count == 2, want.count == 2, got[1 - rankAxis] == want[1 - rankAxis], got[rankAxis] != want[rankAxis] {
            return "shape \(got): its rank is \(got[rankAxis]), but adapter_config.json says r \(rank)"
        }
        return "shape \(got), but this base model needs \(want)" + otherwise
    }
}

extension LlamaForCausalLM {
    /// The name PEFT gives a tensor of this model in `adapter_model.safetensors`.
    static func peftName(_ name: String) -> String { "base_model.model." + name }

    /// Adds a LoRA adapter to every decoder layer's target modules, initialised as PEFT does by default
    /// (A Kaiming-uniform with a = sqrt(5), i.e. uniform in +-1/sqrt(d_in); B zero), from `seed`. The
    /// tensors are `model.layers.N.{self_attn|mlp}.MODULE.lora_A.weight` and `.lora_B.weight`.
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has an adapter already or `lora` fails
    ///   `LoRAConfig.check` for a decoder.
    public func addLoRA(_ lora: LoRAConfig, seed: UInt64) throws {
        guard decoder.lora.isEmpty else { throw WinnowError.invalidOption(name: "lora", reason: "the model already has an adapter") }
        try lora.check(modules: LoRAModule.decoderModules, family: "a Llama-family decoder")
        decoder.addLoRA(lora, store: &parameters, seed: seed)
        var c = lora
        c.taskType = "CAUSAL_LM"
        loraConfig = c
    }

    /// Writes the adapter in PEFT's layout: `adapter_model.safetensors` (F32, PEFT's tensor names) and
    /// `adapter_config.json` (peft_type LORA, r, lora_alpha, lora_dropout, target_modules, use_rslora,
    /// bias none, task_type CAUSAL_LM, base_model_name_or_path `base`), each written atomically.
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has no adapter; errors of writing the files.
    public func saveAdapter(to folder: URL, base: String) throws {
        guard let lora = loraConfig else { throw WinnowError.invalidOption(name: "lora", reason: "the model has no LoRA adapter to save") }
        try LlamaAdapterFiles.save(parameters, lora: lora, saved: { _ in false }, to: folder, base: base)
    }

    /// Loads a PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) onto this
    /// model: every target module of every layer must have its A and B, with this model's shapes.
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing, unsupported or of the
    ///   wrong shape (an adapter made for another base model).
    public func loadAdapter(folder: URL) throws {
        try LlamaAdapterFiles.load(folder: folder, savedModules: []) { lora in
            try addLoRA(lora, seed: 0)
            return (parameters.names, { self.parameters[$0].shape }, { i, t in self.parameters[i] = t })
        }
    }
}

extension LlamaDecoder {
    /// Adds A [r, d_in] (uniform in +-1/sqrt(d_in) from `seed`) and B [d_out, r] (zero) to `store` for
    /// every target module of every layer, and makes the passes use them.
    mutating func addLoRA(_ lora: LoRAConfig, store: inout ParameterStore, seed: UInt64) {
        var rng = SeededGenerator(seed: seed, stream: "lora")
        var perLayer: [[LoRAModule: (a: Int, b: Int)]] = []
        for i in 0..<config.numHiddenLayers {
            var mods: [LoRAModule: (a: Int, b: Int)] = [:]
            for m in LoRAModule.allCases where lora.targets.contains(m) {
                let (din, dout) = m.dims(config)
                var a = Tensor(shape: [lora.rank, din])
                let bound = 1 / Double(din).squareRoot()
                a.withUnsafeMutableBufferPointer { p in for j in p.indices { p[j] = Float((rng.nextUniform() * 2 - 1) * bound) } }
                let ia = store.add(m.path(layer: i) + ".lora_A.weight", a)
                let ib = store.add(m.path(layer: i) + ".lora_B.weight", Tensor(shape: [dout, lora.rank]))
                mods[m] = (ia, ib)
            }
            perLayer.append(mods)
        }
        self.lora = perLayer
        loraScale = lora.scale
        loraDropout = Float(lora.dropout)
    }
}

/// PEFT adapter files of a Llama-family model (a causal LM's, or a sequence classifier's with its
/// `score` head in `modules_to_save`).
enum LlamaAdapterFiles {
    /// Writes `adapter_model.safetensors` (the LoRA tensors and those `saved` names, PEFT's names) and
    /// `adapter_config.json` (the config's task type and modules_to_save), each atomically.
    static func save(_ parameters: ParameterStore, lora: LoRAConfig, saved: (String) -> Bool, to folder: URL, base: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tensors = parameters.names.enumerated().filter { $0.element.contains(".lora_") || saved($0.element) }
            .map { (LlamaForCausalLM.peftName($0.element), parameters[$0.offset]) }
        try SafeTensorsFile.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        try lora.writePEFTConfig(to: folder.appendingPathComponent("adapter_config.json"), base: base)
    }

    /// Reads the adapter in `folder`: checks its config (decoder targets; modules_to_save among
    /// `savedModules`), lets `attach` add the adapter to the model (returning the model's tensor names,
    /// shapes and a setter), then copies every LoRA tensor and every tensor of a saved module.
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing, unsupported or of
    ///   the wrong shape.
    static func load(folder: URL, savedModules: [String],
                     attach: (LoRAConfig) throws -> (names: [String], shape: (Int) -> [Int], set: (Int, Tensor) -> Void)) throws {
        let configURL = folder.appendingPathComponent("adapter_config.json")
        let lora = try LoRAConfig(contentsOf: configURL)
        if let m = lora.targets.first(where: { !LoRAModule.decoderModules.contains($0) }) {
            throw WinnowError.invalidFile(path: configURL.path, line: nil, reason:
                "key 'target_modules': '\(m.rawValue)' is not a module of a Llama-family decoder (\(LoRAModule.decoderModules.map(\.rawValue).joined(separator: ", ")))")
        }
        // PEFT lists both heads it knows for a sequence classifier (classifier, score); a Llama has `score`.
        let accepted = savedModules.isEmpty ? [] : savedModules + ["classifier"]
        if let m = lora.modulesToSave.first(where: { !accepted.contains($0) }) {
            throw WinnowError.invalidFile(path: configURL.path, line: nil, reason: savedModules.isEmpty
                ? "key 'modules_to_save': is not supported for a causal language model" : "key 'modules_to_save': '\(m)' is not supported (only the head, score)")
        }
        let file = folder.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw WinnowError.missingFile(path: file.path, reason: "no adapter_model.safetensors (Winnow never reads pickled adapter_model.bin)")
        }
        let st = try SafeTensorsFile(url: file)
        let saved = savedModules.filter { lora.modulesToSave.contains($0) }
        let (names, shape, set) = try attach(lora)
        var known = Set<String>()
        for (i, name) in names.enumerated() where name.contains(".lora_") || saved.contains(where: { name.hasPrefix($0 + ".") }) {
            let stored = LlamaForCausalLM.peftName(name)
            known.insert(stored)
            guard let e = st.entry(stored) else {
                throw WinnowError.invalidTensor(path: file.path, tensor: stored, reason: name.contains(".lora_")
                    ? "missing: adapter_config.json targets \(lora.targets.map(\.rawValue).joined(separator: ", ")) in every layer"
                    : "missing: adapter_config.json saves this module (modules_to_save)")
            }
            let want = shape(i)
            guard e.shape == want else {
                throw WinnowError.invalidTensor(path: file.path, tensor: stored, reason: LoRAConfig.shapeMismatch(
                    stored, got: e.shape, want: want, rank: lora.rank, otherwise: " (r \(lora.rank)): the adapter was made for another base model"))
            }
            set(i, try st.tensor(e))
        }
        if let extra = st.names.first(where: { !known.contains($0) }) {
            throw WinnowError.invalidTensor(path: file.path, tensor: extra, reason: "is not a LoRA tensor of this model's target modules (\(lora.targets.map(\.rawValue).joined(separator: ", ")))")
        }
    }
}
