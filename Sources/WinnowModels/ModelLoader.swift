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
