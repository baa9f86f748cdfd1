import CKernels
import Foundation
import WinnowCore
import WinnowData

/// A decoder classifier scores as a BERT one does: EL2N, loss and margin from its logits, GraNd and
/// TracIn from Gram factors of each example's cross-entropy (the decoder's layers as for the causal LM,
/// the `score` head on each sequence's pooled row), VoG from d z_y / d inputs_embeds, and forgetting,
/// AUM and cartography from the dynamics its training records.
extension LlamaForSequenceClassification: SequenceClassifier {
    /// Layer count and widths from the config.
    public var dimensions: ModelDimensions {
        ModelDimensions(layers: config.numHiddenLayers, hidden: config.hiddenSize, intermediate: config.intermediateSize,
                        heads: config.numAttentionHeads, vocabulary: config.vocabSize, maxPositions: config.maxPositionEmbeddings)
    }

    /// Layers `model.layers.<i>.`, embeddings `model.embed_tokens.`, head `score.`.
    public var parameterLayout: ParameterLayout {
        ParameterLayout(names: parameters.names, layerPrefixes: (0..<config.numHiddenLayers).map { "model.layers.\($0)." },
                        embeddingPrefixes: ["model.embed_tokens."], headPrefixes: ["score."])
    }

    /// The pooled rows [B, C] of the last forward (the score head's input).
    func pooledHidden(_ B: Int) -> Tensor {
        let C = config.hiddenSize
        var pooled = Tensor(uninitializedShape: [B, C])
        for (b, r) in pooledRows.enumerated() { (pooled.mptr + b * C).update(from: workspace.hidden.ptr + r * C, count: C) }
        return pooled
    }

    /// Back-propagates d(sum over b of dlogits[b] . z_b) from the last forward, data gradients only; with
    /// `perExample` the per-example norm-weight gradients are kept for the factors.
    func backwardFromLogits(_ batch: Batch, dlogits: Tensor, perExample: Bool) {
        let B = batch.size, C = config.hiddenSize, L = config.labels.count, N = B * batch.length
        let ws = workspace
        ws.lengths = (0..<B).map { batch.realLength($0) }
        ws.perExample = perExample
        let pooled = pooledHidden(B)
        lastPooledGradient.resize([B, C])
        lastPooledGradient.mptr.update(repeating: 0, count: B * C)
        ck_linear_backward(lastPooledGradient.mptr, Int32(C), nil, nil, dlogits.ptr, Int32(L), pooled.ptr, Int32(C), parameters[score].ptr,
                           Int32(B), Int32(C), Int32(L))
        ws.dHidden.mptr.update(repeating: 0, count: N * C)
        for (b, r) in pooledRows.enumerated() { (ws.dHidden.mptr + r * C).update(from: lastPooledGradient.ptr + b * C, count: C) }
        var none: ParameterStore? = nil
        decoder.backward(parameters, ws, grads: &none)
        ws.perExample = false
        lastDlogits = dlogits
    }

    /// A forward and a data-only backward of the sum of the examples' cross-entropies, keeping every factor.
    public func perExampleLossBackward(_ batch: Batch) {
        logits(batch)
        let B = batch.size, L = config.labels.count
        lastProbabilities.resize([B, L]); lastLosses.resize([B])
        batch.labels.withUnsafeBufferPointer { y in
            ck_softmax_xent_forward(lastLosses.mptr, lastProbabilities.mptr, lastLogits.ptr, y.baseAddress, Int32(B), Int32(L))
        }
        var dlogits = Tensor(shape: [B, L])
        let ones = [Float](repeating: 1, count: B)
        ones.withUnsafeBufferPointer { w in
            batch.labels.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dlogits.mptr, w.baseAddress, lastProbabilities.ptr, y.baseAddress, Int32(B), Int32(L))
            }
        }
        backwardFromLogits(batch, dlogits: dlogits, perExample: true)
    }

    /// Gram factors of the selected tensors (decoder layers, RMSNorm weights, embeddings, the score
    /// head) after `perExampleLossBackward`, or the gradient of each example's pooled row (`lastHidden`).
    public func gradientFactors(_ batch: Batch, selection: ParameterSelection?, space: GradientSpace) -> GradientFactors {
        let B = batch.size, T = batch.length, C = config.hiddenSize
        var f = GradientFactors(count: B)
        if space == .lastHidden {
            f.entries.append(.rows(Tensor(shape: [B, C], copying: lastPooledGradient.ptr)))
            return f
        }
        guard let sel = selection else { return f }
        let ws = workspace, names = parameters.names
        func want(_ idx: Int?) -> Bool { idx.map { sel.contains(names[$0]) } ?? false }
        var offsets: [Int32] = [0]
        for l in ws.lengths { offsets.append(offsets.last! + Int32(l)) }
        decoder.addLayerFactors(into: &f, parameters, ws, batch: batch, offsets: offsets, perGroup: { $0 }, want: want)
        if want(decoder.norm) { f.entries.append(.rows(ws.gFinal)) }
        if want(decoder.embed) {
            let views = ws.lengths.allSatisfy { $0 == T }
            let d = views ? FactorRows(view: ws.dInputsEmbeds, offset: 0, ld: C, width: C, rows: B * T)
                : FactorRows(packed: packRows(ws.dInputsEmbeds.ptr, ld: C, width: C, batch: batch, lengths: ws.lengths))
            var ids: [Int32] = []
            if views { ids = Array(ws.ids.prefix(B * T)) } else { for b in 0..<B { ids += ws.ids[(b * T)..<(b * T + ws.lengths[b])] } }
            f.entries.append(.embedding(d: d, ids: ids, offsets: offsets, tableRows: config.vocabSize))
        }
        if want(score) {
            f.entries.append(.linear(a: FactorRows(packed: pooledHidden(B)), g: FactorRows(packed: lastDlogits), offsets: (0...B).map { Int32($0) },
                                     weight: true, bias: false))
        }
        return f
    }

    /// d z_{targets[b]} / d inputs_embeds on the real tokens of each example, packed [tokens, C].
    public func inputEmbeddingGradients(_ batch: Batch, targets: [Int32]) -> Tensor {
        logits(batch)
        let B = batch.size, L = config.labels.count
        var dlogits = Tensor(shape: [B, L])
        for b in 0..<B { dlogits[b, Int(targets[b])] = 1 }
        backwardFromLogits(batch, dlogits: dlogits, perExample: false)
        return packRows(workspace.dInputsEmbeds.ptr, ld: config.hiddenSize, width: config.hiddenSize, batch: batch, lengths: workspace.lengths)
    }
}
