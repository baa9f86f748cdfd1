import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// TracIn (Pruthi et al. 2020): TracIn(z, z') = sum_k eta_k g_k(z) . g_k(z'), g_k = dCE/dtheta_S at
/// checkpoint k. Self-influence is TracIn(z, z). Dot products come from per-layer gradient factors
/// (Gram form), never from materialised per-example gradients.
///
///     let selfInfluence = try TracIn.selfInfluence(scoringRun)
///     let (matrix, _) = try TracIn.trainToTest(scoringRun, test: testData)   // testData: EncodedDataset; [N_test][N_train]
public enum TracIn {
    static func selection(_ sr: ScoringRun) throws -> ParameterSelection {
        try ParameterSelection(sr.options.params, layout: sr.models[0].parameterLayout)
    }

    /// Self-influence sum_k eta_k ||g_k||^2 of every used example, randomly projected when `options.projectDim`
    /// is set.
    ///
    /// - Throws: `WinnowError` when `options.params` matches no tensor, a checkpoint has no logged learning rate
    ///   and `options.learningRate` is nil, the data file is missing or malformed, or an example has no label.
    public static func selfInfluence(_ sr: ScoringRun) throws -> ScoreResult {
        try sr.options.inPrecision(.tracin) { try selfInfluenceF32(sr) }
    }

    static func selfInfluenceF32(_ sr: ScoringRun) throws -> ScoreResult {
        let sel = try selection(sr)
        let eta = try sr.learningRates()
        var out: [Double] = []
        let projector = sr.options.projectDim.map { GradientProjector(dim: $0, seed: sr.options.seed) }
        let table = try sr.stream("tracin") { batch in
            ensureCount(&out, batch.indices.max()! + 1)
            for (k, model) in sr.models.enumerated() {
                model.perExampleLossBackward(batch)
                let sq = squaredGradientNorms(model.gradientFactors(batch, selection: sel, space: sr.options.space), projector: projector)
                for b in 0..<batch.size { out[batch.indices[b]] += eta[k] * Double(sq[b]) }
            }
        }
        var r = ScoreResult(method: .tracin, scores: out, table: table)
        if let p = sr.options.projectDim { r.notes.append("approximate: gradients randomly projected (--project \(p), seed \(sr.options.seed))") }
        r.notes.insert("self-influence = sum_k eta_k ||g_k||^2 over \(sr.models.count) checkpoint(s), eta = \(eta.map { String(format: "%.3g", $0) }.joined(separator: ",")); params: \(sr.options.space == .lastHidden ? "the head's input (pooled [CLS] vector, or a decoder's last real token)" : sel.spec.description)", at: 0)
        return r
    }

    /// Influence of every training example on every test example: [N_test][N_train], sum_k eta_k of
    /// the checkpoint's gradient dot product, or of its cosine with `similarity` `.cosine` (LESS).
    /// The test set is split into blocks whose gradient factors fit in `memoryLimit`; the training data
    /// is streamed once per block.
    public static func trainToTest(_ train: ScoringRun, test: EncodedDataset, similarity: Similarity = .dot) throws -> (matrix: [[Float]], train: ExampleTable) {
        try train.options.inPrecision(.tracin) { try trainToTestF32(train, test: test, similarity: similarity) }
    }

    static func trainToTestF32(_ train: ScoringRun, test: EncodedDataset, similarity: Similarity) throws -> (matrix: [[Float]], train: ExampleTable) {
        let cosine = similarity == .cosine
        let sel = try selection(train)
        let eta = try train.learningRates()
        let nTest = test.count
        var matrix = [[Float]](repeating: [], count: nTest)
        var trainTable = ExampleTable(labelNames: train.labelNames)
        // Estimate the factor memory of one test example from one batch.
        let c = train.models[0].dimensions
        let perToken = 4 * (c.layers * (8 * c.hidden + 2 * c.intermediate) + 4 * c.hidden)
        let perExample = perToken * train.options.maxLength * train.models.count
        let blockSize = max(train.options.batchSize, min(nTest, (train.options.memoryLimit / 2) / max(perExample, 1)))
        let projector = train.options.projectDim.map { GradientProjector(dim: $0, seed: train.options.seed) }
        // One bar over the whole job: the training file is streamed once per block of test examples.
        let blocks = (nTest + blockSize - 1) / blockSize
        try Scorer.requireRegularFile(train.dataURL)
        let nTrain = try Scorer.countExamples(train.dataURL, fields: train.fields)
        let bar = train.options.reporter.start("tracin --test", total: max(1, blocks * nTrain), unit: "ex")
        var train = train
        train.options.progress = bar
        for blockStart in stride(from: 0, to: nTest, by: blockSize) {
            let blockIdx = Array(blockStart..<min(nTest, blockStart + blockSize))
            // Test factors for this block, per checkpoint.
            var testFactors: [[(Batch, GradientFactors)]] = Array(repeating: [], count: train.models.count)
            var testProjected: [[(Batch, Tensor)]] = Array(repeating: [], count: train.models.count)
            // Per checkpoint, each test example's gradient norm (cosine only).
            var testNorm = [[Float]](repeating: [Float](repeating: 1, count: nTest), count: train.models.count)
            for tb in test.batches(size: train.options.batchSize, order: blockIdx) {
                for (k, model) in train.models.enumerated() {
                    model.perExampleLossBackward(tb)
                    let f = model.gradientFactors(tb, selection: sel, space: train.options.space)
                    if cosine {
                        for (b, n) in gradientNorms(f, projector: projector).enumerated() { testNorm[k][tb.indices[b]] = n }
                    }
                    if let projector { testProjected[k].append((tb, projector.project(f))) } else { testFactors[k].append((tb, f)) }
                }
            }
            trainTable = try train.stream("tracin --test") { batch in
                let need = batch.indices.max()! + 1
                for i in blockIdx where matrix[i].count < need { matrix[i] += [Float](repeating: 0, count: need - matrix[i].count) }
                for (k, model) in train.models.enumerated() {
                    model.perExampleLossBackward(batch)
                    let f = model.gradientFactors(batch, selection: sel, space: train.options.space)
                    let trainNorm = cosine ? gradientNorms(f, projector: projector) : [Float](repeating: 1, count: batch.size)
                    func scale(_ i: Int, _ j: Int) -> Float { 1 / max(testNorm[k][i] * trainNorm[j], .leastNormalMagnitude) }
                    if let projector {
                        let v = projector.project(f)
                        let d = v.shape[1]
                        for (tb, tv) in testProjected[k] {
                            var block = Tensor(shape: [tb.size, batch.size])
                            ck_gemm(block.mptr, Int32(batch.size), tv.ptr, Int32(d), v.ptr, Int32(d), Int32(tb.size), Int32(batch.size),
                                    Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), Float(eta[k]), 0)
                            for i in 0..<tb.size {
                                for j in 0..<batch.size { matrix[tb.indices[i]][batch.indices[j]] += block[i, j] * scale(tb.indices[i], j) }
                            }
                        }
                        continue
                    }
                    for (tb, tf) in testFactors[k] {
                        var block = [Float](repeating: 0, count: tb.size * batch.size)
                        block.withUnsafeMutableBufferPointer { tf.addDots(with: f, into: $0.baseAddress!, ldo: batch.size, scale: Float(eta[k])) }
                        for i in 0..<tb.size {
                            for j in 0..<batch.size { matrix[tb.indices[i]][batch.indices[j]] += block[i * batch.size + j] * scale(tb.indices[i], j) }
                        }
                    }
                }
            }
        }
        bar.finish(note: "\(nTest) test x \(trainTable.count) training examples\(blocks > 1 ? " in \(blocks) blocks" : "")")
        return (matrix, trainTable)
    }

    /// Each example's squared gradient norm from its factors (of the projected gradient with a projector).
    static func squaredGradientNorms(_ f: GradientFactors, projector: GradientProjector?) -> [Float] {
        var sq = [Float](repeating: 0, count: f.count)
        if let projector {
            let v = projector.project(f)
            let d = v.shape[1]
            for b in 0..<f.count { sq[b] = Float(ck_sum_squares(v.ptr + b * d, d)) }
        } else {
            f.addNorms(into: &sq, scale: 1)
        }
        return sq
    }

    /// Each example's gradient norm from its factors (of the projected gradient with a projector).
    static func gradientNorms(_ f: GradientFactors, projector: GradientProjector?) -> [Float] {
        squaredGradientNorms(f, projector: projector).map { $0.squareRoot() }
    }
}

/// How train-to-test influence compares two examples' gradients: their dot product (TracIn) or their
/// cosine (LESS, Xia et al. 2024), per checkpoint, weighted by its learning rate.
public enum Similarity: String, CaseIterable, Sendable, Codable {
    /// g(train) . g(test).
    case dot
    /// g(train) . g(test) / (||g(train)|| ||g(test)||).
    case cosine
}
