import CKernels
import Foundation
import WinnowCore
import WinnowData

/// Hugging Face `LlamaForCausalLM` (Llama, SmolLM2; tied or untied `lm_head`) with a hand-written
/// backward. The loss of a sample is its mean next-token cross-entropy over its real tokens (what
/// transformers returns for that sample alone with `labels=input_ids`); `lossAndGradients` minimises
/// the mean over every target token of the batch, as transformers does for a padded batch with -100
/// at the padding.
///
///     let lm = try LlamaForCausalLM(gguf: URL(fileURLWithPath: "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
///     let losses = lm.sampleLosses(batch).losses   // nats per example
public final class LlamaForCausalLM: TrainableModel, CausalLanguageModel, @unchecked Sendable {
    /// The model's configuration.
    public let config: LlamaConfig
    /// Every parameter under its Hugging Face name.
    public var parameters: ParameterStore
    var decoder: LlamaDecoder
    /// `lm_head.weight`, or nil when the head is tied to the embeddings.
    let lmHead: Int?
    package let workspace = LlamaWorkspace()
    // The last forward's target rows, their targets and per-row losses and probabilities.
    var rows: [Int] = [], rowTargets: [Int32] = []
    var logits = Tensor(shape: [0]), probs = Tensor(shape: [0]), rowLosses = Tensor(shape: [0])
    /// The final hidden states of the target rows [R, C] of the last per-example backward (the head's inputs).
    var headInput = Tensor(shape: [0])
    /// Per-sample mean target loss of the last forward (0 for samples without targets).
    public private(set) var lastSampleLosses: [Double] = []
    /// Target tokens per sample in the last forward.
    public private(set) var lastSampleTargets: [Int] = []
    /// The LoRA adapter's settings, nil without an adapter (`addLoRA`, `loadAdapter`).
    public internal(set) var loraConfig: LoRAConfig?
    /// The batch of the last `forward(_:training:seed:)` (what `backwardPerSample` back-propagates).
    var lastBatch: Batch?

    /// A freshly initialised model (Hugging Face's initialisation) from `seed`.
    public init(config: LlamaConfig, seed: UInt64) {
        self.config = config
        var store = ParameterStore()
        decoder = LlamaDecoder(config: config, store: &store)
        lmHead = config.tieWordEmbeddings ? nil : store.add("lm_head.weight", Tensor(shape: [config.vocabSize, config.hiddenSize]))
        var rng = SeededGenerator(seed: seed, stream: "init")
        decoder.initialize(&store, rng: &rng)
        if let lmHead { store[lmHead].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(rng.nextNormal() * 0.02) } } }
        parameters = store
    }

    /// Longest sequence the model accepts (`max_position_embeddings`).
    public var maxSequenceLength: Int { config.maxSequenceLength }
    /// Rows of the embedding table (`vocab_size`).
    public var vocabularySize: Int { config.vocabSize }

    /// The output matrix: `lm_head.weight`, or the embeddings when tied.
    var headWeight: Int { lmHead ?? decoder.embed }

    /// Next-token targets of a right-padded batch: the token after each real token, -1 after the last.
    public static func causalTargets(_ batch: Batch) -> [Int32] {
        let T = batch.length
        var t = [Int32](repeating: -1, count: batch.size * T)
        for b in 0..<batch.size {
            let n = batch.realLength(b)
            for i in 0..<max(0, n - 1) { t[b * T + i] = batch.inputIDs[b * T + i + 1] }
        }
        return t
    }

    // MARK: - Forward

    /// Forward pass with `targets` per token row (-1: none; default: next-token targets). Returns the
    /// mean over samples (with targets) of their mean token loss; fills `lastSampleLosses`.
    @discardableResult
    public func forward(_ batch: Batch, targets: [Int32]? = nil) -> Double {
        let targets = targets ?? Self.causalTargets(batch)
        precondition(targets.count == batch.size * batch.length, "forward: \(targets.count) targets for \(batch.size)x\(batch.length)")
        decoder.forward(parameters, workspace, batch)
        let T = batch.length, V = config.vocabSize, C = config.hiddenSize
        rows = []; rowTargets = []
        for (r, t) in targets.enumerated() where t >= 0 { rows.append(r); rowTargets.append(t) }
        let R = rows.count
        logits.resize([max(1, R), V]); probs.resize([max(1, R), V]); rowLosses.resize([max(1, R)])
        var h = Tensor(uninitializedShape: [max(1, R), C])
        let hp = h.mptr, hidden = workspace.hidden.ptr
        for (i, r) in rows.enumerated() { (hp + i * C).update(from: hidden + r * C, count: C) }
        ck_linear_forward(logits.mptr, Int32(V), h.ptr, Int32(C), parameters[headWeight].ptr, nil, Int32(R), Int32(C), Int32(V))
        // Rows split across cores: 50 M exponentials for SmolLM2's batch of 8 x 128.
        let lp = rowLosses.mptr, pp = probs.mptr, zp = logits.ptr
        if R > 0 { rowTargets.withUnsafeBufferPointer { y in
            let yp = y.baseAddress!
            Parallel.rows(R, width: V) { _, r in
                let o = r.lowerBound
                ck_softmax_xent_forward(lp + o, pp + o * V, zp + o * V, yp + o, Int32(r.count), Int32(V))
            }
        } }
        lastSampleLosses = [Double](repeating: 0, count: batch.size)
        lastSampleTargets = [Int](repeating: 0, count: batch.size)
        for (i, r) in rows.enumerated() { lastSampleLosses[r / T] += Double(rowLosses[i]); lastSampleTargets[r / T] += 1 }
        var total = 0.0, n = 0
        for b in 0..<batch.size where lastSampleTargets[b] > 0 {
            lastSampleLosses[b] /= Double(lastSampleTargets[b])
            total += lastSampleLosses[b]; n += 1
        }
        return n > 0 ? total / Double(n) : 0
    }

    /// Each example's mean next-token cross-entropy (nats) over its real tokens, and its number of
    /// targets, in inference mode.
    public func sampleLosses(_ batch: Batch) -> (losses: [Double], targets: [Int]) {
        forward(batch)
        return (lastSampleLosses, lastSampleTargets)
    }

    /// Logits [B*T, V] at every position (for checks against transformers).
    public func logitsAllRows(_ batch: Batch) -> Tensor {
        decoder.forward(parameters, workspace, batch)
        let N = batch.size * batch.length, V = config.vocabSize, C = config.hiddenSize
        // Into the model's own logits buffer (reused: 200 MB of fresh pages a call for SmolLM2 otherwise);
        // a caller that keeps the result holds its own copy-on-write reference.
        logits.resize([N, V])
        ck_linear_forward(logits.mptr, Int32(V), workspace.hidden.ptr, Int32(C), parameters[headWeight].ptr, nil, Int32(N), Int32(C), Int32(V))
        return logits
    }

    // MARK: - Backward

    /// The mean cross-entropy over every target token of `batch` (default: next-token targets) and its
    /// gradients, accumulated into `grads`; `training` drops a LoRA adapter's inputs (its dropout, seeded
    /// by `seed`). Returns the loss.
    @discardableResult
    public func lossAndGradients(_ batch: Batch, grads: inout ParameterStore, targets: [Int32]? = nil, training: Bool = false,
                                 seed: UInt64 = 0) -> Double {
        // Training mode only changes a LoRA adapter with dropout (Llama itself has none).
        workspace.loraTraining = training ? seed : nil
        defer { workspace.loraTraining = nil }
        forward(batch, targets: targets)
        let R = rows.count, V = config.vocabSize, C = config.hiddenSize, N = batch.size * batch.length
        guard R > 0 else { return 0 }
        var total = 0.0
        for i in 0..<R { total += Double(rowLosses[i]) }
        // dlogits = (p - onehot(y)) / R, formed in place of the probabilities (a second [R, V] buffer is
        // 200 MB for SmolLM2).
        let dl = probs.mptr, w = 1 / Float(R), targets = rowTargets
        Parallel.rows(R, width: V) { _, r in
            for i in r {
                let row = dl + i * V
                for j in 0..<V { row[j] *= w }
                row[Int(targets[i])] -= w
            }
        }
        let dlogits = probs
        let ws = workspace
        var h = Tensor(uninitializedShape: [R, C])
        for (i, r) in rows.enumerated() { (h.mptr + i * C).update(from: ws.hidden.ptr + r * C, count: C) }
        var dh = Tensor(shape: [R, C])
        // An empty gradient tensor marks a frozen weight (a LoRA adapter's base): no gradient for it.
        ck_linear_backward(dh.mptr, Int32(C), grads[headWeight].count == 0 ? nil : grads[headWeight].mptr, nil, dlogits.ptr, Int32(V), h.ptr, Int32(C),
                           parameters[headWeight].ptr, Int32(R), Int32(C), Int32(V))
        ws.dHidden.mptr.update(repeating: 0, count: N * C)
        for (i, r) in rows.enumerated() { (ws.dHidden.mptr + r * C).update(from: dh.ptr + i * C, count: C) }
        var g: ParameterStore? = grads
        grads = ParameterStore()       // one reference, so the kernels write in place
        decoder.backward(parameters, ws, grads: &g)
        grads = g!
        return total / Double(R)
    }

    /// Writes config.json and model.safetensors (F32, Hugging Face names; a tied head is not stored).
    public func save(to folder: URL) throws { try LlamaWeights.save(parameters, config: config, architecture: "LlamaForCausalLM", to: folder) }
}

/// Hugging Face `LlamaForSequenceClassification`: a `score` matrix (no bias) on the final hidden state of
/// each sequence's last token that is not padding (transformers' rule: the rightmost token whose id is not
/// `pad_token_id`; without a pad id, the last real token by the attention mask).
public final class LlamaForSequenceClassification: ClassifierModel, @unchecked Sendable {
    /// The model's configuration, labels included.
    public private(set) var config: LlamaConfig
    /// Every parameter under its Hugging Face name.
    public var parameters: ParameterStore
    var decoder: LlamaDecoder
    let score: Int

    /// Records `id` as the padding id when the configuration names none (a base model without
    /// `pad_token_id`): the head then reads the last token that is not `id`, and the saved config.json
    /// carries it, without which transformers refuses batches of more than one sequence.
    public func recordPadding(_ id: Int) {
        if config.padTokenID == nil { config.padTokenID = id }
    }
    /// The LoRA adapter's settings, nil without an adapter (`addLoRA`, `loadAdapter`).
    public internal(set) var loraConfig: LoRAConfig?
    package let workspace = LlamaWorkspace()
    var pooledRows: [Int] = []
    /// Logits [B, L] of the last forward.
    public internal(set) var lastLogits = Tensor(shape: [0])
    /// Softmax probabilities [B, L] of the last `lossAndGradients`.
    public internal(set) var lastProbabilities = Tensor(shape: [0])
    /// Per-row cross-entropy [B] of the last `lossAndGradients`.
    public internal(set) var lastLosses = Tensor(shape: [0])
    /// d/d(pooled rows) [B, C] and the logits' gradient [B, L] of the last data-only backward (the scores' factors).
    var lastPooledGradient = Tensor(shape: [0])
    var lastDlogits = Tensor(shape: [0])

    /// Class names, in the order of the logits.
    public var labelNames: [String] { config.labels }

    /// A freshly initialised model; `config.labels` names the classes.
    public init(config: LlamaConfig, seed: UInt64) {
        precondition(!config.labels.isEmpty, "LlamaForSequenceClassification needs at least one label")
        self.config = config
        var store = ParameterStore()
        decoder = LlamaDecoder(config: config, store: &store)
        score = store.add("score.weight", Tensor(shape: [config.labels.count, config.hiddenSize]))
        var rng = SeededGenerator(seed: seed, stream: "init")
        decoder.initialize(&store, rng: &rng)
        store[score].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(rng.nextNormal() * 0.02) } }
        parameters = store
    }

    /// The row of each sequence the score head reads.
    func poolRows(_ batch: Batch) -> [Int] {
        let T = batch.length
        return (0..<batch.size).map { b in
            if let pad = config.padTokenID {
                // transformers' rule within the real tokens: padding is never read, whatever id it was
                // written with, so the result does not depend on the batch.
                let last = (0..<max(1, batch.realLength(b))).last { batch.inputIDs[b * T + $0] != Int32(pad) } ?? 0
                return b * T + last
            }
            return b * T + max(0, batch.realLength(b) - 1)
        }
    }

    /// Logits [B, L] in inference mode.
    @discardableResult
    public func logits(_ batch: Batch) -> Tensor {
        decoder.forward(parameters, workspace, batch)
        let B = batch.size, C = config.hiddenSize, L = config.labels.count
        pooledRows = poolRows(batch)
        var pooled = Tensor(uninitializedShape: [B, C])
        for (b, r) in pooledRows.enumerated() { (pooled.mptr + b * C).update(from: workspace.hidden.ptr + r * C, count: C) }
        lastLogits.resize([B, L])
        ck_linear_forward(lastLogits.mptr, Int32(L), pooled.ptr, Int32(C), parameters[score].ptr, nil, Int32(B), Int32(C), Int32(L))
        return lastLogits
    }

    /// Mean cross-entropy over the labelled rows (or the weighted sum with `weights` as dloss per row);
    /// accumulates parameter gradients (none for a tensor whose gradient in `grads` is empty: a frozen
    /// base). Llama has no dropout: `training` and `seed` only drive a LoRA adapter's dropout.
    @discardableResult
    public func lossAndGradients(_ batch: Batch, grads: inout ParameterStore, training: Bool = false, seed: UInt64 = 0,
                                 weights: [Float]? = nil) -> Double {
        workspace.loraTraining = training ? seed : nil      // LoRA dropout, the only dropout here
        defer { workspace.loraTraining = nil }
        logits(batch)
        let B = batch.size, C = config.hiddenSize, L = config.labels.count, N = B * batch.length
        lastProbabilities.resize([B, L]); lastLosses.resize([B])
        batch.labels.withUnsafeBufferPointer { y in
            ck_softmax_xent_forward(lastLosses.mptr, lastProbabilities.mptr, lastLogits.ptr, y.baseAddress, Int32(B), Int32(L))
        }
        let labelled = batch.labels.filter { $0 >= 0 }.count
        let w = weights ?? [Float](repeating: labelled > 0 ? 1 / Float(labelled) : 0, count: B)
        var dlogits = Tensor(shape: [B, L])
        w.withUnsafeBufferPointer { wp in
            batch.labels.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dlogits.mptr, wp.baseAddress, lastProbabilities.ptr, y.baseAddress, Int32(B), Int32(L))
            }
        }
        let ws = workspace
        var pooled = Tensor(uninitializedShape: [B, C])
        for (b, r) in pooledRows.enumerated() { (pooled.mptr + b * C).update(from: ws.hidden.ptr + r * C, count: C) }
        var dPooled = Tensor(shape: [B, C])
        ck_linear_backward(dPooled.mptr, Int32(C), grads[score].mptr, nil, dlogits.ptr, Int32(L), pooled.ptr, Int32(C),
                           parameters[score].ptr, Int32(B), Int32(C), Int32(L))
        ws.dHidden.mptr.update(repeating: 0, count: N * C)
        for (b, r) in pooledRows.enumerated() { (ws.dHidden.mptr + r * C).update(from: dPooled.ptr + b * C, count: C) }
        var g: ParameterStore? = grads
        grads = ParameterStore()
        decoder.backward(parameters, ws, grads: &g)
        grads = g!
        var total = 0.0
        for b in 0..<B where batch.labels[b] >= 0 { total += Double(lastLosses[b]) }
        return labelled > 0 ? total / Double(labelled) : 0
    }

    /// Writes config.json and model.safetensors (F32, Hugging Face names); with a LoRA adapter, the
    /// adapter (`saveAdapter`, its base as the adapter's config names it) and config.json.
    public func save(to folder: URL) throws {
        if let lora = loraConfig { return try saveAdapter(to: folder, base: lora.baseModel ?? "") }
        try LlamaWeights.save(parameters, config: config, architecture: "LlamaForSequenceClassification", to: folder)
    }
}

extension LlamaForSequenceClassification {
    /// Logits [B, L] of the score head on each sequence's last real token.
    public func inferenceLogits(_ batch: Batch) -> Tensor { logits(batch) }
}
