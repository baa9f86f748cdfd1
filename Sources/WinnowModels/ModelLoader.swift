import Foundation
import WinnowCore
import WinnowData

/// Opens a model folder as the family its `config.json` names. Adding a family adds a case here.
///
///     let model = try ModelLoader.classifier(folder: URL(fileURLWithPath: "runs/rt"))
public enum ModelLoader {
    /// The sequence classifier in `folder` (config.json + model.safetensors). `labels` name the classes of
    /// a fresh head when the folder holds a bare encoder.
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor that is missing, malformed or unsupported.
    public static func classifier(folder: URL, labels: [String]? = nil) throws -> any SequenceClassifier {
        switch modelType(folder) {
        default: return try BertClassifier(folder: folder, labels: labels)
        }
    }

    /// The language model in `folder`, with the objective its config names unless `objective` is given.
    public static func languageModel(folder: URL, objective: LMObjective? = nil) throws -> any LanguageModel {
        switch modelType(folder) {
        default: return try BertLanguageModel(folder: folder, objective: objective)
        }
    }

    /// Whether `url` holds a causal language model Winnow reads: a `.gguf` file, a folder holding one and
    /// no config.json, or a folder whose config.json names a Llama-architecture `...ForCausalLM`.
    public static func isCausalLM(_ url: URL) -> Bool {
        let config = url.appendingPathComponent("config.json")
        if !FileManager.default.fileExists(atPath: config.path) { return Tokenizers.ggufFile(in: url) != nil }
        guard let data = try? Data(contentsOf: config), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        let arch = (obj["architectures"] as? [String])?.first ?? ""
        return ["llama", "mistral", "qwen2"].contains(obj["model_type"] as? String ?? "") && arch.hasSuffix("ForCausalLM")
    }

    /// The causal language model at `url` (a `.gguf` file, or a folder: GGUF or Hugging Face).
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing or wrong.
    public static func causalLM(_ url: URL) throws -> any CausalLanguageModel {
        if url.pathExtension.lowercased() == "gguf" { return try LlamaForCausalLM(gguf: url) }
        return try LlamaForCausalLM(folder: url)
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
