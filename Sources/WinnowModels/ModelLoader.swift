import Foundation
import WinnowCore
import WinnowData

/// Opens a model folder as the family its `config.json` names. Adding a family adds a case here.
///
///     let run = try RunFolder(url: URL(fileURLWithPath: "runs/rt"))   // a winnow run or a transformers.Trainer output
///     let model = try ModelLoader.classifier(folder: run.finalModelFolder)
public enum ModelLoader {
    /// The sequence classifier in `folder` (config.json + model.safetensors), or a PEFT LoRA adapter of
    /// one (its base from `base`, else `base_model_name_or_path`). `labels` name the classes of a fresh
    /// head when the folder holds a bare encoder.
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor that is missing, malformed or unsupported.
    public static func classifier(folder: URL, labels: [String]? = nil, base: URL? = nil) throws -> any SequenceClassifier {
        if isAdapter(folder) {
            // A PEFT adapter of a sequence classifier (SEQ_CLS): the base model's folder, then the adapter.
            let b = try adapterBase(folder, base: base)
            let decoderBase = isCausalLM(b) || LlamaConfig.modelTypes.contains(modelType(b) ?? "")
            // A BERT adapter given a decoder as its base names modules the decoder does not have: say so by family
            // (the BERT loader names a decoder module in a BERT adapter itself).
            let configURL = folder.appendingPathComponent("adapter_config.json")
            if decoderBase, let c = try? LoRAConfig(contentsOf: configURL), let other = c.targets.first(where: { LoRAModule.encoderModules.contains($0) }) {
                throw WinnowError.invalidFile(path: configURL.path, line: nil, reason:
                    "targets \(other.rawValue), a BERT module, but the base \(b.path) is a Llama-family decoder")
            }
            if decoderBase { return try LlamaForSequenceClassification(adapter: folder, base: b, labels: labels) }
            return try BertClassifier(adapter: folder, base: b, labels: labels)
        }
        switch modelType(folder) {
        case let t? where LlamaConfig.modelTypes.contains(t): return try LlamaForSequenceClassification(folder: folder, labels: labels)
        default: return try BertClassifier(folder: folder, labels: labels)
        }
    }

    /// The classifier in `folder` for inference: a Llama-family `...ForSequenceClassification`, else as
    /// `classifier(folder:)`.
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor that is missing, malformed or unsupported.
    public static func predictor(folder: URL) throws -> any ClassPredictor {
        return try classifier(folder: folder)
    }

    /// The class names of the classifier in `folder` (its config's `id2label`), for scores that read only
    /// a run's dynamics: a BERT classifier's, or a Llama-family `...ForSequenceClassification`'s.
    ///
    /// - Throws: `WinnowError` naming the file or key that is missing or malformed.
    public static func classifierLabels(folder: URL) throws -> [String] {
        if LlamaConfig.modelTypes.contains(modelType(folder) ?? "") && !isAdapter(folder) {
            let url = folder.appendingPathComponent("config.json")
            let c = try LlamaConfig(contentsOf: url)
            guard !c.labels.isEmpty else {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a sequence classifier (no id2label)")
            }
            return c.labels
        }
        return try classifier(folder: folder).labelNames
    }

    /// The language model in `folder`, with the objective its config names unless `objective` is given:
    /// a Llama-family decoder (a Hugging Face folder, a folder holding a GGUF file, or the `.gguf` file;
    /// causal only) or a BERT language model (masked, or causal when its config says `is_decoder`).
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor at fault; `WinnowError.invalidOption` when
    ///   `objective` is `.mlm` for a decoder, or `folder` is a PEFT adapter (load its base, then
    ///   `LlamaForCausalLM.loadAdapter(folder:)`).
    public static func languageModel(folder: URL, objective: LMObjective? = nil) throws -> any LanguageModel {
        if isAdapter(folder) {
            throw WinnowError.invalidOption(name: "folder", reason:
                "\(folder.path) is a PEFT adapter: load its base model, then add the adapter with loadAdapter(folder:)")
        }
        if isCausalLM(folder) {
            guard objective != .mlm else {
                throw WinnowError.invalidOption(name: "objective", reason: "\(folder.path) is a causal decoder; it has no masked-language-model head")
            }
            return folder.pathExtension.lowercased() == "gguf" ? try LlamaForCausalLM(gguf: folder) : try LlamaForCausalLM(folder: folder)
        }
        return try BertLanguageModel(folder: folder, objective: objective)
    }

    /// Whether `url` holds a causal language model Winnow reads: a `.gguf` file, a folder holding one and
    /// no config.json, a folder whose config.json names a Llama-architecture `...ForCausalLM`, a PEFT
    /// adapter folder, or a run folder whose checkpoints are one of these.
    public static func isCausalLM(_ url: URL) -> Bool {
        if isAdapter(url) {
            return (try? LoRAConfig(contentsOf: url.appendingPathComponent("adapter_config.json")))?.isCausalLM ?? true
        }
        let config = url.appendingPathComponent("config.json")
        if !FileManager.default.fileExists(atPath: config.path) {
            if Tokenizers.ggufFile(in: url) != nil { return true }
            // A run folder of a decoder: its checkpoints are decoders (or adapters).
            if let ck = (try? RunFolder(url: url))?.checkpoints.first { return isCausalLM(ck.url) }
            return false
        }
        guard let data = try? Data(contentsOf: config), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        let arch = (obj["architectures"] as? [String])?.first ?? ""
        return LlamaConfig.modelTypes.contains(obj["model_type"] as? String ?? "") && arch.hasSuffix("ForCausalLM")
    }

    /// Whether `url` holds a Llama-family sequence classifier (config.json naming a `...ForSequenceClassification`
    /// of model type llama, mistral or qwen2), or is a run folder whose checkpoints are one.
    public static func isDecoderClassifier(_ url: URL) -> Bool {
        let config = url.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: config.path) else {
            if !isAdapter(url), let ck = (try? RunFolder(url: url))?.checkpoints.first { return isDecoderClassifier(ck.url) }
            return false
        }
        guard let data = try? Data(contentsOf: config), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        let arch = (obj["architectures"] as? [String])?.first ?? ""
        return LlamaConfig.modelTypes.contains(obj["model_type"] as? String ?? "") && arch.hasSuffix("ForSequenceClassification")
    }

    /// The causal language model at `url` (a `.gguf` file, or a folder: GGUF or Hugging Face).
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing or wrong.
    public static func causalLM(_ url: URL, base: URL? = nil) throws -> any CausalLanguageModel {
        if isAdapter(url) {
            let lm = try LlamaForCausalLM(folder: try adapterBase(url, base: base))
            try lm.loadAdapter(folder: url)
            return lm
        }
        if url.pathExtension.lowercased() == "gguf" { return try LlamaForCausalLM(gguf: url) }
        return try LlamaForCausalLM(folder: url)
    }

    /// Whether `url` is a PEFT adapter folder (it holds `adapter_config.json`).
    public static func isAdapter(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent("adapter_config.json").path)
    }

    /// The base model of the adapter folder `url`: `base` when given, else its `base_model_name_or_path`
    /// when that is a local path.
    ///
    /// - Throws: `WinnowError.invalidFile` when neither names a local model.
    public static func adapterBase(_ url: URL, base: URL? = nil) throws -> URL {
        if let base { return base }
        let configURL = url.appendingPathComponent("adapter_config.json")
        let config = try LoRAConfig(contentsOf: configURL)
        guard let b = config.baseFolder(adapter: url) else {
            throw WinnowError.invalidFile(path: configURL.path, line: nil, reason:
                "base_model_name_or_path '\(config.baseModel ?? "")' is not a local model: give the base model's folder with --base (score, tokenize, pretrain), or set base_model_name_or_path to it")
        }
        return b
    }

    /// The folder holding the tokenizer of a causal LM at `url`: an adapter folder's own when it has one,
    /// else its base model's; `url` itself otherwise.
    public static func tokenizerFolder(_ url: URL, base: URL? = nil) throws -> URL {
        guard isAdapter(url) else { return url }
        let own = ["tokenizer.json", "vocab.txt"].contains { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }
        return own ? url : try adapterBase(url, base: base)
    }

    /// The folder's `model_type`, nil when its config names none (older BERT configs) or cannot be read:
    /// such a folder goes to the BERT reader, whose errors name the file and key.
    static func modelType(_ folder: URL) -> String? {
        let url = folder.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return nil
        }
        return obj["model_type"] as? String
    }
}
