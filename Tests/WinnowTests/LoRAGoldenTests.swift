import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowScores
@testable import WinnowTraining

/// A PEFT LoRA adapter (r 4, alpha 8, on q, v, o, gate and down; B not zero) on the tiny tied decoder,
/// against peft with PyTorch autograd (scripts/reference/make_lora_golden.py): losses of the adapted
/// model and per-example gradient norms over the adapter, the last layer's adapter and every parameter.
@Suite struct LoRAGoldenTests {
    static let dir = Paths.fixtures.appendingPathComponent("decoder")
    struct Row: Decodable { let loss: Double; let sq_norm: [String: Double] }
    struct Golden: Decodable {
        let pc, chat: [Row]
        let tensor_names: [String]
        let batch_loss: Double
        let batch_grads: [String: [Float]]
        let vog_base_then_adapted: [Double]
    }
    let golden: Golden

    init() throws {
        golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("lora-golden.json")))
    }

    func options(_ params: String) -> ScoreOptions {
        var o = ScoreOptions()
        o.maxLength = 160
        o.batchSize = 4
        o.params = ParameterSelection.Spec(parsing: params)!
        return o
    }

    @Test func theAdapterLoadsWithPEFTsTensors() throws {
        let lm = try #require(try ModelLoader.causalLM(Self.dir.appendingPathComponent("lora")) as? LlamaForCausalLM)
        let cfg = try #require(lm.loraConfig)
        #expect(cfg.rank == 4 && cfg.alpha == 8 && cfg.scale == 2 && Set(cfg.targets) == [.q, .v, .o, .gate, .down])
        let names = lm.parameters.names.filter { $0.contains(".lora_") }.map { "base_model.model." + $0.replacingOccurrences(of: ".weight", with: ".default.weight") }
        #expect(names.sorted() == golden.tensor_names)
    }

    @Test(arguments: ["pc", "chat"], ["lora", "model.layers.1.self_attn.q_proj.lora_,model.layers.1.self_attn.v_proj.lora_,model.layers.1.self_attn.o_proj.lora_,model.layers.1.mlp.gate_proj.lora_,model.layers.1.mlp.down_proj.lora_", "all"])
    func lossesAndGradientNormsMatchPEFT(file: String, params: String) throws {
        let rows = file == "pc" ? golden.pc : golden.chat
        let key = params == "lora" ? "lora" : params == "all" ? "all" : "lora-last-layer"
        let run = Self.dir.appendingPathComponent("lora"), data = Self.dir.appendingPathComponent(file + ".jsonl")
        let loss = try Scorer.score(.loss, run: run, data: data, options: options(params)).scores
        let si = try Scorer.score(.tracin, run: run, data: data, options: options(params)).scores
        for (i, r) in rows.enumerated() {
            #expect(abs(loss[i] - r.loss) <= 1e-4 * r.loss, "\(file) \(i) loss \(loss[i]) vs \(r.loss)")
            let want = r.sq_norm[key]!
            #expect(abs(si[i] - want) <= 2e-3 * want, "\(file) \(i) --params \(key): \(si[i]) vs \(want)")
        }
    }

    @Test func aMismatchedOrUnsupportedAdapterGetsOneClearError() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lora-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let src = Self.dir.appendingPathComponent("lora")
        try FileManager.default.copyItem(at: src.appendingPathComponent("adapter_model.safetensors"), to: tmp.appendingPathComponent("adapter_model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        config["base_model_name_or_path"] = Self.dir.appendingPathComponent("tied").path
        func load(_ edit: (inout [String: Any]) -> Void) throws -> String {
            var c = config
            edit(&c)
            try JSONSerialization.data(withJSONObject: c).write(to: tmp.appendingPathComponent("adapter_config.json"))
            do { _ = try ModelLoader.causalLM(tmp) } catch { return "\(error)" }
            return ""
        }
        #expect(try load { _ in }.isEmpty)
        let rank = try load { $0["r"] = 8 }
        #expect(rank.contains("adapter_model.safetensors") && rank.contains("its rank is 4, but adapter_config.json says r 8"), "\(rank)")
        let dora = try load { $0["use_dora"] = true }
        #expect(dora.contains("use_dora"), "\(dora)")
        let targets = try load { $0["target_modules"] = ["q_proj", "up_proj"] }
        #expect(targets.contains("up_proj.lora_A.weight") && targets.contains("missing"), "\(targets)")
        let base = try load { $0["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct" }
        #expect(base.contains("is not a local model") && base.contains("--base"), "\(base)")
        let other = try load { $0["base_model_name_or_path"] = Paths.fixtures.appendingPathComponent("llama/hf").path }
        #expect(other.contains("the adapter was made for another base model"), "\(other)")
    }

    @Test func anAdapterWinnowWritesReadsBackIdentically() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lora-save-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let lm = try #require(try ModelLoader.causalLM(Self.dir.appendingPathComponent("lora")) as? LlamaForCausalLM)
        try lm.saveAdapter(to: tmp, base: Self.dir.appendingPathComponent("tied").path)
        let back = try #require(try ModelLoader.causalLM(tmp) as? LlamaForCausalLM)
        #expect(back.loraConfig == LoRAConfig(rank: 4, alpha: 8, targets: lm.loraConfig!.targets, baseModel: Self.dir.appendingPathComponent("tied").path,
                                            taskType: "CAUSAL_LM"))
        for name in lm.parameters.names where name.contains(".lora_") { #expect(back.parameters[name]! == lm.parameters[name]!, "\(name)") }
        // Same tensors, same names and shapes as PEFT's own file.
        let mine = try SafeTensorsFile(url: tmp.appendingPathComponent("adapter_model.safetensors"))
        let peft = try SafeTensorsFile(url: Self.dir.appendingPathComponent("lora/adapter_model.safetensors"))
        #expect(mine.names.sorted() == peft.names.sorted())
        for n in peft.names { #expect(try mine.tensor(n) == peft.tensor(n), "\(n)") }
    }

    @Test func aTrainingStepGradientsTheAdapterOnlyAsPEFTDoes() throws {
        let lm = try #require(try ModelLoader.causalLM(Self.dir.appendingPathComponent("lora")) as? LlamaForCausalLM)
        let encoder = try DecoderEncoder(folder: Self.dir.appendingPathComponent("tied"), maxLength: 160)
        let data = Array(try DecoderTrainer.encode(Self.dir.appendingPathComponent("pc.jsonl"), encoder: encoder).prefix(4))
        let batch = Batch(encodings: data.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                          labels: [-1, -1, -1, -1], indices: [0, 1, 2, 3])
        var grads = lm.parameters.zeros { $0.contains(".lora_") }
        let loss = lm.lossAndGradients(batch, grads: &grads, targets: data.flatMap { $0.targets(length: batch.length) })
        #expect(abs(loss - golden.batch_loss) <= 1e-5 * golden.batch_loss)
        for (name, g) in grads.named {
            if name.contains(".lora_") {
                let want = try #require(golden.batch_grads["base_model.model." + name])
                expectClose(g.values, want, atol: 1e-6, rtol: 1e-3, name)
            } else {
                #expect(g.count == 0, "\(name) is frozen and gets no gradient")
            }
        }
        // One AdamW step moves the adapter only.
        let before = lm.parameters
        var opt = Optimizer(kind: .adamw, parameters: lm.parameters, weightDecay: 0.01) { $0.contains(".lora_") }
        opt.step(&lm.parameters, grads: grads, lr: 1e-3)
        for (i, name) in lm.parameters.names.enumerated() {
            #expect((lm.parameters[i] == before[i]) == !name.contains(".lora_"), "\(name)")
        }
    }

    /// A run folder of two checkpoints: the base model, then the adapter on it.
    func twoCheckpointRun() throws -> URL {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("decoder-run-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        try fm.copyItem(at: Self.dir.appendingPathComponent("tied"), to: run.appendingPathComponent("checkpoint-1"))
        try fm.createDirectory(at: run.appendingPathComponent("checkpoint-2"), withIntermediateDirectories: true)
        try fm.copyItem(at: Self.dir.appendingPathComponent("lora/adapter_model.safetensors"), to: run.appendingPathComponent("checkpoint-2/adapter_model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("lora/adapter_config.json"))) as! [String: Any]
        config["base_model_name_or_path"] = Self.dir.appendingPathComponent("tied").path
        try JSONSerialization.data(withJSONObject: config).write(to: run.appendingPathComponent("checkpoint-2/adapter_config.json"))
        return run
    }

    @Test func scoresOverTheCheckpointsOfADecoderRun() throws {
        let run = try twoCheckpointRun()
        defer { try? FileManager.default.removeItem(at: run) }
        let data = Self.dir.appendingPathComponent("pc.jsonl")
        var o = options("all")
        o.learningRate = 1
        // Self-influence sums the checkpoints' squared norms: the base's (decoder golden) plus the adapted model's.
        let si = try Scorer.score(.tracin, run: run, data: data, options: o)
        let vog = try Scorer.score(.vog, run: run, data: data, options: o)
        #expect(si.notes.first?.contains("over checkpoint(s) 1,2") == true, "\(si.notes)")
        let tiedRows = try JSONDecoder().decode([String: DecoderScoreGoldenTests.Model].self,
                                                from: Data(contentsOf: Self.dir.appendingPathComponent("golden.json")))["tied"]!.pc
        for (i, r) in golden.pc.enumerated() {
            let want = tiedRows[i].sq_norm["all"]! + r.sq_norm["all"]!
            #expect(abs(si.scores[i] - want) <= 2e-3 * want, "tracin \(i): \(si.scores[i]) vs \(want)")
            let v = golden.vog_base_then_adapted[i]
            #expect(abs(vog.scores[i] - v) <= 1e-3 * v + 1e-7, "vog \(i): \(vog.scores[i]) vs \(v)")
        }
        #expect(throws: WinnowError.self) { _ = try Scorer.score(.vog, run: Self.dir.appendingPathComponent("tied"), data: data, options: o) }
    }

    @Test func loraDropoutGradientsEqualFiniteDifferencesOfTheSameMasks() throws {
        let lm = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("tied"))
        try lm.addLoRA(LoRAConfig(rank: 2, alpha: 4, dropout: 0.3, targets: [.q, .down]), seed: 3)
        for name in lm.parameters.names where name.contains(".lora_B.") {      // B not zero, so A gets gradient
            let i = lm.parameters.index(of: name)!
            lm.parameters[i].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(sin(Double(j + 1))) * 0.5 } }
        }
        let encoder = try DecoderEncoder(folder: Self.dir.appendingPathComponent("tied"), maxLength: 160)
        let data = Array(try DecoderTrainer.encode(Self.dir.appendingPathComponent("pc.jsonl"), encoder: encoder).prefix(2))
        let batch = Batch(encodings: data.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                          labels: [-1, -1], indices: [0, 1])
        let targets = data.flatMap { $0.targets(length: batch.length) }
        func loss(training: Bool = true) -> Double {
            var g = lm.parameters.zeros { $0.contains(".lora_") }
            return lm.lossAndGradients(batch, grads: &g, targets: targets, training: training, seed: 7)
        }
        var grads = lm.parameters.zeros { $0.contains(".lora_") }
        let l0 = lm.lossAndGradients(batch, grads: &grads, targets: targets, training: true, seed: 7)
        #expect(abs(l0 - loss()) == 0, "the same seed drops the same inputs")
        #expect(abs(l0 - loss(training: false)) > 1e-6, "dropout changes the loss in training")
        for name in ["model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_B.weight"] {
            let i = lm.parameters.index(of: name)!
            for j in [0, 5, 17] {
                let h: Float = 1e-2
                let old = lm.parameters[i].values[j]
                lm.parameters[i].withUnsafeMutableBufferPointer { $0[j] = old + h }
                let up = loss()
                lm.parameters[i].withUnsafeMutableBufferPointer { $0[j] = old - h }
                let down = loss()
                lm.parameters[i].withUnsafeMutableBufferPointer { $0[j] = old }
                let fd = (up - down) / Double(2 * h), an = Double(grads[i].values[j])
                #expect(abs(fd - an) <= 2e-2 * max(abs(an), 1e-2), "\(name)[\(j)]: finite difference \(fd), gradient \(an)")
            }
        }
    }

    @Test func loraSelectsNothingWithoutAnAdapter() throws {
        let lm = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("tied"))
        #expect(throws: WinnowError.self) { _ = try ParameterSelection(.lora, layout: lm.parameterLayout) }
    }
}
