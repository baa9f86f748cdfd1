import Foundation
import WinnowCore
import WinnowData

extension BertLanguageModel {
    /// Loads a BertForMaskedLM / BertLMHeadModel folder (config.json + model.safetensors); the objective
    /// follows `is_decoder` unless given. Tied decoder tensors in the file are ignored.
    public convenience init(folder: URL, objective: Objective? = nil) throws {
        let weightsURL = try BertClassifier.weightsFile(in: folder)
        let config = try BertConfig(contentsOf: folder.appendingPathComponent("config.json"))
        self.init(config: config, objective: objective ?? (config.isDecoder ? .causal : .mlm), seed: 0)
        let file = try SafeTensorsFile(url: weightsURL)
        for (i, name) in parameters.names.enumerated() {
            var candidates = [name]
            if name == "cls.predictions.bias" { candidates.append("cls.predictions.decoder.bias") }
            guard let entry = candidates.lazy.compactMap({ file.entry($0) }).first else {
                throw WinnowError.invalidTensor(path: weightsURL.path, tensor: name, reason: "missing from the checkpoint")
            }
            guard entry.shape == parameters[i].shape else {
                throw WinnowError.invalidTensor(path: weightsURL.path, tensor: entry.name,
                    reason: "shape \(entry.shape) disagrees with config.json, which gives \(parameters[i].shape)")
            }
            parameters[i] = try file.tensor(entry)
        }
    }

    /// Writes config.json and model.safetensors (F32, Hugging Face names, decoder tied so not stored).
    public func save(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafeTensors.write(parameters.named, to: folder.appendingPathComponent("model.safetensors"))
        try config.write(to: folder.appendingPathComponent("config.json"), architecture: Self.architectures[objective]!)
    }
}
