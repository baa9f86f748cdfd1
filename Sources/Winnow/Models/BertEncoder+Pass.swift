import CKernels

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
    func forward(_ p: ParameterStore, _ ws: BertWorkspace, _ batch: Batch, training: Bool, seed: UInt64, causal: Bool = false) {
        let c = config
        let B = batch.size, T = batch.length, N = B * T, C = c.hiddenSize, I = c.intermediateSize
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
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            let qkv = a.qkv.mptr
            layer.query.forward(p, out: qkv, ldOut: 3 * C, inp: x, ldInp: C, rows: N)
            layer.key.forward(p, out: qkv + C, ldOut: 3 * C, inp: x, ldInp: C, rows: N)
            layer.value.forward(p, out: qkv + 2 * C, ldOut: 3 * C, inp: x, ldInp: C, rows: N)
            ck_attention_forward(a.attnOut.mptr, a.att.mptr, qkv, qkv + C, qkv + 2 * C, Int32(3 * C), ws.keyMask.ptr,
                                 ws.attWork.mptr, Int32(B), Int32(T), Int32(NH), Int32(HS), causal ? 1 : 0, scale, pAtt,
                                 siteSeed(seed, 1 + 4 * li))
            layer.attentionOutput.forward(p, out: ws.scratch.mptr, ldOut: C, inp: a.attnOut.ptr, ldInp: C, rows: N)
            Dropout.forward(ws.scratch.mptr, count: N * C, p: pHid, seed: siteSeed(seed, 2 + 4 * li))
            ck_add(a.r1.mptr, x, ws.scratch.ptr, N * C)
            layer.attentionNorm.forward(p, out: a.h1.mptr, mean: a.mean1.mptr, rstd: a.rstd1.mptr, inp: a.r1.ptr, rows: N)
            layer.intermediate.forward(p, out: a.interPre.mptr, ldOut: I, inp: a.h1.ptr, ldInp: C, rows: N)
            ck_gelu_forward(a.inter.mptr, a.interPre.ptr, N * I)
            layer.output.forward(p, out: ws.scratch.mptr, ldOut: C, inp: a.inter.ptr, ldInp: I, rows: N)
            Dropout.forward(ws.scratch.mptr, count: N * C, p: pHid, seed: siteSeed(seed, 3 + 4 * li))
            ck_add(a.r2.mptr, a.h1.ptr, ws.scratch.ptr, N * C)
            layer.outputNorm.forward(p, out: a.out.mptr, mean: a.mean2.mptr, rstd: a.rstd2.mptr, inp: a.r2.ptr, rows: N)
        }
    }

    /// Back-propagates the gradient at `topGradient(ws)` through the layers and embeddings of the last
    /// forward (same `training` and `seed`). With `grads` nil only data gradients are computed; each
    /// layer's output gradients stay in the workspace either way.
    func backward(_ p: ParameterStore, _ ws: BertWorkspace, grads: inout ParameterStore?, training: Bool, seed: UInt64,
                  embeddingGrads: Bool = true) {
        let c = config
        let B = ws.B, T = ws.T, N = B * T, C = c.hiddenSize, I = c.intermediateSize
        let NH = c.numAttentionHeads, HS = c.headSize
        let pHid: Float = training ? c.hiddenDropoutProb : 0
        let pAtt: Float = training ? c.attentionProbsDropoutProb : 0
        let scale = 1 / Float(HS).squareRoot()
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[li], a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            let dIn = li == 0 ? ws.dX.mptr : ws.layers[li - 1].dOut.mptr
            ws.dr2.zero()
            layer.outputNorm.backward(p, grads: &grads, dinp: ws.dr2.mptr, dout: a.dOut.ptr, inp: a.r2.ptr,
                                      mean: a.mean2.ptr, rstd: a.rstd2.ptr, rows: N)
            a.dh1.mptr.update(from: ws.dr2.ptr, count: N * C)      // residual branch
            a.dOut2.zero()
            Dropout.backward(dinp: a.dOut2.mptr, dout: ws.dr2.ptr, count: N * C, p: pHid, seed: siteSeed(seed, 3 + 4 * li))
            ws.dinter.zero()
            layer.output.backward(p, grads: &grads, dinp: ws.dinter.mptr, ldDinp: I, dout: a.dOut2.ptr, ldDout: C,
                                  inp: a.inter.ptr, ldInp: I, rows: N)
            a.dInterPre.zero()
            ck_gelu_backward(a.dInterPre.mptr, ws.dinter.ptr, a.interPre.ptr, N * I)
            layer.intermediate.backward(p, grads: &grads, dinp: a.dh1.mptr, ldDinp: C, dout: a.dInterPre.ptr, ldDout: I,
                                        inp: a.h1.ptr, ldInp: C, rows: N)
            ws.dr1.zero()
            layer.attentionNorm.backward(p, grads: &grads, dinp: ws.dr1.mptr, dout: a.dh1.ptr, inp: a.r1.ptr,
                                         mean: a.mean1.ptr, rstd: a.rstd1.ptr, rows: N)
            a.dproj.zero()
            Dropout.backward(dinp: a.dproj.mptr, dout: ws.dr1.ptr, count: N * C, p: pHid, seed: siteSeed(seed, 2 + 4 * li))
            ws.dAttnOut.zero()
            layer.attentionOutput.backward(p, grads: &grads, dinp: ws.dAttnOut.mptr, ldDinp: C, dout: a.dproj.ptr, ldDout: C,
                                           inp: a.attnOut.ptr, ldInp: C, rows: N)
            a.dqkv.zero()
            let dqkv = a.dqkv.mptr, qkv = a.qkv.ptr
            ck_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, Int32(3 * C), ws.attWork.mptr, ws.dAttnOut.ptr, a.att.ptr,
                                  qkv, qkv + C, qkv + 2 * C, Int32(3 * C), Int32(B), Int32(T), Int32(NH), Int32(HS), scale,
                                  pAtt, siteSeed(seed, 1 + 4 * li))
            dIn.update(from: ws.dr1.ptr, count: N * C)      // residual branch
            layer.query.backward(p, grads: &grads, dinp: dIn, ldDinp: C, dout: dqkv, ldDout: 3 * C, inp: x, ldInp: C, rows: N)
            layer.key.backward(p, grads: &grads, dinp: dIn, ldDinp: C, dout: dqkv + C, ldDout: 3 * C, inp: x, ldInp: C, rows: N)
            layer.value.backward(p, grads: &grads, dinp: dIn, ldDinp: C, dout: dqkv + 2 * C, ldDout: 3 * C, inp: x, ldInp: C, rows: N)
        }
        ws.dELN.zero()
        Dropout.backward(dinp: ws.dELN.mptr, dout: ws.dX.ptr, count: N * C, p: pHid, seed: siteSeed(seed, 0))
        ws.dInputsEmbeds.zero()
        embeddingNorm.backward(p, grads: &grads, dinp: ws.dInputsEmbeds.mptr, dout: ws.dELN.ptr, inp: ws.eSum.ptr,
                               mean: ws.mean0.ptr, rstd: ws.rstd0.ptr, rows: N)
        if grads != nil && embeddingGrads {
            let d = ws.dInputsEmbeds.ptr
            ws.ids.withUnsafeBufferPointer { ck_embedding_backward(grads![wordEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
            ws.positions.withUnsafeBufferPointer { ck_embedding_backward(grads![positionEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
            ws.types.withUnsafeBufferPointer { ck_embedding_backward(grads![tokenTypeEmbeddings].mptr, d, $0.baseAddress, Int32(N), Int32(C)) }
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
