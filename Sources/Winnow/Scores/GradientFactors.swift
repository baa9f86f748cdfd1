import CKernels
import Foundation

/// Per-example gradient factors of one batch, enough to compute each example's gradient norm and the
/// dot product of two examples' gradients over the selected tensors without materialising per-example
/// gradients (design section 4). Rows are the real (non-pad) tokens of each example: example m owns
/// rows [offsets[m], offsets[m+1]), packed when the batch has padding (pad positions have exactly
/// zero gradient and are dropped), views of the workspace when it has none.
struct GradientFactors {
    enum Entry {
        /// A linear layer: inputs A [rows, din], output gradients G [rows, dout]; weight and/or bias selected.
        case linear(a: FactorRows, g: FactorRows, offsets: [Int32], weight: Bool, bias: Bool)
        /// Materialised per-example gradients [M, d] (LayerNorm parameters, pooled-vector gradients).
        case rows(Tensor)
        /// An embedding table: row ids[t] receives D[t, :].
        case embedding(d: FactorRows, ids: [Int32], offsets: [Int32], tableRows: Int)
    }

    let count: Int
    var entries: [Entry] = []

    /// Squared gradient norm per example, times `scale`, added to `out`. Examples are split across
    /// cores (each part with its own scratch); every example's value is computed as in one call.
    func addNorms(into out: inout [Float], scale: Float) {
        precondition(out.count == count, "addNorms: \(out.count) outputs for \(count) examples")
        func maxLength(_ off: [Int32]) -> Int { zip(off.dropFirst(), off).map { Int($0 - $1) }.max() ?? 0 }
        var perPart = 1
        for e in entries {
            switch e {
            case let .linear(a, g, off, w, _) where w:
                perPart = max(perPart, ck_grad_norms_linear_work_size(Int32(maxLength(off)), Int32(a.width), Int32(g.width)))
            case let .embedding(d, _, _, _):
                perPart = max(perPart, d.width)
            default:
                break
            }
        }
        let work = Tensor(uninitializedShape: [perPart * Parallel.parts(count)])
        let entries = self.entries
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Parallel.ranges(count, blas: true) { part, r in
                let w = work.buffer.base + part * perPart, m0 = r.lowerBound, M = Int32(r.count)
                for e in entries {
                    switch e {
                    case let .linear(a, g, off, weight, bias):
                        let din = a.width, dout = g.width
                        off.withUnsafeBufferPointer { offp in
                            let o = offp.baseAddress! + m0
                            if weight {
                                ck_grad_norms_linear(base + m0, w, a.ptr, Int32(a.ld), g.ptr, Int32(g.ld), o, M, Int32(din), Int32(dout), scale)
                            }
                            if bias { ck_grad_norms_bias(base + m0, g.ptr, Int32(g.ld), o, M, Int32(dout), scale) }
                        }
                    case let .rows(v):
                        let d = v.shape[1]
                        for m in r { base[m] += scale * Float(ck_sum_squares(v.ptr + m * d, d)) }
                    case let .embedding(d, ids, off, _):
                        ids.withUnsafeBufferPointer { idp in
                            off.withUnsafeBufferPointer { offp in
                                ck_grad_norms_embedding(base + m0, w, d.ptr, Int32(d.ld), idp.baseAddress, offp.baseAddress! + m0,
                                                        M, Int32(d.width), scale)
                            }
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
        func linearWork(_ off1: [Int32], _ off2: [Int32], din: Int, dout: Int) -> Int {
            ck_grad_dots_linear_work_size(off1.last! - off1[0], Int32(M1), off2.last! - off2[0], Int32(M2), Int32(din), Int32(dout))
        }
        // One scratch for every linear layer (the materialised form's is (M1 + M2) din dout floats):
        // allocated and faulted in once, not per layer.
        var linearScratch = 1
        for (e1, e2) in zip(entries, other.entries) {
            if case let (.linear(a1, g1, off1, true, _), .linear(_, _, off2, _, _)) = (e1, e2) {
                linearScratch = max(linearScratch, linearWork(off1, off2, din: a1.width, dout: g1.width))
            }
        }
        let work = Tensor(uninitializedShape: [linearScratch])
        for (e1, e2) in zip(entries, other.entries) {
            switch (e1, e2) {
            case let (.linear(a1, g1, off1, w, b), .linear(a2, g2, off2, _, _)):
                let din = a1.width, dout = g1.width
                off1.withUnsafeBufferPointer { o1 in
                    off2.withUnsafeBufferPointer { o2 in
                        if w {
                            ck_grad_dots_linear(out, Int32(ldo), work.buffer.base, a1.ptr, Int32(a1.ld), g1.ptr, Int32(g1.ld), o1.baseAddress, Int32(M1),
                                                a2.ptr, Int32(a2.ld), g2.ptr, Int32(g2.ld), o2.baseAddress, Int32(M2), Int32(din), Int32(dout), scale)
                        }
                        if b {
                            var work = Tensor(shape: [max(1, (M1 + M2) * dout)])
                            ck_grad_dots_bias(out, Int32(ldo), work.mptr, g1.ptr, Int32(g1.ld), o1.baseAddress, Int32(M1),
                                              g2.ptr, Int32(g2.ld), o2.baseAddress, Int32(M2), Int32(dout), scale)
                        }
                    }
                }
            case let (.rows(v1), .rows(v2)):
                let d = v1.shape[1]
                // out += scale * V1 V2^T
                ck_gemm(out, Int32(ldo), v1.ptr, Int32(d), v2.ptr, Int32(d), Int32(M1), Int32(M2), Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), scale, 1)
            case let (.embedding(d1, ids1, off1, _), .embedding(d2, ids2, off2, _)):
                let C = d1.width
                ids1.withUnsafeBufferPointer { i1 in ids2.withUnsafeBufferPointer { i2 in
                    off1.withUnsafeBufferPointer { o1 in off2.withUnsafeBufferPointer { o2 in
                        let n1 = off1.last! - off1[0], n2 = off2.last! - off2[0]
                        var work = Tensor(uninitializedShape: [max(1, ck_grad_dots_embedding_work_size(n1, n2, Int32(C)))])
                        var iwork = [Int32](repeating: 0, count: ck_grad_dots_embedding_iwork_size(n1, Int32(M1), n2, Int32(M2)))
                        ck_grad_dots_embedding(out, Int32(ldo), work.mptr, &iwork, d1.ptr, Int32(d1.ld), i1.baseAddress, o1.baseAddress, Int32(M1),
                                               d2.ptr, Int32(d2.ld), i2.baseAddress, o2.baseAddress, Int32(M2), Int32(C), scale)
                    } }
                } }
            default:
                preconditionFailure("addDots: factor kinds differ")
            }
        }
    }
}

/// Rows [0, rows) of a matrix stored in `storage` from element `offset` with row stride `ld` and
/// `width` columns: a packed tensor, or a view of a workspace activation when the batch has no
/// padding. A view shares the tensor's copy-on-write storage, so the workspace's next pass copies
/// the buffer only if these factors are still alive (TracIn's kept test factors), never corrupting them.
struct FactorRows {
    let storage: Tensor
    let offset: Int, ld: Int, width: Int, rows: Int

    init(packed t: Tensor) {
        storage = t
        offset = 0
        rows = t.shape[0]
        width = t.shape.count > 1 ? t.shape[1] : 1
        ld = width
    }

    init(view t: Tensor, offset: Int, ld: Int, width: Int, rows: Int) {
        precondition(rows == 0 || offset + (rows - 1) * ld + width <= t.count, "FactorRows: view beyond its tensor")
        storage = t
        self.offset = offset
        self.ld = ld
        self.width = width
        self.rows = rows
    }

    var ptr: UnsafePointer<Float> { storage.ptr + offset }

    /// The rows as a packed [rows, width] tensor (a copy for views).
    var dense: Tensor {
        if offset == 0 && ld == width && storage.count == rows * width { return storage }
        let out = Tensor(uninitializedShape: [rows, width])
        for r in 0..<rows { (out.buffer.base + r * width).update(from: ptr + r * ld, count: width) }
        return out
    }
}

/// Packs the real rows of a padded [B*T, d] matrix (row stride ld) into [rows, d], examples split
/// across cores.
func packRows(_ src: UnsafePointer<Float>, ld: Int, width d: Int, batch: Batch, lengths: [Int]) -> Tensor {
    var starts = [0]
    for l in lengths { starts.append(starts.last! + l) }
    let out = Tensor(uninitializedShape: [starts.last!, d])
    let dst = out.buffer.base, T = batch.length
    Parallel.rows(batch.size, width: T * d) { _, r in
        for b in r {
            for t in 0..<lengths[b] {
                (dst + (starts[b] + t) * d).update(from: src + (b * T + t) * ld, count: d)
            }
        }
    }
    return out
}

extension BertClassifier {
    /// The per-example gradient pass of the scores (GraNd, TracIn, self-influence): a forward whose last
    /// layer runs after its attention on the [CLS] rows only (nothing else reaches the loss), then
    /// `backwardPerExampleLosses`. `gradientFactors` then reads that layer's dense parts from one row
    /// per example; norms and dot products equal those after a full forward, to rounding.
    func perExampleLossBackward(_ batch: Batch) {
        forward(batch, clsOnly: true)
        backwardPerExampleLosses(batch)
    }

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
            f.entries.append(.linear(a: FactorRows(packed: A), g: FactorRows(packed: G), offsets: single, weight: w, bias: b))
        }
        let xL = encoder.layers.isEmpty ? ws.x0.ptr : ws.layers[encoder.layers.count - 1].out.ptr
        oneRow(encoder.pooler!, a: xL, lda: encoder.layers.isEmpty ? T * C : ws.clsRowStride, g: ws.dPooledPre.ptr, ldg: C)
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
    /// After a forward that ran the last layer's dense parts on the [CLS] rows only (`clsOnly`), those
    /// parts' factors are those B rows, one per example (the other rows do not reach the loss).
    func addFactors(into f: inout GradientFactors, workspace ws: BertWorkspace, batch: Batch, lengths: [Int], offsets: [Int32],
                    want: (Int) -> Bool) {
        let c = config
        let B = batch.size, T = batch.length, C = c.hiddenSize, I = c.intermediateSize
        // Without padding the groups' rows are contiguous in the workspace: views, no copies.
        let views = lengths.allSatisfy { $0 == T }
        func rows(_ t: Tensor, col: Int = 0, ld: Int, width: Int) -> FactorRows {
            views ? FactorRows(view: t, offset: col, ld: ld, width: width, rows: B * T)
                : FactorRows(packed: packRows(t.ptr + col, ld: ld, width: width, batch: batch, lengths: lengths))
        }
        // The [CLS]-row factors of a clsOnly forward's last layer: row b of each buffer (stride ld) is example b's.
        let compact = ws.clsRowStride == C && T > 1 && !layers.isEmpty
        precondition(!compact || offsets.count == B + 1, "addFactors: a clsOnly forward's factors are per example")
        let single = (0...B).map { Int32($0) }
        func clsRows(_ t: Tensor, col: Int = 0, ld: Int, width: Int) -> FactorRows {
            FactorRows(view: t, offset: col, ld: ld, width: width, rows: B)
        }
        func linear(_ lin: Linear, a: Tensor, g: Tensor, gCol: Int = 0, ldg: Int, cls: Bool = false, lda: Int? = nil) {
            let w = want(lin.weight), b = want(lin.bias)
            guard w || b else { return }
            if cls {
                f.entries.append(.linear(a: clsRows(a, ld: lda ?? lin.inDim, width: lin.inDim), g: clsRows(g, col: gCol, ld: ldg, width: lin.outDim),
                                         offsets: single, weight: w, bias: b))
            } else {
                f.entries.append(.linear(a: rows(a, ld: lin.inDim, width: lin.inDim), g: rows(g, col: gCol, ld: ldg, width: lin.outDim),
                                         offsets: offsets, weight: w, bias: b))
            }
        }
        func layerNorm(_ ln: LayerNorm, dout: Tensor, inp: Tensor, mean: Tensor, rstd: Tensor, cls: Bool = false) {
            let w = want(ln.weight), b = want(ln.bias)
            guard w || b else { return }
            let pick = { (t: Tensor, ld: Int, width: Int) in cls ? clsRows(t, ld: ld, width: width) : rows(t, ld: ld, width: width) }
            let D = pick(dout, C, C), X = pick(inp, C, C), Mu = pick(mean, 1, 1), R = pick(rstd, 1, 1)
            let off = cls ? single : offsets
            let M = off.count - 1      // groups
            var dw = Tensor(shape: [M, C]), db = Tensor(shape: [M, C])
            off.withUnsafeBufferPointer { o in
                ck_layernorm_example_grads(dw.mptr, db.mptr, D.ptr, X.ptr, Mu.ptr, R.ptr, o.baseAddress, Int32(M), Int32(C))
            }
            if w { f.entries.append(.rows(dw)) }
            if b { f.entries.append(.rows(db)) }
        }
        // Embeddings (their gradient is d/d(inputs_embeds) for all three tables), packed at most once.
        var embeddingRows: FactorRows?
        func embedding(_ idx: Int, ids: [Int32]) {
            guard want(idx) else { return }
            if embeddingRows == nil { embeddingRows = rows(ws.dInputsEmbeds, ld: C, width: C) }
            var packedIDs: [Int32] = []
            if views { packedIDs = Array(ids.prefix(B * T)) } else {
                for b in 0..<B { packedIDs += ids[(b * T)..<(b * T + lengths[b])] }
            }
            f.entries.append(.embedding(d: embeddingRows!, ids: packedIDs, offsets: offsets, tableRows: tableRows(idx)))
        }
        embedding(wordEmbeddings, ids: ws.ids)
        embedding(positionEmbeddings, ids: ws.positions)
        embedding(tokenTypeEmbeddings, ids: ws.types)
        layerNorm(embeddingNorm, dout: ws.dELN, inp: ws.eSum, mean: ws.mean0, rstd: ws.rstd0)
        for (li, layer) in layers.enumerated() {
            let a = ws.layers[li]
            let x = li == 0 ? ws.x0 : ws.layers[li - 1].out
            let q = layer.query, k = layer.key, v = layer.value
            if want(q.weight) == want(k.weight) && want(q.weight) == want(v.weight)
                && want(q.bias) == want(k.bias) && want(q.bias) == want(v.bias) {
                // Q, K and V share their input: as one linear layer of 3C outputs (weights stacked),
                // whose gradient norm and dot products are the sums of the three, A A^T is formed once.
                let w = want(q.weight), b = want(q.bias)
                if w || b {
                    f.entries.append(.linear(a: rows(x, ld: C, width: C), g: rows(a.dqkv, ld: 3 * C, width: 3 * C),
                                             offsets: offsets, weight: w, bias: b))
                }
            } else {
                linear(q, a: x, g: a.dqkv, ldg: 3 * C)
                linear(k, a: x, g: a.dqkv, gCol: C, ldg: 3 * C)
                linear(v, a: x, g: a.dqkv, gCol: 2 * C, ldg: 3 * C)
            }
            // The attention output rows are full even after a clsOnly forward: its [CLS] rows are every T-th.
            let cls = compact && li == layers.count - 1
            linear(layer.attentionOutput, a: a.attnOut, g: a.dproj, ldg: C, cls: cls, lda: T * C)
            layerNorm(layer.attentionNorm, dout: a.dh1, inp: a.r1, mean: a.mean1, rstd: a.rstd1, cls: cls)
            linear(layer.intermediate, a: a.h1, g: a.dInterPre, ldg: I, cls: cls)
            linear(layer.output, a: a.inter, g: a.dOut2, ldg: C, cls: cls)
            layerNorm(layer.outputNorm, dout: a.dOut, inp: a.r2, mean: a.mean2, rstd: a.rstd2, cls: cls)
        }
    }
}
