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
                        heads: config.numAttentionHeads, vocabulary: config.vocabSize, maxPositions: config.maxSequenceLength)
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
            let rowsGrad = ws.embeddingRowGradients(config)
            let d = views ? FactorRows(view: rowsGrad, offset: 0, ld: C, width: C, rows: B * T)
                : FactorRows(packed: packRows(rowsGrad.ptr, ld: C, width: C, batch: batch, lengths: ws.lengths))
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

extension LlamaForSequenceClassification {
    /// Adds a LoRA adapter to the decoder's target modules (as `LlamaForCausalLM.addLoRA`), the `score`
    /// head trained in full beside it (PEFT's SEQ_CLS layout: `modules_to_save` score).
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has an adapter already or a target is not a
    ///   decoder module.
    public func addLoRA(_ lora: LoRAConfig, seed: UInt64) throws {
        guard loraConfig == nil else { throw WinnowError.invalidOption(name: "lora", reason: "the model already has an adapter") }
        try lora.check(modules: LoRAModule.decoderModules, family: "a Llama-family decoder")
        decoder.addLoRA(lora, store: &parameters, seed: seed)
        var c = lora
        c.taskType = "SEQ_CLS"
        c.modulesToSave = ["score"]
        loraConfig = c
    }

    /// Whether `name` is trained when the model has an adapter: the adapter and the score head.
    public static func isAdapterTensor(_ name: String) -> Bool { name.contains(".lora_") || name.hasPrefix("score.") }

    /// The tensors training updates: every one without an adapter, else the adapter's and the head's.
    public var trainableTensors: ((String) -> Bool)? {
        guard loraConfig != nil else { return nil }
        return { (name: String) -> Bool in LlamaForSequenceClassification.isAdapterTensor(name) }
    }

    /// Gradient buffers for training: every tensor's, or with an adapter only the trained ones' (the
    /// frozen base gets empty buffers and no gradient).
    public func gradientBuffers() -> ParameterStore {
        loraConfig == nil ? parameters.zeros() : parameters.zeros(keeping: Self.isAdapterTensor)
    }

    /// Writes the adapter in PEFT's SEQ_CLS layout: `adapter_model.safetensors` (LoRA tensors and
    /// `score.weight`, PEFT's names), `adapter_config.json` (modules_to_save score) and config.json with
    /// the class names (which peft does not read), each written atomically.
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has no adapter; errors of writing the files.
    public func saveAdapter(to folder: URL, base: String) throws {
        guard let lora = loraConfig else { throw WinnowError.invalidOption(name: "lora", reason: "the model has no LoRA adapter to save") }
        try LlamaAdapterFiles.save(parameters, lora: lora, saved: { $0.hasPrefix("score.") }, to: folder, base: base)
        try AtomicFile.write(JSONSerialization.data(withJSONObject: config.json(architecture: "LlamaForSequenceClassification"),
                                                    options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent("config.json"))
    }

    /// Loads a PEFT LoRA adapter of a sequence classifier onto this model: every target module's A and
    /// B, and the score head when `modules_to_save` names it.
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing, unsupported or of the
    ///   wrong shape.
    public func loadAdapter(folder: URL) throws {
        try LlamaAdapterFiles.load(folder: folder, savedModules: ["score"]) { lora in
            try addLoRA(lora, seed: 0)
            return (parameters.names, { self.parameters[$0].shape }, { i, t in self.parameters[i] = t })
        }
    }

    /// A decoder classifier with the PEFT adapter in `adapter` on the model in `base` (a GGUF file's
    /// folder or a Hugging Face folder). The class names come from the adapter folder's config.json
    /// (Winnow writes one), else `labels`, else LABEL_0, LABEL_1, ... as many as its head has rows.
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor at fault.
    public convenience init(adapter: URL, base: URL, labels: [String]? = nil) throws {
        var names = labels
        let own = adapter.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: own.path), let c = try? LlamaConfig(contentsOf: own), !c.labels.isEmpty { names = c.labels }
        if names == nil, let e = (try? SafeTensorsFile(url: adapter.appendingPathComponent("adapter_model.safetensors")))?
            .entry(LlamaForCausalLM.peftName("score.weight")), let rows = e.shape.first {
            names = (0..<rows).map { "LABEL_\($0)" }
        }
        let baseHasHead = (try? LlamaConfig(contentsOf: base.appendingPathComponent("config.json")))
            .map { $0.architecture?.hasSuffix("ForSequenceClassification") == true && !$0.labels.isEmpty } ?? false
        if names == nil && !baseHasHead {
            throw WinnowError.invalidFile(path: adapter.appendingPathComponent("adapter_config.json").path, line: nil, reason:
                "a classification adapter (task_type SEQ_CLS) whose classes are named nowhere: no score head in adapter_model.safetensors "
                + "(PEFT's modules_to_save), no config.json with id2label beside it, and the base \(base.path) has no classification head")
        }
        try self.init(folder: base, labels: names)
        try loadAdapter(folder: adapter)
    }
}
