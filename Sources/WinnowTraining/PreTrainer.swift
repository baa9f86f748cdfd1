import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// How to pre-train a language model (the options of `winnow pretrain`).
public struct PretrainOptions: Codable, Sendable, Equatable {
    /// Optimizer steps of the run.
    public var steps = 1000
    /// Windows per step (B).
    public var batchSize = 32
    /// Peak learning rate of the linear warm-up and decay schedule (AdamW). 5e-4 suits a fresh BERT; `winnow
    /// pretrain` uses 5e-5 to continue a BERT, 2e-5 for every parameter of a decoder and 2e-4 for its LoRA adapter
    /// (`TrainingOptions.defaultLearningRate(for:)` gives the two decoder rates).
    public var learningRate: Float = 5e-4
    /// AdamW decoupled weight decay (not on biases and LayerNorm weights).
    public var weightDecay: Float = 0.01
    /// Warm-up as a fraction of `steps` (rounded up to whole steps).
    public var warmupRatio: Float = 0.06
    /// Clip the global gradient norm to this value; nil disables.
    public var maxGradNorm: Float? = 1.0
    /// Seed of the window order, the masking and dropout.
    public var seed: UInt64 = 0
    /// Evenly spaced checkpoints (the final model is always written at the run's root).
    public var checkpoints = 2
    /// Log loss and learning rate every this many steps.
    public var logEvery = 10
    /// MLM: probability that a non-special token is chosen as a target; unused by causal models.
    public var maskProbability = 0.15
    /// PRESENCE reweighting (off by default: plain pre-training).
    public var presence = PresenceOptions()

    /// The default options.
    public init() {}

    /// Checks every value against its range (`PreTrainer.train` calls it first).
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `steps`, `batchSize` or `logEvery` below 1,
    ///   `learningRate` not positive, `weightDecay` negative, `warmupRatio` outside [0, 1], `maxGradNorm` not
    ///   positive, `checkpoints` negative, `maskProbability` outside (0, 1), `steps` above 10^9 or `batchSize` above
    ///   10^6; with PRESENCE on, `presence.microbatchSize` below 1 or not below `batchSize` (one microbatch, whose
    ///   weight is always 1: plain training), `presence.tau1` or `tau2` not finite.
    public func validate() throws {
        guard steps >= 1 else { throw WinnowError.invalidOption(name: "steps", reason: "must be at least 1, not \(steps)") }
        guard steps <= 1_000_000_000 else { throw WinnowError.invalidOption(name: "steps", reason: "\(steps) is more than 10^9") }
        guard batchSize <= 1_000_000 else { throw WinnowError.invalidOption(name: "batchSize", reason: "\(batchSize) is more than 10^6") }
        try checkSchedule(batchSize: batchSize, learningRate: learningRate, weightDecay: weightDecay, warmupRatio: warmupRatio,
                          maxGradNorm: maxGradNorm, logEvery: logEvery)
        guard checkpoints >= 0 else { throw WinnowError.invalidOption(name: "checkpoints", reason: "must not be negative, not \(checkpoints)") }
        guard maskProbability > 0, maskProbability < 1 else {
            throw WinnowError.invalidOption(name: "maskProbability", reason: "must be in (0, 1), not \(maskProbability)")
        }
        guard presence.microbatchSize >= 1 else {
            throw WinnowError.invalidOption(name: "presence.microbatchSize", reason: "must be at least 1, not \(presence.microbatchSize)")
        }
        if presence.reweight == .presence {
            guard presence.microbatchSize < batchSize else {
                throw WinnowError.invalidOption(name: "presence.microbatchSize", reason: "\(presence.microbatchSize) leaves one microbatch a batch of \(batchSize): "
                    + "its weight is always 1, so PRESENCE would be plain training")
            }
            for (name, t) in [("presence.tau1", presence.tau1), ("presence.tau2", presence.tau2)] where !t.isFinite {
                throw WinnowError.invalidOption(name: name, reason: "must be finite, not \(t)")
            }
        }
    }
}

/// What one pre-training step did (for logs, tests and `--si-log`).
package struct PretrainStep: Sendable {
    /// 1-based step number.
    package var step: Int
    /// sum_j w_j L_j
    package var loss: Double
    /// Mean of the samples' losses (what unweighted training minimises).
    package var unweightedLoss: Double
    /// Softmax temperature used at this step (0 without PRESENCE reweighting).
    package var tau: Double
    /// Per microbatch: self-influence (empty when not computed), weight, sample range.
    package var selfInfluence: [Double]
    /// Weight w_j of each microbatch (0 for a microbatch without targets).
    package var weights: [Double]
    /// Microbatch boundaries, J + 1 sample offsets: microbatch j is samples groups[j]..<groups[j + 1].
    package var groups: [Int]
    /// 1-based corpus line of each sample of the batch.
    package var lines: [Int]
}

/// Pre-trains a `BertLanguageModel` on an `LMCorpus`, plain or with PRESENCE reweighting, in one
/// backward pass per step (docs/contracts.md §6): a data-only backward of the unweighted per-sample losses
/// keeps every layer's output gradients; SI per microbatch comes from the chosen layers' Gram form; then
/// each parameter gradient is formed once as G^T diag(w) A. Writes a Hugging Face run folder.
public struct PreTrainer: Sendable {
    /// The options every step and run uses.
    package let options: PretrainOptions

    /// A pre-trainer with `options`.
    public init(options: PretrainOptions) { self.options = options }

    /// One step on `lb`: fills `grads` (zeroed first) with the gradient of sum_j w_j L_j.
    package func step(_ model: some LanguageModel, _ lb: LMBatch, grads: inout ParameterStore, step: Int, seed: UInt64,
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
        let tau = o.reweight == .presence ? o.tau(atStep: step, totalSteps: options.steps) : 0
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
    public static func evaluate(_ model: some LanguageModel, on corpus: LMCorpus, batchSize: Int = 32,
                                maskProbability: Double = 0.15) -> Double {
        var total = 0.0, n = 0
        for start in stride(from: 0, to: corpus.count, by: batchSize) {
            let idx = Array(start..<min(corpus.count, start + batchSize))
            // Masks seeded per window: the same positions whatever the batch size (runs compare on them).
            let lb = corpus.batch(idx, objective: model.objective, seed: 0x5EED_E7A1, maskProbability: maskProbability, seedPerWindow: true)
            model.forward(lb, training: false, seed: 0)
            for b in 0..<idx.count where model.sampleTargets[b] > 0 { total += model.sampleLosses[b]; n += 1 }
        }
        return n > 0 ? total / Double(n) : .nan
    }

    /// Trains `model` for `options.steps` steps over shuffled epochs of `corpus`, writing checkpoints,
    /// trainer_state.json (loss, weight entropy, SI statistics) and, with `siLog`, one CSV row
    /// `step,line,si,weight` per sample of every batch. With `resume`, a run in `run` made with the same
    /// options and corpus continues from its latest complete checkpoint (the SI log too). A model with a
    /// LoRA adapter (`*.lora_A/B.weight` tensors) trains the adapter only: the base gets no gradient and no
    /// optimizer state. `trainee` is what checkpoints save and resuming restores (default: the model; a
    /// decoder's adapter run passes an object that writes the adapter in PEFT's layout).
    @discardableResult
    public func train(_ model: some LanguageModel, on corpus: LMCorpus, run: URL, extraFiles: [URL] = [],
                      siLog: URL? = nil, runInfo: [String: String] = [:], reporter: any ProgressReporter = .silent,
                      resume: Bool = false, trainee: (any TrainableModel)? = nil) throws -> TrainingSummary {
        let o = options
        let what = try check(model, on: corpus, run: run, siLog: siLog, runInfo: runInfo, resume: resume)
        let p = o.presence
        let selection = (p.reweight == .presence || siLog != nil) ? try model.selfInfluenceSelection(p.siParams) : nil
        let loop = TrainingLoop(
            what: "pre-training", label: "pretrain", run: run, totalSteps: o.steps,
            checkpointSteps: evenlySpacedSteps(o.checkpoints, of: o.steps),
            schedule: LinearSchedule(baseLR: o.learningRate, warmupSteps: Int((Float(o.steps) * o.warmupRatio).rounded(.up)), totalSteps: o.steps),
            maxGradNorm: o.maxGradNorm, logEvery: o.logEvery, batchSize: o.batchSize,
            epochs: Int((Double(o.steps * o.batchSize) / Double(corpus.count)).rounded(.up)), extraFiles: extraFiles, reporter: reporter)
        let adapterOnly = model.parameters.names.contains { $0.contains(".lora_") }
        let trainable: (String) -> Bool = adapterOnly ? { $0.contains(".lora_") } : { _ in true }
        let saved: any TrainableModel = trainee ?? model
        var opt = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: o.weightDecay, trainable: trainable)
        var history: [LogEntry] = []
        var log = TextFileBuilder()
        log.append("step,line,si,weight")
        var startStep = 0
        if resume, let ck = TrainingLoop.resumableCheckpoint(run) {
            (startStep, history) = try TrainingLoop.restore(ck, into: saved, optimizer: &opt)
            if siLog != nil { log = TextFileBuilder(data: try Data(contentsOf: ck.url.appendingPathComponent(Self.siLogName))) }
            reporter.note("pretrain: resuming from \(ck.url.path) (step \(startStep) of \(o.steps))")
        } else {
            try TrainingLoop.startFresh(run, resume: resume, reporter: reporter, command: "pretrain")
            for f in extraFiles { try copyFile(f, into: run) }
            var info = what
            info["windows"] = corpus.count
            info["corpus"] = corpus.url.path
            try TrainingLoop.writeRunInfo(run: run, options: o, info: info)
        }
        var grads = model.parameters.zeros(keeping: trainable)
        var order = WindowOrder(count: corpus.count, seed: o.seed)
        order.skip(startStep * o.batchSize)
        var window = (unweighted: 0.0, entropy: 0.0, n: 0, si: [Double](), tau: 0.0)
        let start = Date()
        let hooks = TrainingLoop.Hooks(
            step: { step, grads in
                let idx = (0..<o.batchSize).map { _ in order.next() }
                let stepSeed = SeededGenerator.mix(o.seed ^ SeededGenerator.mix(UInt64(step) &+ 0xB1A5))
                let lb = corpus.batch(idx, objective: model.objective, seed: stepSeed, maskProbability: o.maskProbability)
                let r = self.step(model, lb, grads: &grads, step: step, seed: stepSeed, selection: selection, computeSI: selection != nil)
                if siLog != nil {
                    for j in 0..<(r.groups.count - 1) {
                        for b in r.groups[j]..<r.groups[j + 1] {
                            log.append("\(step),\(r.lines[b]),\(String(format: "%.9g", r.selfInfluence[j])),\(String(format: "%.9g", r.weights[j]))")
                        }
                    }
                }
                window.unweighted += r.unweightedLoss; window.n += 1
                window.entropy += Presence.entropy(r.weights.filter { $0 > 0 })
                window.si += r.selfInfluence
                window.tau = r.tau
                return .init(loss: r.loss, note: String(format: "loss %.4f", r.loss))
            },
            logExtras: { gnorm in
                let n = Double(window.n)
                var extra: [String: Double] = ["grad_norm": gnorm, "unweighted_loss": window.unweighted / n,
                                               "weight_entropy": window.entropy / n, "tau": window.tau]
                if !window.si.isEmpty {
                    let m = window.si.reduce(0, +) / Double(window.si.count)
                    extra["si_mean"] = m
                    extra["si_std"] = (window.si.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(window.si.count)).squareRoot()
                    extra["si_min"] = window.si.min()!
                    extra["si_max"] = window.si.max()!
                }
                window = (0, 0, 0, [], 0)
                return extra
            },
            epoch: { step in Double(step * o.batchSize) / Double(corpus.count) },
            saveExtras: { dir in
                guard let siLog else { return }
                // A checkpoint keeps the log so far (what --resume continues); the final one goes to siLog.
                try log.write(to: dir == run ? siLog : dir.appendingPathComponent(Self.siLogName))
            })
        let lastLoss = try loop.run(saved, optimizer: &opt, grads: &grads, startStep: startStep, history: &history, hooks: hooks)
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(steps: o.steps, finalLoss: lastLoss, checkpointSteps: loop.checkpointSteps.sorted(), seconds: seconds,
                               examplesPerSecond: Double((o.steps - startStep) * o.batchSize) / max(seconds, 1e-9),
                               stepsRun: o.steps - startStep)
    }
}

/// The order pre-training reads windows in: epoch after epoch, each a fresh shuffle from the seed.
/// Deterministic, so a resumed run skips what the steps before it read and continues identically.
struct WindowOrder {
    let count: Int
    let seed: UInt64
    private var order: [Int] = []
    private var cursor = 0
    private var epoch = 0

    init(count: Int, seed: UInt64) {
        self.count = count
        self.seed = seed
    }

    mutating func next() -> Int {
        if cursor >= order.count {
            order = Array(0..<count)
            var rng = SeededGenerator(seed: seed, stream: "lm-shuffle-\(epoch)")
            order.shuffle(using: &rng)
            cursor = 0; epoch += 1
        }
        cursor += 1
        return order[cursor - 1]
    }

    /// Moves past `n` windows.
    mutating func skip(_ n: Int) { for _ in 0..<n { _ = next() } }
}

extension PreTrainer {
    /// The SI log's name inside each checkpoint (what resuming continues).
    static let siLogName = "si-log.csv"

    /// The refusals `train` makes before it writes anything, made without training (commands call it before
    /// printing what they will train): the options; a corpus of another objective, ids past the model's
    /// vocabulary or windows past its positions; with `resume`, a run in `run` made with other options, corpus
    /// or model, or without the SI log asked for. Returns what `RUN/winnow.json` records the run to be of.
    ///
    /// - Throws: `WinnowError.invalidOption`, or `.missingFile` for a resumed run without its SI log.
    @discardableResult
    public func check(_ model: some LanguageModel, on corpus: LMCorpus, run: URL, siLog: URL? = nil,
                      runInfo: [String: String] = [:], resume: Bool = false) throws -> [String: Any] {
        let o = options
        try o.validate()
        // What the C kernels trust: ids inside the embedding table, windows inside the positions, and a corpus of the model's objective.
        if corpus.causalOnly && model.objective == .mlm {
            throw WinnowError.invalidOption(name: "corpus", reason: "is a decoder's corpus (no [MASK] token): a masked language model cannot train on it")
        }
        try corpus.checkIDs(below: model.vocabularySize)
        guard corpus.seqLen <= model.maxSequenceLength else {
            throw WinnowError.invalidOption(name: "seqLen", reason: "\(corpus.seqLen) is more than the model's \(model.maxSequenceLength) positions")
        }
        if o.presence.reweight == .presence || siLog != nil { _ = try model.selfInfluenceSelection(o.presence.siParams) }
        // What the run is of, beside the options: resuming needs the same corpus (by content, wherever it is now),
        // windows and model.
        var what: [String: Any] = ["objective": model.objective.rawValue, "seq_len": corpus.seqLen]
        if FileFingerprint.isRegularFile(corpus.url) { what["corpus_fnv1a64"] = try FileFingerprint.fnv1a64(corpus.url) }
        for (k, v) in runInfo { what[k] = v }
        if resume, let ck = TrainingLoop.resumableCheckpoint(run) {
            try TrainingLoop.checkSameRun(run, options: o, countKey: "windows", count: corpus.count)
            try TrainingLoop.checkSameInfo(run, what)
            let kept = ck.url.appendingPathComponent(Self.siLogName)
            if siLog != nil && !FileManager.default.fileExists(atPath: kept.path) {
                throw WinnowError.missingFile(path: kept.path, reason: "the run was made without an SI log; resume without one, or start over")
            }
        }
        return what
    }

    /// `check` for a decoder's continued pre-training (`train(decoder:...)`), with the run information that records.
    ///
    /// - Throws: as `check`.
    public func check(decoder: LlamaForCausalLM, base: URL, on corpus: LMCorpus, run: URL, siLog: URL? = nil,
                      runInfo: [String: String] = [:], resume: Bool = false) throws {
        try check(decoder, on: corpus, run: run, siLog: siLog, runInfo: Self.decoderInfo(decoder, base: base, runInfo), resume: resume)
    }

    static func decoderInfo(_ decoder: LlamaForCausalLM, base: URL, _ runInfo: [String: String]) -> [String: String] {
        var info = runInfo
        info["base"] = base.standardizedFileURL.path
        if let l = decoder.loraConfig { info["lora"] = "r \(l.rank), alpha \(l.alpha), dropout \(l.dropout), targets \(l.targets.map(\.rawValue).joined(separator: ","))" }
        return info
    }

    /// Continued pre-training of a decoder (`winnow pretrain --init`): `train` with the run written as a
    /// decoder's. With an adapter (`addLoRA` first) the run and its checkpoints are PEFT adapter folders
    /// whose base model is `base`; without one they are Hugging Face folders with `extraFiles` (the
    /// tokenizer files) copied in.
    ///
    /// - Throws: as `train`.
    @discardableResult
    public func train(decoder: LlamaForCausalLM, base: URL, on corpus: LMCorpus, run: URL, extraFiles: [URL] = [], siLog: URL? = nil,
                      runInfo: [String: String] = [:], reporter: any ProgressReporter = .silent, resume: Bool = false) throws -> TrainingSummary {
        let adapter = decoder.loraConfig != nil
        return try train(decoder, on: corpus, run: run, extraFiles: adapter ? [] : extraFiles, siLog: siLog,
                         runInfo: Self.decoderInfo(decoder, base: base, runInfo), reporter: reporter,
                         resume: resume, trainee: DecoderTrainer.Trainee(decoder, base: base.standardizedFileURL.path, extraFiles: extraFiles))
    }
}
