import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels

/// A tiny random Llama (grouped-query attention, untied head) against transformers
/// (scripts/reference/make_llama_golden.py): the Hugging Face folder and the GGUF file of the same
/// weights (Q8_0, Q4_1 and F16 tensors, Q and K rows permuted as llama.cpp writes them), a right-padded
/// batch of three sequences.
@Suite struct LlamaGoldenTests {
    static let dir = Paths.fixtures.appendingPathComponent("llama")
    let golden: SafeTensorsFile
    let batch: Batch

    init() throws {
        golden = try SafeTensorsFile(url: Self.dir.appendingPathComponent("golden.safetensors"))
        let ids = try golden.integers("input_ids").map { Int32($0) }, mask = try golden.integers("attention_mask")
        let T = 9
        let encs = (0..<3).map { b in
            let n = (0..<T).filter { mask[b * T + $0] != 0 }.count
            return Encoding(inputIDs: Array(ids[(b * T)..<(b * T + n)]), tokenTypeIDs: [Int32](repeating: 0, count: n))
        }
        batch = Batch(encodings: encs, labels: [-1, -1, -1], indices: [0, 1, 2], padID: 0)
    }

    @Test func logitsAndLossesMatchTransformersFromTheHuggingFaceFolder() throws {
        let lm = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("hf"))
        #expect(lm.config.numKeyValueHeads == 2 && lm.config.headDim == 16 && !lm.config.tieWordEmbeddings)
        expectClose(lm.logitsAllRows(batch).values, try golden.tensor("hf_logits").values, atol: 1e-4, rtol: 0, "logits")
        let (losses, targets) = lm.sampleLosses(batch)
        #expect(targets == [8, 5, 3])
        expectClose(losses.map(Float.init), try golden.tensor("hf_losses").values, atol: 0, rtol: 1e-4, "per-example losses")
    }

    @Test func everyParameterGradientMatchesTransformers() throws {
        let lm = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("hf"))
        var grads = lm.parameters.zeros()
        lm.lossAndGradients(batch, grads: &grads)
        for (name, g) in grads.named {
            let expected = try golden.tensor("grad." + name).values
            let err = relativeError(g.values, expected)
            #expect(err <= 1e-3, "grad.\(name): relative error \(err)")
        }
    }

    @Test func theGGUFFileGivesTransformersDequantisedModel() throws {
        let lm = try LlamaForCausalLM(gguf: Self.dir.appendingPathComponent("tiny.gguf"))
        // The same model; the names and special ids are the files' own (the tiny GGUF carries no tokenizer).
        #expect(lm.config == (try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("hf"))).config.withFileFields(of: lm.config))
        expectClose(lm.logitsAllRows(batch).values, try golden.tensor("gguf_logits").values, atol: 1e-4, rtol: 0, "GGUF logits")
        expectClose(lm.sampleLosses(batch).losses.map(Float.init), try golden.tensor("gguf_losses").values, atol: 0, rtol: 1e-4, "GGUF losses")
    }

    @Test func sequenceClassificationMatchesTransformers() throws {
        let cls = try LlamaForSequenceClassification(folder: Self.dir.appendingPathComponent("cls"))
        #expect(cls.labelNames == ["a", "b", "c"] && cls.config.padTokenID == 0)
        var b = batch
        b.labels = [2, 0, 1]
        var grads = cls.parameters.zeros()
        cls.lossAndGradients(b, grads: &grads)
        expectClose(cls.lastLogits.values, try golden.tensor("cls_logits").values, atol: 1e-4, rtol: 0, "classifier logits")
        for (name, g) in grads.named {
            let err = relativeError(g.values, try golden.tensor("cls.grad." + name).values)
            #expect(err <= 1e-3, "cls.grad.\(name): relative error \(err)")
        }
    }

    /// Qwen2: the same architecture with q, k and v biases and tied embeddings
    /// (scripts/reference/make_qwen2_golden.py).
    @Test func qwen2WithAttentionBiasesMatchesTransformers() throws {
        let lm = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("qwen2"))
        #expect(lm.config.attentionBias && lm.config.tieWordEmbeddings)
        let g = try SafeTensorsFile(url: Self.dir.appendingPathComponent("qwen2-golden.safetensors"))
        try expectLogitsAndGradients(lm, g, "qwen2", holding: "model.layers.1.self_attn.k_proj.bias")
    }

    /// Logits within 1e-4 and every gradient of the batch loss within 1e-3 relative of `g`'s (transformers reports a
    /// tied embedding's gradient under the embedding's name).
    func expectLogitsAndGradients(_ lm: LlamaForCausalLM, _ g: SafeTensorsFile, _ what: String, holding name: String) throws {
        #expect(lm.parameters.names.contains(name))
        try expectLogitsAndGradients(lm, g, nil, batch: batch, label: what)
    }

    /// The same on `batch` against `g`'s PREFIX.logits and PREFIX.grad.NAME (no prefix: logits, grad.NAME).
    func expectLogitsAndGradients(_ lm: LlamaForCausalLM, _ g: SafeTensorsFile, _ prefix: String?, batch: Batch, label: String? = nil) throws {
        let p = prefix.map { $0 + "." } ?? "", what = label ?? prefix ?? ""
        // Real tokens' rows: a padding query whose window holds only padding has no meaning (transformers spreads it
        // over every key, Winnow over its window).
        let V = lm.config.vocabSize, rows = (0..<(batch.size * batch.length)).filter { batch.attentionMask[$0] != 0 }
        func real(_ x: [Float]) -> [Float] { rows.flatMap { x[($0 * V)..<($0 * V + V)] } }
        expectClose(real(lm.logitsAllRows(batch).values), real(try g.tensor(p + "logits").values), atol: 1e-4, rtol: 0, "\(what) logits")
        var grads = lm.parameters.zeros()
        lm.lossAndGradients(batch, grads: &grads)
        for (name, t) in grads.named {
            let err = relativeError(t.values, try g.tensor(p + "grad." + name).values)
            #expect(err <= 1e-3, "\(what) grad.\(name): relative error \(err)")
        }
    }

    /// Qwen3: an RMSNorm on each query and key head before the rotation, a head dimension (24) apart from hidden /
    /// heads (16), tied embeddings (scripts/reference/make_qwen3_golden.py): logits, every gradient, and each
    /// example's squared gradient norm over every tensor and over the last layer (Gram factors, norms included).
    @Test func qwen3WithQKNormsMatchesTransformers() throws {
        let folder = Self.dir.appendingPathComponent("qwen3")
        let lm = try LlamaForCausalLM(folder: folder)
        #expect(lm.config.qkNorm && lm.config.headDim == 24 && lm.config.queryWidth == 96 && lm.config.tieWordEmbeddings && !lm.config.attentionBias)
        let g = try SafeTensorsFile(url: Self.dir.appendingPathComponent("qwen3-golden.safetensors"))
        try expectLogitsAndGradients(lm, g, "qwen3", holding: "model.layers.1.self_attn.k_norm.weight")
        try expectWeightedGradients(lm, g, "qwen3")
        try expectExampleNorms(lm, g, lastLayer: "model.layers.1.")
        try expectWrittenBack(lm, modelType: "qwen3", architecture: "Qwen3ForCausalLM")
    }

    /// Each example's next-token targets on the golden batch (every token after the first).
    var nextTokenTargets: [Int32] {
        var targets = [Int32](repeating: -1, count: batch.size * batch.length)
        for b in 0..<batch.size {
            let n = batch.realLength(b)
            for t in 0..<(n - 1) { targets[b * batch.length + t] = batch.inputIDs[b * batch.length + t + 1] }
        }
        return targets
    }

    /// Each example's squared gradient norm of its own mean next-token loss over every tensor and over `lastLayer`
    /// (Gram factors, norms included) within 1e-3 of `g`'s sqnorm.all and sqnorm.last.
    func expectExampleNorms(_ lm: LlamaForCausalLM, _ g: SafeTensorsFile, lastLayer: String) throws {
        for (spec, key) in [("all", "sqnorm.all"), (lastLayer, "sqnorm.last")] {
            let sel = try ParameterSelection(try #require(ParameterSelection.Spec(parsing: spec)), layout: lm.parameterLayout)
            lm.perExampleLossBackward(batch, targets: nextTokenTargets, selection: sel)
            var sq = [Float](repeating: 0, count: batch.size)
            lm.gradientFactors(batch, selection: sel).addNorms(into: &sq, scale: 1)
            let want = try g.tensor(key).values
            for b in 0..<batch.size { #expect(abs(sq[b] - want[b]) <= 1e-3 * want[b], "\(key)[\(b)]: \(sq[b]) against \(want[b])") }
        }
    }

    /// Written back as a folder of the model's own family that reads the same configuration and tensors.
    func expectWrittenBack(_ lm: LlamaForCausalLM, modelType: String, architecture: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-\(modelType)-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try lm.save(to: dir)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(json?["model_type"] as? String == modelType && (json?["architectures"] as? [String]) == [architecture])
        let back = try LlamaForCausalLM(folder: dir)
        #expect(back.config == lm.config)
        for i in lm.parameters.tensors.indices { #expect(back.parameters[i] == lm.parameters[i], "\(lm.parameters.names[i]) changed") }
    }

    /// PRESENCE's book-keeping (one data-only backward, then each tensor's gradient of sum_b v_b L_b) with v_b the
    /// example's share of the batch's targets: the batch loss's gradient, every tensor against transformers'.
    func expectWeightedGradients(_ lm: LlamaForCausalLM, _ g: SafeTensorsFile, _ what: String) throws {
        let targets = nextTokenTargets
        let lb = LMBatch(batch: batch, targets: targets, lines: [1, 2, 3])
        lm.forward(lb, training: false, seed: 0)
        lm.backwardPerSample(training: false, seed: 0)
        let total = Float(lm.sampleTargets.reduce(0, +))
        var grads = lm.parameters.zeros()
        lm.accumulateGradients(sampleWeights: lm.sampleTargets.map { Float($0) / total }, into: &grads)
        for (name, t) in grads.named {
            let err = relativeError(t.values, try g.tensor("grad." + name).values)
            #expect(err <= 1e-3, "\(what) weighted grad.\(name): relative error \(err)")
        }
    }

    /// Gemma 3 (model_type gemma3_text; scripts/reference/make_gemma3_golden.py): norms scaling by 1 + w, embeddings
    /// by sqrt(hidden), GELU-tanh gating, norms on the attention's and MLP's outputs, q and k norms, a local layer
    /// rotating with its own base, query_pre_attn_scalar: logits, every gradient (the training backward and PRESENCE's
    /// weighted one), each example's squared gradient norm over every tensor and over the last layer, VoG's gradient
    /// on inputs_embeds, and the folder written back.
    @Test func gemma3MatchesTransformers() throws {
        let folder = Self.dir.appendingPathComponent("gemma3")
        let lm = try LlamaForCausalLM(folder: folder)
        let c = lm.config
        #expect(c.gemma && c.qkNorm && c.headDim == 24 && c.tieWordEmbeddings && c.slidingLayers == [true, false, true])
        #expect(c.ropeTheta == 1_000_000 && c.localRopeTheta == 10000 && c.queryPreAttnScalar == 20 && c.maxSequenceLength == 64)
        let g = try SafeTensorsFile(url: Self.dir.appendingPathComponent("gemma3-golden.safetensors"))
        try expectLogitsAndGradients(lm, g, "gemma3", holding: "model.layers.2.post_feedforward_layernorm.weight")
        try expectWeightedGradients(lm, g, "gemma3")
        try expectExampleNorms(lm, g, lastLayer: "model.layers.2.")
        let vog = lm.targetLogitInputGradients(batch, targets: nextTokenTargets)
        #expect(relativeError(vog.values, try g.tensor("vog.grad").values) <= 1e-3, "VoG's gradient on inputs_embeds")
        try expectWrittenBack(lm, modelType: "gemma3_text", architecture: "Gemma3ForCausalLM")
    }

    /// A peft LoRA adapter on Gemma 3 (r 4 on all seven projections, B not zero): each example's squared gradient
    /// norm over the adapter (whose o_proj and down_proj deltas pass through Gemma's output norms) as peft's.
    @Test func gemma3LoRAGradientNormsMatchPEFT() throws {
        let lm = try #require(try ModelLoader.causalLM(Self.dir.appendingPathComponent("gemma3-lora")) as? LlamaForCausalLM)
        #expect(lm.config.gemma && lm.loraConfig?.targets.count == 7)
        let g = try SafeTensorsFile(url: Self.dir.appendingPathComponent("gemma3-golden.safetensors"))
        let sel = try ParameterSelection(try #require(ParameterSelection.Spec(parsing: "lora")), layout: lm.parameterLayout)
        lm.perExampleLossBackward(batch, targets: nextTokenTargets, selection: sel)
        var sq = [Float](repeating: 0, count: batch.size)
        lm.gradientFactors(batch, selection: sel).addNorms(into: &sq, scale: 1)
        let want = try g.tensor("lora.sqnorm").values
        for b in 0..<batch.size { #expect(abs(sq[b] - want[b]) <= 1e-3 * want[b], "lora.sqnorm[\(b)]: \(sq[b]) against \(want[b])") }
    }

    /// Gemma3TextForSequenceClassification (the same body, a score head on each row's last token that is not padding):
    /// logits and every gradient of the cross-entropy, and the class name written back.
    @Test func gemma3SequenceClassificationMatchesTransformers() throws {
        let cls = try LlamaForSequenceClassification(folder: Self.dir.appendingPathComponent("gemma3-cls"))
        #expect(cls.labelNames == ["a", "b", "c"] && cls.config.gemma)
        let g = try SafeTensorsFile(url: Self.dir.appendingPathComponent("gemma3-golden.safetensors"))
        var b = batch
        b.labels = [2, 0, 1]
        var grads = cls.parameters.zeros()
        cls.lossAndGradients(b, grads: &grads)
        expectClose(cls.lastLogits.values, try g.tensor("cls_logits").values, atol: 1e-4, rtol: 0, "gemma3 classifier logits")
        for (name, t) in grads.named {
            let err = relativeError(t.values, try g.tensor("cls.grad." + name).values)
            #expect(err <= 1e-3, "gemma3 cls.grad.\(name): relative error \(err)")
        }
        #expect((cls.config.json(architecture: "LlamaForSequenceClassification")["architectures"] as? [String]) == ["Gemma3TextForSequenceClassification"])
    }

    /// Sliding windows past their length (scripts/reference/make_window_golden.py): Gemma 3's local layers (a window of 12)
    /// on sequences of 20 and 15 tokens, the tiny Llama read as a Mistral with a window of 4 and the tiny Qwen2 with
    /// use_sliding_window (a window of 3 on its second layer) on the golden batch: logits and every gradient as
    /// transformers'.
    @Test func slidingWindowsMatchTransformersPastTheirLength() throws {
        let w = try SafeTensorsFile(url: Self.dir.appendingPathComponent("window-golden.safetensors"))
        let gemma = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent("gemma3"))
        let ids = try w.integers("gemma.input_ids").map { Int32($0) }, mask = try w.integers("gemma.attention_mask")
        let encs = (0..<2).map { b in
            let n = (0..<20).filter { mask[b * 20 + $0] != 0 }.count
            return Encoding(inputIDs: Array(ids[(b * 20)..<(b * 20 + n)]), tokenTypeIDs: [Int32](repeating: 0, count: n))
        }
        let long = Batch(encodings: encs, labels: [-1, -1], indices: [0, 1], padID: 0)
        #expect(long.length == 20 && gemma.config.slidingWindow == 12)
        try expectLogitsAndGradients(gemma, w, "gemma", batch: long)
        // The tiny Llama as a Mistral with a window of 4 keys.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-mistral-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("hf"), to: dir)
        let cfgURL = dir.appendingPathComponent("config.json")
        var cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any])
        cfg["model_type"] = "mistral"
        cfg["sliding_window"] = 4
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        let mistral = try LlamaForCausalLM(folder: dir)
        #expect(mistral.config.attentionWindow(1) == 4)
        try expectLogitsAndGradients(mistral, w, "mistral", batch: batch)
        // The tiny Qwen2 with use_sliding_window: a window of 3 keys on the layers from max_window_layers (1) up.
        let qdir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-qwen2-window-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: qdir) }
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("qwen2"), to: qdir)
        let qURL = qdir.appendingPathComponent("config.json")
        var qcfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: qURL)) as? [String: Any])
        qcfg["use_sliding_window"] = true
        qcfg["sliding_window"] = 3
        qcfg["max_window_layers"] = 1
        qcfg["layer_types"] = nil
        try JSONSerialization.data(withJSONObject: qcfg).write(to: qURL)
        let qwen = try LlamaForCausalLM(folder: qdir)
        #expect(qwen.config.attentionWindow(0) == nil && qwen.config.attentionWindow(1) == 3)
        try expectLogitsAndGradients(qwen, w, "qwen2", batch: batch)
        let plain = try SafeTensorsFile(url: Self.dir.appendingPathComponent("qwen2-golden.safetensors"))
        #expect(try w.tensor("qwen2.logits").values != plain.tensor("logits").values, "the window changes the logits past 3 tokens")
        // Written back with its window (use_sliding_window, layer_types), it reads the same.
        let back = qdir.appendingPathComponent("saved")
        try qwen.save(to: back)
        #expect(try LlamaForCausalLM(folder: back).config == qwen.config)
    }

    /// Gemma 3's config.json as transformers 4.x wrote it (the hub's Gemma 3 270M and 1B): `rope_theta` and
    /// `rope_local_base_freq` instead of `rope_parameters`, `sliding_window_pattern` instead of `layer_types`, and
    /// Gemma3TextConfig's defaults for keys left out (head_dim 256, query_pre_attn_scalar 256, tied embeddings).
    @Test func gemma3ConfigsOfTransformers4Read() throws {
        let src = try Data(contentsOf: Self.dir.appendingPathComponent("gemma3/config.json"))
        var obj = try #require(try JSONSerialization.jsonObject(with: src) as? [String: Any])
        for key in ["rope_parameters", "layer_types", "head_dim", "query_pre_attn_scalar", "tie_word_embeddings"] { obj[key] = nil }
        obj["rope_theta"] = 500_000.0
        obj["rope_local_base_freq"] = 20_000.0
        obj["rope_scaling"] = NSNull()
        obj["sliding_window_pattern"] = 2
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-gemma3-v4-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        let c = try LlamaConfig(contentsOf: url)
        #expect(c.gemma && c.ropeTheta == 500_000 && c.localRopeTheta == 20_000 && c.slidingLayers == [true, false, true])
        #expect(c.headDim == 256 && c.queryPreAttnScalar == 256 && c.tieWordEmbeddings && c.slidingWindow == 12)
        #expect(c.attentionWindow(0) == 12 && c.attentionWindow(1) == nil)
    }

    /// Gemma 3 variants Winnow does not implement, each refused naming its key.
    @Test(arguments: [("final_logit_softcapping", "30.0", "soft-capping"), ("attn_logit_softcapping", "50.0", "soft-capping"),
                      ("use_bidirectional_attention", "true", "bidirectional"), ("hidden_activation", "\"gelu\"", "gelu_pytorch_tanh"),
                      ("layer_types", "[\"full_attention\"]", "1 entries for 3 layers"),
                      ("rope_parameters", "{\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 8.0}}", "rope_type 'linear'")])
    func gemma3VariantsAreRefusedByName(_ key: String, _ value: String, _ words: String) throws {
        let src = try String(contentsOf: Self.dir.appendingPathComponent("gemma3/config.json"), encoding: .utf8)
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(src.utf8)) as? [String: Any])
        obj[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-gemma3-config-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        let message = (#expect(throws: WinnowError.self) { try LlamaConfig(contentsOf: url) })?.description ?? ""
        #expect(message.contains("'\(key)'") && message.contains(words), "\(message)")
    }

    /// Qwen2, Qwen3 and Gemma 3 GGUF files as llama.cpp's converter writes them (scripts/reference/make_qwen_gguf_golden.py:
    /// `qwen2.*` / `qwen3.*` metadata, Qwen3's head dimension as `attention.key_length`, q/k/v biases and q/k norms
    /// under llama.cpp's names, Q and K rows unpermuted): the folders' configurations and every tensor exactly.
    /// Gemma 3's file as llama.cpp's converter writes it: its norms stored as 1 + w (1 taken off on reading, as transformers'
    /// GGUF loader does: within one rounding of the folder's), the layers and scale as llama.cpp runs them (every sixth
    /// layer global, 1 / sqrt(head_dim)), the window from `gemma3.attention.sliding_window`.
    @Test(arguments: ["qwen2", "qwen3", "gemma3"])
    func qwenAndGemmaGGUFFilesHoldTheFoldersModels(_ name: String) throws {
        let folder = try LlamaForCausalLM(folder: Self.dir.appendingPathComponent(name))
        let gguf = try LlamaForCausalLM(gguf: Self.dir.appendingPathComponent(name + ".gguf"))
        let c = gguf.config
        #expect(c.modelType == folder.config.modelType && c.attentionBias == (name == "qwen2") && c.qkNorm == (name != "qwen2") && c.gemma == (name == "gemma3"))
        #expect(c.headDim == folder.config.headDim && c.tieWordEmbeddings && c.rmsNormEps == folder.config.rmsNormEps)
        if name == "gemma3" {
            #expect(c.slidingLayers == [true, true, true] && c.slidingWindow == 12 && c.queryPreAttnScalar == 24 && c.ropeTheta == 1_000_000)
        }
        #expect(gguf.parameters.names == folder.parameters.names)
        for (i, n) in folder.parameters.names.enumerated() {
            if name == "gemma3" && n.hasSuffix("norm.weight") {
                expectClose(gguf.parameters[i].values, folder.parameters[i].values, atol: 1.2e-7, rtol: 0, "\(name).gguf: \(n)")
            } else {
                #expect(gguf.parameters[i] == folder.parameters[i], "\(name).gguf: \(n)")
            }
        }
    }

    @Test func aSavedModelLoadsBackIdentically() throws {
        let lm = try LlamaForCausalLM(gguf: Self.dir.appendingPathComponent("tiny.gguf"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-llama-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try lm.save(to: dir)
        let back = try LlamaForCausalLM(folder: dir)
        #expect(back.parameters.named.map(\.0) == lm.parameters.named.map(\.0))
        for i in lm.parameters.tensors.indices { #expect(back.parameters[i] == lm.parameters[i], "\(lm.parameters.names[i]) changed") }
    }

    /// A folder whose weights are split into shards listed by model.safetensors.index.json (as
    /// transformers writes large models) loads the same tensors.
    @Test func shardedSafetensorsLoadTheSameModel() throws {
        let src = Self.dir.appendingPathComponent("hf")
        let whole = try LlamaForCausalLM(folder: src)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-llama-shards-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let named = whole.parameters.named
        let half = named.count / 2
        try SafeTensorsFile.write(Array(named[..<half]), to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try SafeTensorsFile.write(Array(named[half...]), to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        var map: [String: String] = [:]
        for (i, (name, _)) in named.enumerated() { map[name] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors" }
        try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": map])
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let sharded = try LlamaForCausalLM(folder: dir)
        for i in whole.parameters.tensors.indices { #expect(sharded.parameters[i] == whole.parameters[i], "\(whole.parameters.names[i]) differs") }
        // A shard the index names but the folder lacks is named in the error.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        do {
            _ = try LlamaForCausalLM(folder: dir)
            Issue.record("a missing shard was accepted")
        } catch let e as WinnowError {
            #expect(e.description.contains("model-00002-of-00002.safetensors"), "\(e)")
        }
    }

    @Test func damagedWeightsAreNamed() throws {
        // A Hugging Face folder whose config disagrees with its tensors.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-llama-bad-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = Self.dir.appendingPathComponent("hf")
        try FileManager.default.copyItem(at: src.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as! [String: Any]
        cfg["intermediate_size"] = 100
        try JSONSerialization.data(withJSONObject: cfg).write(to: dir.appendingPathComponent("config.json"))
        do {
            _ = try LlamaForCausalLM(folder: dir)
            Issue.record("a mismatched checkpoint was accepted")
        } catch let e as WinnowError {
            #expect(e.description.contains("mlp.gate_proj.weight") && e.description.contains("disagrees with config.json"), "\(e)")
        }
    }
}

extension LlamaConfig {
    func withFileFields(of o: LlamaConfig) -> LlamaConfig {
        var c = self
        c.architecture = o.architecture; c.bosTokenID = o.bosTokenID; c.eosTokenIDs = o.eosTokenIDs
        return c
    }
}
