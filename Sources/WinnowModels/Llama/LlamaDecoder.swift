import CKernels
import Foundation
import WinnowCore
import WinnowData

/// The body of Hugging Face's LlamaModel with a hand-written backward: token embeddings; per layer
/// h = RMSNorm(x), grouped-query causal self-attention over RoPE-rotated q and k, x += o_proj(attn);
/// h = RMSNorm(x), x += down(silu(gate(h)) * up(h)); then the final RMSNorm. Tensors under their
/// Hugging Face names (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`, ...).
/// Attention runs the encoder's fused kernel on query heads, with each key/value head repeated for its
/// group of query heads (transformers' repeat_kv); their gradients are summed back over the group.
/// Gemma 3 (`LlamaConfig.gemma`): norms scale by 1 + weight, embeddings by sqrt(hidden), GELU-tanh gating, the
/// attention's and MLP's outputs normalised before the residual, local layers rotating with their own base.
struct LlamaDecoder: Sendable {
    struct Layer: Sendable {
        /// The attention's input norm and the MLP's (Llama's `post_attention_layernorm`, Gemma's `pre_feedforward_layernorm`).
        let inputNorm, postNorm: Int
        /// Gemma's norms on the attention's output (`post_attention_layernorm`) and the MLP's (`post_feedforward_layernorm`).
        let attnOutNorm, mlpOutNorm: Int?
        let q, k, v, o: Int
        let qBias, kBias, vBias: Int?
        /// Qwen3's per-head RMSNorm weights [head_dim] on q and k.
        let qNorm, kNorm: Int?
        let gate, up, down: Int
    }

    let config: LlamaConfig
    let embed: Int
    let layers: [Layer]
    let norm: Int
    /// LoRA adapters per layer (parameter indices of A [r, d_in] and B [d_out, r]) and their scale
    /// alpha / r (alpha / sqrt(r) with rsLoRA); empty without an adapter.
    var lora: [[LoRAModule: (a: Int, b: Int)]] = []
    var loraScale: Float = 0
    /// Dropout on each adapter's input in training (`LlamaWorkspace.training`).
    var loraDropout: Float = 0

    init(config c: LlamaConfig, store s: inout ParameterStore) {
        config = c
        let C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth, I = c.intermediateSize
        embed = s.add("model.embed_tokens.weight", Tensor(shape: [c.vocabSize, C]))
        layers = (0..<c.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            // Gemma's norms hold w in 1 + w: 0 is the identity.
            let one: Float = c.gemma ? 0 : 1
            let inputNorm = s.add(p + "input_layernorm.weight", Tensor(shape: [C], repeating: one))
            let q = s.add(p + "self_attn.q_proj.weight", Tensor(shape: [D, C]))
            let qb = c.attentionBias ? s.add(p + "self_attn.q_proj.bias", Tensor(shape: [D])) : nil
            let k = s.add(p + "self_attn.k_proj.weight", Tensor(shape: [KV, C]))
            let kb = c.attentionBias ? s.add(p + "self_attn.k_proj.bias", Tensor(shape: [KV])) : nil
            let v = s.add(p + "self_attn.v_proj.weight", Tensor(shape: [KV, C]))
            let vb = c.attentionBias ? s.add(p + "self_attn.v_proj.bias", Tensor(shape: [KV])) : nil
            let o = s.add(p + "self_attn.o_proj.weight", Tensor(shape: [C, D]))
            let qn = c.qkNorm ? s.add(p + "self_attn.q_norm.weight", Tensor(shape: [c.headDim], repeating: one)) : nil
            let kn = c.qkNorm ? s.add(p + "self_attn.k_norm.weight", Tensor(shape: [c.headDim], repeating: one)) : nil
            let attnOutNorm = c.gemma ? s.add(p + "post_attention_layernorm.weight", Tensor(shape: [C], repeating: one)) : nil
            let postNorm = s.add(p + (c.gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), Tensor(shape: [C], repeating: one))
            let mlpOutNorm = c.gemma ? s.add(p + "post_feedforward_layernorm.weight", Tensor(shape: [C], repeating: one)) : nil
            let gate = s.add(p + "mlp.gate_proj.weight", Tensor(shape: [I, C]))
            let up = s.add(p + "mlp.up_proj.weight", Tensor(shape: [I, C]))
            let down = s.add(p + "mlp.down_proj.weight", Tensor(shape: [C, I]))
            return Layer(inputNorm: inputNorm, postNorm: postNorm, attnOutNorm: attnOutNorm, mlpOutNorm: mlpOutNorm, q: q, k: k, v: v, o: o, qBias: qb, kBias: kb, vBias: vb,
                         qNorm: qn, kNorm: kn, gate: gate, up: up, down: down)
        }
        norm = s.add("model.norm.weight", Tensor(shape: [C], repeating: c.gemma ? 0 : 1))
    }

    /// Every RMSNorm weight's index.
    var normWeights: [Int] {
        layers.flatMap { l in [l.inputNorm, l.postNorm] + [l.attnOutNorm, l.mlpOutNorm, l.qNorm, l.kNorm].compactMap { $0 } } + [norm]
    }

    /// The weights an RMSNorm multiplies by: the tensor itself, or Gemma's 1 + w (F32, as transformers rounds it),
    /// refreshed by each forward into the workspace. Its gradient is w's.
    func nw(_ p: ParameterStore, _ ws: LlamaWorkspace, _ i: Int) -> UnsafePointer<Float> {
        config.gemma ? ws.offsetNorms[i]!.ptr : p[i].ptr
    }

    /// The RoPE tables of layer `li`: the local layers' base or the global one.
    func ropeTables(_ ws: LlamaWorkspace, _ li: Int) -> (cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        config.gemma && config.isSliding(li) ? (ws.cosLocal.ptr, ws.sinLocal.ptr) : (ws.cos.ptr, ws.sin.ptr)
    }

    /// Hugging Face's `_init_weights`: normal(0, 0.02) for projections and embeddings, norms 1, biases 0.
    func initialize(_ s: inout ParameterStore, rng: inout SeededGenerator) {
        func normal(_ i: Int) { s[i].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(rng.nextNormal() * 0.02) } } }
        normal(embed)
        for l in layers { for i in [l.q, l.k, l.v, l.o, l.gate, l.up, l.down] { normal(i) } }
    }

    /// Every linear layer: (role, weight, bias).
    var linearLayers: [(String, Int, Int?)] {
        layers.enumerated().flatMap { i, l in
            [("layers.\(i).q_proj", l.q, l.qBias), ("layers.\(i).k_proj", l.k, l.kBias), ("layers.\(i).v_proj", l.v, l.vBias),
             ("layers.\(i).o_proj", l.o, nil), ("layers.\(i).gate_proj", l.gate, nil), ("layers.\(i).up_proj", l.up, nil),
             ("layers.\(i).down_proj", l.down, nil)]
        }
    }

    // MARK: - Parallel pieces (rows split across cores; results do not depend on the split)

    static func rmsnorm(_ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                        _ w: UnsafePointer<Float>, rows n: Int, cols c: Int, eps: Float) {
        Parallel.rows(n, width: c) { _, r in
            ck_rmsnorm_forward(out + r.lowerBound * c, rstd + r.lowerBound, inp + r.lowerBound * c, w, Int32(r.count), Int32(c), eps)
        }
    }

    /// dinp (+)= the input gradient (rows in parallel); dweight (nullable) += its gradient (one pass).
    static func rmsnormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?, _ dout: UnsafePointer<Float>,
                                _ inp: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, rows n: Int, cols c: Int,
                                accumulate: Bool) {
        Parallel.rows(n, width: c) { _, r in
            let o = r.lowerBound
            ck_rmsnorm_backward(dinp + o * c, nil, dout + o * c, inp + o * c, w, rstd + o, Int32(r.count), Int32(c), accumulate ? 1 : 0)
        }
        if let dweight { ck_rmsnorm_backward_weight(dweight, dout, inp, rstd, Int32(n), Int32(c)) }
    }

    // MARK: - LoRA

    /// out [N, dout] (row stride ldo) += s B (A x) for the adapter of `m` in layer `li`, keeping s A x
    /// [N, r] in the workspace (B's input).
    func loraForward(_ p: ParameterStore, _ a: LlamaWorkspace.Layer, _ li: Int, _ m: LoRAModule, x: UnsafePointer<Float>, ldx: Int, din: Int,
                     out: UnsafeMutablePointer<Float>, ldo: Int, dout: Int, N: Int) {
        guard li < lora.count, let ad = lora[li][m] else { return }
        let r = p[ad.a].shape[0]
        a.loraU[m, default: Tensor(shape: [0])].resize([N, r])
        let su = a.loraU[m]!.mptr
        var x = x, ldx = ldx
        if let (keepP, seed) = a.dropout(m) {
            // Training: A reads dropout(x) = x * keep, keep 0 or 1/(1-p) per element (seeded per step, layer
            // and module); the backward reads the same keep.
            a.loraKeep[m, default: Tensor(shape: [0])].resize([N, din])
            a.loraX[m, default: Tensor(shape: [0])].resize([N, din])
            let keep = a.loraKeep[m]!.mptr, xd = a.loraX[m]!.mptr
            var rng = SeededGenerator(seed: seed, stream: "lora-dropout-\(li)-\(m.rawValue)")
            let inv = 1 / (1 - keepP)
            for i in 0..<N {
                for j in 0..<din {
                    let k: Float = Float(rng.nextUniform()) < keepP ? 0 : inv
                    keep[i * din + j] = k
                    xd[i * din + j] = x[i * ldx + j] * k
                }
            }
            x = UnsafePointer(xd); ldx = din
        }
        ck_gemm(su, Int32(r), x, Int32(ldx), p[ad.a].ptr, Int32(din), Int32(N), Int32(r), Int32(din), Int32(CK_TRANS_N), Int32(CK_TRANS_T), loraScale, 0)
        ck_gemm(out, Int32(ldo), su, Int32(r), p[ad.b].ptr, Int32(r), Int32(N), Int32(dout), Int32(r), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 1)
    }

    /// The adapter's part of the backward of `m` in layer `li`, from the gradient `delta` [N, dout] at the
    /// module's output: dx (+)= s (delta B) A, and, with `grads`, dB += delta^T (s A x), dA += (s delta B)^T x.
    /// Keeps s delta B [N, r] in the workspace (A's output gradient).
    func loraBackward(_ p: ParameterStore, _ a: LlamaWorkspace.Layer, _ li: Int, _ m: LoRAModule, delta: UnsafePointer<Float>, ldd: Int, dout: Int,
                      x: UnsafePointer<Float>, ldx: Int, din: Int, dx: UnsafeMutablePointer<Float>, lddx: Int, N: Int, grads: inout ParameterStore?) {
        guard li < lora.count, let ad = lora[li][m] else { return }
        let r = p[ad.a].shape[0]
        a.loraV[m, default: Tensor(shape: [0])].resize([N, r])
        let sv = a.loraV[m]!.mptr, su = a.loraU[m]!.ptr
        ck_gemm(sv, Int32(r), delta, Int32(ldd), p[ad.b].ptr, Int32(r), Int32(N), Int32(r), Int32(dout), Int32(CK_TRANS_N), Int32(CK_TRANS_N), loraScale, 0)
        var x = x, ldx = ldx
        if a.dropout(m) != nil {
            // dx += (s delta B A) * keep; A's gradient reads the dropped input.
            let keep = a.loraKeep[m]!.ptr
            var t = Tensor(uninitializedShape: [N, din])
            ck_gemm(t.mptr, Int32(din), sv, Int32(r), p[ad.a].ptr, Int32(din), Int32(N), Int32(din), Int32(r), Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            for i in 0..<N { for j in 0..<din { dx[i * lddx + j] += t.ptr[i * din + j] * keep[i * din + j] } }
            x = a.loraX[m]!.ptr; ldx = din
        } else {
            ck_gemm(dx, Int32(lddx), sv, Int32(r), p[ad.a].ptr, Int32(din), Int32(N), Int32(din), Int32(r), Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
        }
        if grads != nil && grads![ad.b].count > 0 {
            ck_gemm(grads![ad.b].mptr, Int32(r), delta, Int32(ldd), su, Int32(r), Int32(dout), Int32(r), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
            ck_gemm(grads![ad.a].mptr, Int32(din), sv, Int32(r), x, Int32(ldx), Int32(r), Int32(din), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
        }
    }

    // MARK: - Qwen3's q and k norms

    /// Through Qwen3's per-head RMSNorms: the gradients at the normalised q (dqkv's first D columns) and k (dk)
    /// become those at the projections' outputs; q_norm's and k_norm's weight gradients accumulate into `grads`,
    /// and, in a per-example backward, each example's into the workspace (`gQNorm`, `gKNorm` [B, head_dim]).
    func qkNormBackward(_ p: ParameterStore, _ ws: LlamaWorkspace, _ a: LlamaWorkspace.Layer, qNorm qn: Int, kNorm kn: Int,
                        grads: inout ParameterStore?) {
        let c = config
        let B = ws.B, T = ws.T, N = B * T, D = c.queryWidth, KV = c.keyValueWidth, NH = c.numAttentionHeads, NKV = c.numKeyValueHeads, HS = c.headDim
        // The gradients at the norms' outputs, contiguous: [N, D] and [N, KV].
        ws.dqNormed.resize([N, D]); ws.dkNormed.resize([N, KV])
        let dqn = ws.dqNormed.mptr, dkn = ws.dkNormed.mptr, dqkv = a.dqkv.mptr, dk = a.dk.mptr
        let qPre = a.qPre.ptr, kPre = a.kPre.ptr, qRstd = a.qRstd.ptr, kRstd = a.kRstd.ptr, wq = nw(p, ws, qn), wk = nw(p, ws, kn)
        Parallel.rows(N, width: D + KV) { _, rr in
            for r in rr {
                (dqn + r * D).update(from: dqkv + r * 3 * D, count: D)
                (dkn + r * KV).update(from: dk + r * KV, count: KV)
                ck_rmsnorm_backward(dqkv + r * 3 * D, nil, dqn + r * D, qPre + r * D, wq, qRstd + r * NH, Int32(NH), Int32(HS), 0)
                ck_rmsnorm_backward(dk + r * KV, nil, dkn + r * KV, kPre + r * KV, wk, kRstd + r * NKV, Int32(NKV), Int32(HS), 0)
            }
        }
        if let g = grads, g[qn].count > 0 { ck_rmsnorm_backward_weight(grads![qn].mptr, dqn, qPre, qRstd, Int32(N * NH), Int32(HS)) }
        if let g = grads, g[kn].count > 0 { ck_rmsnorm_backward_weight(grads![kn].mptr, dkn, kPre, kRstd, Int32(N * NKV), Int32(HS)) }
        guard ws.perExample else { return }
        // Each example's own rows (its real tokens, every head).
        a.gQNorm.resize([B, HS]); a.gKNorm.resize([B, HS])
        let gq = a.gQNorm.mptr, gk = a.gKNorm.mptr, lengths = ws.lengths
        gq.update(repeating: 0, count: B * HS); gk.update(repeating: 0, count: B * HS)
        Parallel.rows(B, width: T * (D + KV)) { _, r in
            for b in r {
                ck_rmsnorm_backward_weight(gq + b * HS, dqn + b * T * D, qPre + b * T * D, qRstd + b * T * NH, Int32(lengths[b] * NH), Int32(HS))
                ck_rmsnorm_backward_weight(gk + b * HS, dkn + b * T * KV, kPre + b * T * KV, kRstd + b * T * NKV, Int32(lengths[b] * NKV), Int32(HS))
            }
        }
    }

    // MARK: - Forward

    /// Runs `batch` (right-padded; `attentionMask` marks real tokens) and leaves the final hidden states
    /// [B*T, C] in `ws.hidden`, keeping what the backward reads.
    func forward(_ p: ParameterStore, _ ws: LlamaWorkspace, _ batch: Batch) {
        let c = config
        let B = batch.size, T = batch.length, N = B * T, C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth
        let I = c.intermediateSize, NH = c.numAttentionHeads, HS = c.headDim, G = NH / c.numKeyValueHeads
        precondition(T <= c.maxSequenceLength, "sequence length \(T) exceeds the model's \(c.maxSequenceLength) positions")
        ws.prepare(B: B, T: T, config: c)
        for l in ws.layers { l.loraDropout = ws.loraTraining != nil && loraDropout > 0 ? (loraDropout, ws.loraTraining!) : nil }
        ws.ids = batch.inputIDs
        ws.keyMask.withUnsafeMutableBufferPointer { m in
            for i in 0..<N { m[i] = batch.attentionMask[i] != 0 ? 0 : -Float.greatestFiniteMagnitude }
        }
        ck_rope_table(ws.cos.mptr, ws.sin.mptr, Int32(T), Int32(HS), c.ropeTheta)
        if c.gemma && c.slidingLayers.contains(true) { ck_rope_table(ws.cosLocal.mptr, ws.sinLocal.mptr, Int32(T), Int32(HS), c.localRopeTheta) }
        ws.ids.withUnsafeBufferPointer { ids in
            ck_embedding_forward(ws.x0.mptr, p[embed].ptr, ids.baseAddress, Int32(N), Int32(C), 0)
        }
        if c.gemma {
            ck_scale(ws.x0.mptr, N * C, c.embeddingScale)
            for i in normWeights {
                ws.offsetNorms[i, default: Tensor(shape: [0])].resize(p[i].shape)
                let w = p[i].ptr, o = ws.offsetNorms[i]!.mptr
                for j in 0..<p[i].count { o[j] = 1 + w[j] }
            }
        }
        let scale = c.attentionScale
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            Self.rmsnorm(a.h1.mptr, a.rstd1.mptr, x, nw(p, ws, layer.inputNorm), rows: N, cols: C, eps: c.rmsNormEps)
            // q into the first D columns of the stacked [N, 3D] rows; k and v into their own buffers, then
            // each key/value head copied to the query heads of its group.
            let qkv = a.qkv.mptr
            ck_linear_forward(qkv, Int32(3 * D), a.h1.ptr, Int32(C), p[layer.q].ptr, layer.qBias.map { p[$0].ptr }, Int32(N), Int32(C), Int32(D))
            ck_linear_forward(ws.k.mptr, Int32(KV), a.h1.ptr, Int32(C), p[layer.k].ptr, layer.kBias.map { p[$0].ptr }, Int32(N), Int32(C), Int32(KV))
            ck_linear_forward(ws.v.mptr, Int32(KV), a.h1.ptr, Int32(C), p[layer.v].ptr, layer.vBias.map { p[$0].ptr }, Int32(N), Int32(C), Int32(KV))
            loraForward(p, a, li, .q, x: a.h1.ptr, ldx: C, din: C, out: a.qkv.mptr, ldo: 3 * D, dout: D, N: N)
            loraForward(p, a, li, .k, x: a.h1.ptr, ldx: C, din: C, out: ws.k.mptr, ldo: KV, dout: KV, N: N)
            loraForward(p, a, li, .v, x: a.h1.ptr, ldx: C, din: C, out: ws.v.mptr, ldo: KV, dout: KV, N: N)
            let k = ws.k.mptr, v = ws.v.ptr, (cosv, sinv) = ropeTables(ws, li), NKV = c.numKeyValueHeads
            if let qn = layer.qNorm, let kn = layer.kNorm {
                // Qwen3: each head of q and k RMS-normalised (its own weights) before the rotation; the inputs kept.
                let qPre = a.qPre.mptr, kPre = a.kPre.mptr, qRstd = a.qRstd.mptr, kRstd = a.kRstd.mptr, wq = nw(p, ws, qn), wk = nw(p, ws, kn)
                let eps = c.rmsNormEps
                Parallel.rows(N, width: D + KV) { _, rr in
                    for r in rr {
                        (qPre + r * D).update(from: qkv + r * 3 * D, count: D)
                        (kPre + r * KV).update(from: k + r * KV, count: KV)
                        ck_rmsnorm_forward(qkv + r * 3 * D, qRstd + r * NH, qPre + r * D, wq, Int32(NH), Int32(HS), eps)
                        ck_rmsnorm_forward(k + r * KV, kRstd + r * NKV, kPre + r * KV, wk, Int32(NKV), Int32(HS), eps)
                    }
                }
            }
            Parallel.rows(N, width: 3 * D) { _, rr in
                // Rows r carry position r % T: a range starting at row o passes o % T as its first position.
                for r in rr {
                    let pos = r % T
                    ck_rope_apply(qkv + r * 3 * D, Int32(3 * D), cosv + pos * HS / 2, sinv + pos * HS / 2, 1, 1, Int32(NH), Int32(HS), 0)
                    ck_rope_apply(k + r * KV, Int32(KV), cosv + pos * HS / 2, sinv + pos * HS / 2, 1, 1, Int32(NKV), Int32(HS), 0)
                    for h in 0..<NH {
                        let kvh = h / G
                        (qkv + r * 3 * D + D + h * HS).update(from: k + r * KV + kvh * HS, count: HS)
                        (qkv + r * 3 * D + 2 * D + h * HS).update(from: v + r * KV + kvh * HS, count: HS)
                    }
                }
            }
            let attnOut = a.attnOut.mptr, att = a.att.mptr, mask = ws.keyMask.ptr, work = ws.attWork.mptr, workSize = ws.attWorkSize
            // Causal (1), or causal within a sliding window of that many keys when the sequence is longer than it.
            let causal = Int32(c.attentionWindow(li).map { $0 < T ? $0 : 1 } ?? 1)
            Parallel.rows(B * NH, width: T * T, blas: true) { part, r in
                ck_attention_forward_heads(Int32(r.lowerBound), Int32(r.upperBound), attnOut, att, nil, qkv, qkv + D, qkv + 2 * D, Int32(3 * D),
                                           mask, work + part * workSize, Int32(B), Int32(T), Int32(NH), Int32(HS), causal, scale, 0, 0, 0)
            }
            if let an = layer.attnOutNorm {
                // Gemma: x_mid = x + RMSNorm(o_proj(attn)), the projection kept (h2 holds the normalised one for now).
                ck_gemm(a.attnProj.mptr, Int32(C), a.attnOut.ptr, Int32(D), p[layer.o].ptr, Int32(D), Int32(N), Int32(C), Int32(D),
                        Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
                loraForward(p, a, li, .o, x: a.attnOut.ptr, ldx: D, din: D, out: a.attnProj.mptr, ldo: C, dout: C, N: N)
                Self.rmsnorm(a.h2.mptr, a.rstdAttn.mptr, a.attnProj.ptr, nw(p, ws, an), rows: N, cols: C, eps: c.rmsNormEps)
                ck_add(a.mid.mptr, x, a.h2.ptr, N * C)
            } else {
                // x_mid = x + o_proj(attn)
                a.mid.mptr.update(from: x, count: N * C)
                ck_gemm(a.mid.mptr, Int32(C), a.attnOut.ptr, Int32(D), p[layer.o].ptr, Int32(D), Int32(N), Int32(C), Int32(D),
                        Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 1)
                loraForward(p, a, li, .o, x: a.attnOut.ptr, ldx: D, din: D, out: a.mid.mptr, ldo: C, dout: C, N: N)
            }
            Self.rmsnorm(a.h2.mptr, a.rstd2.mptr, a.mid.ptr, nw(p, ws, layer.postNorm), rows: N, cols: C, eps: c.rmsNormEps)
            ck_linear_forward(a.gate.mptr, Int32(I), a.h2.ptr, Int32(C), p[layer.gate].ptr, nil, Int32(N), Int32(C), Int32(I))
            ck_linear_forward(a.up.mptr, Int32(I), a.h2.ptr, Int32(C), p[layer.up].ptr, nil, Int32(N), Int32(C), Int32(I))
            loraForward(p, a, li, .gate, x: a.h2.ptr, ldx: C, din: C, out: a.gate.mptr, ldo: I, dout: I, N: N)
            loraForward(p, a, li, .up, x: a.h2.ptr, ldx: C, din: C, out: a.up.mptr, ldo: I, dout: I, N: N)
            let act = a.act.mptr, gate = a.gate.ptr, up = a.up.ptr
            if c.gemma {
                Parallel.elements(N * I) { o, n in ck_geglu_forward(act + o, gate + o, up + o, n) }
            } else {
                Parallel.elements(N * I) { o, n in ck_swiglu_forward(act + o, gate + o, up + o, n) }
            }
            if let mn = layer.mlpOutNorm {
                // Gemma: out = x_mid + RMSNorm(down(act)), the projection kept (dx is free scratch in a forward).
                ck_gemm(a.mlpProj.mptr, Int32(C), a.act.ptr, Int32(I), p[layer.down].ptr, Int32(I), Int32(N), Int32(C), Int32(I),
                        Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
                loraForward(p, a, li, .down, x: a.act.ptr, ldx: I, din: I, out: a.mlpProj.mptr, ldo: C, dout: C, N: N)
                Self.rmsnorm(ws.dx.mptr, a.rstdMLP.mptr, a.mlpProj.ptr, nw(p, ws, mn), rows: N, cols: C, eps: c.rmsNormEps)
                ck_add(a.out.mptr, a.mid.ptr, ws.dx.ptr, N * C)
            } else {
                a.out.mptr.update(from: a.mid.ptr, count: N * C)
                ck_gemm(a.out.mptr, Int32(C), a.act.ptr, Int32(I), p[layer.down].ptr, Int32(I), Int32(N), Int32(C), Int32(I),
                        Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 1)
                loraForward(p, a, li, .down, x: a.act.ptr, ldx: I, din: I, out: a.out.mptr, ldo: C, dout: C, N: N)
            }
        }
        let top = layers.isEmpty ? ws.x0.ptr : ws.layers[layers.count - 1].out.ptr
        Self.rmsnorm(ws.hidden.mptr, ws.rstdFinal.mptr, top, nw(p, ws, norm), rows: N, cols: C, eps: c.rmsNormEps)
    }

    // MARK: - Backward

    /// Back-propagates `ws.dHidden` [B*T, C] through the last forward; accumulates parameter gradients
    /// into `grads` when given (data gradients only otherwise). Layers below `downTo` are not visited
    /// (nor the embeddings unless it is 0): per-example scores over the top layers stop there.
    func backward(_ p: ParameterStore, _ ws: LlamaWorkspace, grads: inout ParameterStore?, downTo: Int = 0) {
        // A frozen tensor (an empty gradient tensor: a LoRA adapter's base) gets no weight gradient.
        let c = config
        let B = ws.B, T = ws.T, N = B * T, C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth
        let I = c.intermediateSize, NH = c.numAttentionHeads, HS = c.headDim, G = NH / c.numKeyValueHeads
        let scale = c.attentionScale
        func dw(_ i: Int) -> UnsafeMutablePointer<Float>? { grads == nil || grads![i].count == 0 ? nil : grads![i].mptr }
        let top = layers.isEmpty ? ws.x0.ptr : ws.layers[layers.count - 1].out.ptr
        let perExample = ws.perExample
        // Per-example RMSNorm weight gradients: each example's rows summed on their own.
        func exampleNormGrads(_ out: inout Tensor, _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>) {
            out.resize([B, C])
            let o = out.mptr, lengths = ws.lengths
            o.update(repeating: 0, count: B * C)
            Parallel.rows(B, width: T * C) { _, r in
                for b in r { ck_rmsnorm_backward_weight(o + b * C, dout + b * T * C, inp + b * T * C, rstd + b * T, Int32(lengths[b]), Int32(C)) }
            }
        }
        if perExample { exampleNormGrads(&ws.gFinal, ws.dHidden.ptr, top, ws.rstdFinal.ptr) }
        // dx: the gradient at the current residual stream, carried down the layers.
        Self.rmsnormBackward(ws.dx.mptr, dw(norm), ws.dHidden.ptr, top, nw(p, ws, norm), ws.rstdFinal.ptr, rows: N, cols: C, accumulate: false)
        for li in stride(from: layers.count - 1, through: downTo, by: -1) {
            let layer = layers[li], a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            // down_proj's output gradient: d(layer output), or through Gemma's norm on the MLP's output.
            var dDown = ws.dx.ptr
            if let mn = layer.mlpOutNorm {
                if perExample { exampleNormGrads(&a.gMLPNorm, ws.dx.ptr, a.mlpProj.ptr, a.rstdMLP.ptr) }
                Self.rmsnormBackward(ws.dProj.mptr, dw(mn), ws.dx.ptr, a.mlpProj.ptr, nw(p, ws, mn), a.rstdMLP.ptr, rows: N, cols: C, accumulate: false)
                dDown = ws.dProj.ptr
            }
            if perExample { a.dOut.resize([N, C]); a.dOut.mptr.update(from: dDown, count: N * C) }   // down_proj's output gradient
            // Feed-forward: out = mid + down(act); the residual passes dx on to mid.
            ck_gemm(ws.dAct.mptr, Int32(I), dDown, Int32(C), p[layer.down].ptr, Int32(I), Int32(N), Int32(I), Int32(C),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            loraBackward(p, a, li, .down, delta: dDown, ldd: C, dout: C, x: a.act.ptr, ldx: I, din: I, dx: ws.dAct.mptr, lddx: I, N: N, grads: &grads)
            if let g = dw(layer.down) {
                ck_gemm(g, Int32(I), dDown, Int32(C), a.act.ptr, Int32(I), Int32(C), Int32(I), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1)
            }
            let dGate = a.dGate.mptr, dUp = a.dUp.mptr, dAct = ws.dAct.ptr, gate = a.gate.ptr, up = a.up.ptr
            if c.gemma {
                Parallel.elements(N * I) { o, n in ck_geglu_backward(dGate + o, dUp + o, dAct + o, gate + o, up + o, n) }
            } else {
                Parallel.elements(N * I) { o, n in ck_swiglu_backward(dGate + o, dUp + o, dAct + o, gate + o, up + o, n) }
            }
            ck_gemm(ws.dh.mptr, Int32(C), a.dGate.ptr, Int32(I), p[layer.gate].ptr, Int32(C), Int32(N), Int32(C), Int32(I),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            ck_gemm(ws.dh.mptr, Int32(C), a.dUp.ptr, Int32(I), p[layer.up].ptr, Int32(C), Int32(N), Int32(C), Int32(I),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
            if let g = dw(layer.gate) { ck_gemm(g, Int32(C), a.dGate.ptr, Int32(I), a.h2.ptr, Int32(C), Int32(I), Int32(C), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1) }
            if let g = dw(layer.up) { ck_gemm(g, Int32(C), a.dUp.ptr, Int32(I), a.h2.ptr, Int32(C), Int32(I), Int32(C), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1) }
            loraBackward(p, a, li, .gate, delta: a.dGate.ptr, ldd: I, dout: I, x: a.h2.ptr, ldx: C, din: C, dx: ws.dh.mptr, lddx: C, N: N, grads: &grads)
            loraBackward(p, a, li, .up, delta: a.dUp.ptr, ldd: I, dout: I, x: a.h2.ptr, ldx: C, din: C, dx: ws.dh.mptr, lddx: C, N: N, grads: &grads)
            if perExample { exampleNormGrads(&a.gPost, ws.dh.ptr, a.mid.ptr, a.rstd2.ptr) }
            Self.rmsnormBackward(ws.dx.mptr, dw(layer.postNorm), ws.dh.ptr, a.mid.ptr, nw(p, ws, layer.postNorm), a.rstd2.ptr, rows: N, cols: C,
                                 accumulate: true)
            // o_proj's output gradient: d(mid), or through Gemma's norm on the attention's output; kept for per-example gradients.
            if let an = layer.attnOutNorm {
                if perExample { exampleNormGrads(&a.gAttnNorm, ws.dx.ptr, a.attnProj.ptr, a.rstdAttn.ptr) }
                Self.rmsnormBackward(a.dMid.mptr, dw(an), ws.dx.ptr, a.attnProj.ptr, nw(p, ws, an), a.rstdAttn.ptr, rows: N, cols: C, accumulate: false)
            } else {
                a.dMid.mptr.update(from: ws.dx.ptr, count: N * C)
            }
            let dO = a.dMid.ptr
            // Attention: mid = x + o_proj(attn).
            ck_gemm(ws.dAttn.mptr, Int32(D), dO, Int32(C), p[layer.o].ptr, Int32(D), Int32(N), Int32(D), Int32(C),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            loraBackward(p, a, li, .o, delta: dO, ldd: C, dout: C, x: a.attnOut.ptr, ldx: D, din: D, dx: ws.dAttn.mptr, lddx: D, N: N, grads: &grads)
            if let g = dw(layer.o) { ck_gemm(g, Int32(D), dO, Int32(C), a.attnOut.ptr, Int32(D), Int32(C), Int32(D), Int32(N), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 1) }
            let dqkv = a.dqkv.mptr, qkv = a.qkv.ptr
            let work = ws.attWork.mptr, workSize = ws.attWorkSize, dAttn = ws.dAttn.ptr, att = a.att.ptr
            let causal = Int32(c.attentionWindow(li).map { $0 < T ? $0 : 1 } ?? 1)   // the forward's
            Parallel.rows(B * NH, width: T * T, blas: true) { part, r in
                ck_attention_backward_heads(Int32(r.lowerBound), Int32(r.upperBound), dqkv, dqkv + D, dqkv + 2 * D, Int32(3 * D),
                                            work + part * workSize, dAttn, att, nil, qkv, qkv + D, qkv + 2 * D, Int32(3 * D),
                                            Int32(B), Int32(T), Int32(NH), Int32(HS), causal, scale, 0, 0, 0, 0)
            }
            // Sum each key/value head's gradient over its group of query heads.
            let dk = a.dk.mptr, dv = a.dv.mptr, (cosv, sinv) = ropeTables(ws, li), NKV = c.numKeyValueHeads
            Parallel.rows(N, width: 3 * D) { _, rr in
                for r in rr {
                    (dk + r * KV).update(repeating: 0, count: KV)
                    (dv + r * KV).update(repeating: 0, count: KV)
                    for h in 0..<NH {
                        let kvh = h / G
                        let sk = dqkv + r * 3 * D + D + h * HS, sv = dqkv + r * 3 * D + 2 * D + h * HS
                        ck_add(dk + r * KV + kvh * HS, dk + r * KV + kvh * HS, sk, HS)
                        ck_add(dv + r * KV + kvh * HS, dv + r * KV + kvh * HS, sv, HS)
                    }
                    // Through the rotations: the gradient at the projections' outputs.
                    let pos = r % T
                    ck_rope_apply(dqkv + r * 3 * D, Int32(3 * D), cosv + pos * HS / 2, sinv + pos * HS / 2, 1, 1, Int32(NH), Int32(HS), 1)
                    ck_rope_apply(dk + r * KV, Int32(KV), cosv + pos * HS / 2, sinv + pos * HS / 2, 1, 1, Int32(NKV), Int32(HS), 1)
                }
            }
            if let qn = layer.qNorm, let kn = layer.kNorm { qkNormBackward(p, ws, a, qNorm: qn, kNorm: kn, grads: &grads) }
            ck_gemm(ws.dh.mptr, Int32(C), dqkv, Int32(3 * D), p[layer.q].ptr, Int32(C), Int32(N), Int32(C), Int32(D),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            ck_gemm(ws.dh.mptr, Int32(C), dk, Int32(KV), p[layer.k].ptr, Int32(C), Int32(N), Int32(C), Int32(KV),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
            ck_gemm(ws.dh.mptr, Int32(C), dv, Int32(KV), p[layer.v].ptr, Int32(C), Int32(N), Int32(C), Int32(KV),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
            loraBackward(p, a, li, .q, delta: dqkv, ldd: 3 * D, dout: D, x: a.h1.ptr, ldx: C, din: C, dx: ws.dh.mptr, lddx: C, N: N, grads: &grads)
            loraBackward(p, a, li, .k, delta: dk, ldd: KV, dout: KV, x: a.h1.ptr, ldx: C, din: C, dx: ws.dh.mptr, lddx: C, N: N, grads: &grads)
            loraBackward(p, a, li, .v, delta: dv, ldd: KV, dout: KV, x: a.h1.ptr, ldx: C, din: C, dx: ws.dh.mptr, lddx: C, N: N, grads: &grads)
            if grads != nil {
                ck_linear_backward(nil, 0, dw(layer.q), layer.qBias.flatMap { dw($0) }, dqkv, Int32(3 * D), a.h1.ptr, Int32(C), p[layer.q].ptr,
                                   Int32(N), Int32(C), Int32(D))
                ck_linear_backward(nil, 0, dw(layer.k), layer.kBias.flatMap { dw($0) }, dk, Int32(KV), a.h1.ptr, Int32(C), p[layer.k].ptr,
                                   Int32(N), Int32(C), Int32(KV))
                ck_linear_backward(nil, 0, dw(layer.v), layer.vBias.flatMap { dw($0) }, dv, Int32(KV), a.h1.ptr, Int32(C), p[layer.v].ptr,
                                   Int32(N), Int32(C), Int32(KV))
            }
            if perExample { exampleNormGrads(&a.gIn, ws.dh.ptr, x, a.rstd1.ptr) }
            Self.rmsnormBackward(ws.dx.mptr, dw(layer.inputNorm), ws.dh.ptr, x, nw(p, ws, layer.inputNorm), a.rstd1.ptr, rows: N, cols: C,
                                 accumulate: true)
        }
        guard downTo == 0 else { return }
        ws.dInputsEmbeds.mptr.update(from: ws.dx.ptr, count: N * C)
        if let g = dw(embed) {
            // The table's rows were scaled on the way in (Gemma): inputs_embeds' gradient times the factor.
            if c.gemma { ck_scale(ws.dx.mptr, N * C, c.embeddingScale) }
            ws.ids.withUnsafeBufferPointer { ids in ck_embedding_backward(g, ws.dx.ptr, ids.baseAddress, Int32(N), Int32(C)) }
        }
    }
}

/// Activations and gradient buffers of one Llama forward/backward, reused across batches.
package final class LlamaWorkspace: @unchecked Sendable {
    final class Layer {
        var h1 = Tensor(shape: [0]), rstd1 = Tensor(shape: [0])
        var qkv = Tensor(shape: [0])          // [N, 3D]: q (rotated), then k and v repeated per query head
        var att = Tensor(shape: [0])          // [B, NH, T, T]
        var attnOut = Tensor(shape: [0])      // [N, D]
        var mid = Tensor(shape: [0])          // [N, C] residual after attention
        var h2 = Tensor(shape: [0]), rstd2 = Tensor(shape: [0])
        var gate = Tensor(shape: [0]), up = Tensor(shape: [0]), act = Tensor(shape: [0])   // [N, I]
        var out = Tensor(shape: [0])          // [N, C] layer output
        // Gradients at the linear layers' outputs, kept per layer for per-example gradient work.
        var dqkv = Tensor(shape: [0]), dk = Tensor(shape: [0]), dv = Tensor(shape: [0])
        var dGate = Tensor(shape: [0]), dUp = Tensor(shape: [0]), dMid = Tensor(shape: [0])
        // Kept by a per-example backward only: d(layer output) [N, C], and each example's gradients of
        // the input and post-attention norm weights [B, C].
        var dOut = Tensor(shape: [0]), gIn = Tensor(shape: [0]), gPost = Tensor(shape: [0])
        // Qwen3's q and k norms: their inputs [N, D] / [N, KV] and 1/rms per row and head, and per example the
        // gradients of their weights [B, head_dim] (a per-example backward).
        var qPre = Tensor(shape: [0]), kPre = Tensor(shape: [0]), qRstd = Tensor(shape: [0]), kRstd = Tensor(shape: [0])
        var gQNorm = Tensor(shape: [0]), gKNorm = Tensor(shape: [0])
        // Gemma's norms on the attention's and MLP's outputs: the projections [N, C], 1/rms per row, and (a
        // per-example backward) each example's gradients of their weights [B, C].
        var attnProj = Tensor(shape: [0]), rstdAttn = Tensor(shape: [0]), mlpProj = Tensor(shape: [0]), rstdMLP = Tensor(shape: [0])
        var gAttnNorm = Tensor(shape: [0]), gMLPNorm = Tensor(shape: [0])
        // LoRA per adapted module: s A x [N, r] (B's input) and s delta B [N, r] (A's output gradient).
        var loraU: [LoRAModule: Tensor] = [:], loraV: [LoRAModule: Tensor] = [:]
        // LoRA dropout in training: the keep factors and the dropped input of each adapted module.
        var loraKeep: [LoRAModule: Tensor] = [:], loraX: [LoRAModule: Tensor] = [:]
        /// (p, seed) when this pass drops the adapters' inputs (set per pass by the workspace).
        var loraDropout: (p: Float, seed: UInt64)? = nil
        func dropout(_ m: LoRAModule) -> (Float, UInt64)? { loraDropout.map { ($0.p, $0.seed) } }
    }

    var B = 0, T = 0
    var ids: [Int32] = []
    var layers: [Layer] = []
    var x0 = Tensor(shape: [0]), hidden = Tensor(shape: [0]), rstdFinal = Tensor(shape: [0])
    var keyMask = Tensor(shape: [0]), cos = Tensor(shape: [0]), sin = Tensor(shape: [0])
    /// RoPE tables of the local layers (Gemma 3's own base).
    var cosLocal = Tensor(shape: [0]), sinLocal = Tensor(shape: [0])
    /// Gemma's 1 + w of each RMSNorm weight, by parameter index (refreshed by each forward).
    var offsetNorms: [Int: Tensor] = [:]
    /// The gradient at a Gemma output norm's input (scratch of one layer's backward).
    var dProj = Tensor(shape: [0]), dEmbedRows = Tensor(shape: [0])
    var k = Tensor(shape: [0]), v = Tensor(shape: [0]), attWork = Tensor(shape: [0]), attWorkSize = 0
    var dHidden = Tensor(shape: [0]), dx = Tensor(shape: [0]), dh = Tensor(shape: [0])
    var dAct = Tensor(shape: [0]), dAttn = Tensor(shape: [0]), dInputsEmbeds = Tensor(shape: [0])
    /// Gradients at Qwen3's normalised q and k, contiguous (scratch of one layer's backward).
    var dqNormed = Tensor(shape: [0]), dkNormed = Tensor(shape: [0])
    /// Set by a per-example backward: keep what per-example gradient factors read (`Layer.dOut`,
    /// `gIn`, `gPost`, `gFinal`); `lengths` are the examples' real tokens.
    var perExample = false
    var lengths: [Int] = []
    /// The step seed of a training pass (LoRA dropout on); nil in inference.
    var loraTraining: UInt64? = nil
    var gFinal = Tensor(shape: [0])

    /// The gradient of each token's embedding-table row: inputs_embeds' gradient, times Gemma's embedding factor
    /// (a scaled copy then).
    func embeddingRowGradients(_ c: LlamaConfig) -> Tensor {
        guard c.gemma else { return dInputsEmbeds }
        dEmbedRows.resize(dInputsEmbeds.shape)
        dEmbedRows.mptr.update(from: dInputsEmbeds.ptr, count: dInputsEmbeds.count)
        ck_scale(dEmbedRows.mptr, dEmbedRows.count, c.embeddingScale)
        return dEmbedRows
    }

    func prepare(B: Int, T: Int, config c: LlamaConfig) {
        self.B = B
        self.T = T
        let N = B * T, C = c.hiddenSize, D = c.queryWidth, KV = c.keyValueWidth, I = c.intermediateSize, NH = c.numAttentionHeads
        while layers.count < c.numHiddenLayers { layers.append(Layer()) }
        for a in layers {
            a.h1.resize([N, C]); a.rstd1.resize([N]); a.qkv.resize([N, 3 * D]); a.att.resize([B, NH, T, T])
            a.attnOut.resize([N, D]); a.mid.resize([N, C]); a.h2.resize([N, C]); a.rstd2.resize([N])
            a.gate.resize([N, I]); a.up.resize([N, I]); a.act.resize([N, I]); a.out.resize([N, C])
            a.dqkv.resize([N, 3 * D]); a.dk.resize([N, KV]); a.dv.resize([N, KV]); a.dGate.resize([N, I]); a.dUp.resize([N, I])
            a.dMid.resize([N, C])
            if c.gemma { a.attnProj.resize([N, C]); a.rstdAttn.resize([N]); a.mlpProj.resize([N, C]); a.rstdMLP.resize([N]) }
            if c.qkNorm { a.qPre.resize([N, D]); a.kPre.resize([N, KV]); a.qRstd.resize([N * NH]); a.kRstd.resize([N * c.numKeyValueHeads]) }
        }
        x0.resize([N, C]); hidden.resize([N, C]); rstdFinal.resize([N]); keyMask.resize([N])
        cos.resize([T, c.headDim / 2]); sin.resize([T, c.headDim / 2]); k.resize([N, KV]); v.resize([N, KV])
        if c.gemma && c.slidingLayers.contains(true) { cosLocal.resize([T, c.headDim / 2]); sinLocal.resize([T, c.headDim / 2]) }
        if c.gemma { dProj.resize([N, C]) }
        attWorkSize = ck_attention_work_size(Int32(T), Int32(c.headDim))
        attWork.resize([attWorkSize * Parallel.parts(B * NH)])
        dHidden.resize([N, C]); dx.resize([N, C]); dh.resize([N, C]); dAct.resize([N, I]); dAttn.resize([N, D])
        dInputsEmbeds.resize([N, C])
    }
}
