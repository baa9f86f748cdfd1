import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Per-example scores on a causal language model (a Llama-family decoder: SmolLM2, Llama, Qwen2), over
/// the tokens each example's loss is on (docs/contracts.md §2b: every token of a `text`, the completion
/// of a `prompt` + `completion`, the assistant turns of ChatML `messages`):
/// - `loss`: the mean next-token cross-entropy in nats (the perplexity filter; Marion et al. 2023);
/// - `el2n`: the mean over target tokens of ||softmax(z) - onehot(y)||_2;
/// - `grand`: ||d loss / d theta_S||_2 over the tensors `options.params` selects;
/// - `tracin`: self-influence eta ||d loss / d theta_S||^2 (eta = `options.learningRate`, default 1),
///   optionally randomly projected (`options.projectDim`).
/// Gradient norms come from per-layer factors (Gram form), never from materialised per-example gradients.
///
///     let r = try DecoderScores.score(.grand, model: URL(fileURLWithPath: "models/smollm2"), data: url, options: o)
public enum DecoderScores {
    /// The methods available on decoders.
    public static let methods: [ScoreMethod] = [.loss, .el2n, .grand, .tracin]

    /// Scores of every example of `data` (a JSONL file of `text`, `prompt` + `completion` or `messages`;
    /// labels are optional and kept for pruning by class).
    ///
    /// - Throws: `WinnowError.invalidOption` for a method decoders do not offer or a selection that
    ///   matches no tensor; `WinnowError.invalidFile` naming the file and line of a bad example.
    public static func score(_ method: ScoreMethod, model url: URL, data: URL, fields: FieldNames = FieldNames(),
                             options o: ScoreOptions) throws -> ScoreResult {
        guard methods.contains(method) else {
            throw WinnowError.invalidOption(name: "method", reason:
                "'\(method)' is not available for causal language models yet (\(methods.map(\.rawValue).joined(separator: ", ")) are)")
        }
        guard let model = try ModelLoader.causalLM(url, base: o.adapterBase) as? any DecoderScoring else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "this causal language model cannot be scored")
        }
        let maxLength = min(o.maxLength, model.maxSequenceLength)
        let encoder = try DecoderEncoder(folder: try ModelLoader.tokenizerFolder(url, base: o.adapterBase), maxLength: maxLength)
        let gradient = method == .grand || method == .tracin
        let selection = gradient ? try ParameterSelection(o.params, layout: model.parameterLayout) : nil
        let projector = method == .tracin ? o.projectDim.map { GradientProjector(dim: $0, seed: o.seed) } : nil
        let eta = o.learningRate ?? 1
        var table = ExampleTable(labelNames: [])
        var scores: [Double] = [], losses: [Double] = [], tokens: [Double] = []
        try batches(data, fields: fields, encoder: encoder, options: o, table: &table) { batch, targets in
            let T = batch.length
            tokens += (0..<batch.size).map { b in Double(targets[(b * T)..<((b + 1) * T)].filter { $0 >= 0 }.count) }
            switch method {
            case .loss, .el2n:
                let r = model.targetScores(batch, targets: targets)
                scores += method == .loss ? r.losses : r.el2n
                losses += r.losses
            default:
                model.perExampleLossBackward(batch, targets: targets, selection: selection!)
                let f = model.gradientFactors(batch, selection: selection!)
                let norms = TracIn.gradientNorms(f, projector: projector).map(Double.init)
                scores += norms.map { method == .grand ? $0 : eta * $0 * $0 }
            }
        }
        var r = ScoreResult(method: method, scores: scores, table: table)
        r.components = method == .el2n ? [("loss", losses), ("tokens", tokens)] : [("tokens", tokens)]
        let over = "each example's target tokens (at most \(maxLength) tokens an example; an example without one scores 0)"
        switch method {
        case .loss: r.notes = ["loss = mean next-token cross-entropy (nats) over " + over]
        case .el2n: r.notes = ["EL2N = mean ||softmax(z) - onehot(y)||_2 over " + over]
        case .grand: r.notes = ["GraNd = ||d loss / d theta||_2 of the mean loss over \(over), over \(selection!.names.count) tensor(s) (--params \(o.params))"]
        default:
            r.notes = ["self-influence = eta ||d loss / d theta||^2 with eta = \(eta) of the mean loss over \(over), over \(selection!.names.count) tensor(s) (--params \(o.params))"]
            if let p = o.projectDim { r.notes.append("approximate: gradients randomly projected (--project \(p), seed \(o.seed))") }
        }
        return r
    }

    /// Influence of every training example on every example of a target (test) file, [N_test][N_train]:
    /// the dot product (or cosine) of their loss gradients over the tensors `options.params` selects,
    /// times eta (`options.learningRate`, default 1); randomly projected with `options.projectDim`. The
    /// target set's gradient factors are kept in memory; the training file is streamed once.
    ///
    /// - Throws: `WinnowError` as `score` does, for either file.
    public static func trainToTest(model url: URL, train: URL, test: URL, fields: FieldNames = FieldNames(), options o: ScoreOptions,
                                   similarity: Similarity = .dot) throws -> (matrix: [[Float]], train: ExampleTable, test: ExampleTable) {
        guard let model = try ModelLoader.causalLM(url, base: o.adapterBase) as? any DecoderScoring else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "this causal language model cannot be scored")
        }
        let encoder = try DecoderEncoder(folder: try ModelLoader.tokenizerFolder(url, base: o.adapterBase), maxLength: min(o.maxLength, model.maxSequenceLength))
        let selection = try ParameterSelection(o.params, layout: model.parameterLayout)
        let projector = o.projectDim.map { GradientProjector(dim: $0, seed: o.seed) }
        let eta = Float(o.learningRate ?? 1)
        // Target side: factors (or projected gradients) and norms of every target example.
        var testFactors: [(Batch, GradientFactors)] = [], testProjected: [(Batch, Tensor)] = []
        var testNorm: [Float] = []
        var testTable = ExampleTable(labelNames: [])
        try batches(test, fields: fields, encoder: encoder, options: o, table: &testTable) { batch, targets in
            model.perExampleLossBackward(batch, targets: targets, selection: selection)
            let f = model.gradientFactors(batch, selection: selection)
            testNorm += similarity == .cosine ? TracIn.gradientNorms(f, projector: projector) : [Float](repeating: 1, count: batch.size)
            if let projector { testProjected.append((batch, projector.project(f))) } else { testFactors.append((batch, f)) }
        }
        var matrix = [[Float]](repeating: [], count: testTable.count)
        var trainTable = ExampleTable(labelNames: [])
        try batches(train, fields: fields, encoder: encoder, options: o, table: &trainTable) { batch, targets in
            model.perExampleLossBackward(batch, targets: targets, selection: selection)
            let f = model.gradientFactors(batch, selection: selection)
            let trainNorm = similarity == .cosine ? TracIn.gradientNorms(f, projector: projector) : [Float](repeating: 1, count: batch.size)
            var block = [Float](repeating: 0, count: testTable.count * batch.size)
            block.withUnsafeMutableBufferPointer { out in
                if let projector {
                    let v = projector.project(f)
                    let d = v.shape[1]
                    for (tb, tv) in testProjected {
                        ck_gemm(out.baseAddress! + tb.indices[0] * batch.size, Int32(batch.size), tv.ptr, Int32(d), v.ptr, Int32(d),
                                Int32(tb.size), Int32(batch.size), Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), eta, 0)
                    }
                } else {
                    for (tb, tf) in testFactors { tf.addDots(with: f, into: out.baseAddress! + tb.indices[0] * batch.size, ldo: batch.size, scale: eta) }
                }
            }
            for i in 0..<testTable.count {
                for j in 0..<batch.size {
                    matrix[i].append(block[i * batch.size + j] / max(testNorm[i] * trainNorm[j], .leastNormalMagnitude))
                }
            }
        }
        return (matrix, trainTable, testTable)
    }

    /// Streams `url` as padded batches of encoded examples (batch indices are positions in the file's
    /// examples, consecutive), appending each example to `table`.
    static func batches(_ url: URL, fields: FieldNames, encoder: DecoderEncoder, options o: ScoreOptions, table: inout ExampleTable,
                        _ body: (Batch, [Int32]) throws -> Void) throws {
        var reader = try JSONLReader(url: url, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        var labelIndex: [String: Int32] = [:]
        let bar = o.reporter.start(url.lastPathComponent, total: max(1, reader.fileSize), unit: "B")
        var last = 0
        while let chunk = try reader.next(upTo: 1024) {
            var encs: [DecoderEncoding] = []
            for ex in chunk {
                encs.append(try encoder.encode(ex, url: url))
                var y: Int32 = -1
                if let l = ex.label {
                    if labelIndex[l] == nil { labelIndex[l] = Int32(table.labelNames.count); table.labelNames.append(l) }
                    y = labelIndex[l]!
                }
                table.labels.append(y); table.lines.append(ex.line); table.ids.append(ex.id)
            }
            let base = table.count - encs.count
            for start in stride(from: 0, to: encs.count, by: o.batchSize) {
                let part = Array(encs[start..<min(encs.count, start + o.batchSize)])
                let batch = Batch(encodings: part.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                                  labels: [Int32](repeating: -1, count: part.count), indices: Array((base + start)..<(base + start + part.count)),
                                  padID: encoder.tokenizer.padID)
                try body(batch, part.flatMap { $0.targets(length: batch.length) })
            }
            bar.advance(by: reader.bytesRead - last, note: "\(table.count) examples")
            last = reader.bytesRead
        }
        bar.finish(note: "\(table.count) examples")
    }
}
