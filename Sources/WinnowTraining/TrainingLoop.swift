import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// The loop `Trainer` and `PreTrainer` share: the learning-rate schedule, the guard against a
/// non-finite loss or gradient (naming the last good checkpoint), gradient clipping, the optimizer
/// step, `log_history`, checkpoints (model, optimizer state, the caller's extras, trainer_state.json
/// last, which marks the checkpoint complete), resuming from the latest complete checkpoint, progress,
/// and the final model at the run's root. A trainer supplies only what one step computes.
struct TrainingLoop {
    /// "training" or "pre-training" (in messages), and the progress label.
    var what: String
    var label: String
    var run: URL
    var totalSteps: Int
    var checkpointSteps: Set<Int>
    var schedule: LinearSchedule
    var maxGradNorm: Float?
    var logEvery: Int
    var batchSize: Int
    var epochs: Int
    /// Copied into the run and every checkpoint (tokenizer files).
    var extraFiles: [URL]
    var reporter: any ProgressReporter

    /// What the caller's step computed: the loss it minimised (with the gradients in the caller's store)
    /// and a note for the progress line.
    struct StepResult {
        var loss: Double
        var note: String
    }

    /// Hooks of one run: `step(k, &grads)` fills `grads` for 1-based step k and returns its loss; `logExtras(gnorm)`
    /// gives the extra `log_history` fields of the window that ends at a logged step (and starts a new
    /// window); `epoch(k)` is the epoch reached after step k; `saveExtras(dir)` writes what the caller
    /// keeps beside a checkpoint or the final model (dynamics, the SI log).
    struct Hooks {
        var step: (Int, inout ParameterStore) throws -> StepResult
        var logExtras: (Double) -> [String: Double]
        var epoch: (Int) -> Double
        var saveExtras: (URL) throws -> Void
    }

    /// The latest complete checkpoint of `run` that can be resumed from (model, optimizer state and
    /// trainer_state.json), or nil when the run has none (training then starts over).
    static func resumableCheckpoint(_ run: URL) -> RunFolder.Checkpoint? {
        guard FileManager.default.fileExists(atPath: run.appendingPathComponent("winnow.json").path),
              let folder = try? RunFolder(url: run) else { return nil }
        let fm = FileManager.default
        return folder.checkpoints.last { ck in
            ["optimizer.safetensors", "trainer_state.json"].allSatisfy { fm.fileExists(atPath: ck.url.appendingPathComponent($0).path) }
                && ["model.safetensors", "adapter_model.safetensors"].contains { fm.fileExists(atPath: ck.url.appendingPathComponent($0).path) }
        }
    }

    /// Loads the parameters and optimizer state of checkpoint `ck` into `model` and `optimizer`; returns
    /// its step and log history.
    static func restore(_ ck: RunFolder.Checkpoint, into model: some TrainableModel,
                        optimizer: inout Optimizer) throws -> (step: Int, history: [LogEntry]) {
        try damagedCheckpointHint(ck) { try restoreFiles(ck, into: model, optimizer: &optimizer) }
    }

    /// Runs `body`, which reads checkpoint `ck`; an error of a damaged file (cut short by a full disk, say) gets
    /// the way on: the checkpoint before it resumes to the same run (another model's tensors are not damage).
    static func damagedCheckpointHint<T>(_ ck: RunFolder.Checkpoint, _ body: () throws -> T) throws -> T {
        let hint = "; delete \(ck.url.path) to resume from the checkpoint before it"
        do {
            return try body()
        } catch let WinnowError.invalidFile(path, line, reason) {
            throw WinnowError.invalidFile(path: path, line: line, reason: reason + hint)
        } catch let WinnowError.invalidTensor(path, tensor, reason) where !reason.hasPrefix("missing or mis-shaped") {
            throw WinnowError.invalidTensor(path: path, tensor: tensor, reason: reason + hint)
        }
    }

    static func restoreFiles(_ ck: RunFolder.Checkpoint, into model: some TrainableModel,
                             optimizer: inout Optimizer) throws -> (step: Int, history: [LogEntry]) {
        // An adapter checkpoint (PEFT layout) holds the LoRA tensors only, under PEFT's names.
        let adapter = ck.url.appendingPathComponent("adapter_model.safetensors")
        let isAdapter = FileManager.default.fileExists(atPath: adapter.path)
        let file = try SafeTensorsFile(url: isAdapter ? adapter : ck.url.appendingPathComponent("model.safetensors"))
        for i in model.parameters.tensors.indices {
            let name = model.parameters.names[i]
            let stored = isAdapter ? "base_model.model." + name : name
            // An adapter holds the LoRA tensors and the modules saved beside them (a classifier's head).
            if isAdapter && !name.contains(".lora_") && file.entry(stored) == nil { continue }
            guard let e = file.entry(stored), e.shape == model.parameters[i].shape else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: stored, reason: "missing or mis-shaped; cannot resume from this checkpoint")
            }
            model.parameters[i] = try file.tensor(e)
        }
        try optimizer.restore(from: SafeTensorsFile(url: ck.url.appendingPathComponent("optimizer.safetensors")))
        let state = try TrainerState(contentsOf: ck.url.appendingPathComponent("trainer_state.json"))
        return (state.globalStep, state.logHistory)
    }

    /// Makes `run` ready for a run that starts at step 0. A folder that already holds a run (checkpoints, a
    /// final model or its log) is refused unless `resume` was asked for, since new checkpoints beside old ones
    /// would be read as one run; with `resume` (and no checkpoint to resume from) the unfinished run's checkpoints,
    /// logs and model files go. A run another tool wrote (no winnow.json) is never resumed nor removed.
    static func startFresh(_ run: URL, resume: Bool, reporter: any ProgressReporter, command: String = "train") throws {
        let fm = FileManager.default
        // --resume with nothing to resume from trains from the start, and says so.
        if resume { reporter.note("\(command): --resume: \(run.path) holds no checkpoint to resume from; training from step 0") }
        let held = try RunOutput.check(run, resume: resume)
        for name in held { try fm.removeItem(at: run.appendingPathComponent(name)) }
        do { try fm.createDirectory(at: run, withIntermediateDirectories: true) } catch {
            throw WinnowError.invalidOption(name: "out", reason: "cannot make the run folder \(run.path) (a file in its path, or no permission?)")
        }
    }

    /// Removes the temporary files an interrupted write left in `run` and its checkpoint folders
    /// (`AtomicFile` writes `.NAME.tmp-PID-N` beside the target and renames it; a kill in between leaves it).
    static func removeTemporaryFiles(_ run: URL) {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: run.path)) ?? []
        let folders = [run] + names.filter { $0.hasPrefix("checkpoint-") }.map { run.appendingPathComponent($0) }
        for folder in folders {
            for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
                try? fm.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }

    /// Writes `RUN/winnow.json` (how the run was made: options, example count, extra fields, Winnow's version).
    static func writeRunInfo(run: URL, options: some Encodable, info: [String: Any]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var all = info
        all["options"] = try JSONSerialization.jsonObject(with: enc.encode(options))
        all["tool"] = "winnow"
        all["winnow_version"] = winnowVersion
        try AtomicFile.write(JSONSerialization.data(withJSONObject: all, options: [.prettyPrinted, .sortedKeys]),
                             to: run.appendingPathComponent("winnow.json"))
    }

    /// Refuses to resume a run made with other options or another amount of data (`countKey` in winnow.json).
    /// `canonical` brings the saved options to the form `options` is in (runs recorded before a rule changed).
    static func checkSameRun<O: Codable & Equatable>(_ run: URL, options: O, countKey: String, count: Int,
                                                     canonical: (O) -> O = { $0 }) throws {
        let url = run.appendingPathComponent("winnow.json")
        guard let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              let opts = obj["options"], let saved = obj[countKey] as? Int else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a winnow run description; cannot resume")
        }
        let savedOptions = (try? JSONDecoder().decode(O.self, from: JSONSerialization.data(withJSONObject: opts))).map(canonical)
        guard savedOptions == options, saved == count else {
            // Name what differs: the options (as winnow.json records them) and the amount of data.
            var what: [String] = []
            if savedOptions != options { what.append(Differences.describe(savedOptions, options) ?? "options recorded in another form") }
            if saved != count { what.append("\(countKey): \(saved) there, \(count) now") }
            throw WinnowError.invalidOption(name: "resume", reason:
                "\(run.path) was trained with other options or data (\(what.joined(separator: "; "))); rerun with the same options, or use another --out")
        }
    }

    /// Refuses to resume a run whose winnow.json records other values for `info`'s keys (an adapter's
    /// settings, the base model): the optimizer state and checkpoints belong to those. A key the file does
    /// not record (a run written before it was) is not compared.
    static func checkSameInfo(_ run: URL, _ info: [String: Any]) throws {
        let url = run.appendingPathComponent("winnow.json")
        let obj = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] ?? [:]
        func canonical(_ v: Any?) -> Data? {   // NSNull and "none": recorded as absent
            v.flatMap { $0 is NSNull || ($0 as? String) == "none" ? nil : try? JSONSerialization.data(withJSONObject: ["v": $0], options: [.sortedKeys]) }
        }
        func shown(_ v: Any?) -> String {
            guard let v, !(v is NSNull) else { return "none" }
            let s = (try? JSONSerialization.data(withJSONObject: ["v": v], options: [.sortedKeys]))
                .map { String(decoding: $0, as: UTF8.self).dropFirst(5).dropLast() }.map(String.init) ?? "\(v)"
            return s.count <= 80 ? s : String(s.prefix(77)) + "..."
        }
        // The task first: another task differs in everything after it.
        let keys = info.keys.sorted { ($0 == "task" ? 0 : 1, $0) < ($1 == "task" ? 0 : 1, $1) }
        for key in keys where obj[key] != nil && canonical(obj[key]) != canonical(info[key]) {
            throw WinnowError.invalidOption(name: "resume", reason:
                "\(run.path) was trained with another \(key) (winnow.json: \(shown(obj[key])), now: \(shown(info[key]))); "
                + "rerun with the same options, or use another --out")
        }
    }

    /// Where the last good state is, for a numeric-fault message.
    func lastGood(_ step: Int?) -> String {
        // Resuming needs the same options, which would stop here again: the way on is another learning rate.
        let retry = "train with a lower --lr into another --out (or delete \(run.path) first)"
        guard let step else { return "no checkpoint was written before it, so \(run.path) holds no model; rerun with a lower --lr (into the same --out: it starts over)" }
        return "the last good checkpoint, \(run.appendingPathComponent("checkpoint-\(step)").path), is kept, but --resume takes the same options "
            + "and would stop here again; \(retry)"
    }

    /// Runs steps `startStep + 1 ... totalSteps`, then writes the final model at the run's root.
    /// Returns the last step's loss. Only rank 0 of a distributed job writes files.
    func run(_ model: some TrainableModel, optimizer: inout Optimizer, grads: inout ParameterStore, startStep: Int,
             history: inout [LogEntry], hooks: Hooks) throws -> Double {
        if Distributed.isRoot { TrainingLoop.removeTemporaryFiles(run) }
        var lastCheckpoint: Int? = startStep > 0 ? startStep : nil
        var windowLoss = 0.0, windowCount = 0, lastLoss = history.last?.loss ?? 0
        if startStep >= totalSteps { reporter.note("\(label): \(run.path) is complete (step \(startStep) of \(totalSteps)); nothing left to train") }
        let bar = reporter.start(label, total: totalSteps - startStep, unit: "step")
        for step in (startStep + 1)..<(totalSteps + 1) {
            let r = try hooks.step(step, &grads)
            guard r.loss.isFinite else {
                throw WinnowError.numericFault(reason: "\(what) stopped at step \(step): the loss is \(r.loss); "
                    + lastGood(lastCheckpoint))
            }
            let gnorm = gradientNorm(grads)
            guard gnorm.isFinite else {
                throw WinnowError.numericFault(reason: "\(what) stopped at step \(step): the gradient norm is \(gnorm); "
                    + lastGood(lastCheckpoint))
            }
            if let clip = maxGradNorm, gnorm > Double(clip) {
                let s = Float(Double(clip) / (gnorm + 1e-6))
                for i in grads.tensors.indices { ck_scale(grads.tensors[i].mptr, grads[i].count, s) }
            }
            optimizer.step(&model.parameters, grads: grads, lr: schedule.lr(afterSteps: step - 1))
            windowLoss += r.loss; windowCount += 1; lastLoss = r.loss
            if step % max(1, logEvery) == 0 || step == totalSteps || checkpointSteps.contains(step) {
                // The rate update `step` used, as transformers logs it (Tests/Fixtures/README.md): TracIn's eta_k.
                history.append(LogEntry(step: step, epoch: hooks.epoch(step), learningRate: Double(schedule.lr(afterSteps: step - 1)),
                                        loss: windowLoss / Double(windowCount), extra: hooks.logExtras(gnorm)))
                windowLoss = 0; windowCount = 0
            }
            if checkpointSteps.contains(step) && Distributed.isRoot {
                let ck = run.appendingPathComponent("checkpoint-\(step)")
                try model.save(to: ck)
                for f in extraFiles { try copyFile(f, into: ck) }
                try SafeTensorsFile.write(optimizer.state, to: ck.appendingPathComponent("optimizer.safetensors"))
                try hooks.saveExtras(ck)
                try state(step, epoch: hooks.epoch(step), history).write(to: ck.appendingPathComponent("trainer_state.json"))
                lastCheckpoint = step
            }
            bar.advance(by: 1, note: r.note)
        }
        bar.finish()
        guard Distributed.isRoot else { return lastLoss }
        try model.save(to: run)
        try state(totalSteps, epoch: hooks.epoch(totalSteps), history).write(to: run.appendingPathComponent("trainer_state.json"))
        try hooks.saveExtras(run)
        return lastLoss
    }

    func state(_ step: Int, epoch: Double, _ history: [LogEntry]) -> TrainerState {
        var s = TrainerState(globalStep: step, epoch: epoch, maxSteps: totalSteps, numTrainEpochs: epochs, trainBatchSize: batchSize,
                             logHistory: history)
        s.loggingSteps = max(1, logEvery)
        return s
    }
}

/// `count` evenly spaced steps of `total` (rounded, at least 1), plus the last.
func evenlySpacedSteps(_ count: Int, of total: Int) -> Set<Int> {
    var s: Set<Int> = [total]
    if count > 0 { for i in 1...count { s.insert(max(1, Int((Double(total) * Double(i) / Double(count)).rounded()))) } }
    return s
}

/// Copies `file` into `folder` (atomically), replacing an older copy.
func copyFile(_ file: URL, into folder: URL) throws {
    try AtomicFile.write(Data(contentsOf: file), to: folder.appendingPathComponent(file.lastPathComponent))
}

/// The checks of a run folder to be written (`winnow train` and `pretrain` run them before reading anything,
/// as usage errors).
package enum RunOutput {
    /// Refuses `run` when it is a file, a folder of things that are not a run's, or a run already there
    /// (unless `resume` and Winnow wrote it); returns the run files a fresh start removes.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `out`.
    @discardableResult
    package static func check(_ run: URL, resume: Bool) throws -> [String] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: run.path, isDirectory: &isDir) && !isDir.boolValue {
            throw WinnowError.invalidOption(name: "out", reason: "\(run.path) is a file; a run is a folder")
        }
        let names = (try? fm.contentsOfDirectory(atPath: run.path)) ?? []
        let runFiles: Set<String> = ["trainer_state.json", "model.safetensors", "adapter_model.safetensors", "adapter_config.json",
                                     "dynamics.safetensors", "si-log.csv", "winnow.json"]
        let held = names.filter { $0.hasPrefix("checkpoint-") || runFiles.contains($0) }.sorted()
        let ours = names.contains("winnow.json")
        // A folder of other things (an experiment, a grid, data): a run written in among them would be mixed with them.
        let runSide: Set<String> = ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                    "generation_config.json", "merges.txt", "vocab.json", "added_tokens.json"]
        let foreign = names.filter { !$0.hasPrefix(".") && !held.contains($0) && !runSide.contains($0) }.sorted()
        if held.isEmpty, let first = foreign.first {
            throw WinnowError.invalidOption(name: "out", reason:
                "\(run.path) holds files that are not a run's ('\(first)'\(foreign.count > 1 ? " and \(foreign.count - 1) more" : "")); give a new or empty folder")
        }
        // winnow.json alone is a run that stopped before its first checkpoint (a non-finite loss): nothing to keep.
        if !held.isEmpty && held != ["winnow.json"] && (!resume || !ours) {
            throw WinnowError.invalidOption(name: "out", reason:
                "\(run.path) already holds a run (\(held.prefix(3).joined(separator: ", "))\(held.count > 3 ? ", ..." : "")); "
                + (ours ? "delete it or choose another --out, or add --resume to continue it"
                        : "Winnow did not write it (no winnow.json), so --resume cannot continue it: choose another --out"))
        }
        return held
    }
}
