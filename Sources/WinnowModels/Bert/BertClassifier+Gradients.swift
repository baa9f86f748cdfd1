import CKernels
import Foundation
import WinnowCore
import WinnowData

extension BertClassifier {
    /// The per-example gradient pass of the scores (GraNd, TracIn, self-influence): a forward whose last
    /// layer runs after its attention on the [CLS] rows only (nothing else reaches the loss), then
    /// `backwardPerExampleLosses`. `gradientFactors` then reads that layer's dense parts from one row
    /// per example; norms and dot products equal those after a full forward, to rounding.
    public func perExampleLossBackward(_ batch: Batch) {
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
    public func gradientFactors(_ batch: Batch, selection: ParameterSelection?, space: GradientSpace = .params) -> GradientFactors {
        let lastHidden = space == .lastHidden
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
        encoder.addFactors(into: &f, workspace: ws, batch: batch, lengths: lengths, offsets: offsets, want: want,
                           lora: loraState, parameters: parameters)
        // Pooler and head see one row per example.
        func oneRow(_ lin: Linear, a: UnsafePointer<Float>, lda: Int, g: UnsafePointer<Float>, ldg: Int) {
            let w = want(lin.weight), b = want(lin.bias)
            let adapted = loraState?.module(weight: lin.weight)
            let wantA = adapted.map { want($0.a) } ?? false, wantB = adapted.map { want($0.b) } ?? false
            guard w || b || wantA || wantB else { return }
            var A = Tensor(shape: [B, lin.inDim]), G = Tensor(shape: [B, lin.outDim])
            for r in 0..<B {
                (A.mptr + r * lin.inDim).update(from: a + r * lda, count: lin.inDim)
                (G.mptr + r * lin.outDim).update(from: g + r * ldg, count: lin.outDim)
            }
            if w || b { f.entries.append(.linear(a: FactorRows(packed: A), g: FactorRows(packed: G), offsets: single, weight: w, bias: b)) }
            if let m = adapted, wantA || wantB {
                f.appendLoRA(x: FactorRows(packed: A), g: FactorRows(packed: G), offsets: single, a: parameters[m.a], b: parameters[m.b],
                             scale: loraState!.config.scale, wantA: wantA, wantB: wantB)
            }
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

extension BertClassifier {
    /// VoG's gradient: d z_{targets[b]} / d inputs_embeds on the real tokens, packed [tokens, C]. Only the
    /// [CLS] rows of the last layer reach z, so the forward runs its dense parts on those rows alone.
    public func inputEmbeddingGradients(_ batch: Batch, targets: [Int32]) -> Tensor {
        let C = config.hiddenSize, L = numLabels
        forward(batch, clsOnly: true)
        var dlogits = Tensor(shape: [batch.size, L])
        for b in 0..<batch.size { dlogits[b, Int(targets[b])] = 1 }
        var none: ParameterStore? = nil
        backward(dlogits: dlogits, grads: &none)
        let lengths = (0..<batch.size).map { batch.realLength($0) }
        return packRows(workspace.dInputsEmbeds.ptr, ld: C, width: C, batch: batch, lengths: lengths)
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
                    want: (Int) -> Bool, lora: BertLoRA? = nil, parameters p: ParameterStore? = nil) {
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
        // A LoRA adapter's A and B on a layer: two small linear layers of the layer's rows.
        func adapter(_ lin: Linear) -> (BertLoRA.Module, Bool, Bool)? {
            guard let m = lora?.module(weight: lin.weight) else { return nil }
            let wa = want(m.a), wb = want(m.b)
            return wa || wb ? (m, wa, wb) : nil
        }
        func linear(_ lin: Linear, a: Tensor, g: Tensor, gCol: Int = 0, ldg: Int, cls: Bool = false, lda: Int? = nil) {
            let w = want(lin.weight), b = want(lin.bias)
            let ad = adapter(lin)
            guard w || b || ad != nil else { return }
            let x = cls ? clsRows(a, ld: lda ?? lin.inDim, width: lin.inDim) : rows(a, ld: lin.inDim, width: lin.inDim)
            let gr = cls ? clsRows(g, col: gCol, ld: ldg, width: lin.outDim) : rows(g, col: gCol, ld: ldg, width: lin.outDim)
            let off = cls ? single : offsets
            if w || b { f.entries.append(.linear(a: x, g: gr, offsets: off, weight: w, bias: b)) }
            if let (m, wa, wb) = ad {
                f.appendLoRA(x: x, g: gr, offsets: off, a: p![m.a], b: p![m.b], scale: lora!.config.scale, wantA: wa, wantB: wb)
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
            let dwp = dw.mptr, dbp = db.mptr
            off.withUnsafeBufferPointer { o in      // examples split across cores (offsets are absolute rows)
                Parallel.ranges(M) { _, r in
                    ck_layernorm_example_grads(dwp + r.lowerBound * C, dbp + r.lowerBound * C, D.ptr, X.ptr, Mu.ptr, R.ptr,
                                               o.baseAddress! + r.lowerBound, Int32(r.count), Int32(C))
                }
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
                let adapted = [(q, 0), (k, C), (v, 2 * C)].compactMap { lin, col in adapter(lin).map { ($0, col) } }
                let xr = w || b || !adapted.isEmpty ? rows(x, ld: C, width: C) : nil
                if w || b {
                    f.entries.append(.linear(a: xr!, g: rows(a.dqkv, ld: 3 * C, width: 3 * C),
                                             offsets: offsets, weight: w, bias: b))
                }
                for ((m, wa, wb), col) in adapted {
                    f.appendLoRA(x: xr!, g: rows(a.dqkv, col: col, ld: 3 * C, width: C), offsets: offsets, a: p![m.a], b: p![m.b],
                                 scale: lora!.config.scale, wantA: wa, wantB: wb)
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
