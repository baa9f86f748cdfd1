// End-to-end benchmarks on BERT-small (4 layers, hidden 512, 8 heads, intermediate 2048, sequence 128,
// batch 32) and on MiniLM's shapes (6 layers, hidden 384, 12 heads, intermediate 1536): forward, class
// logits, training step, per-example gradient norms over every parameter, VoG per checkpoint, TracIn
// train-to-test over every parameter (one training batch against 32 test examples: 1024 pairs an
// iteration), and a masked-LM pre-training step plain and with PRESENCE. Each runs the same
// `BenchWorkload` method `winnow bench` times, which prints the figures as examples/s with GFLOP/s and
// the fraction of the sgemm peak measured in the same run. Throughput here is batches/s: x32 for
// examples/s (x1024 for TracIn pairs/s). With SmolLM2 fetched (`bash ../scripts/fetch-pretrained.sh
// smollm2`), its forward, training step and per-example gradient norms over the last decoder layer on
// batch 8 of 128 tokens, as `winnow bench --model smollm2` (batches/s: x8 for examples/s).
import Benchmark
import Foundation
@_spi(Benchmarks) import Winnow

nonisolated(unsafe) let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .peakMemoryResident], timeUnits: .milliseconds,
                                           scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 5)
    let shapes: [(name: String, workload: BenchWorkload)] = [
        ("BERT-small", BenchWorkload(layers: 4, hidden: 512, heads: 8, seqLen: 128, batchSize: 32)),
        ("MiniLM-shape", BenchWorkload(layers: 6, hidden: 384, heads: 12, intermediate: 1536, seqLen: 128, batchSize: 32, seed: 2)),
    ]
    for (name, w) in shapes {
        let work: [(String, @Sendable () -> Void)] = [
            ("forward", { w.forward() }),
            ("class logits, last layer on [CLS] rows", { w.classLogits() }),
            ("training step", { w.trainStep() }),
            ("per-example gradient norms, all parameters", { w.gradientNorms() }),
            ("VoG per checkpoint", { w.vogCheckpoint() }),
            ("TracIn train-to-test, all parameters, 32x32 pairs", { w.tracinBatch() }),
            ("MLM pre-training step, plain", { w.pretrainStep(presence: false) }),
            ("MLM pre-training step, PRESENCE", { w.pretrainStep(presence: true) }),
        ]
        for (what, body) in work {
            Benchmark("\(name) \(what) (batch 32)") { bench in
                for _ in bench.scaledIterations { body() }
            }
        }
    }
    let smollm2 = URL(fileURLWithPath: "../models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    if FileManager.default.fileExists(atPath: smollm2.path), let lm = try? CausalLMWorkload(smollm2) {
        Benchmark("SmolLM2 forward, logits at every position (batch 8)") { bench in for _ in bench.scaledIterations { lm.forward() } }
        Benchmark("SmolLM2 training step (batch 8)") { bench in for _ in bench.scaledIterations { lm.trainStep() } }
        if let last = try? ParameterSelection(.lastLayer, layout: lm.model.parameterLayout) {
            Benchmark("SmolLM2 per-example gradient norms, last decoder layer (batch 8)") { bench in
                for _ in bench.scaledIterations { _ = lm.gradientNorms(last) }
            }
        }
    }
}
