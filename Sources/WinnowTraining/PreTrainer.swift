import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// How to pre-train a language model (the options of `winnow pretrain`).
public struct PretrainOptions: Codable, Sendable, Equatable {
    public var steps = 1000
    public var batchSize = 32
    public var learningRate: Float = 5e-4
    public var weightDecay: Float = 0.01
    public var warmupRatio: Float = 0.06
    public var maxGradNorm: Float? = 1.0
    public var seed: UInt64 = 0
    /// Evenly spaced checkpoints (the final model is always written at the run's root).
    public var checkpoints = 2
    public var logEvery = 10
    public var maskProbability = 0.15
    public var presence = PresenceOptions()

    public init() {}
}

/// What one pre-training step did (for logs, tests and `--si-log`).
public struct PretrainStep: Sendable {
    public var step: Int
    /// sum_j w_j L_j
    public var loss: Double
    /// Mean of the samples' losses (what unweighted training minimises).
    public var unweightedLoss: Double
    public var tau: Double
    /// Per microbatch: self-influence (empty when not computed), weight, sample range.
    public var selfInfluence: [Double]
    public var weights: [Double]
    public var groups: [Int]
    public var lines: [Int]
}

/// Pre-trains a `BertLanguageModel` on an `LMCorpus`, plain or with PRESENCE reweighting, in one
/// backward pass per step (design section 6): a data-only backward of the unweighted per-sample losses
/// keeps every layer's output gradients; SI per microbatch comes from the chosen layers' Gram form; then
/// each parameter gradient is formed once as G^T diag(w) A. Writes a Hugging Face run folder.
public struct PreTrainer: Sendable {
    public let options: PretrainOptions

    public init(options: PretrainOptions) { self.options = options }

    /// One step on `lb`: fills `grads` (zeroed first) with the gradient of sum_j w_j L_j.
    public func step(_ model: BertLanguageModel, _ lb: LMBatch, grads: inout ParameterStore, step: Int, seed: UInt64,
                     selection: ParameterSelection?, computeSI: Bool) -> PretrainStep {
        let o = options.presence
        let meanLoss = model.forward(lb, training: true, seed: seed)
        model.backwardPerSample(training: true, seed: seed)
        let B = lb.batch.size
        let groups = Presence.groups(batchSize: B, microbatchSize: o.microbatchSize)
        let J = groups.count - 1
        // Microbatches whose samples have no target carry no loss and get no weight.
        let active = (0..<J).filter { j in (groups[j]..<groups[j + 1]).contains { model.sampleTargets[$0] > 0 } }
        var si: [Double] = []
        if computeSI, let selection { si = model.groupGradientNorms(lb, selection: selection, groups: groups) }
        let tau = o.reweight == .presence ? o.tau(atStep: step) : 0
        let wActive = Presence.weights(selfInfluence: o.reweight == .presence ? active.map { si[$0] } : active.map { _ in 0 },
                                       tau: tau, scale: o.scale)
        var w = [Double](repeating: 0, count: J)
        for (k, j) in active.enumerated() { w[j] = wActive[k] }
        var v = [Float](repeating: 0, count: B)
        var loss = 0.0
        for j in active {
            let members = (groups[j]..<groups[j + 1]).filter { model.sampleTargets[$0] > 0 }
            let lj = members.reduce(0.0) { $0 + model.sampleLosses[$1] } / Double(members.count)
            loss += w[j] * lj
            for b in members { v[b] = Float(w[j] / Double(members.count)) }
        }
        grads.zeroAll()
        model.accumulateGradients(sampleWeights: v, into: &grads)
        return PretrainStep(step: step, loss: loss, unweightedLoss: meanLoss, tau: tau, selfInfluence: si, weights: w,
                            groups: groups, lines: lb.lines)
    }

    /// Mean loss over every window of `corpus` in inference mode, with masks from a fixed seed (the same
    /// positions for every model), so runs can be compared on held-out text.
    public static func evaluate(_ model: BertLanguageModel, on corpus: LMCorpus, vocabulary: Vocabulary, batchSize: Int = 32,
                                maskProbability: Double = 0.15) -> Double {
        var total = 0.0, n = 0
        for start in stride(from: 0, to: corpus.count, by: batchSize) {
            let idx = Array(start..<min(corpus.count, start + batchSize))
            let lb = corpus.batch(idx, objective: model.objective, vocabulary: vocabulary, seed: 0x5EED_E7A1 &+ UInt64(start),
                                  maskProbability: maskProbability)
            model.forward(lb, training: false)
            for b in 0..<idx.count where model.sampleTargets[b] > 0 { total += model.sampleLosses[b]; n += 1 }
        }
        return n > 0 ? total / Double(n) : .nan
    }

    /// Trains `model` for `options.steps` steps over shuffled epochs of `corpus`, writing checkpoints,
    /// trainer_state.json (loss, weight entropy, SI statistics) and, with `siLog`, one CSV row
    /// `step,line,si,weight` per sample of every batch.
    @discardableResult
    public func train(_ model: BertLanguageModel, on corpus: LMCorpus, vocabulary: Vocabulary, run: URL, extraFiles: [URL] = [],
                      siLog: URL? = nil, runInfo: [String: String] = [:], quiet: Bool = false) throws -> TrainingSummary {
        let o = options
        let p = o.presence
        let selection = (p.reweight == .presence || siLog != nil) ? try model.selfInfluenceSelection(p.siParams) : nil
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        for f in extraFiles { try copyFile(f, into: run) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var info: [String: Any] = ["options": try JSONSerialization.jsonObject(with: enc.encode(o)), "windows": corpus.count,
                                   "objective": model.objective.rawValue, "tool": "winnow", "corpus": corpus.url.path]
        for (k, v) in runInfo { info[k] = v }
        try AtomicFile.write(JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys]),
                             to: run.appendingPathComponent("winnow.json"))

        let sched = LinearSchedule(baseLR: o.learningRate, warmupSteps: Int((Float(o.steps) * o.warmupRatio).rounded(.up)), totalSteps: o.steps)
        var ckSteps: Set<Int> = []
        if o.checkpoints > 0 { for i in 1...o.checkpoints { ckSteps.insert(max(1, Int((Double(o.steps) * Double(i) / Double(o.checkpoints)).rounded()))) } }
        var opt = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: o.weightDecay)
        var grads = model.parameters.zeros()
        var history: [LogEntry] = []
        var log = TextFileBuilder()
        log.append("step,line,si,weight")
        var order: [Int] = [], cursor = 0, epoch = 0
        var window = (loss: 0.0, unweighted: 0.0, entropy: 0.0, n: 0, si: [Double]())
        var lastLoss = 0.0
        var lastCheckpoint: Int? = nil
        let bar = ProgressBar(label: "pretrain", total: o.steps, unit: "step", quiet: quiet)
        let start = Date()
        for step in 1...max(1, o.steps) {
            var idx: [Int] = []
            while idx.count < o.batchSize {
                if cursor >= order.count {
                    order = Array(0..<corpus.count)
                    var rng = SeededGenerator(seed: o.seed, stream: "lm-shuffle-\(epoch)")
                    order.shuffle(using: &rng)
                    cursor = 0; epoch += 1
                }
                idx.append(order[cursor]); cursor += 1
            }
            let stepSeed = SeededGenerator.mix(o.seed ^ SeededGenerator.mix(UInt64(step) &+ 0xB1A5))
            let lb = corpus.batch(idx, objective: model.objective, vocabulary: vocabulary, seed: stepSeed, maskProbability: o.maskProbability)
            let r = self.step(model, lb, grads: &grads, step: step, seed: stepSeed, selection: selection, computeSI: selection != nil)
            guard r.loss.isFinite else {
                throw WinnowError.numericFault(reason: "pre-training stopped at step \(step): the loss is \(r.loss); "
                    + (lastCheckpoint.map { "the last good checkpoint is \(run.appendingPathComponent("checkpoint-\($0)").path)" }
                       ?? "no checkpoint was written before it") + " (try a lower --lr)")
            }
            let gnorm = gradientNorm(grads)
            guard gnorm.isFinite else {
                throw WinnowError.numericFault(reason: "pre-training stopped at step \(step): the gradient norm is \(gnorm); "
                    + (lastCheckpoint.map { "the last good checkpoint is \(run.appendingPathComponent("checkpoint-\($0)").path)" }
                       ?? "no checkpoint was written before it"))
            }
            if let clip = o.maxGradNorm, gnorm > Double(clip) {
                let s = Float(Double(clip) / (gnorm + 1e-6))
                for i in grads.tensors.indices { ck_scale(grads.tensors[i].mptr, grads[i].count, s) }
            }
            opt.step(&model.parameters, grads: grads, lr: sched.lr(afterSteps: step - 1))
            if siLog != nil {
                for j in 0..<(r.groups.count - 1) {
                    for b in r.groups[j]..<r.groups[j + 1] {
                        log.append("\(step),\(r.lines[b]),\(String(format: "%.9g", r.selfInfluence[j])),\(String(format: "%.9g", r.weights[j]))")
                    }
                }
            }
            window.loss += r.loss; window.unweighted += r.unweightedLoss; window.n += 1
            window.entropy += Presence.entropy(r.weights.filter { $0 > 0 })
            window.si += r.selfInfluence
            lastLoss = r.loss
            if step % max(1, o.logEvery) == 0 || step == o.steps || ckSteps.contains(step) {
                let n = Double(window.n)
                var extra: [String: Double] = ["grad_norm": gnorm, "unweighted_loss": window.unweighted / n,
                                               "weight_entropy": window.entropy / n, "tau": r.tau]
                if !window.si.isEmpty {
                    let m = window.si.reduce(0, +) / Double(window.si.count)
                    extra["si_mean"] = m
                    extra["si_std"] = (window.si.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(window.si.count)).squareRoot()
                    extra["si_min"] = window.si.min()!
                    extra["si_max"] = window.si.max()!
                }
                history.append(LogEntry(step: step, epoch: Double(step * o.batchSize) / Double(corpus.count),
                                        learningRate: Double(sched.lr(afterSteps: step)), loss: window.loss / n, extra: extra))
                window = (0, 0, 0, 0, [])
            }
            if ckSteps.contains(step) && step < o.steps {
                let ck = run.appendingPathComponent("checkpoint-\(step)")
                try model.save(to: ck)
                try state(step, history, corpus).write(to: ck.appendingPathComponent("trainer_state.json"))
                for f in extraFiles { try copyFile(f, into: ck) }
                lastCheckpoint = step
            }
            bar.advance(note: String(format: "loss %.4f", r.loss))
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        let ck = run.appendingPathComponent("checkpoint-\(o.steps)")
        try model.save(to: ck)
        try state(o.steps, history, corpus).write(to: ck.appendingPathComponent("trainer_state.json"))
        for f in extraFiles { try copyFile(f, into: ck) }
        try model.save(to: run)
        if let siLog { try log.write(to: siLog) }
        try state(o.steps, history, corpus).write(to: run.appendingPathComponent("trainer_state.json"))
        return TrainingSummary(steps: o.steps, finalLoss: lastLoss, checkpointSteps: ckSteps.sorted(), seconds: seconds,
                               examplesPerSecond: Double(o.steps * o.batchSize) / max(seconds, 1e-9))
    }

    func state(_ step: Int, _ history: [LogEntry], _ corpus: LMCorpus) -> TrainerState {
        TrainerState(globalStep: step, epoch: Double(step * options.batchSize) / Double(corpus.count), maxSteps: options.steps,
                     numTrainEpochs: Int((Double(options.steps * options.batchSize) / Double(corpus.count)).rounded(.up)),
                     trainBatchSize: options.batchSize, logHistory: history)
    }
}
