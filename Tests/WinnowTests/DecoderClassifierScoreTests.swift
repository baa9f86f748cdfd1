import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowScores

/// The scores of a decoder classifier (`LlamaForSequenceClassification`, the tiny GQA Llama whose logits and
/// gradients equal transformers' in LlamaGoldenTests): each example's squared gradient norm and the dot
/// products of two examples' gradients from the Gram factors of one padded batch equal those of the
/// gradients each example's own loss gives through the training path.
@Suite struct DecoderClassifierScoreTests {
    static let dir = Paths.fixtures.appendingPathComponent("llama")
    let model: LlamaForSequenceClassification
    let batch: Batch

    init() throws {
        model = try LlamaForSequenceClassification(folder: Self.dir.appendingPathComponent("cls"))
        let golden = try SafeTensorsFile(url: Self.dir.appendingPathComponent("golden.safetensors"))
        let ids = try golden.integers("input_ids").map { Int32($0) }, mask = try golden.integers("attention_mask")
        let T = 9
        let encs = (0..<3).map { b in
            let n = (0..<T).filter { mask[b * T + $0] != 0 }.count
            return Encoding(inputIDs: Array(ids[(b * T)..<(b * T + n)]), tokenTypeIDs: [Int32](repeating: 0, count: n))
        }
        batch = Batch(encodings: encs, labels: [2, 0, 1], indices: [0, 1, 2], padID: 0)
    }

    /// Example i's gradient over the selected tensors, from the training path (weight 1 on row i only).
    func ownGradient(_ i: Int, _ sel: ParameterSelection) -> [Double] {
        var grads = model.parameters.zeros()
        var w = [Float](repeating: 0, count: batch.size)
        w[i] = 1
        model.lossAndGradients(batch, grads: &grads, weights: w)
        return grads.named.filter { sel.contains($0.0) }.flatMap { $0.1.values.map(Double.init) }
    }

    @Test(arguments: ["all", "last-layer", "first-layer", "embeddings", "classifier", "model.layers.0.self_attn.q_proj,model.norm"])
    func gradientNormsAndDotsEqualEachExamplesOwnGradient(_ spec: String) throws {
        let sel = try ParameterSelection(try #require(ParameterSelection.Spec(parsing: spec)), layout: model.parameterLayout)
        model.perExampleLossBackward(batch)
        let f = model.gradientFactors(batch, selection: sel, space: .params)
        var norms = [Float](repeating: 0, count: 3)
        f.addNorms(into: &norms, scale: 1)
        var dots = [Float](repeating: 0, count: 9)
        dots.withUnsafeMutableBufferPointer { f.addDots(with: f, into: $0.baseAddress!, ldo: 3, scale: 1) }
        let own = (0..<3).map { ownGradient($0, sel) }
        for i in 0..<3 {
            let want = own[i].reduce(0) { $0 + $1 * $1 }
            #expect(want > 0 && abs(Double(norms[i]) - want) <= 1e-3 * want, "\(spec) example \(i): \(norms[i]) vs \(want)")
            for j in 0..<3 {
                let d = zip(own[i], own[j]).reduce(0) { $0 + $1.0 * $1.1 }
                let scale = (own[i].reduce(0) { $0 + $1 * $1 } * own[j].reduce(0) { $0 + $1 * $1 }).squareRoot()
                #expect(abs(Double(dots[i * 3 + j]) - d) <= 1e-3 * scale, "\(spec) dot \(i),\(j): \(dots[i * 3 + j]) vs \(d)")
            }
        }
    }

    @Test func vogsGradientIsTheTargetLogitsInputGradient() throws {
        // d z_y / d inputs_embeds against central differences of the logit along a random direction.
        let g = model.inputEmbeddingGradients(batch, targets: [2, 0, 1])
        let C = model.config.hiddenSize, lengths = (0..<3).map { batch.realLength($0) }
        #expect(g.shape == [lengths.reduce(0, +), C])
        // Perturb the embedding row of a token of example 1 whose id occurs nowhere else in the batch.
        func occurrences(_ id: Int32) -> Int { batch.inputIDs.enumerated().filter { $0.element == id && batch.attentionMask[$0.offset] != 0 }.count }
        let pos = try #require((0..<lengths[1]).first { occurrences(batch.inputIDs[batch.length + $0]) == 1 })
        let t = batch.inputIDs[batch.length + pos], row = lengths[0] + pos
        let e = model.parameters.index(of: "model.embed_tokens.weight")!
        let h: Float = 1e-2
        var fd = [Float](repeating: 0, count: C)
        for c in 0..<C {
            let base = model.parameters[e][Int(t), c]
            model.parameters[e][Int(t), c] = base + h
            let up = model.logits(batch)[1, 0]
            model.parameters[e][Int(t), c] = base - h
            let down = model.logits(batch)[1, 0]
            model.parameters[e][Int(t), c] = base
            fd[c] = (up - down) / (2 * h)
        }
        expectClose(Array(g.values[(row * C)..<((row + 1) * C)]), fd, atol: 2e-3, rtol: 2e-2, "d z_0 / d embeds of example 1's token \(pos)")
    }

    struct LoRAGolden: Decodable {
        struct Example: Decodable { let loss: Double; let sq_norm: [String: Double] }
        let logits: [[Double]]
        let batch_loss: Double
        let batch_grads: [String: [Float]]
        let tensor_names: [String]
        let examples: [Example]
    }

    /// A PEFT LoRA adapter of this classifier (r 4 on q, v and down_proj, B not zero, the score head saved
    /// beside it and moved away from the base's) against peft (scripts/reference/make_llama_cls_lora_golden.py).
    @Test func aPEFTAdapterOfTheClassifierMatchesPEFT() throws {
        let golden = try JSONDecoder().decode(LoRAGolden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("cls-lora-golden.json")))
        let m = try #require(try ModelLoader.classifier(folder: Self.dir.appendingPathComponent("cls-lora")) as? LlamaForSequenceClassification)
        #expect(m.labelNames == ["a", "b", "c"] && m.loraConfig?.taskType == "SEQ_CLS" && Set(m.loraConfig!.targets) == [.q, .v, .down])
        #expect(m.parameters.names.filter(LlamaForSequenceClassification.isAdapterTensor).map { "base_model.model." + $0 }.sorted()
                == golden.tensor_names.sorted())
        let logits = m.inferenceLogits(batch)
        for b in 0..<3 { for j in 0..<3 { #expect(abs(Double(logits[b, j]) - golden.logits[b][j]) <= 1e-4, "logit \(b),\(j)") } }
        var grads = m.gradientBuffers()
        let loss = m.lossAndGradients(batch, grads: &grads)
        #expect(abs(loss - golden.batch_loss) <= 1e-5 * golden.batch_loss)
        for (name, g) in grads.named {
            if LlamaForSequenceClassification.isAdapterTensor(name) {
                let want = try #require(golden.batch_grads["base_model.model." + name], "\(name)")
                expectClose(g.values, want, atol: 1e-6, rtol: 1e-3, name)
            } else {
                #expect(g.count == 0, "\(name) is frozen and gets no gradient buffer")
            }
        }
        for spec in ["lora", "all"] {
            let sel = try ParameterSelection(try #require(ParameterSelection.Spec(parsing: spec)), layout: m.parameterLayout)
            m.perExampleLossBackward(batch)
            var norms = [Float](repeating: 0, count: 3)
            m.gradientFactors(batch, selection: sel, space: .params).addNorms(into: &norms, scale: 1)
            for b in 0..<3 {
                let want = golden.examples[b].sq_norm[spec]!
                #expect(abs(Double(norms[b]) - want) <= 2e-3 * want, "--params \(spec) example \(b): \(norms[b]) vs \(want)")
            }
        }
        // Winnow writes PEFT's file back, tensor for tensor.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cls-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try m.saveAdapter(to: tmp, base: Self.dir.appendingPathComponent("cls").path)
        let mine = try SafeTensorsFile(url: tmp.appendingPathComponent("adapter_model.safetensors"))
        let peft = try SafeTensorsFile(url: Self.dir.appendingPathComponent("cls-lora/adapter_model.safetensors"))
        #expect(mine.names.sorted() == peft.names.sorted())
        for n in peft.names { #expect(try mine.tensor(n) == peft.tensor(n), "\(n)") }
        let back = try #require(try ModelLoader.classifier(folder: tmp) as? LlamaForSequenceClassification)
        #expect(back.inferenceLogits(batch).values == logits.values && back.labelNames == ["a", "b", "c"])
    }
}
