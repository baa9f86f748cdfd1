import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// Fine-tunes a Llama-family causal language model on decoder data (docs/contracts.md §2b: text,
/// prompt + completion, chat messages), the loss on each example's scored tokens only: the mean over
/// every scored token of the batch, as transformers computes it with -100 elsewhere. With a LoRA
/// adapter (`lora`) only the adapter is trained (the base gets no gradient and no optimizer state) and
/// the run and its checkpoints are PEFT adapter folders (`adapter_config.json`,
/// `adapter_model.safetensors`) that peft and `winnow score --run` load; without one, a model that carries
/// an adapter (loaded from a PEFT folder) trains that adapter on, and any other trains every parameter and
/// is saved as a Hugging Face folder. Shares the training loop of `Trainer` (schedule, clipping,
/// non-finite guard, checkpoints with optimizer state, trainer_state.json, progress, resuming from the
/// latest complete checkpoint).
///
///     let lm = try LlamaForCausalLM(folder: base)
///     let s = try DecoderTrainer(options: o, lora: LoRAConfig(rank: 8, alpha: 16, targets: [.q, .v]))
///         .train(lm, on: encoded, base: base, run: URL(fileURLWithPath: "runs/sft"))
public struct DecoderTrainer: Sendable {
    /// Epochs, batch size, learning rate, warm-up, weight decay, clipping, seed, checkpoints.
    public let options: TrainingOptions
    /// The adapter to add and train; nil trains every parameter, or the model's own adapter when it has one
    /// (an adapter loaded from a PEFT folder trains on).
    public let lora: LoRAConfig?

    /// A trainer with these options.
    public init(options: TrainingOptions, lora: LoRAConfig? = nil) {
        self.options = options
        self.lora = lora
    }

    /// The model as the training loop sees it: the adapter run saves the adapter, the full run the model.
    final class Trainee: TrainableModel {
        let lm: LlamaForCausalLM
        let base: String
        let extraFiles: [URL]
        init(_ lm: LlamaForCausalLM, base: String, extraFiles: [URL]) { self.lm = lm; self.base = base; self.extraFiles = extraFiles }
        var parameters: ParameterStore {
            get { lm.parameters }
            set { lm.parameters = newValue }
        }
        func save(to folder: URL) throws {
            if lm.loraConfig != nil { try lm.saveAdapter(to: folder, base: base) } else { try lm.save(to: folder) }
        }
    }

    /// Trains `model` on `data` into `run`. `base` is the model's source (written as the adapter's
    /// `base_model_name_or_path`, made absolute); `extraFiles` (tokenizer files) are copied into a full run.
    ///
    /// - Throws: `WinnowError.invalidOption` when there is nothing to train on, or when `lora` is given and the
    ///   model already has an adapter; `resume` refusals naming what differs from the run's winnow.json; `WinnowError.numericFault` when the loss or gradient stops being finite; errors of
    ///   writing the run.
    @discardableResult
    public func train(_ model: LlamaForCausalLM, on data: [DecoderEncoding], base: URL, run: URL, extraFiles: [URL] = [],
                      runInfo: [String: String] = [:], reporter: any ProgressReporter = .silent, resume: Bool = false) throws -> TrainingSummary {
        let o = options
        try o.validate()
        guard data.contains(where: { $0.scoredCount > 0 }) else {
            throw WinnowError.invalidOption(name: "data", reason: "no example has a token to train on")
        }
        // What the C kernels trust: ids inside the embedding table, sequences inside the context.
        for (i, e) in data.enumerated() {
            if let bad = e.ids.first(where: { $0 < 0 || Int($0) >= model.vocabularySize }) {
                throw WinnowError.invalidOption(name: "data", reason: "example \(i): \(Tokenizers.outsideModelVocabulary(bad, model.vocabularySize))")
            }
            if e.ids.count > model.maxSequenceLength {
                throw WinnowError.invalidOption(name: "data", reason: "example \(i) has \(e.ids.count) tokens, more than the model's \(model.maxSequenceLength)")
            }
        }
        if let lora {
            guard model.loraConfig == nil else { throw WinnowError.invalidOption(name: "lora", reason: "the model already has an adapter") }
            try model.addLoRA(lora, seed: o.seed)
        }
        let adapter = model.loraConfig
        let trainable: (String) -> Bool = adapter == nil ? { _ in true } : { $0.contains(".lora_") }
        let spe = (data.count + o.batchSize - 1) / o.batchSize
        let total = spe * o.epochs
        var checkpointSteps: Set<Int> = [total]
        if let k = o.checkpoints, k > 0 { checkpointSteps.formUnion(evenlySpacedSteps(k, of: total)) }
        else if o.checkpointPerEpoch { for e in 1...max(1, o.epochs) { checkpointSteps.insert(min(total, e * spe)) } }
        let trainee = Trainee(model, base: base.standardizedFileURL.path, extraFiles: extraFiles)
        let loop = TrainingLoop(
            what: "training", label: "train", run: run, totalSteps: total, checkpointSteps: checkpointSteps,
            schedule: LinearSchedule(baseLR: o.learningRate, warmupSteps: Int((Float(total) * o.warmupRatio).rounded(.up)), totalSteps: total),
            maxGradNorm: o.maxGradNorm, logEvery: o.logEvery, batchSize: o.batchSize, epochs: o.epochs,
            extraFiles: adapter == nil ? extraFiles : [], reporter: reporter)
        var opt = Optimizer(kind: o.optimizer, parameters: model.parameters, weightDecay: o.weightDecay, momentum: o.momentum, trainable: trainable)
        var grads = model.parameters.zeros(keeping: trainable)
        var history: [LogEntry] = []
        var startStep = 0
        // What the run is of, beside the training options: resuming needs the same (and the same data by
        // content and the fields it was read by, from `runInfo`; not where the data lives).
        var what: [String: Any] = ["base": base.standardizedFileURL.path, "task": "lm"]
        what["lora"] = adapter.map { l in ["r": l.rank, "alpha": l.alpha, "dropout": l.dropout, "targets": l.targets.map(\.rawValue)] as Any } ?? NSNull()
        if resume, let ck = TrainingLoop.resumableCheckpoint(run) {
            try TrainingLoop.checkSameRun(run, options: o.recorded, countKey: "examples", count: data.count) { $0.recorded }
            try TrainingLoop.checkSameInfo(run, what.merging(runInfo.filter { $0.key != "data" }) { a, _ in a })
            (startStep, history) = try TrainingLoop.restore(ck, into: trainee, optimizer: &opt)
            reporter.note("train: resuming from \(ck.url.path) (step \(startStep) of \(total))")
        } else {
            try TrainingLoop.startFresh(run, resume: resume, reporter: reporter)
            if adapter == nil { for f in extraFiles { try copyFile(f, into: run) } }
            var info: [String: Any] = what
            info["examples"] = data.count
            for (k, v) in runInfo { info[k] = v }
            try TrainingLoop.writeRunInfo(run: run, options: o.recorded, info: info)
        }
        var order: (epoch: Int, indices: [Int]) = (-1, [])
        let start = Date()
        let hooks = TrainingLoop.Hooks(
            step: { k, grads in
                let epoch = (k - 1) / spe, j = (k - 1) % spe
                if order.epoch != epoch {
                    var idx = Array(0..<data.count)
                    var rng = SeededGenerator(seed: o.seed, stream: "shuffle-epoch-\(epoch)")
                    idx.shuffle(using: &rng)
                    order = (epoch, idx)
                }
                let part = order.indices[(j * o.batchSize)..<min((j + 1) * o.batchSize, data.count)].map { data[$0] }
                let batch = Batch(encodings: part.map { Encoding(inputIDs: $0.ids, tokenTypeIDs: [Int32](repeating: 0, count: $0.ids.count)) },
                                  labels: [Int32](repeating: -1, count: part.count), indices: Array(0..<part.count))
                grads.zeroAll()
                let stepSeed = SeededGenerator.mix(o.seed ^ SeededGenerator.mix(UInt64(k - 1) &+ 0xD207))
                let loss = model.lossAndGradients(batch, grads: &grads, targets: part.flatMap { $0.targets(length: batch.length) },
                                                  training: true, seed: stepSeed)
                return .init(loss: loss, note: String(format: "loss %.4f", loss))
            },
            logExtras: { gnorm in ["grad_norm": gnorm] },
            epoch: { k in
                let e = (k - 1) / spe
                return Double(e) + Double(k - e * spe) / Double(spe)
            },
            saveExtras: { _ in })
        let lastLoss = try loop.run(trainee, optimizer: &opt, grads: &grads, startStep: startStep, history: &history, hooks: hooks)
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(steps: total, finalLoss: lastLoss, checkpointSteps: checkpointSteps.sorted(), seconds: seconds,
                               examplesPerSecond: Double((total - startStep) * o.batchSize) / max(seconds, 1e-9),
                               stepsRun: total - startStep)
    }

    /// Every example of a decoder data file, encoded for `encoder` (errors name file and line).
    public static func encode(_ url: URL, fields: FieldNames = FieldNames(), encoder: DecoderEncoder) throws -> [DecoderEncoding] {
        var reader = try JSONLReader(url: url, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        var out: [DecoderEncoding] = []
        while let chunk = try reader.next(upTo: 4096) { for ex in chunk { out.append(try encoder.encode(ex, url: url)) } }
        return out
    }
}
