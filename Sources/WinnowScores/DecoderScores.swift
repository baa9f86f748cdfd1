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
/// With `options.lengthNeutral` GraNd is multiplied by sqrt(n) and self-influence by n, n the example's
/// target tokens, so that the mean loss's averaging over n tokens does not rank long examples low.
/// Gradient norms come from per-layer factors (Gram form), never from materialised per-example gradients.
///
///     let r = try DecoderScores.score(.grand, model: URL(fileURLWithPath: "models/smollm2"), data: url, options: o)
public enum DecoderScores {
    /// The methods available on decoders.
    public static let methods: [ScoreMethod] = [.loss, .el2n, .grand, .tracin, .vog]

    /// The models a decoder score averages over: a run's chosen checkpoints (a `winnow train` run of a
    /// decoder: adapter or model folders) with their learning rates eta_k, or one model with eta =
    /// `options.learningRate` (default 1).
    struct Models {
        var models: [any DecoderScoring]
        var eta: [Double]
        var steps: [Int]
        var tokenizerFolder: URL
    }

    /// `firstOnly`: load only the first chosen checkpoint (what the tokenizer, vocabulary and length checks need).
    static func load(_ url: URL, options o: ScoreOptions, firstOnly: Bool = false) throws -> Models {
        func decoder(_ u: URL) throws -> any DecoderScoring {
            guard let m = try ModelLoader.causalLM(u, base: o.adapterBase) as? any DecoderScoring else {
                throw WinnowError.invalidFile(path: u.path, line: nil, reason: "this causal language model cannot be scored")
            }
            return m
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            let run = try RunFolder(url: url)
            if !run.checkpoints.isEmpty {
                let cks = try run.select(o.checkpoints)
                let eta = try o.learningRate.map { lr in cks.map { _ in lr } } ?? cks.map { try run.learningRate(of: $0) }
                // The tokenizer of the first chosen checkpoint, else the run's own (a transformers.Trainer run may
                // save it at the root only), else the adapter's base.
                let own = ([cks[0].url, url] + run.checkpoints.map(\.url)).first { dir in
                    ["tokenizer.json", "vocab.txt"].contains { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }
                }
                return Models(models: try (firstOnly ? [cks[0]] : cks).map { try decoder($0.url) }, eta: eta, steps: cks.map(\.step),
                              tokenizerFolder: try own ?? ModelLoader.tokenizerFolder(cks[0].url, base: o.adapterBase))
            }
        }
        if o.checkpoints != .all {
            throw WinnowError.invalidOption(name: "checkpoints", reason: "\(url.path) is one model without checkpoints; --checkpoints chooses among a run's")
        }
        return Models(models: [try decoder(url)], eta: [o.learningRate ?? 1], steps: [],
                      tokenizerFolder: try ModelLoader.tokenizerFolder(url, base: o.adapterBase))
    }

    /// Scores of every example of `data` (a JSONL file of `text`, `prompt` + `completion` or `messages`;
    /// labels are optional and kept for pruning by class), averaged over the run's chosen checkpoints
    /// (`tracin` sums eta_k ||g_k||^2; `vog` needs at least two).
    ///
    /// - Throws: `WinnowError.invalidOption` for a method decoders do not offer or a selection that
    ///   matches no tensor; `WinnowError.invalidFile` naming the file and line of a bad example.
    public static func score(_ method: ScoreMethod, model url: URL, data: URL, fields: FieldNames = FieldNames(),
                             options o: ScoreOptions) throws -> ScoreResult {
        try o.inPrecision(method) { try scoreInPrecision(method, model: url, data: data, fields: fields, options: o) }
    }

    static func scoreInPrecision(_ method: ScoreMethod, model url: URL, data: URL, fields: FieldNames, options o: ScoreOptions) throws -> ScoreResult {
        guard methods.contains(method) else {
            throw WinnowError.invalidOption(name: "method", reason:
                "'\(method)' is not available for causal language models yet (\(methods.map(\.rawValue).joined(separator: ", ")) are)")
        }
        guard o.space == .params else {
            throw WinnowError.invalidOption(name: "space", reason: "a causal language model's gradients are taken with respect to its parameters (--space params)")
        }
        if method == .vog && o.vogTarget == .predicted {
            throw WinnowError.invalidOption(name: "target", reason: "a causal language model's VoG follows each example's target tokens; --target predicted is for classifiers")
        }
        if o.lengthNeutral && method != .grand && method != .tracin {
            throw WinnowError.invalidOption(name: "lengthNeutral", reason: "scales the gradient scores (grand, tracin self-influence), not '\(method)'")
        }
        let set = try load(url, options: o)
        let models = set.models, K = Double(models.count)
        if method == .vog && models.count < 2 {
            throw WinnowError.invalidOption(name: "checkpoints", reason:
                "VoG is a variance over checkpoints and needs at least two; " + (set.steps.isEmpty
                    ? "\(url.path) is one model (score a `winnow train` run with checkpoints)" : "--checkpoints chose one of \(url.path)'s"))
        }
        let maxLength = min(o.maxLength, models[0].maxSequenceLength)
        let encoder = try DecoderEncoder(folder: set.tokenizerFolder, maxLength: maxLength, modelVocabulary: models.map(\.vocabularySize).min())
        let gradient = method == .grand || method == .tracin
        // Resolved per checkpoint: a run's checkpoints may differ in tensors (a base model, then adapters).
        let selections = gradient ? try models.map { try ParameterSelection(o.params, layout: $0.parameterLayout) } : []
        let projector = method == .tracin ? o.projectDim.map { GradientProjector(dim: $0, seed: o.seed) } : nil
        // A part of the file (a resumable part, a shard) names labels as the whole file does.
        var table = ExampleTable(labelNames: o.exampleRange == nil ? [] : try labelNames(data, fields: fields))
        var scores: [Double] = [], losses: [Double] = [], tokens: [Double] = []
        try batches(data, fields: fields, encoder: encoder, options: o, table: &table, range: o.exampleRange) { batch, targets in
            let T = batch.length
            tokens += (0..<batch.size).map { b in Double(targets[(b * T)..<((b + 1) * T)].filter { $0 >= 0 }.count) }
            var s = [Double](repeating: 0, count: batch.size), l = [Double](repeating: 0, count: batch.size)
            switch method {
            case .loss, .el2n:
                for model in models {
                    let r = model.targetScores(batch, targets: targets)
                    for b in 0..<batch.size { s[b] += (method == .loss ? r.losses[b] : r.el2n[b]) / K; l[b] += r.losses[b] / K }
                }
            case .vog:
                s = vog(models, batch: batch, targets: targets)
            default:
                for (k, model) in models.enumerated() {
                    model.perExampleLossBackward(batch, targets: targets, selection: selections[k])
                    let f = model.gradientFactors(batch, selection: selections[k])
                    let sq = TracIn.squaredGradientNorms(f, projector: projector).map(Double.init)
                    for b in 0..<batch.size { s[b] += method == .grand ? sq[b].squareRoot() / K : set.eta[k] * sq[b] }
                }
            }
            if o.lengthNeutral {
                let n = tokens.suffix(batch.size)
                for (b, count) in zip(s.indices, n) { s[b] *= method == .grand ? count.squareRoot() : count }
            }
            scores += s
            losses += l
        }
        var r = ScoreResult(method: method, scores: scores, table: table)
        r.components = method == .el2n ? [("loss", losses), ("tokens", tokens)] : [("tokens", tokens)]
        let over = "each example's target tokens (at most \(maxLength) tokens an example; an example without one scores 0)"
            + (set.steps.isEmpty ? "" : ", over checkpoint(s) \(set.steps.map(String.init).joined(separator: ","))")
        switch method {
        case .loss: r.notes = ["loss = mean next-token cross-entropy (nats) over " + over]
        case .el2n: r.notes = ["EL2N = mean ||softmax(z) - onehot(y)||_2 over " + over]
        case .vog: r.notes = ["VoG = mean over the example's real tokens (prompt included) and dims of sqrt(variance over checkpoints) of "
                              + "d(mean target logit) / d inputs_embeds, the target logits those of " + over]
        case .grand: r.notes = ["GraNd = ||d loss / d theta||_2 of the mean loss over \(over), over \(selections.last!.names.count) tensor(s) (--params \(o.params))"]
        default:
            r.notes = ["self-influence = sum_k eta_k ||d loss / d theta||^2 with eta = \(set.eta.map { String(format: "%.3g", $0) }.joined(separator: ",")) of the mean loss over \(over), over \(selections.last!.names.count) tensor(s) (--params \(o.params))"]
            if let p = o.projectDim { r.notes.append("approximate: gradients randomly projected (--project \(p), seed \(o.seed))") }
        }
        r.notes = withNoTokenNote(r.notes, count: tokens.filter { $0 == 0 }.count)
        if o.lengthNeutral { r.notes.append("length-neutral: each score times its target-token count n (\(method == .grand ? "GraNd times sqrt(n)" : "self-influence times n"); the tokens column)") }
        return r
    }

    static let noTokenNoteSuffix = "have no scored token (tokens 0) and score 0: `winnow prune` never keeps them"

    /// `notes` with the note on examples without a scored token replaced by one for `count` examples
    /// (none when 0): parts of a resumable scoring each count their own.
    static func withNoTokenNote(_ notes: [String], count: Int) -> [String] {
        notes.filter { !$0.hasSuffix(noTokenNoteSuffix) } + (count > 0 ? ["\(count) example(s) " + noTokenNoteSuffix] : [])
    }

    /// VoG of each example of `batch`: Welford over the checkpoints of the input-embedding gradient of
    /// its mean target logit, then the mean over its real tokens and dims of the standard deviation.
    static func vog(_ models: [any DecoderScoring], batch: Batch, targets: [Int32]) -> [Double] {
        var mean = Tensor(shape: [0]), m2 = Tensor(shape: [0])
        for (k, model) in models.enumerated() {
            let g = model.targetLogitInputGradients(batch, targets: targets)
            if k == 0 { mean = Tensor(shape: g.shape); m2 = Tensor(shape: g.shape) }
            ck_vog_accumulate(mean.mptr, m2.mptr, g.ptr, g.count, Int32(k + 1))
        }
        let C = mean.shape.count > 1 ? mean.shape[1] : 1
        var out = [Double](repeating: 0, count: batch.size)
        var row = 0
        for b in 0..<batch.size {
            let n = batch.realLength(b)
            if n > 0 { out[b] = ck_vog_sum_std(m2.ptr + row * C, n * C, Int32(models.count)) / Double(n * C) }
            row += n
        }
        return out
    }

    /// Influence of every training example on every example of a target (test) file, [N_test][N_train]:
    /// sum over the run's chosen checkpoints of eta_k times the dot product (or cosine) of their loss
    /// gradients over the tensors `options.params` selects (one model: eta = `options.learningRate`,
    /// default 1); randomly projected with `options.projectDim`. The target set's gradient factors are
    /// kept in memory; the training file is streamed once.
    ///
    /// - Throws: `WinnowError` as `score` does, for either file; `WinnowError.invalidFile` naming a target example
    ///   without a scored token (it has no gradient).
    public static func trainToTest(model url: URL, train: URL, test: URL, fields: FieldNames = FieldNames(), options o: ScoreOptions,
                                   similarity: Similarity = .dot) throws -> (matrix: [[Float]], train: ExampleTable, test: ExampleTable) {
        try o.inPrecision(.tracin) { try trainToTestF32(model: url, train: train, test: test, fields: fields, options: o, similarity: similarity) }
    }

    static func trainToTestF32(model url: URL, train: URL, test: URL, fields: FieldNames, options o: ScoreOptions,
                               similarity: Similarity) throws -> (matrix: [[Float]], train: ExampleTable, test: ExampleTable) {
        let set = try load(url, options: o)
        let models = set.models, K = models.count
        let encoder = try DecoderEncoder(folder: set.tokenizerFolder, maxLength: min(o.maxLength, models[0].maxSequenceLength),
                                         modelVocabulary: models.map(\.vocabularySize).min())
        let selections = try models.map { try ParameterSelection(o.params, layout: $0.parameterLayout) }
        let projector = o.projectDim.map { GradientProjector(dim: $0, seed: o.seed) }
        // Target side, per checkpoint: factors (or projected gradients) and norms of every target example.
        var testFactors = [[(Batch, GradientFactors)]](repeating: [], count: K), testProjected = [[(Batch, Tensor)]](repeating: [], count: K)
        var testNorm = [[Float]](repeating: [], count: K)
        var testTable = ExampleTable(labelNames: [])
        struct NoScoredToken: Error { let index: Int }
        do {
            try batches(test, fields: fields, encoder: encoder, options: o, table: &testTable) { batch, targets in
                // A target example without a scored token has no gradient: it would match nothing and dilute a mean.
                for b in 0..<batch.size where !targets[(b * batch.length)..<((b + 1) * batch.length)].contains(where: { $0 >= 0 }) {
                    throw NoScoredToken(index: batch.indices[b])
                }
                for (k, model) in models.enumerated() {
                    model.perExampleLossBackward(batch, targets: targets, selection: selections[k])
                    let f = model.gradientFactors(batch, selection: selections[k])
                    testNorm[k] += similarity == .cosine ? TracIn.gradientNorms(f, projector: projector) : [Float](repeating: 1, count: batch.size)
                    if let projector { testProjected[k].append((batch, projector.project(f))) } else { testFactors[k].append((batch, f)) }
                }
            }
        } catch let e as NoScoredToken {
            throw WinnowError.invalidFile(path: test.path, line: testTable.lines[e.index], reason:
                "has no scored token (empty text, or cut by --max-length): a target example needs one to have a gradient")
        }
        var matrix = [[Float]](repeating: [], count: testTable.count)
        var trainTable = ExampleTable(labelNames: [])
        try batches(train, fields: fields, encoder: encoder, options: o, table: &trainTable) { batch, targets in
            var total = [Float](repeating: 0, count: testTable.count * batch.size)
            for (k, model) in models.enumerated() {
                model.perExampleLossBackward(batch, targets: targets, selection: selections[k])
                let f = model.gradientFactors(batch, selection: selections[k])
                let trainNorm = similarity == .cosine ? TracIn.gradientNorms(f, projector: projector) : [Float](repeating: 1, count: batch.size)
                var block = [Float](repeating: 0, count: testTable.count * batch.size)
                block.withUnsafeMutableBufferPointer { out in
                    if let projector {
                        let v = projector.project(f)
                        let d = v.shape[1]
                        for (tb, tv) in testProjected[k] {
                            ck_gemm(out.baseAddress! + tb.indices[0] * batch.size, Int32(batch.size), tv.ptr, Int32(d), v.ptr, Int32(d),
                                    Int32(tb.size), Int32(batch.size), Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
                        }
                    } else {
                        for (tb, tf) in testFactors[k] { tf.addDots(with: f, into: out.baseAddress! + tb.indices[0] * batch.size, ldo: batch.size, scale: 1) }
                    }
                }
                let eta = Float(set.eta[k])
                for i in 0..<testTable.count {
                    for j in 0..<batch.size {
                        total[i * batch.size + j] += eta * block[i * batch.size + j] / max(testNorm[k][i] * trainNorm[j], .leastNormalMagnitude)
                    }
                }
            }
            for i in 0..<testTable.count { matrix[i] += total[(i * batch.size)..<((i + 1) * batch.size)] }
        }
        return (matrix, trainTable, testTable)
    }

    /// Encodes every example of `data` in `range` (all without one) and keeps nothing: a bad example (a
    /// prompt that leaves no completion token, messages the chat template refuses, an id the model has
    /// no row for) fails before any part is scored, not after hours of work.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and line of the first bad example.
    static func checkEncodings(model url: URL, data: URL, fields: FieldNames, options o: ScoreOptions, range: Range<Int>?) throws {
        let set = try load(url, options: o, firstOnly: true)   // checkpoints of one run share the vocabulary and length
        let modelLimit = set.models[0].maxSequenceLength
        if let note = DecoderEncoder.lengthNote(given: o.maxLength, modelLimit: modelLimit) { o.reporter.note(note) }
        let encoder = try DecoderEncoder(folder: set.tokenizerFolder, maxLength: min(o.maxLength, modelLimit),
                                         modelVocabulary: set.models.map(\.vocabularySize).min())
        var reader = try JSONLReader(url: data, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        let bar = o.reporter.start("checking " + data.lastPathComponent, total: max(1, reader.fileSize), unit: "B")
        var seen = 0, last = 0, atLimit = 0, checked = 0
        while let all = try reader.next(upTo: 1024) {
            for (i, ex) in all.enumerated() where range?.contains(seen + i) ?? true {
                if try encoder.encode(ex, url: data).ids.count >= encoder.maxLength { atLimit += 1 }
                checked += 1
            }
            seen += all.count
            bar.advance(by: reader.bytesRead - last, note: "")
            last = reader.bytesRead
            if let r = range, seen >= r.upperBound { break }
        }
        bar.finish(note: "\(seen) examples")
        // As `winnow train` says it: an example cut at the limit loses its end, a completion's included.
        if atLimit > 0 {
            o.reporter.note("note: \(atLimit) of \(checked) examples reach the limit of \(encoder.maxLength) tokens: longer ones are cut there, "
                            + "and their ends (completions included) are not scored; " + DecoderEncoder.limitAdvice(given: o.maxLength, modelLimit: modelLimit))
        }
    }

    /// The labels of `url`'s examples in order of first appearance (the order `batches` names them in
    /// when it reads the whole file), read without tokenizing.
    static func labelNames(_ url: URL, fields: FieldNames) throws -> [String] {
        var reader = try JSONLReader(url: url, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        var names: [String] = [], seen: Set<String> = []
        while let chunk = try reader.next(upTo: 1 << 14) {
            for l in chunk.compactMap(\.label) where seen.insert(l).inserted { names.append(l) }
        }
        return names
    }

    /// Streams `url` as padded batches of encoded examples (batch indices are positions in `table`,
    /// consecutive), appending each example to `table`; labels not in `table.labelNames` are added in
    /// order of appearance. With `range`, only the examples at those positions of the file (the others
    /// are read, not tokenized). Progress goes to the job's bar (`options.progress`, in examples) when
    /// there is one, else to a bar over the file's bytes.
    static func batches(_ url: URL, fields: FieldNames, encoder: DecoderEncoder, options o: ScoreOptions, table: inout ExampleTable,
                        range: Range<Int>? = nil, _ body: (Batch, [Int32]) throws -> Void) throws {
        var reader = try JSONLReader(url: url, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        var labelIndex = Dictionary(table.labelNames.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { a, _ in a })
        let outer = o.progress
        let bar = outer == nil ? o.reporter.start(url.lastPathComponent, total: max(1, reader.fileSize), unit: "B") : nil
        var last = 0, seen = 0
        while let all = try reader.next(upTo: 1024) {
            var chunk = all[...]
            if let r = range {
                let lo = max(0, r.lowerBound - seen), hi = min(all.count, max(0, r.upperBound - seen))
                seen += all.count
                if lo >= hi {
                    bar?.advance(by: reader.bytesRead - last, note: "\(table.count) examples")
                    last = reader.bytesRead
                    if seen >= r.upperBound { break } else { continue }
                }
                chunk = all[lo..<hi]
            }
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
                                  padID: encoder.padID)
                try body(batch, part.flatMap { $0.targets(length: batch.length) })
                outer?.advance(by: part.count, note: "")
            }
            bar?.advance(by: reader.bytesRead - last, note: "\(table.count) examples")
            last = reader.bytesRead
        }
        bar?.finish(note: "\(table.count) examples")
    }
}
