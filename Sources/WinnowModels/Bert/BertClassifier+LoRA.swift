import CKernels
import Foundation
import WinnowCore
import WinnowData

/// A LoRA adapter on a BERT classifier, in PEFT's sequence-classification layout: A [r, d_in] and
/// B [d_out, r] on each target linear layer (`query`, `key`, `value`, `dense`), the head (`classifier`)
/// trained in full beside them (`modules_to_save`), everything else frozen.
///
/// The encoder's passes stay as they are: before every forward each target's weight slot is set to its
/// effective weight W + scale B A (the frozen W is kept here), so the forward, the backward, the scores
/// and their kernels see an ordinary BERT. The weight's gradient then gives the adapter's exactly:
/// dA = scale B^T dW and dB = scale dW A^T, and per-example gradient factors of A and B follow from the
/// layer's own (A sees the layer's input and the output gradient times scale B; B sees scale A x and
/// the output gradient).
package struct BertLoRA: Sendable {
    /// One adapted linear layer.
    package struct Module: Sendable {
        let linear: Linear
        let a: Int
        let b: Int
        let base: Tensor
    }
    package var config: LoRAConfig
    package var modules: [Module]

    /// The module of the linear layer whose weight is at index `weight`, if adapted.
    func module(weight: Int) -> Module? { modules.first { $0.linear.weight == weight } }
}

extension BertClassifier {
    /// The adapter's settings, nil when the model has none.
    public var loraConfig: LoRAConfig? { loraState?.config }

    /// The linear layers a target names, with their Hugging Face names (`dense`: attention output,
    /// intermediate, output and pooler, as PEFT matches it).
    func loraLinears(_ targets: [LoRAModule]) -> [(String, Linear)] {
        var out: [(String, Linear)] = []
        for (i, l) in encoder.layers.enumerated() {
            let p = "bert.encoder.layer.\(i)."
            if targets.contains(.query) { out.append((p + "attention.self.query", l.query)) }
            if targets.contains(.key) { out.append((p + "attention.self.key", l.key)) }
            if targets.contains(.value) { out.append((p + "attention.self.value", l.value)) }
            if targets.contains(.dense) {
                out += [(p + "attention.output.dense", l.attentionOutput), (p + "intermediate.dense", l.intermediate), (p + "output.dense", l.output)]
            }
        }
        if targets.contains(.dense), let pooler = encoder.pooler { out.append(("bert.pooler.dense", pooler)) }
        return out
    }

    /// Adds a LoRA adapter to the target layers, initialised as PEFT does (A uniform in +-1/sqrt(d_in)
    /// from `seed`, B zero), and makes the head trainable beside it. The tensors are
    /// `NAME.lora_A.weight` and `NAME.lora_B.weight` of each target layer NAME.
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has an adapter already, a target is not a
    ///   BERT module, or the head is not Hugging Face's single linear layer.
    public func addLoRA(_ lora: LoRAConfig, seed: UInt64) throws {
        guard loraState == nil else { throw WinnowError.invalidOption(name: "lora", reason: "the model already has an adapter") }
        try lora.check(modules: LoRAModule.encoderModules, family: "a BERT encoder")
        guard head.count == 1 else {
            throw WinnowError.invalidOption(name: "lora", reason: "LoRA needs Hugging Face's classifier head (one linear layer), not the paper's")
        }
        var rng = SeededGenerator(seed: seed, stream: "lora")
        var store = parameters
        var modules: [BertLoRA.Module] = []
        for (name, lin) in loraLinears(lora.targets) {
            var a = Tensor(shape: [lora.rank, lin.inDim])
            let bound = 1 / Double(lin.inDim).squareRoot()
            a.withUnsafeMutableBufferPointer { p in for j in p.indices { p[j] = Float((rng.nextUniform() * 2 - 1) * bound) } }
            let ia = store.add(name + ".lora_A.weight", a)
            let ib = store.add(name + ".lora_B.weight", Tensor(shape: [lin.outDim, lora.rank]))
            modules.append(.init(linear: lin, a: ia, b: ib, base: store[lin.weight]))
        }
        parameters = store
        var config = lora
        config.taskType = "SEQ_CLS"
        config.modulesToSave = ["classifier"]
        loraState = BertLoRA(config: config, modules: modules)
        mergeLoRA()
    }

    /// Whether `name` is trained when the model has an adapter: the adapter and the head.
    public static func isAdapterTensor(_ name: String) -> Bool { name.contains(".lora_") || name.hasPrefix("classifier.") }

    /// The tensors training updates: every one without an adapter, else the adapter's and the head's.
    public var trainableTensors: ((String) -> Bool)? {
        guard loraState != nil else { return nil }
        return { (name: String) -> Bool in BertClassifier.isAdapterTensor(name) }
    }

    /// Writes each adapted layer's effective weight W + scale B A into its weight slot.
    func mergeLoRA() {
        guard let lora = loraState else { return }
        let s = lora.config.scale, r = lora.config.rank
        for m in lora.modules {
            let din = m.linear.inDim, dout = m.linear.outDim
            let w = parameters[m.linear.weight].mptr
            w.update(from: m.base.ptr, count: din * dout)
            ck_gemm(w, Int32(din), parameters[m.b].ptr, Int32(r), parameters[m.a].ptr, Int32(din), Int32(dout), Int32(din), Int32(r),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), s, 1)
        }
    }

    /// Turns the effective weights' gradients into the adapter's (dA += scale B^T dW, dB += scale dW A^T)
    /// and zeroes the gradients of every frozen tensor, so clipping and the optimizer see the adapter's
    /// and the head's alone.
    func projectLoRAGradients(_ grads: inout ParameterStore) {
        guard let lora = loraState else { return }
        let s = lora.config.scale, r = lora.config.rank
        for m in lora.modules {
            let din = m.linear.inDim, dout = m.linear.outDim
            let dw = grads[m.linear.weight].ptr
            ck_gemm(grads[m.a].mptr, Int32(din), parameters[m.b].ptr, Int32(r), dw, Int32(din), Int32(r), Int32(din), Int32(dout),
                    Int32(CK_TRANS_T), Int32(CK_TRANS_N), s, 1)
            ck_gemm(grads[m.b].mptr, Int32(r), dw, Int32(din), parameters[m.a].ptr, Int32(din), Int32(dout), Int32(r), Int32(din),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_T), s, 1)
        }
        for (i, name) in parameters.names.enumerated() where !Self.isAdapterTensor(name) && grads[i].count > 0 {
            Elementwise.zero(grads[i].mptr, count: grads[i].count)
        }
    }

    /// The name PEFT gives a tensor of this model in `adapter_model.safetensors`.
    static func peftName(_ name: String) -> String { "base_model.model." + name }

    /// Writes the adapter in PEFT's layout: `adapter_model.safetensors` (the LoRA tensors and the head,
    /// PEFT's names), `adapter_config.json` (task_type SEQ_CLS, modules_to_save classifier,
    /// base_model_name_or_path `base`), and config.json with the class names (peft reads neither that
    /// nor anything else), each written atomically.
    ///
    /// - Throws: `WinnowError.invalidOption` when the model has no adapter; errors of writing the files.
    public func saveAdapter(to folder: URL, base: String) throws {
        guard let lora = loraState?.config else { throw WinnowError.invalidOption(name: "lora", reason: "the model has no LoRA adapter to save") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tensors = parameters.names.enumerated().filter { Self.isAdapterTensor($0.element) }.map { (Self.peftName($0.element), parameters[$0.offset]) }
        try SafeTensorsFile.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        try lora.writePEFTConfig(to: folder.appendingPathComponent("adapter_config.json"), base: base)
        try config.write(to: folder.appendingPathComponent("config.json"))
    }

    /// Loads a PEFT LoRA adapter of a sequence classifier (`adapter_config.json`,
    /// `adapter_model.safetensors`) onto this model: every target layer's A and B with this model's
    /// shapes, and the head when `modules_to_save` names it.
    ///
    /// - Throws: `WinnowError` naming the file and the key or tensor that is missing, unsupported or of the
    ///   wrong shape (an adapter made for another base model).
    public func loadAdapter(folder: URL) throws {
        let configURL = folder.appendingPathComponent("adapter_config.json")
        let lora = try LoRAConfig(contentsOf: configURL)
        if let m = lora.targets.first(where: { !LoRAModule.encoderModules.contains($0) }) {
            throw WinnowError.invalidFile(path: configURL.path, line: nil, reason:
                "key 'target_modules': '\(m.rawValue)' is not a module of a BERT encoder (\(LoRAModule.encoderModules.map(\.rawValue).joined(separator: ", ")))")
        }
        if let m = lora.modulesToSave.first(where: { !["classifier", "score"].contains($0) }) {
            throw WinnowError.invalidFile(path: configURL.path, line: nil, reason: "key 'modules_to_save': '\(m)' is not supported (only the head, classifier)")
        }
        let file = folder.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw WinnowError.missingFile(path: file.path, reason: "no adapter_model.safetensors (Winnow never reads pickled adapter_model.bin)")
        }
        let st = try SafeTensorsFile(url: file)
        let savedHead = lora.modulesToSave.contains("classifier")
        do { try addLoRA(lora, seed: 0) } catch let e as WinnowError { throw WinnowError.invalidFile(path: configURL.path, line: nil, reason: e.description) }
        var known = Set<String>()
        for (i, name) in parameters.names.enumerated() where name.contains(".lora_") || (savedHead && name.hasPrefix("classifier.")) {
            let stored = Self.peftName(name)
            known.insert(stored)
            guard let e = st.entry(stored) else {
                throw WinnowError.invalidTensor(path: file.path, tensor: stored, reason: name.hasPrefix("classifier.")
                    ? "missing: adapter_config.json saves the classifier (modules_to_save)"
                    : "missing: adapter_config.json targets \(lora.targets.map(\.rawValue).joined(separator: ", ")) in every layer")
            }
            let want = parameters[i].shape
            guard e.shape == want else {
                throw WinnowError.invalidTensor(path: file.path, tensor: stored, reason: LoRAConfig.shapeMismatch(
                    stored, got: e.shape, want: want, rank: lora.rank, otherwise: ": the adapter was made for another base model or label set"))
            }
            let t = try st.tensor(e)
            parameters[i].withUnsafeMutableBufferPointer { dst in t.withUnsafeBufferPointer { src in _ = dst.update(fromContentsOf: src) } }
        }
        if let extra = st.names.first(where: { !known.contains($0) }) {
            throw WinnowError.invalidTensor(path: file.path, tensor: extra, reason: "is not a tensor of this adapter (LoRA on \(lora.targets.map(\.rawValue).joined(separator: ", ")), the classifier)")
        }
        mergeLoRA()
    }

    /// A BERT classifier with the PEFT adapter in `adapter` on the model in `base`. The class names come
    /// from the adapter folder's config.json (Winnow writes one), else `labels`, else LABEL_0, LABEL_1, ...
    /// as many as the adapter's head has rows.
    ///
    /// - Throws: `WinnowError` naming the file, key or tensor at fault.
    public convenience init(adapter: URL, base: URL, labels: [String]? = nil) throws {
        var names = labels
        let own = adapter.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: own.path), let c = try? BertConfig(contentsOf: own), !c.labels.isEmpty { names = c.labels }
        if names == nil {
            let file = adapter.appendingPathComponent("adapter_model.safetensors")
            if let e = (try? SafeTensorsFile(url: file))?.entry(Self.peftName("classifier.weight")), let rows = e.shape.first {
                names = (0..<rows).map { "LABEL_\($0)" }
            }
        }
        try self.init(folder: base, labels: names)
        try loadAdapter(folder: adapter)
    }
}

extension GradientFactors {
    /// Appends the factors of a LoRA adapter's A and B on a linear layer whose inputs are `x` and output
    /// gradients `g` over the groups `offsets`: A's gradient is sum_t (scale g_t B)^T x_t, B's is
    /// sum_t g_t^T (scale A x_t), two small linear layers of the same rows.
    mutating func appendLoRA(x: FactorRows, g: FactorRows, offsets: [Int32], a: Tensor, b: Tensor, scale: Float, wantA: Bool, wantB: Bool) {
        let r = a.shape[0], din = a.shape[1], dout = b.shape[0]
        if wantA {
            var gb = Tensor(uninitializedShape: [g.rows, r])
            ck_gemm(gb.mptr, Int32(r), g.ptr, Int32(g.ld), b.ptr, Int32(r), Int32(g.rows), Int32(r), Int32(dout),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), scale, 0)
            entries.append(.linear(a: x, g: FactorRows(packed: gb), offsets: offsets, weight: true, bias: false))
        }
        if wantB {
            var xa = Tensor(uninitializedShape: [x.rows, r])
            ck_gemm(xa.mptr, Int32(r), x.ptr, Int32(x.ld), a.ptr, Int32(din), Int32(x.rows), Int32(r), Int32(din),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_T), scale, 0)
            entries.append(.linear(a: FactorRows(packed: xa), g: g, offsets: offsets, weight: true, bias: false))
        }
    }
}
