import CKernels
import Foundation
import WinnowCore
import WinnowData

/// Hugging Face `BertForMaskedLM` (objective mlm) or `BertLMHeadModel` (objective causal: causal
/// self-attention, `is_decoder`), with the same tensor names: `bert.*` (no pooler) and
/// `cls.predictions.transform.dense.*`, `cls.predictions.transform.LayerNorm.*`, `cls.predictions.bias`;
/// the decoder weight is tied to `bert.embeddings.word_embeddings.weight` and not stored.
///
/// Loss: the mean over samples (that have targets) of each sample's mean token cross-entropy.
/// Logits are computed only on rows with a target (all rows in `logitsAllRows`).
public final class BertLanguageModel: LanguageModel, @unchecked Sendable {
    /// The training objective: `mlm` (masked) or `causal`.
    public typealias Objective = LMObjective

    /// The model's configuration (config.json); `isDecoder` follows the objective.
    public internal(set) var config: BertConfig
    /// Parameters under their Hugging Face names (`bert.…`, `cls.predictions.…`); the decoder weight is tied to
    /// `bert.embeddings.word_embeddings.weight` and not stored.
    public var parameters: ParameterStore
    /// Masked or causal language modelling, fixed at creation.
    public let objective: Objective
    /// Rows of the word embedding table (`vocab_size`).
    public var vocabularySize: Int { config.vocabSize }
    /// The position table's length (`max_position_embeddings`).
    public var maxSequenceLength: Int { config.maxPositionEmbeddings }
    let encoder: BertEncoder
    let transform: Linear
    let transformNorm: LayerNorm
    let decoderBias: Int
    let workspace = BertWorkspace()
    // Head workspace: R target rows.
    var rows: [Int] = [], rowTargets: [Int32] = [], rowSample: [Int] = []
    var hL = Tensor(shape: [0]), tPre = Tensor(shape: [0]), tAct = Tensor(shape: [0]), tOut = Tensor(shape: [0])
    var tMean = Tensor(shape: [0]), tRstd = Tensor(shape: [0])
    var logits = Tensor(shape: [0]), probs = Tensor(shape: [0]), rowLosses = Tensor(shape: [0])
    var dlogits = Tensor(shape: [0]), dtOut = Tensor(shape: [0]), dtAct = Tensor(shape: [0]), dtPre = Tensor(shape: [0]), dhL = Tensor(shape: [0])
    /// Per-sample mean token loss of the last forward (0 for samples without targets).
    public private(set) var sampleLosses: [Double] = []
    /// Number of target tokens per sample in the last forward.
    public private(set) var sampleTargets: [Int] = []

    /// The `architectures` name of each objective in config.json.
    public static let architectures: [Objective: String] = [.mlm: "BertForMaskedLM", .causal: "BertLMHeadModel"]

    /// A freshly initialised model (Hugging Face's initialisation) from `seed`. The config's labels are dropped
    /// and `isDecoder` is set for the causal objective.
    public init(config: BertConfig, objective: Objective, seed: UInt64) {
        var c = config
        c.isDecoder = objective == .causal
        c.labels = []
        self.config = c
        self.objective = objective
        var store = ParameterStore()
        encoder = BertEncoder(config: c, store: &store, prefix: "bert.", pooler: false)
        transform = Linear(&store, "cls.predictions.transform.dense", in: c.hiddenSize, out: c.hiddenSize)
        transformNorm = LayerNorm(&store, "cls.predictions.transform.LayerNorm", dim: c.hiddenSize, eps: c.layerNormEps)
        decoderBias = store.add("cls.predictions.bias", Tensor(shape: [c.vocabSize]))
        var rng = SeededGenerator(seed: seed, stream: "init")
        encoder.initialize(&store, rng: &rng)
        store[transform.weight].withUnsafeMutableBufferPointer { b in
            for j in b.indices { b[j] = Float(rng.nextNormal() * Double(c.initializerRange)) }
        }
        parameters = store
    }

    var wordEmbeddings: Int { encoder.wordEmbeddings }

    /// Layers `bert.encoder.layer.<i>.`, embeddings `bert.embeddings.`, head `cls.`.
    public var parameterLayout: ParameterLayout {
        ParameterLayout(names: parameters.names, layerPrefixes: (0..<config.numHiddenLayers).map { "bert.encoder.layer.\($0)." },
                        embeddingPrefixes: ["bert.embeddings."], headPrefixes: ["cls."])
    }

    // MARK: - Forward

    /// Forward pass: encoder (causal for the causal objective), then the prediction head on the rows with
    /// a target. Returns the mean over samples of their mean token loss.
    @discardableResult
    public func forward(_ lb: LMBatch, training: Bool = false, seed: UInt64 = 0) -> Double {
        let batch = lb.batch
        let B = batch.size, T = batch.length, C = config.hiddenSize
        precondition(T <= config.maxPositionEmbeddings, "sequence length \(T) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        workspace.prepare(B: B, T: T, config: config, headWidths: [], labels: 1)
        encoder.forward(parameters, workspace, batch, training: training, seed: seed, causal: objective == .causal)
        rows = []; rowTargets = []; rowSample = []
        for (r, t) in lb.targets.enumerated() where t >= 0 { rows.append(r); rowTargets.append(t); rowSample.append(r / T) }
        head(top: encoder.top(workspace), rows: rows)
        let R = rows.count, V = config.vocabSize
        rowLosses.resize([max(1, R)])
        rowTargets.withUnsafeBufferPointer { y in
            ck_softmax_xent_forward(rowLosses.mptr, probs.mptr, logits.ptr, y.baseAddress, Int32(R), Int32(V))
        }
        sampleLosses = [Double](repeating: 0, count: B)
        sampleTargets = [Int](repeating: 0, count: B)
        for i in 0..<R { sampleLosses[rowSample[i]] += Double(rowLosses[i]); sampleTargets[rowSample[i]] += 1 }
        var total = 0.0, n = 0
        for b in 0..<B where sampleTargets[b] > 0 {
            sampleLosses[b] /= Double(sampleTargets[b])
            total += sampleLosses[b]; n += 1
        }
        _ = C
        return n > 0 ? total / Double(n) : 0
    }

    /// Prediction head on the given rows of `top` [B*T, C]: dense, GELU, LayerNorm, tied decoder + bias.
    func head(top: UnsafePointer<Float>, rows rs: [Int]) {
        let C = config.hiddenSize, V = config.vocabSize, R = rs.count
        for t in [\BertLanguageModel.hL, \.tPre, \.tAct, \.tOut, \.dtOut, \.dtAct, \.dtPre, \.dhL] { self[keyPath: t].resize([max(1, R), C]) }
        tMean.resize([max(1, R)]); tRstd.resize([max(1, R)])
        for t in [\BertLanguageModel.logits, \.probs, \.dlogits] { self[keyPath: t].resize([max(1, R), V]) }
        let h = hL.mptr
        for (i, r) in rs.enumerated() { (h + i * C).update(from: top + r * C, count: C) }
        let p = parameters
        transform.forward(p, out: tPre.mptr, ldOut: C, inp: hL.ptr, ldInp: C, rows: R)
        ck_gelu_forward(tAct.mptr, tPre.ptr, R * C)
        transformNorm.forward(p, out: tOut.mptr, mean: tMean.mptr, rstd: tRstd.mptr, inp: tAct.ptr, rows: R)
        ck_linear_forward(logits.mptr, Int32(V), tOut.ptr, Int32(C), p[wordEmbeddings].ptr, p[decoderBias].ptr, Int32(R), Int32(C), Int32(V))
    }

    /// Logits [B*T, V] at every position, in inference mode (for checks against transformers).
    public func logitsAllRows(_ batch: Batch) -> Tensor {
        let B = batch.size, T = batch.length
        workspace.prepare(B: B, T: T, config: config, headWidths: [], labels: 1)
        encoder.forward(parameters, workspace, batch, training: false, seed: 0, causal: objective == .causal)
        head(top: encoder.top(workspace), rows: Array(0..<(B * T)))
        return Tensor(shape: [B * T, config.vocabSize], copying: logits.ptr)
    }

    // MARK: - Backward

    /// Data-only backward of the unweighted per-sample losses (each sample's mean token loss with weight
    /// 1): leaves every layer's output gradients in the workspace, computes no parameter gradient.
    public func backwardPerSample(training: Bool, seed: UInt64) {
        let C = config.hiddenSize, V = config.vocabSize, R = rows.count
        let B = workspace.B, T = workspace.T
        let dl = rowSample.map { Float(1) / Float(max(1, sampleTargets[$0])) }
        dlogits.zero()
        dl.withUnsafeBufferPointer { w in
            rowTargets.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dlogits.mptr, w.baseAddress, probs.ptr, y.baseAddress, Int32(R), Int32(V))
            }
        }
        let p = parameters
        dtOut.zero(); dtAct.zero(); dtPre.zero(); dhL.zero()
        ck_linear_backward(dtOut.mptr, Int32(C), nil, nil, dlogits.ptr, Int32(V), tOut.ptr, Int32(C), p[wordEmbeddings].ptr,
                           Int32(R), Int32(C), Int32(V))
        ck_layernorm_backward(dtAct.mptr, nil, nil, dtOut.ptr, tAct.ptr, p[transformNorm.weight].ptr, tMean.ptr, tRstd.ptr, Int32(R), Int32(C))
        ck_gelu_backward(dtPre.mptr, dtAct.ptr, tPre.ptr, R * C)
        var none: ParameterStore? = nil
        transform.backward(p, grads: &none, dinp: dhL.mptr, ldDinp: C, dout: dtPre.ptr, ldDout: C, inp: hL.ptr, ldInp: C, rows: R)
        let top = encoder.topGradient(workspace)
        top.update(repeating: 0, count: B * T * C)
        for (i, r) in rows.enumerated() { (top + r * C).update(from: dhL.ptr + i * C, count: C) }
        encoder.backward(p, workspace, grads: &none, training: training, seed: seed)
    }

    /// Adds the parameter gradients of sum_b v_b L_b (v: one weight per sample) to `grads`, from the
    /// last `backwardPerSample` (book-keeping: no second backward). Consumes the stored gradients.
    public func accumulateGradients(sampleWeights v: [Float], into grads: inout ParameterStore) {
        let B = workspace.B, T = workspace.T, C = config.hiddenSize, V = config.vocabSize, R = rows.count
        precondition(v.count == B, "sampleWeights: \(v.count) for \(B) samples")
        let rowScale = rowSample.map { v[$0] }
        scaleRows(dlogits.mptr, ld: V, width: V, scales: rowScale)
        scaleRows(dtOut.mptr, ld: C, width: C, scales: rowScale)
        scaleRows(dtPre.mptr, ld: C, width: C, scales: rowScale)
        let p = parameters
        // Tied decoder: d word_embeddings += dlogits^T tOut, d bias += column sums.
        ck_linear_backward(nil, 0, grads[wordEmbeddings].mptr, grads[decoderBias].mptr, dlogits.ptr, Int32(V), tOut.ptr, Int32(C),
                           p[wordEmbeddings].ptr, Int32(R), Int32(C), Int32(V))
        var dw = Tensor(shape: [1, C]), db = Tensor(shape: [1, C])
        let off: [Int32] = [0, Int32(R)]
        off.withUnsafeBufferPointer { o in ck_layernorm_example_grads(dw.mptr, db.mptr, dtOut.ptr, tAct.ptr, tMean.ptr, tRstd.ptr, o.baseAddress, 1, Int32(C)) }
        if R > 0 {
            ck_add(grads[transformNorm.weight].mptr, grads[transformNorm.weight].ptr, dw.ptr, C)
            ck_add(grads[transformNorm.bias].mptr, grads[transformNorm.bias].ptr, db.ptr, C)
        }
        ck_linear_backward(nil, 0, grads[transform.weight].mptr, grads[transform.bias].mptr, dtPre.ptr, Int32(C), hL.ptr, Int32(C),
                           p[transform.weight].ptr, Int32(R), Int32(C), Int32(C))
        let tokenScale = (0..<(B * T)).map { v[$0 / T] }
        encoder.accumulateWeightedGradients(p, workspace, grads: &grads, rowScale: tokenScale)
    }

    /// Squared gradient norm of each group's loss L_g = mean of its samples' losses over the selected
    /// encoder tensors, from the last `backwardPerSample` (Gram form, no per-sample gradients).
    /// Group g holds samples groups[g]..<groups[g+1]; samples without targets do not count in the mean.
    public func groupGradientNorms(_ lb: LMBatch, selection: ParameterSelection, groups: [Int]) -> [Double] {
        let batch = lb.batch
        let lengths = (0..<batch.size).map { batch.realLength($0) }
        var offsets: [Int32] = [0]
        for g in 0..<(groups.count - 1) {
            offsets.append(offsets.last! + Int32(lengths[groups[g]..<groups[g + 1]].reduce(0, +)))
        }
        let names = parameters.names
        var f = GradientFactors(count: groups.count - 1)
        encoder.addFactors(into: &f, workspace: workspace, batch: batch, lengths: lengths, offsets: offsets) { selection.contains(names[$0]) }
        var out = [Float](repeating: 0, count: groups.count - 1)
        f.addNorms(into: &out, scale: 1)
        return (0..<(groups.count - 1)).map { g in
            let m = (groups[g]..<groups[g + 1]).filter { sampleTargets[$0] > 0 }.count
            return m > 0 ? Double(out[g]) / Double(m * m) : 0
        }
    }

    /// Tensors a self-influence selection may use: encoder tensors except the word embeddings, which
    /// are tied to the decoder (their gradient has two parts whose cross term the Gram form omits).
    public func selfInfluenceSelection(_ spec: ParameterSelection.Spec) throws -> ParameterSelection {
        let sel = try ParameterSelection(spec, layout: parameterLayout)
        if let bad = sel.names.first(where: { $0.hasPrefix("cls.") || $0 == "bert.embeddings.word_embeddings.weight" }) {
            throw WinnowError.invalidOption(name: "siParams", reason:
                "'\(bad)' cannot be used for self-influence (the head and the tied word embeddings are excluded); choose encoder layers, e.g. first-layer")
        }
        return sel
    }
}
