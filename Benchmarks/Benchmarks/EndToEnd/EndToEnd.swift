// End-to-end benchmarks on BERT-small (4 layers, hidden 512, 8 heads, intermediate 2048,
// sequence 128, batch 32): forward, class logits, training step, the same on MiniLM's shapes, and a
// masked-LM pre-training step plain and with
// PRESENCE (first-layer self-influence per microbatch of 4, in the same backward pass). `winnow bench` prints the same figures with
// GFLOP/s and the fraction of the sgemm peak measured in the same run.
import Benchmark
import Winnow

nonisolated(unsafe) let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .peakMemoryResident], timeUnits: .milliseconds,
                                           maxDuration: .seconds(10), maxIterations: 5)
    let seq = 128, batchSize = 32
    var config = BertConfig.small(vocabSize: 30522, hidden: 512, layers: 4, heads: 8, maxPositions: 512)
    config.labels = ["a", "b"]
    let model = BertClassifier(config: config, seed: 1)
    var rng = SeededGenerator(seed: 7)
    let encs = (0..<batchSize).map { _ in
        Encoding(inputIDs: [2] + (0..<(seq - 2)).map { _ in Int32(1000 + rng.next() % 20000) } + [3],
                 tokenTypeIDs: Array(repeating: 0, count: seq))
    }
    let batch = Batch(encodings: encs, labels: (0..<batchSize).map { Int32($0 % 2) }, indices: Array(0..<batchSize))

    Benchmark("BERT-small forward (batch 32)", configuration: .init(scalingFactor: .one)) { bench in
        for _ in bench.scaledIterations { blackHole(model.logits(batch)) }
    }
    Benchmark("BERT-small class logits, last layer on [CLS] rows (batch 32)", configuration: .init(scalingFactor: .one)) { bench in
        for _ in bench.scaledIterations { blackHole(model.classLogits(batch)) }
    }

    // MiniLM's shapes (6 layers, hidden 384, 12 heads, intermediate 1536), random weights.
    var miniConfig = BertConfig.small(vocabSize: 30522, hidden: 384, layers: 6, heads: 12, intermediate: 1536, maxPositions: 512)
    miniConfig.labels = ["a", "b"]
    let mini = BertClassifier(config: miniConfig, seed: 2)
    nonisolated(unsafe) var miniGrads = mini.parameters.zeros()
    nonisolated(unsafe) var miniOpt = Optimizer(kind: .adamw, parameters: mini.parameters, weightDecay: 0.01)
    Benchmark("MiniLM-shape forward (batch 32)", configuration: .init(scalingFactor: .one)) { bench in
        for _ in bench.scaledIterations { blackHole(mini.logits(batch)) }
    }
    Benchmark("MiniLM-shape training step (batch 32)") { bench in
        for _ in bench.scaledIterations {
            miniGrads.zeroAll()
            blackHole(mini.lossAndGradients(batch, grads: &miniGrads, training: true, seed: 1))
            miniOpt.step(&mini.parameters, grads: miniGrads, lr: 1e-5)
        }
    }
    nonisolated(unsafe) var grads = model.parameters.zeros()
    nonisolated(unsafe) var opt = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
    Benchmark("BERT-small training step (batch 32)") { bench in
        for _ in bench.scaledIterations {
            grads.zeroAll()
            blackHole(model.lossAndGradients(batch, grads: &grads, training: true, seed: 1))
            opt.step(&model.parameters, grads: grads, lr: 1e-5)
        }
    }

    // Masked LM on the same encoder: every 7th token is a target.
    let lm = BertLanguageModel(config: config, objective: .mlm, seed: 1)
    var targets = [Int32](repeating: -1, count: batchSize * seq)
    for i in stride(from: 1, to: batchSize * seq, by: 7) { targets[i] = batch.inputIDs[i] }
    let lb = LMBatch(batch: batch, targets: targets, lines: Array(1...batchSize))
    nonisolated(unsafe) var lmGrads = lm.parameters.zeros()
    nonisolated(unsafe) var lmOpt = Optimizer(kind: .adamw, parameters: lm.parameters, weightDecay: 0.01)
    let selection = try! lm.selfInfluenceSelection("first-layer")
    for reweight in [PresenceOptions.Reweight.none, .presence] {
        var o = PretrainOptions()
        o.presence.reweight = reweight
        let trainer = PreTrainer(options: o)
        Benchmark("BERT-small MLM pre-training step, reweight \(reweight.rawValue) (batch 32)") { bench in
            for _ in bench.scaledIterations {
                blackHole(trainer.step(lm, lb, grads: &lmGrads, step: 1, seed: 1, selection: reweight == .presence ? selection : nil,
                                       computeSI: reweight == .presence))
                lmOpt.step(&lm.parameters, grads: lmGrads, lr: 1e-5)
            }
        }
    }
}
