import CKernels
import WinnowCore
import WinnowData

/// The encoder's forward and backward passes (embeddings and transformer layers), shared by the
/// classifier and the language models. Activations and output gradients stay in the workspace.
extension BertEncoder {
    /// Output rows [B*T, C] of the last layer (the embedding output without layers).
    func top(_ ws: BertWorkspace) -> UnsafeMutablePointer<Float> {
        layers.isEmpty ? ws.x0.mptr : ws.layers[layers.count - 1].out.mptr
    }

    /// Gradient rows [B*T, C] at the last layer's output: the heads write here before `backward`.
    func topGradient(_ ws: BertWorkspace) -> UnsafeMutablePointer<Float> {
        layers.isEmpty ? ws.dX.mptr : ws.layers[layers.count - 1].dOut.mptr
    }

    /// Embeddings and layers of `batch` (ws.prepare must have run). `causal` masks keys after each query.
    /// `keep` false (inference, no dropout): attention probabilities stay in per-part scratch and GELU
    /// reads its input without writing it back, so nothing is kept for a backward (which then traps).
    /// `clsOnly`: after the last layer's attention, which needs every key and value, its output
    /// projection, LayerNorms and feed-forward run on the B [CLS] rows alone (the pooler reads nothing
    /// else), which skips about a sixth of a BERT-small forward's arithmetic; the last layer's output
    /// then holds those B rows, contiguous (`ws.clsRowStride` == C). Dropout draws the masks of the
    /// rows' full positions, so a training step gives the full step's gradients to rounding; the
    /// backward then runs the same rows only.
    func forward(_ p: ParameterStore, _ ws: BertWorkspace, _ batch: Batch, training: Bool, seed: UInt64, causal: Bool = false,
                 keep: Bool = true, clsOnly: Bool = false) {
        precondition(keep || !training, "a training forward keeps its activations")
        ws.backwardReady = keep
        let c = config
        let B = batch.size, T = batch.length, N = B * T, C = c.hiddenSize
        let NH = c.numAttentionHeads, HS = c.headSize
        let pHid: Float = training ? c.hiddenDropoutProb : 0
        let pAtt: Float = training ? c.attentionProbsDropoutProb : 0
        ws.ids = batch.inputIDs
        ws.types = batch.tokenTypeIDs
        ws.positions = (0..<N).map { Int32($0 % T) }
        ws.keyMask.withUnsafeMutableBufferPointer { m in
            // Hugging Face: (1 - attention_mask) * finfo(float32).min
            for i in 0..<N { m[i] = batch.attentionMask[i] != 0 ? 0 : -Float.greatestFiniteMagnitude }
        }
        ws.ids.withUnsafeBufferPointer { ids in
            ck_embedding_forward(ws.eSum.mptr, p[wordEmbeddings].ptr, ids.baseAddress, Int32(N), Int32(C), 0)
        }
        ws.positions.withUnsafeBufferPointer { pos in
            ck_embedding_forward(ws.eSum.mptr, p[positionEmbeddings].ptr, pos.baseAddress, Int32(N), Int32(C), 1)
        }
        ws.types.withUnsafeBufferPointer { tt in
            ck_embedding_forward(ws.eSum.mptr, p[tokenTypeEmbeddings].ptr, tt.baseAddress, Int32(N), Int32(C), 1)
        }
        embeddingNorm.forward(p, out: ws.x0.mptr, mean: ws.mean0.mptr, rstd: ws.rstd0.mptr, inp: ws.eSum.ptr, rows: N)
        Dropout.forward(ws.x0.mptr, count: N * C, p: pHid, seed: siteSeed(seed, 0))
        let scale = 1 / Float(HS).squareRoot()
        ws.clsRowStride = T * C
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            let qkv = a.qkv.mptr
            // After the last layer's attention a clsOnly forward reads the [CLS] rows alone, so only
            // their queries are needed: Q for those B rows, attention for the first query of each sequence.
            let clsQueries = clsOnly && li == layers.count - 1 && T > 1
            let nq: Int32 = clsQueries ? 1 : 0
            Profile.section("fwd qkv gemm") {
                // Q, K and V as one GEMM against the stacked [3C, C] weights, the stacked biases added
                // as the product is stored (ck_gemm_bias: no separate bias pass).
                let w = a.wqkv.mptr, bias = a.bqkv.mptr
                for (j, lin) in [layer.query, layer.key, layer.value].enumerated() {
                    (w + j * C * C).update(from: p[lin.weight].ptr, count: C * C)
                    (bias + j * C).update(from: p[lin.bias].ptr, count: C)
                }
                if clsQueries {
                    ck_gemm_bias(qkv + C, Int32(3 * C), x, Int32(C), w + C * C, Int32(C), Int32(N), Int32(2 * C), Int32(C),
                                 Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0, bias + C)
                    // Q of the [CLS] rows only; the other rows' Q columns are never read.
                    ck_gemm_bias(qkv, Int32(T * 3 * C), x, Int32(T * C), w, Int32(C), Int32(B), Int32(C), Int32(C),
                                 Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0, bias)
                } else {
                    ck_gemm_bias(qkv, Int32(3 * C), x, Int32(C), w, Int32(C), Int32(N), Int32(3 * C), Int32(C),
                                 Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0, bias)
                }
            }
            Profile.section("fwd attention") {
                let attnOut = a.attnOut.mptr, att: UnsafeMutablePointer<Float>? = keep ? a.att.mptr : nil
                let mask = ws.keyMask.ptr, work = ws.attWork.mptr
                let workSize = ws.attWorkSize, attSeed = siteSeed(seed, 1 + 4 * li)
                // With dropout, the dropped probabilities are kept so the backward draws no random numbers.
                var drop: UnsafeMutablePointer<Float>? = nil
                if pAtt > 0 {
                    a.attDrop.resize([B, NH, T, T])
                    drop = a.attDrop.mptr
                }
                Parallel.rows(B * NH, width: T * T, blas: true) { part, r in
                    ck_attention_forward_heads(Int32(r.lowerBound), Int32(r.upperBound), attnOut, att, drop, qkv, qkv + C, qkv + 2 * C,
                                               Int32(3 * C), mask, work + part * workSize, Int32(B), Int32(T), Int32(NH), Int32(HS),
                                               causal ? 1 : 0, scale, pAtt, attSeed, nq)
                }
            }
            if clsOnly && li == layers.count - 1 {
                // Only the [CLS] rows feed the pooler: gather them from the layer input into r2 (free
                // until the second residual, which overwrites it) and run the rest on B rows.
                let rs = T * C, xc = a.r2.mptr
                for b in 0..<B { (xc + b * C).update(from: x + b * rs, count: C) }
                layerTail(p, ws, layer: layer, a: a, res: a.r2.ptr, ldAttn: rs, rows: B, pHid: pHid, seed: seed, li: li, keep: keep,
                          counterRowStep: T)
                ws.clsRowStride = C
            } else {
                layerTail(p, ws, layer: layer, a: a, res: x, ldAttn: C, rows: N, pHid: pHid, seed: seed, li: li, keep: keep,
                          counterRowStep: 1)
            }
        }
    }

    /// The rest of layer `li` after its attention, over `rows` rows: output projection of the attention
    /// rows (stride `ldAttn`), bias + dropout + residual `res` in one pass, LayerNorm; intermediate
    /// projection, bias + GELU in one pass; output projection, bias + dropout + residual, LayerNorm.
    /// Row r draws the dropout masks of full row r * counterRowStep.
    private func layerTail(_ p: ParameterStore, _ ws: BertWorkspace, layer: EncoderLayer, a: BertWorkspace.Layer,
                           res: UnsafePointer<Float>, ldAttn: Int, rows n: Int, pHid: Float, seed: UInt64, li: Int, keep: Bool,
                           counterRowStep: Int) {
        let C = config.hiddenSize, I = config.intermediateSize
        Profile.section("fwd gemm") {
            layer.attentionOutput.product(p, out: ws.scratch.mptr, ldOut: C, inp: a.attnOut.ptr, ldInp: ldAttn, rows: n)
        }
        Profile.section("fwd bias+dropout+res+LN") {
            Self.biasDropoutResidual(out: a.r1.mptr, res: res, y: ws.scratch.ptr, bias: p[layer.attentionOutput.bias].ptr,
                                     rows: n, cols: C, p: pHid, seed: siteSeed(seed, 2 + 4 * li), counterRowStep: counterRowStep)
            layer.attentionNorm.forward(p, out: a.h1.mptr, mean: a.mean1.mptr, rstd: a.rstd1.mptr, inp: a.r1.ptr, rows: n)
        }
        Profile.section("fwd gemm") {
            layer.intermediate.product(p, out: a.interPre.mptr, ldOut: I, inp: a.h1.ptr, ldInp: C, rows: n)
        }
        Profile.section("fwd bias+gelu") {
            // A forward kept for a backward (training or scoring) keeps gelu'(x) in place of x: the
            // backward is then one multiply instead of erfc and exp per element again.
            let pre = a.interPre.mptr, act = a.inter.mptr, ib = p[layer.intermediate.bias].ptr
            a.interPreIsDerivative = keep
            Parallel.rows(n, width: I) { _, r in
                if keep {
                    ck_bias_gelu_forward_train(pre + r.lowerBound * I, act + r.lowerBound * I, ib, Int32(r.count), Int32(I))
                } else {
                    ck_bias_gelu_forward_infer(pre + r.lowerBound * I, act + r.lowerBound * I, ib, Int32(r.count), Int32(I))
                }
            }
        }
        Profile.section("fwd gemm") {
            layer.output.product(p, out: ws.scratch.mptr, ldOut: C, inp: a.inter.ptr, ldInp: I, rows: n)
        }
        Profile.section("fwd bias+dropout+res+LN") {
            Self.biasDropoutResidual(out: a.r2.mptr, res: a.h1.ptr, y: ws.scratch.ptr, bias: p[layer.output.bias].ptr,
                                     rows: n, cols: C, p: pHid, seed: siteSeed(seed, 3 + 4 * li), counterRowStep: counterRowStep)
            layer.outputNorm.forward(p, out: a.out.mptr, mean: a.mean2.mptr, rstd: a.rstd2.mptr, inp: a.r2.ptr, rows: n)
        }
    }

    /// out = res + dropout(y + bias) over [rows, cols], rows split across cores; the dropout counters
    /// are the flat indices, as a single `Dropout.forward` over the whole array would use, with row r
    /// counted as row r * counterRowStep (compact [CLS] rows keep their full rows' masks).
    static func biasDropoutResidual(out: UnsafeMutablePointer<Float>, res: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, rows: Int, cols: Int, p: Float, seed: UInt64,
                                    counterRowStep: Int = 1) {
        Parallel.rows(rows, width: cols) { _, r in
            if counterRowStep == 1 {
                let o = r.lowerBound * cols
                ck_bias_dropout_residual(out + o, res + o, y + o, bias, Int32(r.count), Int32(cols), p, seed, UInt64(o))
            } else {
                for row in r {
                    let o = row * cols
                    ck_bias_dropout_residual(out + o, res + o, y + o, bias, 1, Int32(cols), p, seed, UInt64(row * counterRowStep * cols))
                }
            }
        }
    }

    /// dinp = mask * dout / (1 - p) over [rows, cols], row r drawing the masks of full row r * counterRowStep.
    static func dropoutBackwardRows(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, rows: Int, cols: Int, p: Float,
                                    seed: UInt64, counterRowStep: Int) {
        if counterRowStep == 1 {
            Dropout.backward(dinp: dinp, dout: dout, count: rows * cols, p: p, seed: seed, accumulate: false)
            return
        }
        Parallel.rows(rows, width: cols) { _, r in
            for row in r {
                ck_dropout_backward_set(dinp + row * cols, dout + row * cols, cols, p, seed, UInt64(row * counterRowStep * cols))
            }
        }
    }

    /// Back-propagates the gradient at `topGradient(ws)` through the layers and embeddings of the last
    /// forward (same `training` and `seed`). With `grads` nil only data gradients are computed; each
    /// layer's output gradients stay in the workspace either way.
    func backward(_ p: ParameterStore, _ ws: BertWorkspace, grads: inout ParameterStore?, training: Bool, seed: UInt64,
                  embeddingGrads: Bool = true) {
        let c = config
        let B = ws.B, T = ws.T, N = B * T, C = c.hiddenSize
        let NH = c.numAttentionHeads, HS = c.headSize
        let pHid: Float = training ? c.hiddenDropoutProb : 0
        let pAtt: Float = training ? c.attentionProbsDropoutProb : 0
        let scale = 1 / Float(HS).squareRoot()
        precondition(ws.backwardReady, "backward after an inference forward (keepForBackward: false): nothing was kept")
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[li], a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            let dIn = li == 0 ? ws.dX.mptr : ws.layers[li - 1].dOut.mptr
            // The last layer of a clsOnly forward ran after its attention on the B [CLS] rows only:
            // its output gradient holds those rows (the pooler's), and so do the gradients down to the
            // attention output, which is scattered back to full rows (zero elsewhere).
            let compact = li == layers.count - 1 && ws.clsRowStride == C && T > 1
            let nq: Int32 = compact ? 1 : 0      // the forward ran the first query of each sequence only
            if compact { ws.dAttnOut.mptr.update(repeating: 0, count: N * C) }
            layerTailBackward(p, ws, grads: &grads, layer: layer, a: a, rows: compact ? B : N, ldAttn: compact ? T * C : C,
                              pHid: pHid, seed: seed, li: li, counterRowStep: compact ? T : 1)
            let dqkv = a.dqkv.mptr, qkv = a.qkv.ptr
            Profile.section("bwd attention") {
                let work = ws.attWork.mptr, workSize = ws.attWorkSize, dAttn = ws.dAttnOut.ptr, att = a.att.ptr
                let attSeed = siteSeed(seed, 1 + 4 * li)
                let drop: UnsafePointer<Float>? = pAtt > 0 ? a.attDrop.ptr : nil
                Parallel.rows(B * NH, width: T * T, blas: true) { part, r in
                    ck_attention_backward_heads(Int32(r.lowerBound), Int32(r.upperBound), dqkv, dqkv + C, dqkv + 2 * C, Int32(3 * C),
                                                work + part * workSize, dAttn, att, drop, qkv, qkv + C, qkv + 2 * C, Int32(3 * C),
                                                Int32(B), Int32(T), Int32(NH), Int32(HS), 0, scale, pAtt, attSeed, 0, nq)
                }
            }
            Profile.section("bwd copy") {      // residual branch
                let dr1 = residualGradient(ws, a, pHid: pHid)
                if compact {
                    dIn.update(repeating: 0, count: N * C)
                    for b in 0..<B { (dIn + b * T * C).update(from: dr1 + b * C, count: C) }
                } else {
                    Elementwise.copy(dIn, from: dr1, count: N * C)
                }
            }
            Profile.section("bwd linear") {
                // The stacked Q/K/V layer of the forward: dX += dQKV [N,3C] @ Wqkv [3C,C] in one GEMM;
                // dWqkv = dQKV^T X in one GEMM, added to the three weight gradients. After the [CLS]
                // queries alone, dQ is zero off the [CLS] rows: K and V over every row, Q over those B.
                if compact {
                    ck_gemm(dIn, Int32(C), dqkv + C, Int32(3 * C), a.wqkv.ptr + C * C, Int32(C), Int32(N), Int32(C), Int32(2 * C),
                            Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
                    ck_gemm(dIn, Int32(T * C), dqkv, Int32(T * 3 * C), a.wqkv.ptr, Int32(C), Int32(B), Int32(C), Int32(C),
                            Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
                } else {
                    ck_gemm(dIn, Int32(C), dqkv, Int32(3 * C), a.wqkv.ptr, Int32(C), Int32(N), Int32(C), Int32(3 * C),
                            Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 1)
                }
                guard grads != nil else { return }
                let dw = ws.dWqkv.mptr
                ck_gemm(dw, Int32(C), dqkv, Int32(3 * C), x, Int32(C), Int32(3 * C), Int32(C), Int32(N),
                        Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 0)
                Profile.section("bwd bias sums") {
                    for (j, lin) in [layer.query, layer.key, layer.value].enumerated() {
                        let g = grads![lin.weight].mptr
                        ck_add(g, g, dw + j * C * C, C * C)
                        Linear.columnSums(into: grads![lin.bias].mptr, dqkv + j * C, ld: 3 * C, rows: N, cols: C)
                    }
                }
            }
        }
        Profile.section("bwd embeddings") {
            Dropout.backward(dinp: ws.dELN.mptr, dout: ws.dX.ptr, count: N * C, p: pHid, seed: siteSeed(seed, 0), accumulate: false)
            embeddingNorm.backward(p, grads: &grads, dinp: ws.dInputsEmbeds.mptr, dout: ws.dELN.ptr, inp: ws.eSum.ptr,
                                   mean: ws.mean0.ptr, rstd: ws.rstd0.ptr, rows: N, accumulate: false)
            if grads != nil && embeddingGrads { Profile.section("bwd emb scatter") {
                let d = ws.dInputsEmbeds.ptr
                ws.ids.withUnsafeBufferPointer { ck_embedding_backward(grads![wordEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
                ws.positions.withUnsafeBufferPointer { ck_embedding_backward(grads![positionEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
                ws.types.withUnsafeBufferPointer { ck_embedding_backward(grads![tokenTypeEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
            } }
        }
    }
}

extension BertEncoder {
    /// Where layer `a`'s backward leaves the gradient at its attention block's residual input: ws.dr1,
    /// or, without dropout, a.dproj (the dropout backward would only copy it there).
    fileprivate func residualGradient(_ ws: BertWorkspace, _ a: BertWorkspace.Layer, pHid: Float) -> UnsafeMutablePointer<Float> {
        pHid > 0 ? ws.dr1.mptr : a.dproj.mptr
    }

    /// Back-propagates layer `li` from its output gradient (a.dOut) down to its attention output
    /// (ws.dAttnOut, row stride `ldAttn`), over `rows` rows: output LayerNorm, dropout, output
    /// projection, GELU, intermediate projection (plus the residual), attention LayerNorm, dropout,
    /// attention output projection. `residualGradient` holds the gradient at the attention block's residual input.
    /// Each gradient buffer is written by its first producer (no zeroing passes); only the residual
    /// branches accumulate. Row r uses the dropout masks of full row r * counterRowStep.
    fileprivate func layerTailBackward(_ p: ParameterStore, _ ws: BertWorkspace, grads: inout ParameterStore?, layer: EncoderLayer,
                                       a: BertWorkspace.Layer, rows n: Int, ldAttn: Int, pHid: Float, seed: UInt64, li: Int,
                                       counterRowStep: Int) {
        let C = config.hiddenSize, I = config.intermediateSize
        // Without dropout (p == 0: scoring, evaluation) each LayerNorm's input gradient is written
        // straight into the dropout's output gradient (dOut2, dproj), which the dropout backward would
        // only copy; the residual branches then read it from there.
        let dr2 = pHid > 0 ? ws.dr2.mptr : a.dOut2.mptr
        Profile.section("bwd LN") {
            layer.outputNorm.backward(p, grads: &grads, dinp: dr2, dout: a.dOut.ptr, inp: a.r2.ptr,
                                      mean: a.mean2.ptr, rstd: a.rstd2.ptr, rows: n, accumulate: false)
        }
        Profile.section("bwd copy") {
            Elementwise.copy(a.dh1.mptr, from: dr2, count: n * C)      // residual branch
        }
        if pHid > 0 {
            Profile.section("bwd dropout") {
                Self.dropoutBackwardRows(dinp: a.dOut2.mptr, dout: dr2, rows: n, cols: C, p: pHid, seed: siteSeed(seed, 3 + 4 * li),
                                         counterRowStep: counterRowStep)
            }
        }
        Profile.section("bwd linear") {
            layer.output.backward(p, grads: &grads, dinp: ws.dinter.mptr, ldDinp: I, dout: a.dOut2.ptr, ldDout: C,
                                  inp: a.inter.ptr, ldInp: I, rows: n, accumulate: false)
        }
        Profile.section("bwd gelu") {
            if a.interPreIsDerivative {
                Elementwise.multiply(a.dInterPre.mptr, ws.dinter.ptr, a.interPre.ptr, count: n * I)
            } else {
                Elementwise.geluBackwardSet(a.dInterPre.mptr, ws.dinter.ptr, a.interPre.ptr, count: n * I)
            }
        }
        Profile.section("bwd linear") {
            layer.intermediate.backward(p, grads: &grads, dinp: a.dh1.mptr, ldDinp: C, dout: a.dInterPre.ptr, ldDout: I,
                                        inp: a.h1.ptr, ldInp: C, rows: n)
        }
        let dr1 = residualGradient(ws, a, pHid: pHid)
        Profile.section("bwd LN") {
            layer.attentionNorm.backward(p, grads: &grads, dinp: dr1, dout: a.dh1.ptr, inp: a.r1.ptr,
                                         mean: a.mean1.ptr, rstd: a.rstd1.ptr, rows: n, accumulate: false)
        }
        if pHid > 0 {
            Profile.section("bwd dropout") {
                Self.dropoutBackwardRows(dinp: a.dproj.mptr, dout: dr1, rows: n, cols: C, p: pHid, seed: siteSeed(seed, 2 + 4 * li),
                                         counterRowStep: counterRowStep)
            }
        }
        Profile.section("bwd linear") {
            layer.attentionOutput.backward(p, grads: &grads, dinp: ws.dAttnOut.mptr, ldDinp: ldAttn, dout: a.dproj.ptr, ldDout: C,
                                           inp: a.attnOut.ptr, ldInp: ldAttn, rows: n, accumulate: false)
        }
    }
}

/// Multiplies row r of x [rows, width] (row stride ld) by s[r].
func scaleRows(_ x: UnsafeMutablePointer<Float>, ld: Int, width: Int, scales s: [Float]) {
    for r in s.indices where s[r] != 1 { ck_scale(x + r * ld, width, s[r]) }
}

extension BertEncoder {
    /// Book-keeping (Bu et al.): after a data-only backward of unweighted per-sample losses, adds to
    /// `grads` the parameter gradients of sum_b v_b L_b, where token row r belongs to a sample with
    /// weight rowScale[r]. Every parameter gradient is a sum over token rows of (output gradient row) x
    /// (input row), linear in the sample's weight, so each stored output gradient is scaled by its row's
    /// weight (in place: the workspace gradients are consumed) and contracted once: G^T diag(v) A.
    func accumulateWeightedGradients(_ p: ParameterStore, _ ws: BertWorkspace, grads: inout ParameterStore, rowScale v: [Float]) {
        let c = config
        let N = ws.B * ws.T, C = c.hiddenSize, I = c.intermediateSize
        precondition(v.count == N, "rowScale: \(v.count) values for \(N) rows")
        func linear(_ lin: Linear, g: UnsafePointer<Float>, ldg: Int, a: UnsafePointer<Float>, lda: Int) {
            ck_linear_backward(nil, 0, grads[lin.weight].mptr, grads[lin.bias].mptr, g, Int32(ldg), a, Int32(lda), p[lin.weight].ptr,
                               Int32(N), Int32(lin.inDim), Int32(lin.outDim))
        }
        func layerNorm(_ ln: LayerNorm, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>) {
            var dw = Tensor(shape: [1, C]), db = Tensor(shape: [1, C])
            let off: [Int32] = [0, Int32(N)]
            off.withUnsafeBufferPointer { o in ck_layernorm_example_grads(dw.mptr, db.mptr, dout, inp, mean, rstd, o.baseAddress, 1, Int32(C)) }
            ck_add(grads[ln.weight].mptr, grads[ln.weight].ptr, dw.ptr, C)
            ck_add(grads[ln.bias].mptr, grads[ln.bias].ptr, db.ptr, C)
        }
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            for kp in [\BertWorkspace.Layer.dqkv, \.dproj, \.dInterPre, \.dOut2, \.dh1, \.dOut] {
                let w = a[keyPath: kp].count / N
                scaleRows(a[keyPath: kp].mptr, ld: w, width: w, scales: v)
            }
            linear(layer.query, g: a.dqkv.ptr, ldg: 3 * C, a: x, lda: C)
            linear(layer.key, g: a.dqkv.ptr + C, ldg: 3 * C, a: x, lda: C)
            linear(layer.value, g: a.dqkv.ptr + 2 * C, ldg: 3 * C, a: x, lda: C)
            linear(layer.attentionOutput, g: a.dproj.ptr, ldg: C, a: a.attnOut.ptr, lda: C)
            layerNorm(layer.attentionNorm, dout: a.dh1.ptr, inp: a.r1.ptr, mean: a.mean1.ptr, rstd: a.rstd1.ptr)
            linear(layer.intermediate, g: a.dInterPre.ptr, ldg: I, a: a.h1.ptr, lda: C)
            linear(layer.output, g: a.dOut2.ptr, ldg: C, a: a.inter.ptr, lda: I)
            layerNorm(layer.outputNorm, dout: a.dOut.ptr, inp: a.r2.ptr, mean: a.mean2.ptr, rstd: a.rstd2.ptr)
        }
        scaleRows(ws.dELN.mptr, ld: C, width: C, scales: v)
        layerNorm(embeddingNorm, dout: ws.dELN.ptr, inp: ws.eSum.ptr, mean: ws.mean0.ptr, rstd: ws.rstd0.ptr)
        scaleRows(ws.dInputsEmbeds.mptr, ld: C, width: C, scales: v)
        let d = ws.dInputsEmbeds.ptr
        ws.ids.withUnsafeBufferPointer { ck_embedding_backward(grads[wordEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
        ws.positions.withUnsafeBufferPointer { ck_embedding_backward(grads[positionEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
        ws.types.withUnsafeBufferPointer { ck_embedding_backward(grads[tokenTypeEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
    }
}
