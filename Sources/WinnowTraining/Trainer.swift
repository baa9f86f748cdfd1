import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// How to train (the options of `winnow train`).
public struct TrainingOptions: Sendable, Codable, Equatable {
    /// The peak learning rate that fits a model: 5e-5 to fine-tune a pretrained encoder (`--init`),
    /// 1e-3 for one trained from scratch (at 5e-5 a small encoder from scratch stays at the majority class).
    public static func defaultLearningRate(pretrained: Bool) -> Float { pretrained ? 5e-5 : 1e-3 }

    /// What is trained, for ``defaultLearningRate(for:)``.
    public enum Trained: Sendable, Equatable {
        /// A BERT encoder from scratch.
        case encoderFromScratch
        /// Every parameter of a pretrained encoder.
        case pretrainedEncoder
        /// A LoRA adapter on a pretrained encoder, with the classifier head beside it.
        case encoderLoRA
        /// Every parameter of a pretrained decoder (causal LM or sequence classification).
        case decoder
        /// A LoRA adapter on a pretrained decoder (with the score head for classification).
        case decoderLoRA
    }

    /// The peak learning rate `winnow train` uses when `--lr` is not given: 1e-3 from scratch, 5e-5 for a
    /// pretrained encoder, 5e-4 for its LoRA adapter, 2e-5 for a decoder, 2e-4 for its LoRA adapter.
    ///
    ///     var o = TrainingOptions(); o.learningRate = TrainingOptions.defaultLearningRate(for: .decoderLoRA)
    public static func defaultLearningRate(for trained: Trained) -> Float {
        switch trained {
        case .encoderFromScratch: 1e-3
        case .pretrainedEncoder: 5e-5
        case .encoderLoRA: 5e-4
        case .decoder: 2e-5
        case .decoderLoRA: 2e-4
        }
    }

    /// Passes over the training data.
    public var epochs = 3
    /// Examples per step.
    public var batchSize = 32
    /// Peak learning rate of the linear warm-up and decay schedule.
    public var learningRate: Float = 5e-5
    /// Weight decay (decoupled for AdamW, added to the gradient for SGD); not on biases and LayerNorm weights.
    public var weightDecay: Float = 0.01
    /// Warm-up as a fraction of all steps (Hugging Face `warmup_ratio`).
    public var warmupRatio: Float = 0.1
    /// The update rule (AdamW by default).
    public var optimizer: Optimizer.Kind = .adamw
    /// SGD momentum; unused by AdamW.
    public var momentum: Float = 0.9
    /// Clip the global gradient norm to this value (Hugging Face `max_grad_norm`); nil disables.
    public var maxGradNorm: Float? = 1.0
    /// Seed of the data order and dropout.
    public var seed: UInt64 = 0
    /// Number of evenly spaced checkpoints; nil with `checkpointPerEpoch` false saves only the end.
    public var checkpoints: Int? = nil
    /// With `checkpoints` nil: save a checkpoint at the end of every epoch.
    public var checkpointPerEpoch = true
    /// These options as `RUN/winnow.json` records and resuming compares them: `checkpointPerEpoch` is
    /// false when `checkpoints` decides.
    var recorded: TrainingOptions {
        var c = self
        if checkpoints != nil { c.checkpointPerEpoch = false }
        return c
    }
    /// Token limit the training data was encoded with (0 for CSV features); recorded in `RUN/winnow.json`,
    /// not applied by `Trainer`.
    public var maxLength = 128
    /// Train on empty inputs (the PVI null model).
    public var null = false
    /// Record training dynamics (forgetting, cartography, AUM).
    public var recordDynamics = true
    /// Log loss and learning rate every this many steps.
    public var logEvery = 10

    /// The default options.
    public init() {}

    /// Checks every value against its range (every training entry point calls it first).
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `epochs`, `batchSize` or `logEvery` below 1,
    ///   `learningRate` not positive, `weightDecay` or `momentum` negative, `warmupRatio` outside [0, 1],
    ///   `maxGradNorm` not positive, or `checkpoints` negative.
    public func validate() throws {
        guard epochs >= 1 else { throw WinnowError.invalidOption(name: "epochs", reason: "must be at least 1, not \(epochs)") }
        try checkSchedule(batchSize: batchSize, learningRate: learningRate, weightDecay: weightDecay, warmupRatio: warmupRatio,
                          maxGradNorm: maxGradNorm, logEvery: logEvery)
        guard momentum.isFinite, momentum >= 0 else { throw WinnowError.invalidOption(name: "momentum", reason: "must be a number >= 0, not \(momentum)") }
        if let k = checkpoints, k < 0 { throw WinnowError.invalidOption(name: "checkpoints", reason: "must not be negative, not \(k)") }
    }
}

extension Optimizer.Kind: Codable {}

/// The range checks the training options share (`TrainingOptions.validate()`, `PretrainOptions.validate()`).
func checkSchedule(batchSize: Int, learningRate: Float, weightDecay: Float, warmupRatio: Float, maxGradNorm: Float?, logEvery: Int) throws {
    func bad(_ name: String, _ why: String) -> WinnowError { .invalidOption(name: name, reason: why) }
    guard batchSize >= 1 else { throw bad("batchSize", "must be at least 1, not \(batchSize)") }
    guard learningRate.isFinite, learningRate > 0 else { throw bad("learningRate", "must be a positive number, not \(learningRate)") }
    guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("weightDecay", "must be a number >= 0, not \(weightDecay)") }
    guard warmupRatio.isFinite, (0...1).contains(warmupRatio) else { throw bad("warmupRatio", "must be in [0, 1], not \(warmupRatio)") }
    if let g = maxGradNorm, !(g.isFinite && g > 0) { throw bad("maxGradNorm", "must be a positive number or nil (no clipping), not \(g)") }
    guard logEvery >= 1 else { throw bad("logEvery", "must be at least 1, not \(logEvery)") }
}

/// What a training run produced.
public struct TrainingSummary: Sendable {
    /// Total steps of the run (steps done before a resume included).
    public var steps: Int
    /// Loss of the last step run: mean cross-entropy of its batch (the weighted loss when pre-training).
    public var finalLoss: Double
    /// Steps with a checkpoint, ascending (the last step included).
    public var checkpointSteps: [Int]
    /// Wall-clock seconds this call spent training, including checkpoints and the final save.
    public var seconds: Double
    /// Steps run by this call times the batch size, per second.
    public var examplesPerSecond: Double
    /// Steps run by this call (0 when a resumed run was complete already; `finalLoss` is then its last logged loss).
    public var stepsRun: Int

    /// "N steps", or for a resumed run "M of N steps (resumed at step S)": what this call trained.
    public var stepsDescription: String {
        stepsRun == steps ? "\(steps) step\(steps == 1 ? "" : "s")" : "\(stepsRun) of \(steps) steps (resumed at step \(steps - stepsRun))"
    }
}

/// Trains a classifier (`ClassifierModel`: a BERT or decoder classifier, or the MLP) and writes a run folder in the
/// Hugging Face Trainer layout.
///
///     let summary = try Trainer(options: opts).train(model, on: data, run: URL(fileURLWithPath: "runs/rt"))
public struct Trainer: Sendable {
    /// The options every run uses.
    public let options: TrainingOptions

    /// A trainer with `options`.
    public init(options: TrainingOptions) { self.options = options }

    /// What a run records of its training file, for `train(_:on:run:runInfo:)`: its path, its content
    /// fingerprint (forgetting, cartography and AUM then refuse another or reordered file) and, with
    /// `fields`, the fields its examples were read by (scores then refuse single texts for a run of pairs).
    ///
    ///     try trainer.train(model, on: encoded, run: run, runInfo: Trainer.runInfo(data: train, fields: data.fields))
    ///
    /// - Throws: `WinnowError.missingFile` when the file cannot be read.
    public static func runInfo(data url: URL, fields: FieldNames? = nil) throws -> [String: String] {
        var info = ["data": url.path]
        if let f = fields {
            if let t = f.text { info["text_field"] = t }
            if let p = f.pair { info["pair_field"] = p }
            if let l = f.label { info["label_field"] = l }
        }
        // A pipe was read by training: nothing is left to fingerprint (scores then check the count only).
        if FileFingerprint.isRegularFile(url) { info[FileFingerprint.runInfoKey] = try FileFingerprint.fnv1a64(url) }
        return info
    }

    /// Steps per epoch for `n` examples.
    public func stepsPerEpoch(_ n: Int) -> Int { (n + options.batchSize - 1) / options.batchSize }

    /// The steps at which checkpoints are saved.
    public func checkpointSteps(totalSteps: Int, stepsPerEpoch spe: Int) -> [Int] {
        var s: Set<Int> = [totalSteps]
        if let k = options.checkpoints, k > 0 {
            for i in 1...k { s.insert(max(1, Int((Double(totalSteps) * Double(i) / Double(k)).rounded()))) }
        } else if options.checkpointPerEpoch {
            for e in 1...max(1, options.epochs) { s.insert(min(totalSteps, e * spe)) }
        }
        return s.sorted()
    }

    /// Trains `model` in place on `data`, writing checkpoints, trainer state and dynamics into `run`.
    /// `extraFiles` (e.g. vocab.txt) are copied into the run and every checkpoint. With `resume`, a run
    /// in `run` made with the same options and data continues from its latest complete checkpoint.
    @discardableResult
    public func train<M: ClassifierModel, D: ClassifierData>(
        _ model: M, on data: D, run: URL, extraFiles: [URL] = [], runInfo: [String: String] = [:],
        reporter: any ProgressReporter = .silent, resume: Bool = false
    ) throws -> TrainingSummary where M.Input == D.Input {
        let o = options
        try o.validate()
        guard data.count > 0 else { throw WinnowError.invalidOption(name: "data", reason: "no training examples") }
        // What the C kernels trust: token ids inside the model's embedding table, examples inside its positions.
        if let encoded = data as? EncodedDataset, let m = model as? any SequenceClassifier {
            try encoded.checkFits(vocabulary: m.dimensions.vocabulary, positions: m.dimensions.maxPositions)
        }
        let spe = stepsPerEpoch(data.count)
        let total = spe * o.epochs
        if let k = o.checkpoints, k > total {
            reporter.note("note: \(k) checkpoints were asked for and the run has \(total) steps: one at every step, \(total) in all")
        }
        let loop = TrainingLoop(
            what: "training", label: "train", run: run, totalSteps: total,
            checkpointSteps: Set(checkpointSteps(totalSteps: total, stepsPerEpoch: spe)),
            schedule: LinearSchedule(baseLR: o.learningRate, warmupSteps: Int((Float(total) * o.warmupRatio).rounded(.up)), totalSteps: total),
            maxGradNorm: o.maxGradNorm, logEvery: o.logEvery, batchSize: o.batchSize, epochs: o.epochs, extraFiles: extraFiles,
            reporter: reporter)
        var opt = Optimizer(kind: o.optimizer, parameters: model.parameters, weightDecay: o.weightDecay, momentum: o.momentum,
                            trainable: model.trainableTensors)
        var dynamics = Dynamics()
        dynamics.exampleCount = data.count
        var history: [LogEntry] = []
        var startStep = 0
        if resume, let ck = TrainingLoop.resumableCheckpoint(run) {
            try TrainingLoop.checkSameRun(run, options: o.recorded, countKey: "examples", count: data.count) { $0.recorded }
            // The run's other settings (an adapter, the initial model, the fields read), not where the data lives.
            try TrainingLoop.checkSameInfo(run, runInfo.filter { $0.key != "data" })
            (startStep, history) = try TrainingLoop.restore(ck, into: model, optimizer: &opt)
            if o.recordDynamics { dynamics = try TrainingLoop.damagedCheckpointHint(ck) { try Dynamics(contentsOf: ck.url.appendingPathComponent("dynamics.safetensors")) } }
            reporter.note("train: resuming from \(ck.url.path) (step \(startStep) of \(total))")
        } else if Distributed.isRoot {
            try TrainingLoop.startFresh(run, resume: resume, reporter: reporter)
            for f in extraFiles { try copyFile(f, into: run) }
            var info: [String: Any] = ["examples": data.count, "labels": data.labelNames]
            for (k, v) in runInfo { info[k] = v }
            try TrainingLoop.writeRunInfo(run: run, options: o.recorded, info: info)
        }
        let group = Distributed.parallel
        var grads = model.gradientBuffers()
        var order: (epoch: Int, indices: [Int]) = (-1, [])
        let start = Date()
        let hooks = TrainingLoop.Hooks(
            step: { k, grads in
                // Step k (1-based) takes batch (k-1) % spe of epoch (k-1) / spe's shuffled order.
                let epoch = (k - 1) / spe, j = (k - 1) % spe
                if order.epoch != epoch { order = (epoch, data.shuffledOrder(seed: o.seed, epoch: epoch)) }
                let global = Array(order.indices[(j * o.batchSize)..<min((j + 1) * o.batchSize, order.indices.count)])
                let stepSeed = SeededGenerator.mix(o.seed ^ SeededGenerator.mix(UInt64(k - 1) &+ 0xD207))
                grads.zeroAll()
                let loss: Double
                if let group {
                    // Data parallel: this rank's slice of the global batch, weighted so that the summed
                    // gradient is the mean over the global batch's labelled rows.
                    let batch = data.batch(Array(global[Distributed.slice(global.count, rank: group.rank, size: group.size)]))
                    var counts = [Double(batch.labels.filter { $0 >= 0 }.count)]
                    group.allReduceSum(&counts, count: 1)
                    let w = [Float](repeating: counts[0] > 0 ? Float(1 / counts[0]) : 0, count: batch.size)
                    model.lossAndGradients(batch, grads: &grads, training: true, seed: stepSeed, weights: w)
                    var sum = [(0..<batch.size).reduce(0.0) { $0 + (batch.labels[$1] >= 0 ? Double(model.lastLosses[$1]) : 0) }]
                    group.allReduceSum(&sum, count: 1)
                    loss = counts[0] > 0 ? sum[0] / counts[0] : 0
                    for i in grads.tensors.indices { group.allReduceSum(grads.tensors[i].mptr, count: grads[i].count) }
                    if o.recordDynamics { recordDistributed(&dynamics, model: model, batch: batch, global: global, group: group, epoch: epoch, step: k) }
                } else {
                    let batch = data.batch(global)
                    loss = model.lossAndGradients(batch, grads: &grads, training: true, seed: stepSeed, weights: nil)
                    if o.recordDynamics { record(&dynamics, model: model, batch: batch, epoch: epoch, step: k) }
                }
                return .init(loss: loss, note: String(format: "loss %.4f", loss))
            },
            logExtras: { gnorm in ["grad_norm": gnorm] },
            epoch: { k in
                let e = (k - 1) / spe
                return Double(e) + Double(k - e * spe) / Double(spe)
            },
            saveExtras: { dir in if o.recordDynamics { try dynamics.write(to: dir.appendingPathComponent("dynamics.safetensors")) } })
        let lastLoss = try loop.run(model, optimizer: &opt, grads: &grads, startStep: startStep, history: &history, hooks: hooks)
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(steps: total, finalLoss: lastLoss, checkpointSteps: loop.checkpointSteps.sorted(), seconds: seconds,
                               examplesPerSecond: Double((total - startStep) * o.batchSize) / max(seconds, 1e-9),
                               stepsRun: total - startStep)
    }

    /// Dynamics of a global batch split over ranks: each rank fills its rows of a [rows x 4] table
    /// (loss, p_y, margin, correct), the tables are summed over ranks, and every rank records all rows
    /// in global order, as one process would.
    func recordDistributed<M: ClassifierModel>(_ d: inout Dynamics, model: M, batch: M.Input, global: [Int], group: ProcessGroup,
                                               epoch: Int, step: Int) {
        let logits = model.lastLogits, probs = model.lastProbabilities, losses = model.lastLosses
        let L = model.labelNames.count
        let mine = Distributed.slice(global.count, rank: group.rank, size: group.size)
        var table = [Double](repeating: 0, count: global.count * 5)
        for b in 0..<batch.size {
            let r = mine.lowerBound + b
            let y = Int(batch.labels[b])
            guard y >= 0 else { continue }
            var best = -Float.infinity, argmax = 0, other = -Float.infinity
            for j in 0..<L {
                let z = logits[b, j]
                if z > best { best = z; argmax = j }
                if j != y && z > other { other = z }
            }
            table[5 * r] = 1
            table[5 * r + 1] = Double(losses[b]); table[5 * r + 2] = Double(probs[b, y])
            table[5 * r + 3] = Double(logits[b, y] - (L > 1 ? other : 0)); table[5 * r + 4] = argmax == y ? 1 : 0
        }
        group.allReduceSum(&table, count: table.count)
        for (r, i) in global.enumerated() where table[5 * r] > 0 {
            d.append(epoch: epoch, step: step, index: i, loss: Float(table[5 * r + 1]), pTrue: Float(table[5 * r + 2]),
                     margin: Float(table[5 * r + 3]), correct: table[5 * r + 4] > 0.5)
        }
    }

    /// Per-example loss, p_y, margin and correctness of the forward just run (training mode, before the update).
    func record<M: ClassifierModel>(_ d: inout Dynamics, model: M, batch: M.Input, epoch: Int, step: Int) {
        let logits = model.lastLogits, probs = model.lastProbabilities, losses = model.lastLosses
        let L = model.labelNames.count
        for b in 0..<batch.size where batch.labels[b] >= 0 {
            let y = Int(batch.labels[b])
            var best = -Float.infinity, argmax = 0, other = -Float.infinity
            for j in 0..<L {
                let z = logits[b, j]
                if z > best { best = z; argmax = j }
                if j != y && z > other { other = z }
            }
            d.append(epoch: epoch, step: step, index: batch.indices[b], loss: losses[b], pTrue: probs[b, y],
                     margin: logits[b, y] - (L > 1 ? other : 0), correct: argmax == y)
        }
    }
}
