import CKernels
import Foundation
import WinnowCore
import WinnowData

/// A multi-layer perceptron for numeric features: standardise with the training mean and std, then
/// Linear, GELU, ..., Linear. Tensors are named like a PyTorch `nn.Sequential` called `mlp`
/// (`mlp.0.weight`, `mlp.2.weight`, ...: GELUs sit at the odd indices).
///
///     let mlp = MLPClassifier(inputSize: 4, hidden: [32], labels: ["a", "b"], seed: 0)
public final class MLPClassifier: ClassifierModel, @unchecked Sendable {
    /// Number of input features F.
    public let inputSize: Int
    /// Widths of the hidden layers, first to last; empty for a single linear layer.
    public let hidden: [Int]
    /// Class names in logit order.
    public let labelNames: [String]
    /// One name per input feature (`x0`, `x1`, ... unless given); saved as `feature_names`.
    public var featureNames: [String]
    /// Standardisation: x' = (x - mean) / std, per feature.
    public var featureMean: [Float]
    /// Per-feature divisor of the standardisation (1 until `fitStandardization`, and where the std is 0).
    public var featureStd: [Float]
    /// Weights `mlp.<2i>.weight` [out, in] and biases `mlp.<2i>.bias` [out] of each Linear, in order.
    public var parameters: ParameterStore
    let layers: [Linear]
    // Saved activations of the last forward.
    var xs = Tensor(shape: [0])
    var pre: [Tensor] = [], act: [Tensor] = []
    /// Logits [B, L] of the last forward.
    public private(set) var lastLogits = Tensor(shape: [0])
    /// Softmax probabilities [B, L] of the last `lossAndGradients`.
    public private(set) var lastProbabilities = Tensor(shape: [0])
    /// Per-row cross-entropy [B] of the last `lossAndGradients` (0 for rows without a label).
    public private(set) var lastLosses = Tensor(shape: [0])

    /// A fresh MLP with PyTorch `nn.Linear`'s initialisation (uniform in ±1/sqrt(in)) drawn from `seed` and an
    /// identity standardisation. Needs labels and `inputSize` > 0; empty `featureNames` gives `x0`, `x1`, ...
    public init(inputSize: Int, hidden: [Int], labels: [String], seed: UInt64, featureNames: [String] = []) {
        precondition(!labels.isEmpty && inputSize > 0, "MLPClassifier needs features and labels")
        self.inputSize = inputSize
        self.hidden = hidden
        labelNames = labels
        self.featureNames = featureNames.isEmpty ? (0..<inputSize).map { "x\($0)" } : featureNames
        featureMean = Array(repeating: 0, count: inputSize)
        featureStd = Array(repeating: 1, count: inputSize)
        var store = ParameterStore()
        var ls: [Linear] = []
        let dims = [inputSize] + hidden + [labels.count]
        for i in 0..<(dims.count - 1) { ls.append(Linear(&store, "mlp.\(2 * i)", in: dims[i], out: dims[i + 1])) }
        layers = ls
        // PyTorch nn.Linear's default: uniform(-1/sqrt(in), 1/sqrt(in)) for weights and biases.
        var rng = SeededGenerator(seed: seed, stream: "init")
        for l in ls {
            let bound = 1 / Float(l.inDim).squareRoot()
            for idx in [l.weight, l.bias] {
                store[idx].withUnsafeMutableBufferPointer { b in
                    for j in b.indices { b[j] = Float(rng.nextUniform() * 2 - 1) * bound }
                }
            }
        }
        parameters = store
    }

    /// Sets the standardisation from training features [N, F] (population std; a zero std becomes 1).
    public func fitStandardization(_ x: Tensor) {
        let N = x.shape[0], F = x.shape[1]
        for j in 0..<F {
            var s = 0.0, s2 = 0.0
            for i in 0..<N { let v = Double(x[i, j]); s += v; s2 += v * v }
            let m = s / Double(max(N, 1))
            let sd = (max(0, s2 / Double(max(N, 1)) - m * m)).squareRoot()
            featureMean[j] = Float(m)
            featureStd[j] = sd > 1e-12 ? Float(sd) : 1
        }
    }

    /// Logits [B, L] (saving activations for the backward).
    @discardableResult
    public func forward(_ batch: FeatureBatch) -> Tensor {
        let B = batch.size, F = inputSize
        precondition(batch.features.shape == [B, F], "MLP: features \(batch.features.shape) vs [\(B), \(F)]")
        xs = Tensor(shape: [B, F])
        for i in 0..<B { for j in 0..<F { xs[i, j] = (batch.features[i, j] - featureMean[j]) / featureStd[j] } }
        pre = []; act = []
        var inp = xs
        for (k, l) in layers.enumerated() {
            var out = Tensor(shape: [B, l.outDim])
            l.forward(parameters, out: out.mptr, ldOut: l.outDim, inp: inp.ptr, ldInp: l.inDim, rows: B)
            if k == layers.count - 1 { lastLogits = out; break }
            var a = Tensor(shape: [B, l.outDim])
            ck_gelu_forward(a.mptr, out.ptr, B * l.outDim)
            pre.append(out); act.append(a)
            inp = a
        }
        return lastLogits
    }

    /// Mean cross-entropy over labelled rows (labels >= 0); accumulates its parameter gradients into `grads`.
    /// `weights` replaces the per-row dloss (default 1 / labelled rows) for the gradients only; the returned
    /// loss stays the unweighted mean. `training` and `seed` have no effect (the MLP has no dropout).
    public func lossAndGradients(_ batch: FeatureBatch, grads: inout ParameterStore, training: Bool = false, seed: UInt64 = 0,
                                 weights: [Float]? = nil) -> Double {
        let B = batch.size, L = labelNames.count
        forward(batch)
        lastLosses = Tensor(shape: [B]); lastProbabilities = Tensor(shape: [B, L])
        batch.labels.withUnsafeBufferPointer { y in
            ck_softmax_xent_forward(lastLosses.mptr, lastProbabilities.mptr, lastLogits.ptr, y.baseAddress, Int32(B), Int32(L))
        }
        let labelled = batch.labels.filter { $0 >= 0 }.count
        let dl = weights ?? [Float](repeating: labelled > 0 ? 1 / Float(labelled) : 0, count: B)
        var dout = Tensor(shape: [B, L])
        dl.withUnsafeBufferPointer { w in
            batch.labels.withUnsafeBufferPointer { y in
                ck_softmax_xent_backward(dout.mptr, w.baseAddress, lastProbabilities.ptr, y.baseAddress, Int32(B), Int32(L))
            }
        }
        var g: ParameterStore? = grads
        grads = ParameterStore()
        for k in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[k]
            let inp = k == 0 ? xs : act[k - 1]
            var dinp = Tensor(shape: [B, l.inDim])
            l.backward(parameters, grads: &g, dinp: k == 0 ? nil : dinp.mptr, ldDinp: l.inDim, dout: dout.ptr, ldDout: l.outDim,
                       inp: inp.ptr, ldInp: l.inDim, rows: B)
            if k > 0 {
                var dpre = Tensor(shape: [B, l.inDim])
                ck_gelu_backward(dpre.mptr, dinp.ptr, pre[k - 1].ptr, B * l.inDim)
                dout = dpre
            }
        }
        grads = g!
        var total = 0.0
        for b in 0..<B where batch.labels[b] >= 0 { total += Double(lastLosses[b]) }
        return labelled > 0 ? total / Double(labelled) : 0
    }

    /// Checks that `data`'s feature columns are this model's, by name and in order (features are read by
    /// position).
    ///
    /// - Throws: `WinnowError.invalidFile` naming the data file's header line and both column lists.
    public func checkFeatures(_ data: CSVDataset) throws {
        guard data.featureNames != featureNames else { return }
        let same = Set(data.featureNames) == Set(featureNames)
        throw WinnowError.invalidFile(path: data.url.path, line: data.headerLine, reason:
            "feature columns [\(data.featureNames.joined(separator: ", "))] \(same ? "are in another order than" : "differ from") the model's [\(featureNames.joined(separator: ", "))]")
    }

    /// Predicted classes and probabilities.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `batchSize` when it is not positive.
    public func predict(_ data: CSVDataset, batchSize: Int = 256) throws -> (predictions: [Int32], probabilities: [[Float]]) {
        guard batchSize > 0 else { throw WinnowError.invalidOption(name: "batchSize", reason: "\(batchSize) is not positive") }
        var preds = [Int32](repeating: 0, count: data.count), probs = [[Float]](repeating: [], count: data.count)
        let L = labelNames.count
        for b in data.batches(size: batchSize, order: data.sequentialOrder) {
            var p = Tensor(shape: [b.size, L])
            let z = forward(b)
            ck_softmax_forward(p.mptr, z.ptr, Int32(b.size), Int32(L))
            for r in 0..<b.size {
                let row = (0..<L).map { p[r, $0] }
                probs[b.indices[r]] = row
                preds[b.indices[r]] = Int32(row.indices.max { row[$0] < row[$1] }!)
            }
        }
        return (preds, probs)
    }

    // MARK: - Files

    /// Writes `model.safetensors` and `config.json` (`model_type` `winnow-mlp`, sizes, labels, feature names and
    /// standardisation) into `folder`, creating it if needed.
    ///
    /// - Throws: The file system's error when the folder or a file cannot be written.
    public func save(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafeTensorsFile.write(parameters.named, to: folder.appendingPathComponent("model.safetensors"))
        let cfg: [String: Any] = [
            "model_type": "winnow-mlp", "architectures": ["WinnowMLPClassifier"], "input_size": inputSize, "hidden_sizes": hidden,
            "id2label": Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { (String($0.offset), $0.element) }),
            "label2id": Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($0.element, $0.offset) }),
            "feature_names": featureNames, "feature_mean": featureMean.map(Double.init), "feature_std": featureStd.map(Double.init),
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent("config.json"))
    }

    /// True when `folder/config.json` describes a winnow MLP.
    public static func isMLPFolder(_ folder: URL) -> Bool {
        guard let d = try? Data(contentsOf: folder.appendingPathComponent("config.json")),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return false }
        return o["model_type"] as? String == "winnow-mlp"
    }

    /// Loads an MLP written by `save(to:)` from `folder` (`config.json` and `model.safetensors`).
    ///
    /// - Throws: `WinnowError.missingFile` when the folder, config.json or model.safetensors is missing;
    ///   `WinnowError.invalidFile` when config.json is not an object or a field is missing or mistyped;
    ///   `WinnowError.invalidTensor` when a tensor is missing or its shape disagrees with config.json.
    public convenience init(folder: URL) throws {
        let cfgURL = folder.appendingPathComponent("config.json")
        guard let d = try? Data(contentsOf: cfgURL) else { throw WinnowError.missingFile(path: cfgURL.path, reason: "no config.json here") }
        guard let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw WinnowError.invalidFile(path: cfgURL.path, line: nil, reason: "not a JSON object")
        }
        func bad(_ k: String) -> WinnowError { .invalidFile(path: cfgURL.path, line: nil, reason: "field '\(k)' missing or mistyped") }
        guard let input = o["input_size"] as? Int, input > 0 else { throw bad("input_size") }
        guard let hidden = o["hidden_sizes"] as? [Int] else { throw bad("hidden_sizes") }
        guard let id2 = o["id2label"] as? [String: String] else { throw bad("id2label") }
        let labels = (0..<id2.count).compactMap { id2[String($0)] }
        guard labels.count == id2.count else { throw bad("id2label") }
        self.init(inputSize: input, hidden: hidden, labels: labels, seed: 0, featureNames: o["feature_names"] as? [String] ?? [])
        guard let mean = (o["feature_mean"] as? [NSNumber])?.map({ $0.floatValue }), mean.count == input else { throw bad("feature_mean") }
        guard let std = (o["feature_std"] as? [NSNumber])?.map({ $0.floatValue }), std.count == input else { throw bad("feature_std") }
        featureMean = mean
        featureStd = std
        let file = try SafeTensorsFile(url: try BertClassifier.weightsFile(in: folder))
        for (i, name) in parameters.names.enumerated() {
            let t = try file.tensor(name)
            guard t.shape == parameters[i].shape else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason: "shape \(t.shape) disagrees with config.json, which gives \(parameters[i].shape)")
            }
            parameters[i] = t
        }
    }
}
