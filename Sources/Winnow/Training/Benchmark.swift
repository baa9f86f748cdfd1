import CKernels
import Foundation

/// End-to-end throughput measurements behind `winnow bench` (never used by tests: speed lives in benchmarks).
///
///     let r = Benchmark.run(layers: 4, hidden: 512, heads: 8, seqLen: 128, batchSize: 32, repeats: 3)
public enum Benchmark {
    public struct Result: Sendable {
        public var trainExamplesPerSecond: Double
        public var forwardExamplesPerSecond: Double
        /// Inference logits as `predict`, `eval`, EL2N and PVI run them (`classLogits`: the last layer
        /// after its attention on the [CLS] rows only), examples/s. Not the same work as PyTorch's
        /// forward, which computes every hidden state: compare `forwardExamplesPerSecond` with that.
        public var classLogitsExamplesPerSecond: Double
        public var sgemmGFLOPS: Double
        public var trainGFLOPS: Double
        public var forwardGFLOPS: Double
        /// sgemm 2048^3 (best) measured between the repetitions of the training step and of the forward
        /// pass: the peak under the same machine conditions as the model (the machine is shared and its
        /// speed drifts by a third over seconds), the denominator of the fractions.
        public var trainWindowSgemmGFLOPS: Double
        public var forwardWindowSgemmGFLOPS: Double
        /// Per-example gradient norms over all parameters (Gram form), examples/s.
        public var gradNormExamplesPerSecond: Double
        /// VoG per checkpoint: forward + backward to inputs_embeds + accumulation, examples/s.
        public var vogExamplesPerSecond: Double
        /// Masked-LM pre-training step, plain and with PRESENCE (first-layer SI, microbatches of 4), examples/s.
        public var pretrainExamplesPerSecond: Double
        public var presenceExamplesPerSecond: Double
        /// TracIn train-to-test gradient dot products over every parameter (Gram form), example pairs/s:
        /// one training batch (forward, data backward, factors) against a test batch's factors made once.
        public var tracinPairsPerSecond: Double

        public var json: [String: Any] {
            ["train_examples_per_s": trainExamplesPerSecond, "forward_examples_per_s": forwardExamplesPerSecond,
             "class_logits_examples_per_s": classLogitsExamplesPerSecond,
             "sgemm_gflops": sgemmGFLOPS, "train_gflops": trainGFLOPS, "forward_gflops": forwardGFLOPS,
             "train_fraction_of_sgemm_peak": trainWindowSgemmGFLOPS > 0 ? trainGFLOPS / trainWindowSgemmGFLOPS : 0,
             "forward_fraction_of_sgemm_peak": forwardWindowSgemmGFLOPS > 0 ? forwardGFLOPS / forwardWindowSgemmGFLOPS : 0,
             "train_window_sgemm_gflops": trainWindowSgemmGFLOPS, "forward_window_sgemm_gflops": forwardWindowSgemmGFLOPS,
             "grad_norm_examples_per_s": gradNormExamplesPerSecond, "vog_examples_per_s": vogExamplesPerSecond,
             "pretrain_examples_per_s": pretrainExamplesPerSecond, "presence_examples_per_s": presenceExamplesPerSecond,
             "tracin_pairs_per_s": tracinPairsPerSecond,
             "presence_step_cost_ratio": presenceExamplesPerSecond > 0 ? pretrainExamplesPerSecond / presenceExamplesPerSecond : 0]
        }
    }

    /// Best of `repeats` timings of `body`, in seconds.
    static func time(_ repeats: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        return best
    }

    /// Best of `repeats` timings of `body`, each followed by about as long a run of `reference`
    /// (repeated to match the body's duration, timed per call): both bests come from the same stretch
    /// of time and the same time scale, so their ratio does not depend on what the machine's neighbours
    /// did before or after (a lone 0.1 s sample of the reference swings by a third here).
    static func timeInterleaved(_ repeats: Int, reference: () -> Void, _ body: () -> Void) -> (best: Double, reference: Double) {
        var best = Double.infinity, ref = Double.infinity
        let once = time(1, reference)
        for _ in 0..<max(1, repeats) {
            let t = time(1, body)
            best = min(best, t)
            let k = max(1, Int((t / once).rounded()))
            ref = min(ref, time(1) { for _ in 0..<k { reference() } } / Double(k))
        }
        return (best, ref)
    }

    /// The end-to-end measurements, each selectable with `winnow bench --only` (for profiling one).
    public enum Measure: String, CaseIterable, Sendable {
        case forward, train, gradNorms = "grad-norms", vog, mlm, tracin
    }

    /// Measures sgemm 2048^3, a forward pass and a training step of a BERT of the given shape, and the
    /// other `Measure`s in `only` (all by default; skipped ones report 0).
    public static func run(layers: Int, hidden: Int, heads: Int, seqLen: Int, batchSize: Int, repeats: Int,
                           only: Set<Measure> = Set(Measure.allCases), log: ((String) -> Void)? = nil) -> Result {
        // sgemm peak, measured in this run.
        let n = 2048
        var a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25), c = Tensor(shape: [n, n])
        ck_gemm(c.mptr, Int32(n), a.mptr, Int32(n), b.mptr, Int32(n), Int32(n), Int32(n), Int32(n), 0, 0, 1, 0)
        // Best of at least 5, measured again after the model runs: the peak is the best the machine gave.
        func sgemmRate() -> Double {
            let tg = time(max(5, repeats)) { ck_gemm(c.mptr, Int32(n), a.ptr, Int32(n), b.ptr, Int32(n), Int32(n), Int32(n), Int32(n), 0, 0, 1, 0) }
            return 2 * pow(Double(n), 3) / tg / 1e9
        }
        let sgemmFirst = sgemmRate()
        let sgemmOnce = { ck_gemm(c.mptr, Int32(n), a.ptr, Int32(n), b.ptr, Int32(n), Int32(n), Int32(n), Int32(n), 0, 0, 1, 0) }
        var windowF = Double.infinity, windowT = Double.infinity

        var config = BertConfig.small(vocabSize: 30522, hidden: hidden, layers: layers, heads: heads, maxPositions: max(512, seqLen))
        config.labels = ["a", "b"]
        let model = BertClassifier(config: config, seed: 1)
        var rng = SeededGenerator(seed: 7)
        let encs = (0..<batchSize).map { _ in
            Encoding(inputIDs: [2] + (0..<(seqLen - 2)).map { _ in Int32(1000 + rng.next() % 20000) } + [3],
                     tokenTypeIDs: Array(repeating: 0, count: seqLen))
        }
        let batch = Batch(encodings: encs, labels: (0..<batchSize).map { Int32($0 % 2) }, indices: Array(0..<batchSize))
        var grads = model.parameters.zeros()
        var opt = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
        model.forward(batch)
        func measure(_ m: Measure, _ body: () -> Double) -> Double {
            guard only.contains(m) else { return .infinity }
            Profile.reset()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let best = body()
            if Profile.enabled {
                let total = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
                log?(String(format: "%@: %.3f s in all, best %.3f s; sections:", m.rawValue, total, best))
                log?(Profile.report(total: total))
            }
            return best
        }
        let tf = measure(.forward) {
            // Inference, as PyTorch's under no_grad in scripts/reference/bench_torch.py.
            let (t, ref) = timeInterleaved(repeats, reference: sgemmOnce) { _ = model.logits(batch) }
            windowF = ref
            return t
        }
        let tc = only.contains(.forward) ? time(repeats) { _ = model.classLogits(batch) } : .infinity
        let ts = measure(.train) {
            let (t, ref) = timeInterleaved(repeats, reference: sgemmOnce) {
                Profile.section("zero gradients") { grads.zeroAll() }
                model.lossAndGradients(batch, grads: &grads, training: true, seed: 1)
                Profile.section("optimizer (AdamW)") { opt.step(&model.parameters, grads: grads, lr: 1e-5) }
            }
            windowT = ref
            return t
        }
        // Per-example gradient norms over every parameter: one forward, one data-only backward, Gram-form norms.
        let all = try! ParameterSelection("all", names: model.parameters.names, layers: layers)
        let tn = measure(.gradNorms) { time(repeats) {
            Profile.section("forward") { model.forward(batch) }
            Profile.section("data backward") { model.backwardPerExampleLosses(batch) }
            var sq = [Float](repeating: 0, count: batchSize)
            let f = Profile.section("gradient factors (packing)") { model.gradientFactors(batch, selection: all) }
            Profile.section("Gram-form norms") { f.addNorms(into: &sq, scale: 1) }
        } }
        // TracIn train-to-test: a test batch's factors once, then per training batch its factors and
        // the batchSize x batchSize dot products over every parameter.
        let tt = measure(.tracin) {
            let testEncs = encs.map { e in Encoding(inputIDs: e.inputIDs.map { $0 > 1000 ? $0 + 7 : $0 }, tokenTypeIDs: e.tokenTypeIDs) }
            let testBatch = Batch(encodings: testEncs, labels: batch.labels, indices: batch.indices)
            model.forward(testBatch)
            model.backwardPerExampleLosses(testBatch)
            let test = model.gradientFactors(testBatch, selection: all)
            var dots = [Float](repeating: 0, count: batchSize * batchSize)
            return time(repeats) {
                Profile.section("forward") { model.forward(batch) }
                Profile.section("data backward") { model.backwardPerExampleLosses(batch) }
                let f = Profile.section("gradient factors (packing)") { model.gradientFactors(batch, selection: all) }
                Profile.section("Gram-form dots") {
                    dots.withUnsafeMutableBufferPointer { f.addDots(with: test, into: $0.baseAddress!, ldo: batchSize, scale: 1) }
                }
            }
        }
        // VoG per checkpoint: forward, backward of the true logit to inputs_embeds, Welford update.
        let C = hidden
        var mean = Tensor(shape: [batchSize * seqLen, C]), m2 = Tensor(shape: [batchSize * seqLen, C])
        let tv = measure(.vog) { time(repeats) {
            model.forward(batch)
            var dlogits = Tensor(shape: [batchSize, 2])
            for b in 0..<batchSize { dlogits[b, Int(batch.labels[b])] = 1 }
            var none: ParameterStore? = nil
            model.backward(dlogits: dlogits, grads: &none)
            let g = packRows(model.workspace.dInputsEmbeds.ptr, ld: C, width: C, batch: batch, lengths: Array(repeating: seqLen, count: batchSize))
            ck_vog_accumulate(mean.mptr, m2.mptr, g.ptr, batchSize * seqLen * C, 2)
        } }
        // Masked-LM steps (same encoder, 15 % masked targets): plain vs PRESENCE, both through the
        // one-backward book-keeping path; PRESENCE adds the first layer's Gram-form SI.
        let lm = BertLanguageModel(config: config, objective: .mlm, seed: 1)
        var targets = [Int32](repeating: -1, count: batchSize * seqLen)
        for i in stride(from: 1, to: batchSize * seqLen, by: 7) { targets[i] = batch.inputIDs[i] }
        let lb = LMBatch(batch: batch, targets: targets, lines: Array(1...batchSize))
        var lmGrads = lm.parameters.zeros()
        func lmTime(_ reweight: PresenceOptions.Reweight) -> Double {
            var o = PretrainOptions()
            o.presence.reweight = reweight
            let trainer = PreTrainer(options: o)
            let sel = reweight == .presence ? try! lm.selfInfluenceSelection("first-layer") : nil
            var lmOpt = Optimizer(kind: .adamw, parameters: lm.parameters, weightDecay: 0.01)
            return time(repeats) {
                _ = trainer.step(lm, lb, grads: &lmGrads, step: 1, seed: 1, selection: sel, computeSI: sel != nil)
                lmOpt.step(&lm.parameters, grads: lmGrads, lr: 1e-5)
            }
        }
        let tPlain = measure(.mlm) { lmTime(.none) }, tPresence = measure(.mlm) { lmTime(.presence) }
        let flops = 2 * pow(Double(n), 3) / 1e9
        let sgemm = max(sgemmFirst, sgemmRate(), flops / windowF, flops / windowT)
        log?(String(format: "sgemm %dx%dx%d: %.1f GFLOP/s (best of runs before, between and after the model)", n, n, n, sgemm))
        // FLOPs of the matrix products (the dominant cost): per token 2 * (4 C^2 + 2 C I) per layer plus
        // attention 4 T C per layer; a training step costs about 3x the forward.
        let Cd = Double(hidden), I = Double(config.intermediateSize), T = Double(seqLen)
        let fwdFlops = Double(batchSize) * T * Double(layers) * (2 * (4 * Cd * Cd + 2 * Cd * I) + 4 * T * Cd)
        // The training step runs the last layer's dense parts after attention (output projection and
        // feed-forward, 2 (C^2 + 2 C I) a row) on the [CLS] rows only, forward and backward: count what runs.
        let skipped = layers > 0 ? 3 * Double(batchSize) * (T - 1) * 2 * (Cd * Cd + 2 * Cd * I) : 0
        let trainFlops = 3 * fwdFlops - skipped
        let r = Result(trainExamplesPerSecond: Double(batchSize) / ts, forwardExamplesPerSecond: Double(batchSize) / tf,
                       classLogitsExamplesPerSecond: Double(batchSize) / tc,
                       sgemmGFLOPS: sgemm, trainGFLOPS: trainFlops / ts / 1e9, forwardGFLOPS: fwdFlops / tf / 1e9,
                       trainWindowSgemmGFLOPS: windowT.isFinite ? flops / windowT : 0,
                       forwardWindowSgemmGFLOPS: windowF.isFinite ? flops / windowF : 0,
                       gradNormExamplesPerSecond: Double(batchSize) / tn, vogExamplesPerSecond: Double(batchSize) / tv,
                       pretrainExamplesPerSecond: Double(batchSize) / tPlain, presenceExamplesPerSecond: Double(batchSize) / tPresence,
                       tracinPairsPerSecond: Double(batchSize * batchSize) / tt)
        if only.contains(.forward) {
            log?(String(format: "forward:       %.1f examples/s, %.1f GFLOP/s (%.0f%% of sgemm's %.1f between its repetitions)",
                        r.forwardExamplesPerSecond, r.forwardGFLOPS, 100 * r.forwardGFLOPS / r.forwardWindowSgemmGFLOPS, r.forwardWindowSgemmGFLOPS))
            log?(String(format: "class logits:  %.1f examples/s (predict, eval, EL2N, PVI: the last layer after attention on the [CLS] rows only)",
                        r.classLogitsExamplesPerSecond))
        }
        if only.contains(.train) {
            log?(String(format: "training step: %.1f examples/s, %.1f GFLOP/s (%.0f%% of sgemm's %.1f between its repetitions)",
                        r.trainExamplesPerSecond, r.trainGFLOPS, 100 * r.trainGFLOPS / r.trainWindowSgemmGFLOPS, r.trainWindowSgemmGFLOPS))
        }
        if only.contains(.gradNorms) {
            log?(String(format: "per-example gradient norms (all parameters): %.1f examples/s", r.gradNormExamplesPerSecond))
        }
        if only.contains(.vog) { log?(String(format: "VoG per checkpoint: %.1f examples/s", r.vogExamplesPerSecond)) }
        if only.contains(.tracin) {
            log?(String(format: "TracIn train-to-test (all parameters, %d test examples): %.0f example pairs/s", batchSize, r.tracinPairsPerSecond))
        }
        if only.contains(.mlm) {
            log?(String(format: "MLM pre-training step: %.1f examples/s plain, %.1f with PRESENCE (cost ratio %.2f)",
                        r.pretrainExamplesPerSecond, r.presenceExamplesPerSecond, r.pretrainExamplesPerSecond / r.presenceExamplesPerSecond))
        }
        return r
    }
}
