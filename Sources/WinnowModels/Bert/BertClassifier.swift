import CKernels
import Foundation
import WinnowCore
import WinnowData

/// Hugging Face `BertForSequenceClassification` with a hand-written backward pass.
///
///     let model = try BertClassifier(folder: modelURL)               // reads config.json + model.safetensors
///     let logits = model.logits(batch)                               // inference mode, every hidden state kept
///     let fast = model.classLogits(batch)                            // the same logits; last layer on [CLS] rows only
public final class BertClassifier: @unchecked Sendable {
    /// The model's configuration (config.json), labels included.
    public internal(set) var config: BertConfig
    /// Parameters under their Hugging Face names (`bert.…`, `classifier.…`).
    public var parameters: ParameterStore
    var encoder: BertEncoder
    /// HF head: one Linear. Paper head: three Linears with GELU between.
    let head: [Linear]
    package let workspace = BertWorkspace()
    /// The LoRA adapter, if any (`addLoRA`, `loadAdapter`).
    package var loraState: BertLoRA?
    /// The folder the model was read from (`init(folder:)`), nil for a fresh model: an adapter's base
    /// when its `LoRAConfig.baseModel` names none.
    public internal(set) var sourceFolder: URL?

    /// Number of classes.
    public var numLabels: Int { config.labels.count }

    /// A freshly initialised model (Hugging Face's initialisation) from `seed`.
    public init(config: BertConfig, seed: UInt64) {
        precondition(!config.labels.isEmpty, "BertClassifier needs at least one label")
        self.config = config
        var store = ParameterStore()
        encoder = BertEncoder(config: config, store: &store, prefix: "bert.")
        let C = config.hiddenSize, L = config.labels.count
        switch config.head {
        case .huggingFace:
            head = [Linear(&store, "classifier", in: C, out: L)]
        case .paper:
            head = [Linear(&store, "classifier.0", in: C, out: 64), Linear(&store, "classifier.2", in: 64, out: 64),
                    Linear(&store, "classifier.4", in: 64, out: L)]
        }
        var rng = SeededGenerator(seed: seed, stream: "init")
        encoder.initialize(&store, rng: &rng)
        for lin in head {
            store[lin.weight].withUnsafeMutableBufferPointer { b in
                for j in b.indices { b[j] = Float(rng.nextNormal() * Double(config.initializerRange)) }
            }
        }
        parameters = store
    }

    var headWidths: [Int] { head.dropLast().map(\.outDim) }

    // MARK: - Forward

    /// Runs the forward pass, saving activations in the workspace. `training` turns dropout on, with
    /// masks drawn from `seed`. `keepForBackward` false (inference) skips what only a backward reads
    /// (attention probabilities, GELU inputs); `clsOnly` (inference) also runs the last layer after its
    /// attention on the [CLS] rows alone, so its other hidden states are not computed. Returns logits [B, L].
    @discardableResult
    package func forward(_ batch: Batch, training: Bool = false, seed: UInt64 = 0, keepForBackward: Bool = true,
                 clsOnly: Bool = false) -> Tensor {
        if loraState != nil { mergeLoRA() }
        let c = config, p = parameters, ws = workspace
        let B = batch.size, T = batch.length, C = c.hiddenSize
        precondition(T <= c.maxPositionEmbeddings, "sequence length \(T) exceeds max_position_embeddings \(c.maxPositionEmbeddings)")
        ws.prepare(B: B, T: T, config: c, headWidths: headWidths, labels: numLabels)
        let pCls: Float = training ? (c.classifierDropout ?? c.hiddenDropoutProb) : 0
        encoder.forward(p, ws, batch, training: training, seed: seed, causal: c.isDecoder, keep: keepForBackward,
                        clsOnly: clsOnly)
        // Pooler on the [CLS] row of each sequence: row stride T*C selects position 0 without a copy
        // (C after a clsOnly forward, whose last layer kept only those rows).
        let xL = encoder.layers.isEmpty ? ws.x0.ptr : ws.layers[encoder.layers.count - 1].out.ptr
        encoder.pooler!.forward(p, out: ws.pooledPre.mptr, ldOut: C, inp: xL, ldInp: encoder.layers.isEmpty ? T * C : ws.clsRowStride,
                                rows: B)
        ck_tanh_forward(ws.pooled.mptr, ws.pooledPre.ptr, B * C)
        ws.pooledDrop.mptr.update(from: ws.pooled.ptr, count: B * C)
        Dropout.forward(ws.pooledDrop.mptr, count: B * C, p: pCls, seed: siteSeed(seed, 1_000_001))
        // Head.
        var inp = ws.pooledDrop.ptr
        for (hi, lin) in head.enumerated() {
            if hi == head.count - 1 {
                lin.forward(p, out: ws.logits.mptr, ldOut: numLabels, inp: inp, ldInp: lin.inDim, rows: B)
            } else {
                lin.forward(p, out: ws.headPre[hi].mptr, ldOut: lin.outDim, inp: inp, ldInp: lin.inDim, rows: B)
                ck_gelu_forward(ws.headAct[hi].mptr, ws.headPre[hi].ptr, B * lin.outDim)
                inp = ws.headAct[hi].ptr
            }
        }
        return ws.logits
    }

    /// Logits [B, L] in inference mode (no dropout, nothing kept for a backward); every layer's hidden
    /// states stay in the workspace.
    public func logits(_ batch: Batch) -> Tensor { forward(batch, training: false, keepForBackward: false) }

    /// Logits [B, L] in inference mode, the last layer after its attention run on the [CLS] rows only
    /// (what prediction and the forward-only scores need; the same logits as `logits` to rounding).
    public func classLogits(_ batch: Batch) -> Tensor {
        forward(batch, training: false, keepForBackward: false, clsOnly: true)
    }

    /// Pooled [CLS] vectors [B, C] of the last forward pass.
    package var lastPooled: Tensor { workspace.pooled }

    /// Per-example cross-entropy of the last forward (labels < 0 give 0); fills probabilities too.
    package func crossEntropy(_ batch: Batch) -> (losses: Tensor, probs: Tensor) {
        let ws = workspace
        batch.labels.withUnsafeBufferPointer { y in
            ck_softmax_xent_forward(ws.losses.mptr, ws.probs.mptr, ws.logits.ptr, y.baseAddress, Int32(batch.size), Int32(numLabels))
        }
        return (ws.losses, ws.probs)
    }

    // MARK: - Backward

    /// Back-propagates `dlogits` [B, L] through the last forward pass (same `training`/`seed`).
    /// Accumulates parameter gradients into `grads` when given; always leaves d/d(inputs_embeds) in the
    /// workspace (`inputsEmbedsGrad`) and each layer's output gradients.
    package func backward(dlogits: Tensor, grads: inout ParameterStore?, training: Bool = false, seed: UInt64 = 0,
                  embeddingGrads: Bool = true) {
        let c = config, p = parameters, ws = workspace
        let B = ws.B, T = ws.T, N = B * T, C = c.hiddenSize
        precondition(dlogits.shape == [B, numLabels], "backward: dlogits \(dlogits.shape) vs logits \([B, numLabels])")
        let pCls: Float = training ? (c.classifierDropout ?? c.hiddenDropoutProb) : 0
        // Head. The incoming gradient is kept in the workspace (per-example gradient scores read it).
        ws.dlogits.mptr.update(from: dlogits.ptr, count: B * numLabels)
        var dout = ws.dlogits.ptr
        for hi in stride(from: head.count - 1, through: 0, by: -1) {
            let lin = head[hi]
            let inp = hi == 0 ? ws.pooledDrop.ptr : ws.headAct[hi - 1].ptr
            let dinp: UnsafeMutablePointer<Float>
            if hi == 0 { ws.dPooledDrop.zero(); dinp = ws.dPooledDrop.mptr } else { ws.dHeadAct[hi - 1].zero(); dinp = ws.dHeadAct[hi - 1].mptr }
            lin.backward(p, grads: &grads, dinp: dinp, ldDinp: lin.inDim, dout: dout, ldDout: lin.outDim, inp: inp, ldInp: lin.inDim, rows: B)
            if hi > 0 {
                ws.dHeadPre[hi - 1].zero()
                ck_gelu_backward(ws.dHeadPre[hi - 1].mptr, ws.dHeadAct[hi - 1].ptr, ws.headPre[hi - 1].ptr, B * lin.inDim)
                dout = ws.dHeadPre[hi - 1].ptr
            }
        }
        // Pooler.
        ws.dPooled.zero()
        Dropout.backward(dinp: ws.dPooled.mptr, dout: ws.dPooledDrop.ptr, count: B * C, p: pCls, seed: siteSeed(seed, 1_000_001))
        ws.dPooledPre.zero()
        ck_tanh_backward(ws.dPooledPre.mptr, ws.dPooled.ptr, ws.pooled.ptr, B * C)
        // d(output of layer l) lives in layers[l].dOut; d(input of layer 0) in ws.dX.
        let Lyr = encoder.layers.count
        let xL = Lyr == 0 ? ws.x0.ptr : ws.layers[Lyr - 1].out.ptr
        let dTop = Lyr == 0 ? ws.dX.mptr : ws.layers[Lyr - 1].dOut.mptr
        // After a clsOnly forward the last layer holds only the B [CLS] rows (stride C), and so does its gradient.
        let rs = Lyr == 0 ? T * C : ws.clsRowStride
        dTop.update(repeating: 0, count: rs == C ? B * C : N * C)
        encoder.pooler!.backward(p, grads: &grads, dinp: dTop, ldDinp: rs, dout: ws.dPooledPre.ptr, ldDout: C,
                                 inp: xL, ldInp: rs, rows: B)
        encoder.backward(p, ws, grads: &grads, training: training, seed: seed, embeddingGrads: embeddingGrads)
    }

    /// d/d(inputs_embeds) [B, T, C] from the last backward.
    package var inputsEmbedsGrad: Tensor { workspace.dInputsEmbeds.reshaped([workspace.B, workspace.T, config.hiddenSize]) }

    /// Mean cross-entropy and its parameter gradients on `batch` (accumulated into `grads`).
    /// Returns the mean loss over examples with a label.
    @discardableResult
    public func lossAndGradients(_ batch: Batch, grads: inout ParameterStore, training: Bool = false, seed: UInt64 = 0,
                                 weights: [Float]? = nil) -> Double {
        // Only the [CLS] rows of the last layer reach the loss: its dense parts run on those rows alone.
        forward(batch, training: training, seed: seed, clsOnly: true)
        let (losses, _) = crossEntropy(batch)
        let labelled = batch.labels.filter { $0 >= 0 }.count
        var dl = [Float](repeating: labelled > 0 ? 1 / Float(labelled) : 0, count: batch.size)
        if let weights { dl = weights }
        var dlogits = Tensor(shape: [batch.size, numLabels])
        dl.withUnsafeBufferPointer { w in
            batch.labels.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dlogits.mptr, w.baseAddress, workspace.probs.ptr, y.baseAddress, Int32(batch.size), Int32(numLabels))
            }
        }
        var g: ParameterStore? = grads
        grads = ParameterStore()     // drop the second reference so the kernels write in place
        backward(dlogits: dlogits, grads: &g, training: training, seed: seed)
        grads = g!
        if loraState != nil { projectLoRAGradients(&grads) }
        var total = 0.0
        for b in 0..<batch.size where batch.labels[b] >= 0 { total += Double(losses[b]) }
        return labelled > 0 ? total / Double(labelled) : 0
    }
}

/// Seed of one dropout site (embeddings, a layer's attention/projection/output, the pooler) in one step.
@inline(__always)
func siteSeed(_ seed: UInt64, _ site: Int) -> UInt64 {
    SeededGenerator.mix(seed &+ SeededGenerator.mix(UInt64(site) &+ 0x5EED))
}

extension BertClassifier {
    /// Sets hidden and attention-probability dropout (e.g. to fine-tune a pretrained encoder differently).
    package func setDropout(_ p: Float) {
        config.hiddenDropoutProb = p
        config.attentionProbsDropoutProb = p
        // The encoder reads its own copy of the configuration.
        encoder.config.hiddenDropoutProb = p
        encoder.config.attentionProbsDropoutProb = p
    }
}
