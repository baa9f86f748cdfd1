import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// How to train (the options of `winnow train`).
public struct TrainingOptions: Sendable, Codable, Equatable {
    public var epochs = 3
    public var batchSize = 32
    public var learningRate: Float = 5e-5
    public var weightDecay: Float = 0.01
    /// Warm-up as a fraction of all steps (Hugging Face `warmup_ratio`).
    public var warmupRatio: Float = 0.0
    public var optimizer: Optimizer.Kind = .adamw
    public var momentum: Float = 0.9
    /// Clip the global gradient norm to this value (Hugging Face `max_grad_norm`); nil disables.
    public var maxGradNorm: Float? = 1.0
    public var seed: UInt64 = 0
    /// Number of evenly spaced checkpoints; nil with `checkpointPerEpoch` false saves only the end.
    public var checkpoints: Int? = nil
    public var checkpointPerEpoch = true
    public var maxLength = 128
    /// Train on empty inputs (the PVI null model).
    public var null = false
    /// Record training dynamics (forgetting, cartography, AUM).
    public var recordDynamics = true
    /// Log loss and learning rate every this many steps.
    public var logEvery = 10

    public init() {}
}

extension Optimizer.Kind: Codable {}

/// What a training run produced.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var finalLoss: Double
    public var checkpointSteps: [Int]
    public var seconds: Double
    public var examplesPerSecond: Double
}

/// Trains a `BertClassifier` and writes a run folder in the Hugging Face Trainer layout.
///
///     let summary = try Trainer(options: opts).train(model, on: data, run: URL(fileURLWithPath: "runs/rt"))
public struct Trainer: Sendable {
    public let options: TrainingOptions

    public init(options: TrainingOptions) { self.options = options }

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
    /// `extraFiles` (e.g. vocab.txt) are copied into the run and every checkpoint.
    @discardableResult
    public func train<M: ClassifierModel, D: ClassifierData>(_ model: M, on data: D, run: URL, extraFiles: [URL] = [],
                      runInfo: [String: String] = [:], quiet: Bool = false, resume: Bool = false) throws -> TrainingSummary where M.Input == D.Input {
        let o = options
        guard data.count > 0 else { throw WinnowError.invalidOption(name: "--data", reason: "no training examples") }
        let spe = stepsPerEpoch(data.count)
        let total = spe * o.epochs
        let sched = LinearSchedule(baseLR: o.learningRate, warmupSteps: Int((Float(total) * o.warmupRatio).rounded(.up)), totalSteps: total)
        let ckSteps = Set(checkpointSteps(totalSteps: total, stepsPerEpoch: spe))
        var opt = Optimizer(kind: o.optimizer, parameters: model.parameters, weightDecay: o.weightDecay, momentum: o.momentum)
        var dynamics = Dynamics()
        dynamics.exampleCount = data.count
        var history: [LogEntry] = []
        var step = 0
        if resume, let ck = try resumableCheckpoint(run) {
            try checkSameRun(run, data: data)
            let file = try SafeTensorsFile(url: ck.url.appendingPathComponent("model.safetensors"))
            for i in model.parameters.tensors.indices {
                let name = model.parameters.names[i]
                guard let e = file.entry(name), e.shape == model.parameters[i].shape else {
                    throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason: "missing or mis-shaped; cannot resume from this checkpoint")
                }
                model.parameters[i] = try file.tensor(e)
            }
            try opt.restore(from: SafeTensorsFile(url: ck.url.appendingPathComponent("optimizer.safetensors")))
            let state = try TrainerState(contentsOf: ck.url.appendingPathComponent("trainer_state.json"))
            history = state.logHistory
            step = state.globalStep
            if o.recordDynamics { dynamics = try Dynamics(contentsOf: ck.url.appendingPathComponent("dynamics.safetensors")) }
            if !quiet { printError("train: resuming from \(ck.url.path) (step \(step) of \(total))") }
        } else if Distributed.isRoot {
            try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
            for f in extraFiles { try copyFile(f, into: run) }
            try writeRunInfo(run: run, data: data, extra: runInfo)
        }
        let group = Distributed.parallel
        let startStep = step
        var lastCheckpoint: Int? = startStep > 0 ? startStep : nil
        var grads = model.parameters.zeros()
        var windowLoss = 0.0, windowCount = 0, lastLoss = 0.0
        let bar = ProgressBar(label: "train", total: total - startStep, unit: "step", quiet: quiet)
        let start = Date()
        for epoch in (startStep / spe)..<o.epochs {
            var order = data.shuffledOrder(seed: o.seed, epoch: epoch)
            if epoch == startStep / spe { order = Array(order.dropFirst((startStep % spe) * o.batchSize)) }
            for start in stride(from: 0, to: order.count, by: o.batchSize) {
                let global = Array(order[start..<min(start + o.batchSize, order.count)])
                let stepSeed = SeededGenerator.mix(o.seed ^ SeededGenerator.mix(UInt64(step) &+ 0xD207))
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
                    if o.recordDynamics { recordDistributed(&dynamics, model: model, batch: batch, global: global, group: group, epoch: epoch, step: step + 1) }
                } else {
                    let batch = data.batch(global)
                    loss = model.lossAndGradients(batch, grads: &grads, training: true, seed: stepSeed, weights: nil)
                    if o.recordDynamics { record(&dynamics, model: model, batch: batch, epoch: epoch, step: step + 1) }
                }
                guard loss.isFinite else {
                    throw WinnowError.numericFault(reason: "training stopped at step \(step + 1): the loss is \(loss); "
                        + lastGood(run, step: lastCheckpoint) + " (try a lower --lr)")
                }
                let gnorm = gradientNorm(grads)
                guard gnorm.isFinite else {
                    throw WinnowError.numericFault(reason: "training stopped at step \(step + 1): the gradient norm is \(gnorm); "
                        + lastGood(run, step: lastCheckpoint) + " (try a lower --lr)")
                }
                if let clip = o.maxGradNorm, gnorm > Double(clip) {
                    let s = Float(Double(clip) / (gnorm + 1e-6))
                    for i in grads.tensors.indices { ck_scale(grads.tensors[i].mptr, grads[i].count, s) }
                }
                opt.step(&model.parameters, grads: grads, lr: sched.lr(afterSteps: step))
                step += 1
                windowLoss += loss; windowCount += 1; lastLoss = loss
                let epochF = Double(epoch) + Double(step - epoch * spe) / Double(spe)
                if step % max(1, o.logEvery) == 0 || step == total || ckSteps.contains(step) {
                    history.append(LogEntry(step: step, epoch: epochF, learningRate: Double(sched.lr(afterSteps: step)),
                                            loss: windowLoss / Double(windowCount), extra: ["grad_norm": gnorm]))
                    windowLoss = 0; windowCount = 0
                }
                if ckSteps.contains(step) && Distributed.isRoot {
                    let state = TrainerState(globalStep: step, epoch: epochF, maxSteps: total, numTrainEpochs: o.epochs,
                                             trainBatchSize: o.batchSize, logHistory: history)
                    let ck = run.appendingPathComponent("checkpoint-\(step)")
                    try model.save(to: ck)
                    for f in extraFiles { try copyFile(f, into: ck) }
                    // What --resume needs; trainer_state.json is written last and marks the checkpoint complete.
                    try SafeTensorsFile.write(opt.state, to: ck.appendingPathComponent("optimizer.safetensors"))
                    if o.recordDynamics { try dynamics.write(to: ck.appendingPathComponent("dynamics.safetensors")) }
                    try state.write(to: ck.appendingPathComponent("trainer_state.json"))
                    lastCheckpoint = step
                }
                bar.advance(note: String(format: "loss %.4f", loss))
            }
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        guard Distributed.isRoot else {
            return TrainingSummary(steps: step, finalLoss: lastLoss, checkpointSteps: ckSteps.sorted(), seconds: seconds,
                                   examplesPerSecond: Double((step - startStep) * o.batchSize) / max(seconds, 1e-9))
        }
        try model.save(to: run)
        try TrainerState(globalStep: step, epoch: Double(o.epochs), maxSteps: total, numTrainEpochs: o.epochs,
                         trainBatchSize: o.batchSize, logHistory: history).write(to: run.appendingPathComponent("trainer_state.json"))
        if o.recordDynamics { try dynamics.write(to: run.appendingPathComponent("dynamics.safetensors")) }
        return TrainingSummary(steps: step, finalLoss: lastLoss, checkpointSteps: ckSteps.sorted(), seconds: seconds,
                               examplesPerSecond: Double((step - startStep) * o.batchSize) / max(seconds, 1e-9))
    }

    /// Where the last good state is, for a numeric-fault message.
    func lastGood(_ run: URL, step: Int?) -> String {
        guard let step else { return "no checkpoint was written before it, and nothing else in \(run.path) was changed" }
        return "the last good checkpoint, \(run.appendingPathComponent("checkpoint-\(step)").path), is kept (winnow train --resume continues from it)"
    }

    /// The latest complete checkpoint of `run` that can be resumed from (model, optimizer state and
    /// trainer_state.json), or nil when the run has none (training then starts over).
    func resumableCheckpoint(_ run: URL) throws -> RunFolder.Checkpoint? {
        guard FileManager.default.fileExists(atPath: run.appendingPathComponent("winnow.json").path),
              let folder = try? RunFolder(url: run) else { return nil }
        return folder.checkpoints.last { ck in
            ["model.safetensors", "optimizer.safetensors", "trainer_state.json"].allSatisfy {
                FileManager.default.fileExists(atPath: ck.url.appendingPathComponent($0).path)
            }
        }
    }

    /// Refuses to resume a run made with other training options or another number of examples.
    func checkSameRun<D: ClassifierData>(_ run: URL, data: D) throws {
        let url = run.appendingPathComponent("winnow.json")
        guard let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              let opts = obj["options"], let examples = obj["examples"] as? Int else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a winnow run description; cannot resume")
        }
        let saved = try JSONDecoder().decode(TrainingOptions.self, from: JSONSerialization.data(withJSONObject: opts))
        guard saved == options, examples == data.count else {
            throw WinnowError.invalidOption(name: "--resume", reason:
                "\(run.path) was trained with other options or data (\(examples) examples); rerun with the same options, or use another --out")
        }
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

    func writeRunInfo<D: ClassifierData>(run: URL, data: D, extra: [String: String]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var info: [String: Any] = ["options": try JSONSerialization.jsonObject(with: enc.encode(options)),
                                   "examples": data.count, "labels": data.labelNames, "tool": "winnow"]
        for (k, v) in extra { info[k] = v }
        try AtomicFile.write(JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys]),
                             to: run.appendingPathComponent("winnow.json"))
    }
}

/// Copies `file` into `folder` (atomically), replacing an older copy.
func copyFile(_ file: URL, into folder: URL) throws {
    try AtomicFile.write(Data(contentsOf: file), to: folder.appendingPathComponent(file.lastPathComponent))
}
