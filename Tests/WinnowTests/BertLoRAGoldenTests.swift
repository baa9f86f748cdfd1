import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowScores
@testable import WinnowTraining

/// A PEFT LoRA adapter of a BERT sequence classifier (r 4, alpha 8, on query, value and every dense layer
/// including the pooler; B not zero; the head saved beside it) on the tiny BERT run, against peft with
/// PyTorch autograd (scripts/reference/make_bert_lora_golden.py): logits, losses, per-example gradient
/// norms over the adapter, one layer's adapter and every parameter, and a training batch's gradients.
@Suite struct BertLoRAGoldenTests {
    static let dir = Paths.tinyBert
    static let adapter = dir.appendingPathComponent("lora")
    struct Example: Decodable { let ids: [Int32]; let label: Int32; let logits: [Double]; let loss: Double; let sq_norm: [String: Double] }
    struct Golden: Decodable {
        let examples: [Example]
        let tensor_names: [String]
        let batch_loss: Double
        let batch_grads: [String: [Float]]
    }
    let golden: Golden

    init() throws {
        golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("lora-golden.json")))
    }

    func model() throws -> BertClassifier {
        try #require(try ModelLoader.classifier(folder: Self.adapter) as? BertClassifier)
    }

    @Test func theAdapterLoadsWithPEFTsTensors() throws {
        let m = try model()
        let cfg = try #require(m.loraConfig)
        #expect(cfg.rank == 4 && cfg.scale == 2 && Set(cfg.targets) == [.query, .value, .dense] && cfg.taskType == "SEQ_CLS")
        #expect(m.labelNames == ["neg", "pos"])
        let names = m.parameters.names.filter(BertClassifier.isAdapterTensor).map { "base_model.model." + $0 }
        #expect(names.sorted() == golden.tensor_names)
        #expect(!ModelLoader.isCausalLM(Self.adapter))
    }

    @Test func logitsAndLossesMatchPEFT() throws {
        let m = try model()
        let rows = golden.examples
        let batch = Batch(encodings: rows.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                          labels: rows.map(\.label), indices: Array(rows.indices))
        let logits = m.classLogits(batch)
        for (i, r) in rows.enumerated() {
            for j in 0..<2 { #expect(abs(Double(logits[i, j]) - r.logits[j]) <= 1e-4, "example \(i) logit \(j): \(logits[i, j]) vs \(r.logits[j])") }
        }
        // The same through the scores of the adapter folder as a run (tokenizer from the base).
        var o = ScoreOptions()
        o.maxLength = 64
        let loss = try Scorer.score(.loss, run: Self.adapter, data: Self.dir.appendingPathComponent("test.jsonl"), options: o).scores
        for (i, r) in rows.enumerated() { #expect(abs(loss[i] - r.loss) <= 1e-4 * max(r.loss, 1e-3), "example \(i): \(loss[i]) vs \(r.loss)") }
    }

    static let layer1 = ["attention.self.query", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"]
        .map { "bert.encoder.layer.1.\($0).lora_" }.joined(separator: ",")

    @Test(arguments: ["lora", layer1, "all"])
    func perExampleGradientNormsMatchPEFT(params: String) throws {
        let key = params == "lora" ? "lora" : params == "all" ? "all" : "lora-layer-1"
        var o = ScoreOptions()
        o.maxLength = 64
        o.batchSize = 5
        o.params = try #require(ParameterSelection.Spec(parsing: params))
        let si = try Scorer.score(.tracin, run: Self.adapter, data: Self.dir.appendingPathComponent("test.jsonl"), options: o).scores
        for (i, r) in golden.examples.enumerated() {
            let want = r.sq_norm[key]!
            #expect(abs(si[i] - want) <= 2e-3 * want + 1e-9, "example \(i) --params \(key): \(si[i]) vs \(want)")
        }
    }

    @Test func aTrainingBatchGradientsTheAdapterAndHeadAsPEFTDoes() throws {
        let m = try model()
        let data = try JSONLDataset(url: Self.dir.appendingPathComponent("train.jsonl"))
        let enc = try EncodedDataset(data, tokenizer: BertTokenizer(folder: Self.dir.appendingPathComponent("run")), labels: m.labelNames, maxLength: 64)
        let batch = enc.batch([0, 1, 2, 3])
        var grads = m.parameters.zeros()
        let loss = m.lossAndGradients(batch, grads: &grads, training: false, seed: 0, weights: nil)
        #expect(abs(loss - golden.batch_loss) <= 1e-5 * golden.batch_loss)
        for (name, g) in grads.named {
            if BertClassifier.isAdapterTensor(name) {
                let want = try #require(golden.batch_grads["base_model.model." + name], "\(name)")
                expectClose(g.values, want, atol: 1e-6, rtol: 1e-3, name)
            } else {
                #expect(maxAbs(g.values) == 0, "\(name) is frozen: its gradient is zeroed")
            }
        }
        // One AdamW step moves the adapter and the head only; the base weights stay as they were.
        let trainable = try #require(m.trainableTensors)
        let before = m.parameters
        var opt = Optimizer(kind: .adamw, parameters: m.parameters, weightDecay: 0.01, trainable: trainable)
        opt.step(&m.parameters, grads: grads, lr: 1e-3)
        for (i, name) in m.parameters.names.enumerated() where !name.hasSuffix(".weight") || BertClassifier.isAdapterTensor(name) || name.contains("LayerNorm") || name.contains("embeddings") {
            #expect((m.parameters[i] == before[i]) == !trainable(name), "\(name)")
        }
    }

    @Test func anAdapterWinnowWritesIsPEFTsFileAndReadsBack() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bert-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let m = try model()
        try m.saveAdapter(to: tmp, base: Self.dir.appendingPathComponent("run").path)
        let mine = try SafeTensorsFile(url: tmp.appendingPathComponent("adapter_model.safetensors"))
        let peft = try SafeTensorsFile(url: Self.adapter.appendingPathComponent("adapter_model.safetensors"))
        #expect(mine.names.sorted() == peft.names.sorted())
        for n in peft.names { #expect(try mine.tensor(n) == peft.tensor(n), "\(n)") }
        let back = try #require(try ModelLoader.classifier(folder: tmp) as? BertClassifier)
        #expect(back.labelNames == ["neg", "pos"] && back.loraConfig?.targets == m.loraConfig?.targets)
        let rows = golden.examples.prefix(4)
        let batch = Batch(encodings: rows.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                          labels: rows.map(\.label), indices: Array(rows.indices))
        #expect(back.classLogits(batch).values == m.classLogits(batch).values)
    }

    @Test func aMismatchedOrUnsupportedAdapterGetsOneClearError() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bert-lora-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try FileManager.default.copyItem(at: Self.adapter.appendingPathComponent("adapter_model.safetensors"), to: tmp.appendingPathComponent("adapter_model.safetensors"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.adapter.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        func load(_ edit: (inout [String: Any]) -> Void) throws -> String {
            var c = config
            c["base_model_name_or_path"] = Self.dir.appendingPathComponent("run").path
            edit(&c)
            try JSONSerialization.data(withJSONObject: c).write(to: tmp.appendingPathComponent("adapter_config.json"))
            do { _ = try ModelLoader.classifier(folder: tmp) } catch { return "\(error)" }
            return ""
        }
        #expect(try load { _ in }.isEmpty)
        let rank = try load { $0["r"] = 8 }
        #expect(rank.contains("adapter_model.safetensors") && rank.contains("its rank is 4, but adapter_config.json says r 8"), "\(rank)")
        let targets = try load { $0["target_modules"] = ["query", "key"] }
        #expect(targets.contains("key.lora_A.weight") && targets.contains("missing"), "\(targets)")
        let extra = try load { $0["target_modules"] = ["query", "value"] }
        #expect(extra.contains("dense.lora_") && extra.contains("is not a tensor of this adapter"), "\(extra)")
        let decoder = try load { $0["target_modules"] = ["q_proj"] }
        #expect(decoder.contains("target_modules") && decoder.contains("not a module of a BERT encoder"), "\(decoder)")
        let save = try load { $0["modules_to_save"] = ["pooler"] }
        #expect(save.contains("modules_to_save") && save.contains("pooler"), "\(save)")
        let base = try load { $0["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2" }
        #expect(base.contains("is not a local model"), "\(base)")
    }
}
