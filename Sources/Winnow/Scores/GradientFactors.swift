import CKernels
import Foundation

/// Per-example gradient factors of one batch, enough to compute each example's gradient norm and the
/// dot product of two examples' gradients over the selected tensors without materialising per-example
/// gradients (design section 4). Rows are the real (non-pad) tokens of each example, packed: example m
/// owns rows [offsets[m], offsets[m+1]). Pad positions have exactly zero gradient and are dropped.
struct GradientFactors {
    enum Entry {
        /// A linear layer: inputs A [rows, din], output gradients G [rows, dout]; weight and/or bias selected.
        case linear(a: Tensor, g: Tensor, offsets: [Int32], weight: Bool, bias: Bool)
        /// Materialised per-example gradients [M, d] (LayerNorm parameters, pooled-vector gradients).
        case rows(Tensor)
        /// An embedding table: row ids[t] receives D[t, :].
        case embedding(d: Tensor, ids: [Int32], offsets: [Int32], tableRows: Int)
    }

    let count: Int
    var entries: [Entry] = []

    /// Squared gradient norm per example, times `scale`, added to `out`.
    func addNorms(into out: inout [Float], scale: Float) {
        precondition(out.count == count, "addNorms: \(out.count) outputs for \(count) examples")
        out.withUnsafeMutableBufferPointer { o in
            for e in entries {
                switch e {
                case let .linear(a, g, off, w, b):
                    let din = a.shape[1], dout = g.shape[1]
                    off.withUnsafeBufferPointer { offp in
                        if w {
                            let maxT = zip(off.dropFirst(), off).map { Int($0 - $1) }.max() ?? 0
                            var work = Tensor(shape: [max(1, ck_grad_norms_linear_work_size(Int32(maxT), Int32(din), Int32(dout)))])
                            ck_grad_norms_linear(o.baseAddress, work.mptr, a.ptr, Int32(din), g.ptr, Int32(dout), offp.baseAddress,
                                                 Int32(count), Int32(din), Int32(dout), scale)
                        }
                        if b { ck_grad_norms_bias(o.baseAddress, g.ptr, Int32(dout), offp.baseAddress, Int32(count), Int32(dout), scale) }
                    }
                case let .rows(v):
                    let d = v.shape[1]
                    for m in 0..<count { o[m] += scale * Float(ck_sum_squares(v.ptr + m * d, d)) }
                case let .embedding(d, ids, off, _):
                    let C = d.shape[1]
                    let maxT = zip(off.dropFirst(), off).map { Int($0 - $1) }.max() ?? 0
                    var work = Tensor(shape: [max(1, maxT * C)])
                    ids.withUnsafeBufferPointer { idp in
                        off.withUnsafeBufferPointer { offp in
                            ck_grad_norms_embedding(o.baseAddress, work.mptr, d.ptr, Int32(C), idp.baseAddress, offp.baseAddress,
                                                    Int32(count), Int32(C), scale)
                        }
                    }
                }
            }
        }
    }

    /// out[i, j] (row stride ldo) += scale * <g_i, h_j> for examples i of self and j of `other`.
    func addDots(with other: GradientFactors, into out: UnsafeMutablePointer<Float>, ldo: Int, scale: Float) {
        precondition(entries.count == other.entries.count, "addDots: factor lists differ")
        let M1 = count, M2 = other.count
        for (e1, e2) in zip(entries, other.entries) {
            switch (e1, e2) {
            case let (.linear(a1, g1, off1, w, b), .linear(a2, g2, off2, _, _)):
                let din = a1.shape[1], dout = g1.shape[1]
                off1.withUnsafeBufferPointer { o1 in
                    off2.withUnsafeBufferPointer { o2 in
                        if w {
                            var work = Tensor(shape: [max(1, ck_grad_dots_linear_work_size(Int32(a1.shape[0]), Int32(M1), Int32(a2.shape[0]), Int32(M2), Int32(din), Int32(dout)))])
                            ck_grad_dots_linear(out, Int32(ldo), work.mptr, a1.ptr, Int32(din), g1.ptr, Int32(dout), o1.baseAddress, Int32(M1),
                                                a2.ptr, Int32(din), g2.ptr, Int32(dout), o2.baseAddress, Int32(M2), Int32(din), Int32(dout), scale)
                        }
                        if b {
                            var work = Tensor(shape: [max(1, (M1 + M2) * dout)])
                            ck_grad_dots_bias(out, Int32(ldo), work.mptr, g1.ptr, Int32(dout), o1.baseAddress, Int32(M1),
                                              g2.ptr, Int32(dout), o2.baseAddress, Int32(M2), Int32(dout), scale)
                        }
                    }
                }
            case let (.rows(v1), .rows(v2)):
                let d = v1.shape[1]
                // out += scale * V1 V2^T
                ck_gemm(out, Int32(ldo), v1.ptr, Int32(d), v2.ptr, Int32(d), Int32(M1), Int32(M2), Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), scale, 1)
            case let (.embedding(d1, ids1, off1, _), .embedding(d2, ids2, off2, _)):
                let C = d1.shape[1]
                ids1.withUnsafeBufferPointer { i1 in ids2.withUnsafeBufferPointer { i2 in
                    off1.withUnsafeBufferPointer { o1 in off2.withUnsafeBufferPointer { o2 in
                        ck_grad_dots_embedding(out, Int32(ldo), d1.ptr, Int32(C), i1.baseAddress, o1.baseAddress, Int32(M1),
                                               d2.ptr, Int32(C), i2.baseAddress, o2.baseAddress, Int32(M2), Int32(C), scale)
                    } }
                } }
            default:
                preconditionFailure("addDots: factor kinds differ")
            }
        }
    }
}

/// Packs the real rows of a padded [B*T, d] matrix (row stride ld, column offset col) into [rows, d].
func packRows(_ src: UnsafePointer<Float>, ld: Int, width d: Int, batch: Batch, lengths: [Int]) -> Tensor {
    let total = lengths.reduce(0, +)
    var out = Tensor(shape: [total, d])
    let dst = out.mptr
    var r = 0
    for b in 0..<batch.size {
        for t in 0..<lengths[b] {
            (dst + r * d).update(from: src + (b * batch.length + t) * ld, count: d)
            r += 1
        }
    }
    return out
}

extension BertClassifier {
    /// Per-example CE gradients of the last forward, for scores: back-propagates the unweighted sum of
    /// per-example losses (each example's gradient is its own), computing data gradients only.
    func backwardPerExampleLosses(_ batch: Batch) {
        let (_, _) = crossEntropy(batch)
        var dlogits = Tensor(shape: [batch.size, numLabels])
        let ones = [Float](repeating: 1, count: batch.size)
        ones.withUnsafeBufferPointer { w in
            batch.labels.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dlogits.mptr, w.baseAddress, workspace.probs.ptr, y.baseAddress, Int32(batch.size), Int32(numLabels))
            }
        }
        var none: ParameterStore? = nil
        backward(dlogits: dlogits, grads: &none)
    }

    /// Gradient factors of the selected tensors from the last backward (`space` params), or the
    /// gradient with respect to the pooled [CLS] vector (`lastHidden`).
    func gradientFactors(_ batch: Batch, selection: ParameterSelection?, lastHidden: Bool = false) -> GradientFactors {
        let ws = workspace, c = config
        let B = batch.size, T = batch.length, C = c.hiddenSize
        var f = GradientFactors(count: B)
        if lastHidden {
            // Inference mode: d pooled-after-dropout == d pooled.
            f.entries.append(.rows(Tensor(shape: [B, C], copying: ws.dPooledDrop.ptr)))
            return f
        }
        guard let sel = selection else { return f }
        let lengths = (0..<B).map { batch.realLength($0) }
        var offsets: [Int32] = [0]
        for l in lengths { offsets.append(offsets.last! + Int32(l)) }
        let single = (0...B).map { Int32($0) }
        let names = parameters.names
        func want(_ idx: Int) -> Bool { sel.contains(names[idx]) }
        encoder.addFactors(into: &f, workspace: ws, batch: batch, lengths: lengths, offsets: offsets, want: want)
        // Pooler and head see one row per example.
        func oneRow(_ lin: Linear, a: UnsafePointer<Float>, lda: Int, g: UnsafePointer<Float>, ldg: Int) {
            let w = want(lin.weight), b = want(lin.bias)
            guard w || b else { return }
            var A = Tensor(shape: [B, lin.inDim]), G = Tensor(shape: [B, lin.outDim])
            for r in 0..<B {
                (A.mptr + r * lin.inDim).update(from: a + r * lda, count: lin.inDim)
                (G.mptr + r * lin.outDim).update(from: g + r * ldg, count: lin.outDim)
            }
            f.entries.append(.linear(a: A, g: G, offsets: single, weight: w, bias: b))
        }
        let xL = encoder.layers.isEmpty ? ws.x0.ptr : ws.layers[encoder.layers.count - 1].out.ptr
        oneRow(encoder.pooler!, a: xL, lda: T * C, g: ws.dPooledPre.ptr, ldg: C)
        for (hi, lin) in head.enumerated() {
            let a = hi == 0 ? ws.pooledDrop.ptr : ws.headAct[hi - 1].ptr
            let g = hi == head.count - 1 ? ws.dlogits.ptr : ws.dHeadPre[hi].ptr
            oneRow(lin, a: a, lda: lin.inDim, g: g, ldg: lin.outDim)
        }
        return f
    }
}

extension BertEncoder {
    /// Rows of an embedding table.
    func tableRows(_ idx: Int) -> Int {
        idx == wordEmbeddings ? config.vocabSize : idx == positionEmbeddings ? config.maxPositionEmbeddings : config.typeVocabSize
    }

    /// Appends the gradient factors of the selected encoder tensors (embeddings and layers) from the last
    /// backward. Sample b has lengths[b] real tokens; group m owns packed rows [offsets[m], offsets[m+1])
    /// (one sample per group for per-example scores, M consecutive samples for PRESENCE microbatches).
    func addFactors(into f: inout GradientFactors, workspace ws: BertWorkspace, batch: Batch, lengths: [Int], offsets: [Int32],
                    want: (Int) -> Bool) {
        let c = config
        let B = batch.size, T = batch.length, C = c.hiddenSize, I = c.intermediateSize
        _ = I
        func linear(_ lin: Linear, a: UnsafePointer<Float>, lda: Int, g: UnsafePointer<Float>, ldg: Int) {
            let w = want(lin.weight), b = want(lin.bias)
            guard w || b else { return }
            let A = packRows(a, ld: lda, width: lin.inDim, batch: batch, lengths: lengths)
            let G = packRows(g, ld: ldg, width: lin.outDim, batch: batch, lengths: lengths)
            f.entries.append(.linear(a: A, g: G, offsets: offsets, weight: w, bias: b))
        }
        func layerNorm(_ ln: LayerNorm, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>) {
            let w = want(ln.weight), b = want(ln.bias)
            guard w || b else { return }
            let D = packRows(dout, ld: C, width: C, batch: batch, lengths: lengths)
            let X = packRows(inp, ld: C, width: C, batch: batch, lengths: lengths)
            let Mu = packRows(mean, ld: 1, width: 1, batch: batch, lengths: lengths)
            let R = packRows(rstd, ld: 1, width: 1, batch: batch, lengths: lengths)
            let M = offsets.count - 1      // groups
            var dw = Tensor(shape: [M, C]), db = Tensor(shape: [M, C])
            offsets.withUnsafeBufferPointer { o in
                ck_layernorm_example_grads(dw.mptr, db.mptr, D.ptr, X.ptr, Mu.ptr, R.ptr, o.baseAddress, Int32(M), Int32(C))
            }
            if w { f.entries.append(.rows(dw)) }
            if b { f.entries.append(.rows(db)) }
        }
        func embedding(_ idx: Int, ids: [Int32]) {
            guard want(idx) else { return }
            let D = packRows(ws.dInputsEmbeds.ptr, ld: C, width: C, batch: batch, lengths: lengths)
            var packedIDs: [Int32] = []
            for b in 0..<B { packedIDs += ids[(b * T)..<(b * T + lengths[b])] }
            f.entries.append(.embedding(d: D, ids: packedIDs, offsets: offsets, tableRows: tableRows(idx)))
        }
        // Embeddings (their gradient is d/d(inputs_embeds) for all three tables).
        embedding(wordEmbeddings, ids: ws.ids)
        embedding(positionEmbeddings, ids: ws.positions)
        embedding(tokenTypeEmbeddings, ids: ws.types)
        layerNorm(embeddingNorm, dout: ws.dELN.ptr, inp: ws.eSum.ptr, mean: ws.mean0.ptr, rstd: ws.rstd0.ptr)
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0.ptr : ws.layers[li - 1].out.ptr
            linear(layer.query, a: x, lda: C, g: a.dqkv.ptr, ldg: 3 * C)
            linear(layer.key, a: x, lda: C, g: a.dqkv.ptr + C, ldg: 3 * C)
            linear(layer.value, a: x, lda: C, g: a.dqkv.ptr + 2 * C, ldg: 3 * C)
            linear(layer.attentionOutput, a: a.attnOut.ptr, lda: C, g: a.dproj.ptr, ldg: C)
            layerNorm(layer.attentionNorm, dout: a.dh1.ptr, inp: a.r1.ptr, mean: a.mean1.ptr, rstd: a.rstd1.ptr)
            linear(layer.intermediate, a: a.h1.ptr, lda: C, g: a.dInterPre.ptr, ldg: I)
            linear(layer.output, a: a.inter.ptr, lda: I, g: a.dOut2.ptr, ldg: C)
            layerNorm(layer.outputNorm, dout: a.dOut.ptr, inp: a.r2.ptr, mean: a.mean2.ptr, rstd: a.rstd2.ptr)
        }
    }
}
