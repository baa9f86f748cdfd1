import Foundation
import WinnowCore
import WinnowData

extension BertClassifier {
    /// Loads a model folder (config.json + model.safetensors): a BertForSequenceClassification
    /// checkpoint, a winnow run, or a bare BertModel encoder (names without `bert.`, or LayerNorm
    /// gamma/beta), which gets a fresh head for `labels`. F16 and BF16 weights are converted to F32.
    ///
    ///     let model = try BertClassifier(folder: URL(fileURLWithPath: "models/minilm"), labels: ["neg", "pos"])
    ///
    /// - Parameters:
    ///   - folder: the model folder.
    ///   - labels: class names for a fresh head; ignored when the folder's config names its labels and
    ///     holds a trained head (then those win).
    ///   - head: head to build when the folder has none.
    ///   - seed: seed of a fresh head's initialisation.
    public convenience init(folder: URL, labels: [String]? = nil, head: BertConfig.Head? = nil, seed: UInt64 = 0) throws {
        let weightsURL = try BertClassifier.weightsFile(in: folder)
        var config = try BertConfig(contentsOf: folder.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(url: weightsURL)
        let hasHead = file.entry("classifier.weight") != nil || file.entry("classifier.0.weight") != nil
        if hasHead {
            config.head = file.entry("classifier.0.weight") != nil ? .paper : .huggingFace
            let rows = file.entry("classifier.weight").map { $0.shape.first ?? 0 }
                ?? file.entry("classifier.4.weight").map { $0.shape.first ?? 0 } ?? 0
            if config.labels.count != rows {
                if let labels, labels.count == rows { config.labels = labels } else {
                    throw WinnowError.invalidTensor(path: weightsURL.path, tensor: "classifier", reason:
                        "head has \(rows) outputs but config.json names \(config.labels.count) labels")
                }
            }
        } else {
            guard let labels, !labels.isEmpty else {
                let what = config.architecture.map { " (a \($0))" } ?? ""
                throw WinnowError.invalidFile(path: weightsURL.path, line: nil,
                    reason: "no classifier head in this checkpoint\(what): fine-tune a classifier from it first (`winnow train --init \(folder.path)`; "
                        + "in Swift, `labels:` adds a fresh head)")
            }
            config.labels = labels
            if let head { config.head = head }
        }
        self.init(config: config, seed: seed)
        try load(file, allowMissingHead: !hasHead)
        sourceFolder = folder.standardizedFileURL
    }

    /// The safetensors file of a model folder; refuses pickled checkpoints.
    static func weightsFile(in folder: URL) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw WinnowError.missingFile(path: folder.path, reason: "no such model folder")
        }
        let st = folder.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: st.path) { return st }
        let bin = folder.appendingPathComponent("pytorch_model.bin")
        if FileManager.default.fileExists(atPath: bin.path) {
            throw WinnowError.invalidFile(path: bin.path, line: nil, reason:
                "pickled PyTorch checkpoints are refused (loading a pickle can run arbitrary code). Convert it once with "
                + "python, keeping every tensor (a classifier's head too): `import torch; from safetensors.torch import save_file; "
                + "save_file({k: v.contiguous() for k, v in torch.load('DIR/pytorch_model.bin', weights_only=True).items()}, 'DIR/model.safetensors')`")
        }
        throw WinnowError.missingFile(path: st.path, reason: "no model.safetensors in this folder")
    }

    /// Copies every parameter from `file`, mapping bare-encoder names; checks shapes against config.json.
    func load(_ file: SafeTensorsFile, allowMissingHead: Bool) throws {
        for (i, name) in parameters.names.enumerated() {
            // A bare encoder or a language model (BertForMaskedLM has no pooler) gets a fresh head and pooler.
            let isHead = name.hasPrefix("classifier.") || name.hasPrefix("bert.pooler.")
            var candidates = [name]
            if name.hasPrefix("bert.") { candidates.append(String(name.dropFirst(5))) }
            for c in candidates where c.hasSuffix("LayerNorm.weight") || c.hasSuffix("LayerNorm.bias") {
                candidates.append(c.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma")
                                   .replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta"))
            }
            guard let entry = candidates.lazy.compactMap({ file.entry($0) }).first else {
                if isHead && allowMissingHead { continue }
                throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason: "missing from the checkpoint")
            }
            let expected = parameters[i].shape
            guard entry.shape == expected else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: entry.name,
                    reason: "shape \(entry.shape) disagrees with config.json, which gives \(expected)")
            }
            parameters[i] = try file.tensor(entry)
        }
    }

    /// Writes config.json and model.safetensors (F32, Hugging Face names) into `folder`; a model with a
    /// LoRA adapter writes the adapter instead (`saveAdapter`, its base as the config names it, else the
    /// folder the model was read from, so the adapter folder can be scored on its own).
    public func save(to folder: URL) throws {
        if let lora = loraState?.config { return try saveAdapter(to: folder, base: lora.baseModel.flatMap { $0.isEmpty ? nil : $0 } ?? sourceFolder?.path ?? "") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafeTensors.write(parameters.named, to: folder.appendingPathComponent("model.safetensors"))
        try config.write(to: folder.appendingPathComponent("config.json"))
    }
}

/// Namespace for safetensors writing helpers.
package enum SafeTensors {
    /// Writes named F32 tensors atomically.
    package static func write(_ tensors: [(String, Tensor)], to url: URL) throws {
        try SafeTensorsFile.write(tensors, to: url)
    }
}
