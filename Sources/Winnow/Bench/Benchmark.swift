import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowExperiment
import WinnowModels
import WinnowScores
import WinnowTraining

/// End-to-end throughput measurements behind `winnow bench` (never used by tests: speed lives in benchmarks).
///
///     let r = Benchmark.run(layers: 4, hidden: 512, heads: 8, seqLen: 128, batchSize: 32, repeats: 3)
package enum Benchmark {
    package struct Result: Sendable {
        package var trainExamplesPerSecond: Double
        package var forwardExamplesPerSecond: Double
        /// Inference logits as `predict`, `eval`, EL2N and PVI run them (`classLogits`: the last layer
        /// after its attention on the [CLS] rows only), examples/s. Not the same work as PyTorch's
        /// forward, which computes every hidden state: compare `forwardExamplesPerSecond` with that.
        package var classLogitsExamplesPerSecond: Double
        package var sgemmGFLOPS: Double
        package var trainGFLOPS: Double
        package var forwardGFLOPS: Double
        /// sgemm 2048^3 (best) measured between the repetitions of the training step and of the forward
        /// pass: the peak under the same machine conditions as the model (the machine is shared and its
        /// speed drifts by a third over seconds), the denominator of the fractions.
        package var trainWindowSgemmGFLOPS: Double
        package var forwardWindowSgemmGFLOPS: Double
        /// Per-example gradient norms over all parameters (Gram form), examples/s.
        package var gradNormExamplesPerSecond: Double
        /// VoG per checkpoint: forward + backward to inputs_embeds + accumulation, examples/s.
        package var vogExamplesPerSecond: Double
        /// Masked-LM pre-training step, plain and with PRESENCE (first-layer SI, microbatches of 4), examples/s.
        package var pretrainExamplesPerSecond: Double
        package var presenceExamplesPerSecond: Double
        /// TracIn train-to-test gradient dot products over every parameter (Gram form), example pairs/s:
        /// one training batch (forward, data backward, factors) against a test batch's factors made once.
        package var tracinPairsPerSecond: Double
        /// The forward and the class logits with `--precision bf16` (0 without AVX512_BF16), examples/s.
        package var bf16ForwardExamplesPerSecond: Double
        package var bf16ClassLogitsExamplesPerSecond: Double

        package var json: [String: Any] {
            ["train_examples_per_s": trainExamplesPerSecond, "forward_examples_per_s": forwardExamplesPerSecond,
             "class_logits_examples_per_s": classLogitsExamplesPerSecond,
             "sgemm_gflops": sgemmGFLOPS, "train_gflops": trainGFLOPS, "forward_gflops": forwardGFLOPS,
             "train_fraction_of_sgemm_peak": trainWindowSgemmGFLOPS > 0 ? trainGFLOPS / trainWindowSgemmGFLOPS : 0,
             "forward_fraction_of_sgemm_peak": forwardWindowSgemmGFLOPS > 0 ? forwardGFLOPS / forwardWindowSgemmGFLOPS : 0,
             "train_window_sgemm_gflops": trainWindowSgemmGFLOPS, "forward_window_sgemm_gflops": forwardWindowSgemmGFLOPS,
             "grad_norm_examples_per_s": gradNormExamplesPerSecond, "vog_examples_per_s": vogExamplesPerSecond,
             "pretrain_examples_per_s": pretrainExamplesPerSecond, "presence_examples_per_s": presenceExamplesPerSecond,
             "tracin_pairs_per_s": tracinPairsPerSecond,
             "bf16_forward_examples_per_s": bf16ForwardExamplesPerSecond, "bf16_class_logits_examples_per_s": bf16ClassLogitsExamplesPerSecond,
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
    package enum Measure: String, CaseIterable, Sendable {
        case forward, train, gradNorms = "grad-norms", vog, mlm, tracin
    }

    /// Measures sgemm 2048^3, a forward pass and a training step of a BERT of the given shape, and the
    /// other `Measure`s in `only` (all by default; skipped ones report 0).
    package static func run(layers: Int, hidden: Int, heads: Int, seqLen: Int, batchSize: Int, repeats: Int,
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

        let w = BenchWorkload(layers: layers, hidden: hidden, heads: heads, seqLen: seqLen, batchSize: batchSize)
        let config = w.config
        w.forward()
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
            let (t, ref) = timeInterleaved(repeats, reference: sgemmOnce) { w.forward() }
            windowF = ref
            return t
        }
        let tc = only.contains(.forward) ? time(repeats) { w.classLogits() } : .infinity
        // The opt-in bf16 inference (`--precision bf16`), where the CPU has AVX512_BF16.
        let bf16 = ArithmeticPrecision.bf16.isAvailable && only.contains(.forward)
        let tfb = bf16 ? ((try? ArithmeticPrecision.bf16.run { w.forward(); return time(repeats) { w.forward() } }) ?? .infinity) : .infinity
        let tcb = bf16 ? ((try? ArithmeticPrecision.bf16.run { time(repeats) { w.classLogits() } }) ?? .infinity) : .infinity
        let ts = measure(.train) {
            let (t, ref) = timeInterleaved(repeats, reference: sgemmOnce) { w.trainStep() }
            windowT = ref
            return t
        }
        let tn = measure(.gradNorms) { time(repeats) { w.gradientNorms() } }
        let tt = measure(.tracin) {
            w.tracinBatch()  // the test batch's factors, made once
            return time(repeats) { w.tracinBatch() }
        }
        let tv = measure(.vog) { time(repeats) { w.vogCheckpoint() } }
        // Masked-LM steps (same encoder, every 7th token a target): plain vs PRESENCE.
        let tPlain = measure(.mlm) { time(repeats) { w.pretrainStep(presence: false) } }
        let tPresence = measure(.mlm) { time(repeats) { w.pretrainStep(presence: true) } }
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
                       tracinPairsPerSecond: Double(batchSize * batchSize) / tt,
                       bf16ForwardExamplesPerSecond: Double(batchSize) / tfb, bf16ClassLogitsExamplesPerSecond: Double(batchSize) / tcb)
        if only.contains(.forward) {
            log?(String(format: "forward:       %.1f examples/s, %.1f GFLOP/s (%.0f%% of sgemm's %.1f between its repetitions)",
                        r.forwardExamplesPerSecond, r.forwardGFLOPS, 100 * r.forwardGFLOPS / r.forwardWindowSgemmGFLOPS, r.forwardWindowSgemmGFLOPS))
            log?(String(format: "class logits:  %.1f examples/s (predict, eval, EL2N, PVI: the last layer after attention on the [CLS] rows only)",
                        r.classLogitsExamplesPerSecond))
            if r.bf16ForwardExamplesPerSecond > 0 {
                log?(String(format: "bf16 (--precision bf16): forward %.1f examples/s, class logits %.1f examples/s",
                            r.bf16ForwardExamplesPerSecond, r.bf16ClassLogitsExamplesPerSecond))
            }
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

/// The end-to-end work `winnow bench --model` times on a causal language model, visible to the
/// package-benchmark target (`@_spi(Benchmarks) import Winnow`) so that it runs the same code: a batch of
/// random sequences, the forward pass (logits at every position, inference) and a training step
/// (next-token loss, backward, AdamW). Not part of the library's API.
@_spi(Benchmarks) public final class CausalLMWorkload: @unchecked Sendable {
    /// The model (loaded once).
    public let model: LlamaForCausalLM
    /// The batch every measurement runs.
    public let batch: Batch
    var grads: ParameterStore
    var optimizer: Optimizer

    /// Loads `url` (a .gguf file or a Llama folder) and draws `batchSize` sequences of `seqLen` tokens.
    ///
    /// - Throws: `WinnowError` when the model cannot be read.
    public init(_ url: URL, seqLen: Int = 128, batchSize: Int = 8) throws {
        model = url.pathExtension.lowercased() == "gguf" ? try LlamaForCausalLM(gguf: url) : try LlamaForCausalLM(folder: url)
        var rng = SeededGenerator(seed: 1)
        let V = model.config.vocabSize
        let encs = (0..<batchSize).map { _ in
            Encoding(inputIDs: (0..<seqLen).map { _ in Int32(100 + Int(rng.next() % UInt64(V - 100))) }, tokenTypeIDs: [Int32](repeating: 0, count: seqLen))
        }
        batch = Batch(encodings: encs, labels: [Int32](repeating: -1, count: batchSize), indices: Array(0..<batchSize))
        grads = model.parameters.zeros()
        optimizer = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
    }

    /// Logits at every position, as PyTorch's forward under no_grad.
    public func forward() { _ = model.logitsAllRows(batch) }

    /// The decoder without the LM head.
    public func decoderForward() { model.forward(batch, targets: [Int32](repeating: -1, count: batch.size * batch.length)) }

    /// One training step: zero gradients, next-token loss and backward, AdamW.
    public func trainStep() {
        grads.zeroAll()
        model.lossAndGradients(batch, grads: &grads)
        optimizer.step(&model.parameters, grads: grads, lr: 1e-5)
    }

    /// Each sequence's squared gradient norm of its mean next-token loss over `selection` (what
    /// `winnow score tracin --params ...` computes per batch).
    public func gradientNorms(_ selection: ParameterSelection) -> [Float] {
        model.perExampleLossBackward(batch, targets: LlamaForCausalLM.causalTargets(batch), selection: selection)
        var sq = [Float](repeating: 0, count: batch.size)
        model.gradientFactors(batch, selection: selection).addNorms(into: &sq, scale: 1)
        return sq
    }
}

extension Benchmark {
    /// Throughput of a causal language model (a GGUF file or a Llama folder): the forward pass (logits at
    /// every position, inference) and a training step (token-weighted next-token loss, backward, AdamW)
    /// on a batch of `batchSize` random sequences of `seqLen` tokens; best of `repeats`.
    /// The measurements `runCausalLM` takes: forward (with and without the LM head, and in bf16), a
    /// training step, per-example gradient norms (last layer, all parameters, a LoRA adapter).
    package static let causalLMMeasures: Set<Measure> = [.forward, .train, .gradNorms]

    /// - Parameter only: the measurements to run (a subset of `causalLMMeasures`; the others report 0);
    ///   empty with `gemm` given: the GEMM rates on the model's shapes alone.
    package static func runCausalLM(_ url: URL, seqLen: Int, batchSize: Int, repeats: Int, only: Set<Measure> = causalLMMeasures,
                                    log: ((String) -> Void)? = nil,
                                    gemm: (([GemmShape]) throws -> [String: Any])? = nil) throws -> [String: Any] {
        let w = try CausalLMWorkload(url, seqLen: seqLen, batchSize: batchSize)
        let c = w.model.config
        let gemmInfo = try gemm?(modelShapes(tokens: seqLen * batchSize, hidden: c.hiddenSize, intermediate: c.intermediateSize,
                                             qkv: c.queryWidth + 2 * c.keyValueWidth, vocab: c.vocabSize)) ?? [:]
        var r: [String: Any] = ["model": url.path, "seq_len": seqLen, "batch_size": batchSize]
        for (k, v) in gemmInfo { r[k] = v }
        for key in ["forward", "train", "decoder_forward", "bf16_forward", "grad_norms_last_layer", "grad_norms_all", "grad_norms_lora"] {
            r[key + "_examples_per_s"] = 0.0
        }
        if only.contains(.forward) {
            w.forward()
            let tf = time(repeats) { w.forward() }
            let tb = time(repeats) { w.decoderForward() }
            let tfb = ArithmeticPrecision.bf16.isAvailable ? ((try? ArithmeticPrecision.bf16.run { time(repeats) { w.forward() } }) ?? .infinity) : .infinity
            r["forward_examples_per_s"] = Double(batchSize) / tf
            r["decoder_forward_examples_per_s"] = Double(batchSize) / tb
            r["bf16_forward_examples_per_s"] = Double(batchSize) / tfb
            log?(String(format: "%@: forward %.2f examples/s (%.2f without the LM head; batch %d of %d tokens)",
                        url.lastPathComponent, Double(batchSize) / tf, Double(batchSize) / tb, batchSize, seqLen))
            if tfb.isFinite { log?(String(format: "bf16 forward (--precision bf16): %.2f examples/s", Double(batchSize) / tfb)) }
        }
        if only.contains(.train) {
            w.trainStep()
            let ts = time(repeats) { w.trainStep() }
            r["train_examples_per_s"] = Double(batchSize) / ts
            log?(String(format: "%@: training step %.2f examples/s (batch %d of %d tokens)", url.lastPathComponent, Double(batchSize) / ts,
                        batchSize, seqLen))
        }
        guard only.contains(.gradNorms) else { return r }
        for (key, spec) in [("last_layer", ParameterSelection.Spec.lastLayer), ("all", .all)] {
            let sel = try ParameterSelection(spec, layout: w.model.parameterLayout)
            _ = w.gradientNorms(sel)
            let tn = time(repeats) { _ = w.gradientNorms(sel) }
            r["grad_norms_\(key)_examples_per_s"] = Double(batchSize) / tn
            log?(String(format: "per-example gradient norms over %@: %.2f examples/s", spec.description, Double(batchSize) / tn))
        }
        // A LoRA adapter (r 8, alpha 16 on q_proj and v_proj, PEFT's default targets), B drawn as A is so
        // that both factors carry gradient: per-example gradient norms over the adapter.
        try w.model.addLoRA(LoRAConfig(rank: 8, alpha: 16, targets: [.q, .v]), seed: 1)
        for name in w.model.parameters.names where name.contains(".lora_B.") {
            let i = w.model.parameters.index(of: name)!
            w.model.parameters[i].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(sin(Double(j))) * 0.01 } }
        }
        let sel = try ParameterSelection(.lora, layout: w.model.parameterLayout)
        _ = w.gradientNorms(sel)
        let tl = time(repeats) { _ = w.gradientNorms(sel) }
        r["grad_norms_lora_examples_per_s"] = Double(batchSize) / tl
        log?(String(format: "per-example gradient norms over a LoRA adapter (r 8, q_proj and v_proj): %.2f examples/s", Double(batchSize) / tl))
        return r
    }
}

extension Benchmark {
    /// One GEMM shape C[M,N] = op(A)[M,K] op(B)[K,N] of a model's passes.
    package struct GemmShape: Sendable {
        package var name: String
        package var m, n, k: Int
        package var transA = false, transB = false
    }

    /// OpenBLAS (as configured: its preset kernel) and Winnow's AVX-512 GEMM (0 where the CPU lacks
    /// AVX-512) on one shape, GFLOP/s, best of the repetitions.
    package struct GemmRate: Sendable {
        package var shape: GemmShape
        package var openblas: Double
        package var winnow: Double
        package var json: [String: Any] {
            ["shape": shape.name, "m": shape.m, "n": shape.n, "k": shape.k, "trans_a": shape.transA, "trans_b": shape.transB,
             "openblas_gflops": openblas, "winnow_gflops": winnow]
        }
    }

    /// The GEMM instruction set in use, as `winnow bench` names it.
    package static var isaName: String { ck_isa() == Int32(CK_ISA_AVX512) ? "avx512" : "avx2" }

    /// The core OpenBLAS runs its kernels for (an unknown `OPENBLAS_CORETYPE` falls back to another).
    package static var openBLASCore: String { ck_blas_corename().map { String(cString: $0) } ?? "unknown" }

    /// What is wrong with `WINNOW_ISA`: an unknown value (`error` true), or avx512 asked for on a CPU without
    /// it (a note: the AVX2 path runs); nil when it is unset or honoured.
    package static func isaRequestProblem() -> (error: Bool, message: String)? {
        guard let v = ProcessInfo.processInfo.environment["WINNOW_ISA"] else { return nil }
        guard v == "avx2" || v == "avx512" else { return (true, "WINNOW_ISA=\(v): expected avx2 or avx512 (unset: the best the CPU has)") }
        if v == "avx512" && ck_isa_supported(Int32(CK_ISA_AVX512)) != 1 {
            return (false, "note: WINNOW_ISA=avx512, but this CPU lacks AVX-512 (F, BW, DQ, VL): the AVX2 path runs")
        }
        return nil
    }

    /// The products of a transformer's layer on `tokens` rows: the fused or separate input projection,
    /// the feed-forward, the data gradients and the weight gradients, and sgemm 2048^3; with `vocab`, the
    /// output layer too.
    package static func modelShapes(tokens n: Int, hidden c: Int, intermediate i: Int, qkv: Int, vocab: Int? = nil) -> [GemmShape] {
        var s = [GemmShape(name: "sgemm 2048^3", m: 2048, n: 2048, k: 2048),
                 GemmShape(name: "qkv forward", m: n, n: qkv, k: c, transB: true),
                 GemmShape(name: "ffn up forward", m: n, n: i, k: c, transB: true),
                 GemmShape(name: "ffn down forward", m: n, n: c, k: i, transB: true),
                 GemmShape(name: "ffn down data grad", m: n, n: i, k: c),
                 GemmShape(name: "ffn up weight grad", m: i, n: c, k: n, transA: true)]
        if let vocab { s.append(GemmShape(name: "output layer forward", m: n, n: vocab, k: c, transB: true)) }
        return s
    }

    /// Times OpenBLAS and Winnow's AVX-512 GEMM on each shape, interleaved (one then the other, best of
    /// `repeats` each), so both see the same machine.
    package static func gemmRates(_ shapes: [GemmShape], repeats: Int) -> [GemmRate] {
        let avx512 = ck_isa_supported(Int32(CK_ISA_AVX512)) == 1
        return shapes.map { s in
            var a = Tensor(shape: [s.m * s.k], repeating: 0.5), b = Tensor(shape: [s.k * s.n], repeating: 0.25)
            var c = Tensor(shape: [s.m * s.n])
            let lda = Int32(s.transA ? s.m : s.k), ldb = Int32(s.transB ? s.k : s.n)
            let tA = Int32(s.transA ? 1 : 0), tB = Int32(s.transB ? 1 : 0)
            let (ap, bp, cp) = (a.mptr, b.mptr, c.mptr)
            let flops = 2 * Double(s.m) * Double(s.n) * Double(s.k) / 1e9
            var best = (Double.infinity, Double.infinity)
            for _ in 0..<max(2, repeats) {
                best.0 = min(best.0, time(1) { ck_gemm_openblas(cp, Int32(s.n), ap, lda, bp, ldb, Int32(s.m), Int32(s.n), Int32(s.k), tA, tB, 1, 0) })
                if avx512 {
                    best.1 = min(best.1, time(1) { ck_gemm_avx512(cp, Int32(s.n), ap, lda, bp, ldb, Int32(s.m), Int32(s.n), Int32(s.k), tA, tB, 1, 0) })
                }
            }
            return GemmRate(shape: s, openblas: flops / best.0, winnow: avx512 ? flops / best.1 : 0)
        }
    }
}
