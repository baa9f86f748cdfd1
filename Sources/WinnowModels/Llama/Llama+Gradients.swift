import CKernels
import Foundation
import WinnowCore
import WinnowData

/// The scores' view of a causal language model: per-example losses over chosen target tokens, EL2N
/// over those tokens, and per-example gradient factors of each example's mean target loss (Gram form,
/// docs/contracts.md §4). Llama-architecture decoders conform.
public protocol DecoderScoring: CausalLanguageModel {
    /// Where the family's tensors live (`first-layer` = `model.layers.0.*`, ...).
    var parameterLayout: ParameterLayout { get }
    /// Forward pass with `targets` per token row (-1: none); returns each example's mean target loss,
    /// mean EL2N ||p - onehot||_2 over its targets, and number of targets (0: loss and EL2N are 0).
    func targetScores(_ batch: Batch, targets: [Int32]) -> (losses: [Double], el2n: [Double], targets: [Int])
    /// Forward and a data-only backward of the sum of the examples' mean target losses, keeping what
    /// `gradientFactors` reads for `selection` (the backward stops below the lowest layer it needs).
    func perExampleLossBackward(_ batch: Batch, targets: [Int32], selection: ParameterSelection)
    /// Gradient factors of the selected tensors from the last `perExampleLossBackward` on `batch`.
    func gradientFactors(_ batch: Batch, selection: ParameterSelection) -> GradientFactors
    /// d (mean over an example's targets of the target's logit) / d inputs_embeds on its real tokens,
    /// packed [tokens, hidden] in batch order (VoG's gradient on decoders).
    func targetLogitInputGradients(_ batch: Batch, targets: [Int32]) -> Tensor
}

extension LlamaForCausalLM: DecoderScoring {
    /// Tensor names, one prefix per decoder layer, the embeddings, and `lm_head` when it is not tied.
    public var parameterLayout: ParameterLayout {
        ParameterLayout(names: parameters.names, layerPrefixes: (0..<config.numHiddenLayers).map { "model.layers.\($0)." },
                        embeddingPrefixes: ["model.embed_tokens."], headPrefixes: ["lm_head."])
    }

    /// Each example's mean target loss, mean EL2N and target count, in one inference forward.
    public func targetScores(_ batch: Batch, targets: [Int32]) -> (losses: [Double], el2n: [Double], targets: [Int]) {
        workspace.perExample = false
        forward(batch, targets: targets)
        return (lastSampleLosses, sampleEL2N(batch), lastSampleTargets)
    }

    /// Mean over each example's target rows of ||p - onehot(y)||_2, from the last forward's probabilities.
    func sampleEL2N(_ batch: Batch) -> [Double] {
        let V = config.vocabSize, T = batch.length
        var rowValue = [Double](repeating: 0, count: rows.count)
        let p = probs.ptr, y = rowTargets
        rowValue.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            Parallel.rows(rows.count, width: V) { _, r in
                for i in r {
                    let row = p + i * V
                    var s = 0.0
                    for j in 0..<V { s += Double(row[j]) * Double(row[j]) }
                    s += 1 - 2 * Double(row[Int(y[i])])
                    o[i] = max(0, s).squareRoot()
                }
            }
        }
        var el2n = [Double](repeating: 0, count: batch.size)
        for (i, r) in rows.enumerated() { el2n[r / T] += rowValue[i] }
        for b in 0..<batch.size where lastSampleTargets[b] > 0 { el2n[b] /= Double(lastSampleTargets[b]) }
        return el2n
    }

    /// The lowest decoder layer whose backward `selection` needs (0 when the embeddings are selected,
    /// the layer count when only the final norm or the output layer are).
    func lowestLayer(_ selection: ParameterSelection) -> Int {
        var lowest = config.numHiddenLayers
        for n in selection.names {
            if n.hasPrefix("model.embed_tokens.") { return 0 }
            if n.hasPrefix("model.layers."), let i = Int(n.dropFirst("model.layers.".count).prefix { $0 != "." }) { lowest = min(lowest, i) }
        }
        return lowest
    }

    /// d (mean over each example's targets of the target's logit) / d inputs_embeds, packed over the real
    /// tokens [tokens, hidden] (a forward and a full data-only backward, in inference).
    public func targetLogitInputGradients(_ batch: Batch, targets: [Int32]) -> Tensor {
        workspace.perExample = false
        forward(batch, targets: targets)
        let C = config.hiddenSize, N = batch.size * batch.length, T = batch.length
        let ws = workspace, w = parameters[headWeight].ptr
        // d z_{r, y_r} / d hidden_r is the head's row y_r, weighted by 1 / n_b for example b's mean.
        ws.dHidden.mptr.update(repeating: 0, count: N * C)
        for (i, r) in rows.enumerated() {
            let scale = 1 / Float(lastSampleTargets[r / T])
            let dst = ws.dHidden.mptr + r * C, src = w + Int(rowTargets[i]) * C
            for c in 0..<C { dst[c] = scale * src[c] }
        }
        var none: ParameterStore? = nil
        decoder.backward(parameters, ws, grads: &none)
        let lengths = (0..<batch.size).map { batch.realLength($0) }
        return packRows(ws.dInputsEmbeds.ptr, ld: C, width: C, batch: batch, lengths: lengths)
    }

    /// Forward, then a data-only backward of sum_b L_b (each example's mean target loss), stopping below
    /// the lowest layer `selection` needs; keeps the factors `gradientFactors` reads.
    public func perExampleLossBackward(_ batch: Batch, targets: [Int32], selection: ParameterSelection) {
        forward(batch, targets: targets)
        backwardSampleLosses(batch, downTo: lowestLayer(selection))
    }

    /// A data-only backward of sum_b L_b (each example's mean target loss) from the last forward of
    /// `batch`, down to layer `downTo`, keeping every factor a per-example or per-group gradient reads:
    /// the layers' output gradients, per-example norm-weight gradients, the head's rows.
    func backwardSampleLosses(_ batch: Batch, downTo: Int) {
        let R = rows.count, V = config.vocabSize, C = config.hiddenSize, N = batch.size * batch.length, T = batch.length
        let ws = workspace
        ws.lengths = (0..<batch.size).map { batch.realLength($0) }
        ws.perExample = true
        // dlogits of row i = (p - onehot) / n_b: example b's mean over its own targets.
        let counts = lastSampleTargets
        let dl = probs.mptr, ys = rowTargets, rowExample = rows.map { $0 / T }
        Parallel.rows(R, width: V) { _, r in
            for i in r {
                let w = 1 / Float(counts[rowExample[i]]), row = dl + i * V
                for j in 0..<V { row[j] *= w }
                row[Int(ys[i])] -= w
            }
        }
        headInput.resize([max(1, R), C])
        for (i, r) in rows.enumerated() { (headInput.mptr + i * C).update(from: ws.hidden.ptr + r * C, count: C) }
        var dh = Tensor(shape: [max(1, R), C])
        if R > 0 {
            ck_gemm(dh.mptr, Int32(C), probs.ptr, Int32(V), parameters[headWeight].ptr, Int32(C), Int32(R), Int32(C), Int32(V),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
        }
        ws.dHidden.mptr.update(repeating: 0, count: N * C)
        for (i, r) in rows.enumerated() { (ws.dHidden.mptr + r * C).update(from: dh.ptr + i * C, count: C) }
        var none: ParameterStore? = nil
        decoder.backward(parameters, ws, grads: &none, downTo: downTo)
        ws.perExample = false
    }

    /// Gram factors of every selected tensor (linear layers, LoRA A and B, RMSNorm weights, embeddings
    /// with a tied head's cross terms, an untied head) from the last `perExampleLossBackward`.
    public func gradientFactors(_ batch: Batch, selection sel: ParameterSelection) -> GradientFactors {
        gradientFactors(batch, selection: sel, groups: nil)
    }

    /// The factors of the gradients of each group's summed example losses: group g holds examples
    /// groups[g]..<groups[g + 1] (nil: one group per example).
    func gradientFactors(_ batch: Batch, selection sel: ParameterSelection, groups: [Int]?) -> GradientFactors {
        let ws = workspace, c = config
        let B = batch.size, T = batch.length, C = c.hiddenSize
        let lengths = ws.lengths
        let groups = groups ?? Array(0...B)
        precondition(groups.first == 0 && groups.last == B, "gradientFactors: groups must cover the \(B) examples")
        let G = groups.count - 1
        var exampleOffsets: [Int32] = [0]
        for l in lengths { exampleOffsets.append(exampleOffsets.last! + Int32(l)) }
        let offsets = groups.map { exampleOffsets[$0] }
        // Per-example rows [B, C] (norm weights' gradients) summed per group.
        func perGroup(_ t: Tensor) -> Tensor {
            if G == B { return t }
            let w = t.count / B
            var out = Tensor(shape: [G, w])
            for g in 0..<G { for b in groups[g]..<groups[g + 1] { ck_add(out.mptr + g * w, out.ptr + g * w, t.ptr + b * w, w) } }
            return out
        }
        var f = GradientFactors(count: G)
        let names = parameters.names
        func want(_ idx: Int?) -> Bool { idx.map { sel.contains(names[$0]) } ?? false }
        let views = lengths.allSatisfy { $0 == T }
        func rows(_ t: Tensor, col: Int = 0, ld: Int, width: Int) -> FactorRows {
            views ? FactorRows(view: t, offset: col, ld: ld, width: width, rows: B * T)
                : FactorRows(packed: packRows(t.ptr + col, ld: ld, width: width, batch: batch, lengths: lengths))
        }
        decoder.addLayerFactors(into: &f, parameters, ws, batch: batch, offsets: offsets, perGroup: perGroup, want: want)
        if want(decoder.norm) { f.entries.append(.rows(perGroup(ws.gFinal))) }
        // The head's rows: one per target token, already packed; example b owns its targets' rows.
        var exampleHeadOffsets: [Int32] = [0]
        for n in lastSampleTargets { exampleHeadOffsets.append(exampleHeadOffsets.last! + Int32(n)) }
        let headOffsets = groups.map { exampleHeadOffsets[$0] }
        let R = self.rows.count
        let headA = FactorRows(view: headInput, offset: 0, ld: C, width: C, rows: R)
        let headG = FactorRows(view: probs, offset: 0, ld: config.vocabSize, width: config.vocabSize, rows: R)
        if want(decoder.embed) {
            let d = rows(ws.embeddingRowGradients(config), ld: C, width: C)
            var ids: [Int32] = []
            if views { ids = Array(ws.ids.prefix(B * T)) } else { for b in 0..<B { ids += ws.ids[(b * T)..<(b * T + lengths[b])] } }
            if lmHead == nil {
                f.entries.append(.tiedEmbedding(d: d, ids: ids, offsets: offsets, headA: headA, headG: headG, headOffsets: headOffsets))
            } else {
                f.entries.append(.embedding(d: d, ids: ids, offsets: offsets, tableRows: config.vocabSize))
            }
        }
        if let lmHead, want(lmHead) {
            f.entries.append(.linear(a: headA, g: headG, offsets: headOffsets, weight: true, bias: false))
        }
        return f
    }
}

extension LlamaDecoder {
    /// Appends the Gram factors of the selected tensors of every decoder layer (linear layers, q/k/v
    /// biases, LoRA A and B, RMSNorm weights) from the last data-only backward with per-example norm
    /// gradients; group g owns packed rows offsets[g]..<offsets[g+1], `perGroup` sums per-example rows.
    func addLayerFactors(into f: inout GradientFactors, _ parameters: ParameterStore, _ ws: LlamaWorkspace, batch: Batch,
                         offsets: [Int32], perGroup: (Tensor) -> Tensor, want: (Int?) -> Bool) {
        let c = config
        let B = batch.size, T = batch.length, C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth, I = c.intermediateSize
        let lengths = ws.lengths
        let views = lengths.allSatisfy { $0 == T }
        func rows(_ t: Tensor, col: Int = 0, ld: Int, width: Int) -> FactorRows {
            views ? FactorRows(view: t, offset: col, ld: ld, width: width, rows: B * T)
                : FactorRows(packed: packRows(t.ptr + col, ld: ld, width: width, batch: batch, lengths: lengths))
        }
        func linear(_ w: Int, _ b: Int?, a: FactorRows, g: FactorRows) {
            let ww = want(w), wb = want(b)
            guard ww || wb else { return }
            f.entries.append(.linear(a: a, g: g, offsets: offsets, weight: ww, bias: wb))
        }
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            if want(layer.inputNorm) { f.entries.append(.rows(perGroup(a.gIn))) }
            if want(layer.q) || want(layer.k) || want(layer.v) || want(layer.qBias) || want(layer.kBias) || want(layer.vBias) {
                let h1 = rows(a.h1, ld: C, width: C)
                linear(layer.q, layer.qBias, a: h1, g: rows(a.dqkv, ld: 3 * D, width: D))
                linear(layer.k, layer.kBias, a: h1, g: rows(a.dk, ld: KV, width: KV))
                linear(layer.v, layer.vBias, a: h1, g: rows(a.dv, ld: KV, width: KV))
            }
            if want(layer.qNorm) { f.entries.append(.rows(perGroup(a.gQNorm))) }
            if want(layer.kNorm) { f.entries.append(.rows(perGroup(a.gKNorm))) }
            if want(layer.o) { linear(layer.o, nil, a: rows(a.attnOut, ld: D, width: D), g: rows(a.dMid, ld: C, width: C)) }
            if want(layer.attnOutNorm) { f.entries.append(.rows(perGroup(a.gAttnNorm))) }
            if want(layer.postNorm) { f.entries.append(.rows(perGroup(a.gPost))) }
            if want(layer.gate) || want(layer.up) {
                let h2 = rows(a.h2, ld: C, width: C)
                linear(layer.gate, nil, a: h2, g: rows(a.dGate, ld: I, width: I))
                linear(layer.up, nil, a: h2, g: rows(a.dUp, ld: I, width: I))
            }
            if want(layer.down) {
                linear(layer.down, nil, a: rows(a.act, ld: I, width: I), g: rows(a.dOut, ld: C, width: C))
            }
            if want(layer.mlpOutNorm) { f.entries.append(.rows(perGroup(a.gMLPNorm))) }
            // LoRA: A sees the module's input and gets s delta B; B sees s A x and gets the module's delta.
            if li < lora.count {
                for m in LoRAModule.allCases {
                    guard let ad = lora[li][m], want(ad.a) || want(ad.b) else { continue }
                    let r = parameters[ad.a].shape[0]
                    let (din, dout) = m.dims(c)
                    let (x, ldx): (Tensor, Int) = switch m {
                    case .q, .k, .v: (a.h1, C)
                    case .o: (a.attnOut, D)
                    case .gate, .up: (a.h2, C)
                    case .down: (a.act, I)
                    case .query, .key, .value, .dense: preconditionFailure("a BERT module on a decoder")
                    }
                    let (delta, ldd): (Tensor, Int) = switch m {
                    case .q: (a.dqkv, 3 * D)
                    case .k: (a.dk, KV)
                    case .v: (a.dv, KV)
                    case .o: (a.dMid, C)
                    case .gate: (a.dGate, I)
                    case .up: (a.dUp, I)
                    case .down: (a.dOut, C)
                    case .query, .key, .value, .dense: preconditionFailure("a BERT module on a decoder")
                    }
                    if want(ad.a) { linear(ad.a, nil, a: rows(x, ld: ldx, width: din), g: rows(a.loraV[m]!, ld: r, width: r)) }
                    if want(ad.b) { linear(ad.b, nil, a: rows(a.loraU[m]!, ld: r, width: r), g: rows(delta, ld: ldd, width: dout)) }
                }
            }
        }
    }
}
