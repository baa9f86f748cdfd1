import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining

/// Continued pre-training of a decoder with PRESENCE (`winnow pretrain --init`) on the tiny Llamas: the
/// one-backward step's self-influence and weighted gradients against each sample's own backward pass
/// through the training path, tau = 0 against plain training, the adapter-only run, resuming.
@Suite struct DecoderPretrainingTests {
    static let dir = Paths.fixtures.appendingPathComponent("decoder")

    static func model(_ name: String) throws -> LlamaForCausalLM {
        try #require(try ModelLoader.causalLM(dir.appendingPathComponent(name)) as? LlamaForCausalLM)
    }

    static func corpus(seqLen: Int = 10) throws -> LMCorpus {
        try LMCorpus(url: dir.appendingPathComponent("corpus.txt"), causalTokenizer: Tokenizers.load(folder: dir.appendingPathComponent("tied")),
                     seqLen: seqLen)
    }

    @Test func theCorpusIsCutIntoCausalWindowsOfTheModelsTokens() throws {
        let c = try Self.corpus()
        let tok = try Tokenizers.load(folder: Self.dir.appendingPathComponent("tied"))
        let first = tok.encode("The cat sat on the mat.", pair: nil, maxLength: nil).inputIDs
        #expect(c.windows[0] == Array(first.prefix(10)) && c.lines[0] == 1)
        #expect(c.windows.allSatisfy { $0.count >= 2 && $0.count <= 10 })
        // Every line's tokens are in its windows, in order (a lone last token has no target and is dropped).
        let lines = try String(contentsOf: Self.dir.appendingPathComponent("corpus.txt"), encoding: .utf8).split(separator: "\n")
        for (n, text) in lines.enumerated() {
            let ids = tok.encode(String(text), pair: nil, maxLength: nil).inputIDs
            let joined = c.windows.indices.filter { c.lines[$0] == n + 1 }.flatMap { c.windows[$0] }
            #expect(joined == Array(ids.prefix(ids.count % 10 == 1 ? ids.count - 1 : ids.count)), "line \(n + 1)")
        }
        let lb = c.batch([0, 3], objective: .causal, seed: 0)
        #expect(lb.targets[0] == c.windows[0][1])
    }

    /// Each sample's gradient of its own mean token loss, from the training path on a batch of one.
    static func sampleGradients(_ lm: LlamaForCausalLM, _ corpus: LMCorpus, _ idx: [Int], trainable: (String) -> Bool) -> [ParameterStore] {
        idx.map { i in
            let one = corpus.batch([i], objective: .causal, seed: 0)
            var g = lm.parameters.zeros(keeping: trainable)
            lm.lossAndGradients(one.batch, grads: &g, targets: one.targets)
            return g
        }
    }

    @Test(arguments: ["tied", "untied", "lora"])
    func selfInfluenceAndWeightedGradientsEqualEachSamplesOwnBackward(_ name: String) throws {
        let lm = try Self.model(name)
        let corpus = try Self.corpus()
        let idx = [0, 1, 4, 5, 7, 9, 12]
        let lb = corpus.batch(idx, objective: .causal, seed: 0)
        let trainable: (String) -> Bool = name == "lora" ? { $0.contains(".lora_") } : { _ in true }
        let single = Self.sampleGradients(lm, corpus, idx, trainable: trainable)
        let groups = Presence.groups(batchSize: idx.count, microbatchSize: 3)
        for spec in name == "lora" ? ["lora", "model.layers.1.mlp.down_proj.lora_,model.layers.0.self_attn.v_proj.lora_B"] : ["first-layer", "last-layer", "embeddings", "all"] {
            let sel = try lm.selfInfluenceSelection(ParameterSelection.Spec(parsing: spec)!)
            lm.forward(lb, training: false, seed: 0)
            lm.backwardPerSample(training: false, seed: 0)
            let si = lm.groupGradientNorms(lb, selection: sel, groups: groups)
            for j in 0..<(groups.count - 1) {
                let members = Array(groups[j]..<groups[j + 1])
                var norm = 0.0
                for n in sel.names {
                    let k = lm.parameters.index(of: n)!
                    guard single[0][k].count > 0 else { continue }     // a frozen base tensor of the adapter model
                    var sum = [Double](repeating: 0, count: lm.parameters[k].count)
                    for b in members { for (i, x) in single[b][k].values.enumerated() { sum[i] += Double(x) / Double(members.count) } }
                    norm += sum.reduce(0) { $0 + $1 * $1 }
                }
                #expect(norm > 0)
                #expect(abs(si[j] - norm) <= 1e-3 * norm, "\(name) \(spec) microbatch \(j): SI \(si[j]) vs materialised \(norm)")
            }
        }
        // Book-keeping: the gradient of sum_b v_b L_b from the one backward pass.
        let v: [Float] = [0.5, 0, 0.1, 0.2, 0.05, 0.1, 0.05]
        lm.forward(lb, training: false, seed: 0)
        lm.backwardPerSample(training: false, seed: 0)
        var grads = lm.parameters.zeros(keeping: trainable)
        lm.accumulateGradients(sampleWeights: v, into: &grads)
        var checked = 0
        for k in lm.parameters.names.indices where grads[k].count > 0 {
            var want = [Double](repeating: 0, count: grads[k].count)
            for b in idx.indices { for (i, x) in single[b][k].values.enumerated() { want[i] += Double(v[b]) * Double(x) } }
            let scale = want.map(abs).max()!
            let err = zip(grads[k].values, want).map { abs(Double($0) - $1) }.max()!
            #expect(scale > 0 && err <= 1e-3 * scale, "\(name) \(lm.parameters.names[k]): largest difference \(err) of \(scale)")
            checked += 1
        }
        #expect(checked == (name == "lora" ? lm.parameters.names.filter { $0.contains(".lora_") }.count : lm.parameters.names.count))
    }

    static func pretrain(_ o: PretrainOptions, run: URL, siLog: URL? = nil, resume: Bool = false) throws -> LlamaForCausalLM {
        let lm = try model("tied")
        // A resumed run's adapter starts elsewhere: the checkpoint must restore it.
        try lm.addLoRA(LoRAConfig(rank: 2, alpha: 4, dropout: 0.1, targets: [.q, .v, .down]), seed: resume ? 77 : o.seed)
        try PreTrainer(options: o).train(decoder: lm, base: dir.appendingPathComponent("tied"), on: corpus(), run: run, siLog: siLog, resume: resume)
        return lm
    }

    static func options() -> PretrainOptions {
        var o = PretrainOptions()
        o.steps = 6; o.batchSize = 6; o.checkpoints = 2; o.learningRate = 1e-2
        o.presence.microbatchSize = 2; o.presence.siParams = ParameterSelection.Spec(parsing: "last-layer")!
        return o
    }

    @Test func presenceOnAnAdapterTrainsTheAdapterOnlyAndTauZeroIsPlainTraining() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-dpt-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: tmp) }
        var o = Self.options()
        let plain = try Self.pretrain(o, run: tmp.appendingPathComponent("plain"))
        o.presence.reweight = .presence; o.presence.tau1 = 0; o.presence.tau2 = 0
        let zero = try Self.pretrain(o, run: tmp.appendingPathComponent("zero"))
        o.presence.tau1 = 1; o.presence.tau2 = -1
        let weighted = try Self.pretrain(o, run: tmp.appendingPathComponent("weighted"), siLog: tmp.appendingPathComponent("si.csv"))
        let base = try Self.model("tied")
        for (k, n) in plain.parameters.names.enumerated() {
            #expect(plain.parameters[k].values == zero.parameters[k].values, "\(n): tau 0 differs from plain training")
            if !n.contains(".lora_") { #expect(weighted.parameters[k].values == base.parameters[n]!.values, "\(n): a base tensor moved") }
        }
        let b = plain.parameters.index(of: "model.layers.1.mlp.down_proj.lora_B.weight")!
        #expect(plain.parameters[b].values.contains { $0 != 0 }, "the adapter did not train")
        #expect(weighted.parameters[b].values != plain.parameters[b].values, "tau != 0 must change training")
        // The run is a PEFT adapter folder whose base is the tiny model; the SI log has every sample.
        let run = tmp.appendingPathComponent("weighted")
        for f in ["adapter_config.json", "adapter_model.safetensors", "checkpoint-3/adapter_model.safetensors", "trainer_state.json"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        let back = try #require(try ModelLoader.causalLM(run) as? LlamaForCausalLM)
        #expect(back.parameters[b].values == weighted.parameters[b].values)
        let rows = try String(contentsOf: tmp.appendingPathComponent("si.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.count == 6 * 6)
        // Weights of a step sum to one over its microbatches (each logged once per sample of a pair).
        for step in 1...6 {
            let w = rows.filter { $0.hasPrefix("\(step),") }.map { Double($0.split(separator: ",")[3])! }
            #expect(abs(w.reduce(0, +) / 2 - 1) < 1e-6, "step \(step): weights sum to \(w.reduce(0, +) / 2)")
        }
    }

    @Test func aResumedAdapterRunEqualsAnUninterruptedOne() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-dpr-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: tmp) }
        var o = Self.options()
        o.presence.reweight = .presence
        let whole = try Self.pretrain(o, run: tmp.appendingPathComponent("a"))
        _ = try Self.pretrain(o, run: tmp.appendingPathComponent("b"))
        let b = tmp.appendingPathComponent("b")
        for f in ["checkpoint-6", "adapter_model.safetensors", "adapter_config.json", "trainer_state.json"] {
            try FileManager.default.removeItem(at: b.appendingPathComponent(f))
        }
        let resumed = try Self.pretrain(o, run: b, resume: true)
        for (k, n) in whole.parameters.names.enumerated() where n.contains(".lora_") {
            #expect(whole.parameters[k].values == resumed.parameters[k].values, "\(n) differs after resuming")
        }
    }
}
