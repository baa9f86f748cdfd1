import CKernels
import Foundation
import WinnowCore
import WinnowData

/// Continued pre-training of a decoder, plain or with PRESENCE (`winnow pretrain --init`): the same one
/// backward pass as the BERT language models (docs/contracts.md §6). A data-only backward of the
/// unweighted per-sample losses keeps every layer's output gradients; self-influence per microbatch
/// comes from the Gram form of the chosen tensors; each trainable tensor's gradient of sum_b v_b L_b is
/// then formed once as G^T diag(v) A (book-keeping). With a LoRA adapter only its A and B are trainable.
extension LlamaForCausalLM: LanguageModel {
    /// Causal: the target of a position is the next token.
    public var objective: LMObjective { .causal }

    /// Per-sample mean token loss of the last forward (0 for samples without targets).
    public var sampleLosses: [Double] { lastSampleLosses }

    /// Number of target tokens per sample in the last forward.
    public var sampleTargets: [Int] { lastSampleTargets }

    /// Forward of `lb` with its targets; `training` drops a LoRA adapter's inputs (its dropout, seeded by
    /// `seed`; Llama itself has no dropout). Returns the mean over samples of their mean token loss.
    @discardableResult
    public func forward(_ lb: LMBatch, training: Bool, seed: UInt64) -> Double {
        workspace.loraTraining = training ? seed : nil
        defer { workspace.loraTraining = nil }
        workspace.perExample = false
        lastBatch = lb.batch
        return forward(lb.batch, targets: lb.targets)
    }

    /// A data-only backward of the unweighted per-sample losses of the last forward, down to the
    /// embeddings, keeping what `accumulateGradients` and `groupGradientNorms` read. The dropout masks
    /// of a training forward are the forward's own (kept in the workspace).
    public func backwardPerSample(training: Bool, seed: UInt64) {
        guard let batch = lastBatch else { preconditionFailure("backwardPerSample before a forward") }
        backwardSampleLosses(batch, downTo: 0)
    }

    /// Adds the gradient of sum_b v_b L_b of every trainable tensor (a non-empty tensor of `grads`) from
    /// the last `backwardPerSample`: each kept output gradient row is scaled by its sample's weight (in
    /// place: the workspace's gradients are consumed) and contracted once with its input rows.
    public func accumulateGradients(sampleWeights v: [Float], into grads: inout ParameterStore) {
        let ws = workspace, c = config
        let B = ws.B, T = ws.T, N = B * T, C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth, I = c.intermediateSize
        precondition(v.count == B, "accumulateGradients: \(v.count) weights for \(B) samples")
        precondition(ws.layers.first.map { $0.dOut.count == N * C } ?? true, "accumulateGradients needs a backwardPerSample first")
        let rowScale = (0..<N).map { v[$0 / T] }
        func trainable(_ i: Int?) -> Bool { i.map { grads[$0].count > 0 } ?? false }
        func scale(_ t: inout Tensor, ld: Int) { scaleRows(t.mptr, ld: ld, width: ld, scales: rowScale) }
        func linear(_ w: Int, _ b: Int?, g: UnsafePointer<Float>, ldg: Int, x: UnsafePointer<Float>, ldx: Int, din: Int, dout: Int) {
            guard trainable(w) || trainable(b) else { return }
            ck_linear_backward(nil, 0, trainable(w) ? grads[w].mptr : nil, trainable(b) ? grads[b!].mptr : nil, g, Int32(ldg), x, Int32(ldx),
                               parameters[w].ptr, Int32(N), Int32(din), Int32(dout))
        }
        func norm(_ w: Int, _ perExample: Tensor) {
            guard trainable(w) else { return }
            let g = grads[w].mptr, e = perExample.ptr, W = grads[w].count
            for b in 0..<B where v[b] != 0 { for j in 0..<W { g[j] += v[b] * e[b * W + j] } }
        }
        for (li, layer) in decoder.layers.enumerated() {
            let a = ws.layers[li]
            let adapters = li < decoder.lora.count ? decoder.lora[li] : [:]
            // Every output gradient buffer once (q's gradient is the first D columns of dqkv).
            scale(&a.dqkv, ld: 3 * D); scale(&a.dk, ld: KV); scale(&a.dv, ld: KV); scale(&a.dMid, ld: C)
            scale(&a.dGate, ld: I); scale(&a.dUp, ld: I); scale(&a.dOut, ld: C)
            for m in adapters.keys { scale(&a.loraV[m]!, ld: a.loraV[m]!.count / N) }
            norm(layer.inputNorm, a.gIn)
            linear(layer.q, layer.qBias, g: a.dqkv.ptr, ldg: 3 * D, x: a.h1.ptr, ldx: C, din: C, dout: D)
            linear(layer.k, layer.kBias, g: a.dk.ptr, ldg: KV, x: a.h1.ptr, ldx: C, din: C, dout: KV)
            linear(layer.v, layer.vBias, g: a.dv.ptr, ldg: KV, x: a.h1.ptr, ldx: C, din: C, dout: KV)
            if let qn = layer.qNorm, let kn = layer.kNorm { norm(qn, a.gQNorm); norm(kn, a.gKNorm) }
            linear(layer.o, nil, g: a.dMid.ptr, ldg: C, x: a.attnOut.ptr, ldx: D, din: D, dout: C)
            if let an = layer.attnOutNorm { norm(an, a.gAttnNorm) }
            norm(layer.postNorm, a.gPost)
            linear(layer.gate, nil, g: a.dGate.ptr, ldg: I, x: a.h2.ptr, ldx: C, din: C, dout: I)
            linear(layer.up, nil, g: a.dUp.ptr, ldg: I, x: a.h2.ptr, ldx: C, din: C, dout: I)
            linear(layer.down, nil, g: a.dOut.ptr, ldg: C, x: a.act.ptr, ldx: I, din: I, dout: C)
            if let mn = layer.mlpOutNorm { norm(mn, a.gMLPNorm) }
            for (m, ad) in adapters {
                let r = parameters[ad.a].shape[0]
                let (din, dout) = m.dims(c)
                var (x, ldx): (UnsafePointer<Float>, Int) = switch m {
                case .q, .k, .v: (a.h1.ptr, C)
                case .o: (a.attnOut.ptr, D)
                case .gate, .up: (a.h2.ptr, C)
                case .down: (a.act.ptr, I)
                case .query, .key, .value, .dense: preconditionFailure("a BERT module on a decoder")
                }
                if a.dropout(m) != nil { x = a.loraX[m]!.ptr; ldx = din }      // A read the dropped input
                let (delta, ldd): (UnsafePointer<Float>, Int) = switch m {
                case .q: (a.dqkv.ptr, 3 * D)
                case .k: (a.dk.ptr, KV)
                case .v: (a.dv.ptr, KV)
                case .o: (a.dMid.ptr, C)
                case .gate: (a.dGate.ptr, I)
                case .up: (a.dUp.ptr, I)
                case .down: (a.dOut.ptr, C)
                case .query, .key, .value, .dense: preconditionFailure("a BERT module on a decoder")
                }
                // dB += delta^T (s A x); dA += (s delta B)^T x, both over the weighted rows.
                if trainable(ad.b) {
                    ck_gemm(grads[ad.b].mptr, Int32(r), delta, Int32(ldd), a.loraU[m]!.ptr, Int32(r), Int32(dout), Int32(r), Int32(N),
                            Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
                }
                if trainable(ad.a) {
                    ck_gemm(grads[ad.a].mptr, Int32(din), a.loraV[m]!.ptr, Int32(r), x, Int32(ldx), Int32(r), Int32(din), Int32(N),
                            Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
                }
            }
        }
        norm(decoder.norm, ws.gFinal)
        // The output layer: each target row's dlogits (kept in `probs`) scaled by its sample's weight.
        let R = rows.count, V = c.vocabSize
        if trainable(headWeight) && R > 0 {
            for (i, r) in rows.enumerated() where rowScale[r] != 1 { ck_scale(probs.mptr + i * V, V, rowScale[r]) }
            ck_gemm(grads[headWeight].mptr, Int32(C), probs.ptr, Int32(V), headInput.ptr, Int32(C), Int32(V), Int32(C), Int32(R),
                    Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
        }
        if trainable(decoder.embed) {
            scale(&ws.dInputsEmbeds, ld: C)
            if c.gemma { ck_scale(ws.dInputsEmbeds.mptr, N * C, c.embeddingScale) }   // the table's rows were scaled on the way in
            ws.ids.withUnsafeBufferPointer { ids in
                ck_embedding_backward(grads[decoder.embed].mptr, ws.dInputsEmbeds.ptr, ids.baseAddress, Int32(N), Int32(C))
            }
        }
    }

    /// Squared gradient norm of each group's mean loss (over its samples with targets) over the selected
    /// tensors, from the last `backwardPerSample` (Gram form, no gradient materialised).
    public func groupGradientNorms(_ lb: LMBatch, selection: ParameterSelection, groups: [Int]) -> [Double] {
        let f = gradientFactors(lb.batch, selection: selection, groups: groups)
        var out = [Float](repeating: 0, count: groups.count - 1)
        f.addNorms(into: &out, scale: 1)
        return (0..<(groups.count - 1)).map { g in
            let m = (groups[g]..<groups[g + 1]).filter { lastSampleTargets[$0] > 0 }.count
            return m > 0 ? Double(out[g]) / Double(m * m) : 0
        }
    }

    /// Any selection of the model's tensors (a tied output layer's cross terms are in the Gram form).
    public func selfInfluenceSelection(_ spec: ParameterSelection.Spec) throws -> ParameterSelection {
        try ParameterSelection(spec, layout: parameterLayout)
    }
}
