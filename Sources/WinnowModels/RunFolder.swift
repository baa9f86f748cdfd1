import Foundation
import WinnowCore
import WinnowData

/// One `log_history` entry of a Hugging Face `trainer_state.json`.
public struct LogEntry: Sendable, Equatable {
    /// Optimiser step the entry was logged at (`step`).
    public var step: Int
    /// Epoch at that step, fractional (`epoch`); nil when not logged.
    public var epoch: Double?
    /// Learning rate logged at that step (`learning_rate`); nil when not logged.
    public var learningRate: Double?
    /// Training loss logged at that step (`loss`); nil when not logged.
    public var loss: Double?
    /// The entry's other numeric fields by key (e.g. `grad_norm`), read and written as they are.
    public var extra: [String: Double] = [:]

    /// Creates an entry; nil fields are left out of the written file.
    public init(step: Int, epoch: Double? = nil, learningRate: Double? = nil, loss: Double? = nil, extra: [String: Double] = [:]) {
        self.step = step
        self.epoch = epoch
        self.learningRate = learningRate
        self.loss = loss
        self.extra = extra
    }
}

/// The parts of `trainer_state.json` Winnow reads and writes (transformers.TrainerState layout).
public struct TrainerState: Sendable, Equatable {
    /// Steps taken (`global_step`).
    public var globalStep: Int
    /// Epochs done, fractional (`epoch`; 0 when absent).
    public var epoch: Double
    /// Planned number of steps (`max_steps`; `global_step` when absent).
    public var maxSteps: Int
    /// Planned number of epochs (`num_train_epochs`; 0 when absent).
    public var numTrainEpochs: Int
    /// Examples per step (`train_batch_size`; 0 when absent).
    public var trainBatchSize: Int
    /// The `log_history` entries, in file order.
    public var logHistory: [LogEntry]
    /// Steps between log entries (`logging_steps`; checkpoints and the last step log too).
    public var loggingSteps = 1

    /// Creates a state from its fields.
    public init(globalStep: Int, epoch: Double, maxSteps: Int, numTrainEpochs: Int, trainBatchSize: Int, logHistory: [LogEntry]) {
        self.globalStep = globalStep
        self.epoch = epoch
        self.maxSteps = maxSteps
        self.numTrainEpochs = numTrainEpochs
        self.trainBatchSize = trainBatchSize
        self.logHistory = logHistory
    }

    /// Reads a `trainer_state.json`; fields other than `global_step` may be absent (each property gives its default).
    ///
    /// - Throws: `WinnowError.missingFile` when the file does not exist; `WinnowError.invalidFile` when it is not
    ///   a JSON object, `global_step` is missing or not a number, or a `log_history` entry has no integer `step`.
    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw WinnowError.missingFile(path: url.path, reason: "no trainer_state.json here")
        }
        let raw = try Data(contentsOf: url)
        guard let obj = try? JSONSerialization.jsonObject(with: raw), let d = obj as? [String: Any] else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a JSON object")
        }
        // JSONSerialization's number parsing on Linux is not correctly rounded; JSONDecoder's is, so
        // log values are re-read through it (a resumed run then rewrites them bit for bit).
        let exact = (try? JSONDecoder().decode(ExactHistory.self, from: raw))?.log_history
        func count(_ key: String, _ v: Any?, default def: Int) throws -> Int {
            guard let v, !(v is NSNull) else { return def }
            guard let i = JSONObjectFile.integer(v, in: 0...Int(Int32.max)) else {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "field '\(key)' is not an integer in 0...\(Int32.max): \(v)")
            }
            return i
        }
        guard d["global_step"] != nil else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "field 'global_step' missing or not a number")
        }
        let gs = try count("global_step", d["global_step"], default: 0)
        globalStep = gs
        epoch = (d["epoch"] as? NSNumber)?.doubleValue ?? 0
        maxSteps = try count("max_steps", d["max_steps"], default: gs)
        // Hugging Face writes an integer here, but the training argument behind it is a float: round it up.
        let epochs = (d["num_train_epochs"] as? NSNumber)?.doubleValue ?? 0
        numTrainEpochs = epochs.isFinite && epochs >= 0 && epochs <= Double(Int32.max) ? Int(epochs.rounded(.up)) : 0
        trainBatchSize = try count("train_batch_size", d["train_batch_size"], default: 0)
        guard let hist = (d["log_history"] ?? []) as? [[String: Any]] else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "field 'log_history' is not a list of objects")
        }
        logHistory = try hist.enumerated().map { i, e in
            guard let step = JSONObjectFile.integer(e["step"]) else {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "log_history[\(i)] has no integer 'step' in 0...\(Int32.max)")
            }
            let x = exact.flatMap { i < $0.count ? $0[i] : nil } ?? [:]
            func num(_ k: String) -> Double? { x[k]?.value ?? (e[k] as? NSNumber)?.doubleValue }
            var extra: [String: Double] = [:]
            for (k, v) in e where !["step", "epoch", "learning_rate", "loss"].contains(k) {
                if v is NSNumber, let n = num(k) { extra[k] = n }
            }
            return LogEntry(step: step, epoch: num("epoch"), learningRate: num("learning_rate"), loss: num("loss"), extra: extra)
        }
    }

    /// log_history numbers read by JSONDecoder (correctly rounded); other values are ignored.
    struct ExactHistory: Decodable {
        struct Number: Decodable {
            let value: Double?
            init(from decoder: Decoder) throws { value = try? decoder.singleValueContainer().decode(Double.self) }
        }
        let log_history: [[String: Number]]?
    }

    /// eta_k: the `learning_rate` of the log entry with the largest step <= `step` (docs/contracts.md §3).
    public func learningRate(atStep step: Int) -> Double? {
        logHistory.filter { $0.step <= step && $0.learningRate != nil }.max { $0.step < $1.step }?.learningRate
    }

    /// Writes the state as a `trainer_state.json` at `url`, atomically; the other fields transformers expects
    /// get neutral values (`best_metric` null, ...).
    ///
    /// - Throws: The file system's error when the file cannot be written.
    public func write(to url: URL) throws {
        let hist: [[String: Any]] = logHistory.map { e in
            var d: [String: Any] = ["step": e.step]
            if let v = e.epoch { d["epoch"] = v }
            if let v = e.learningRate { d["learning_rate"] = v }
            if let v = e.loss { d["loss"] = v }
            for (k, v) in e.extra { d[k] = v }
            return d
        }
        let d: [String: Any] = [
            "global_step": globalStep, "epoch": epoch, "max_steps": maxSteps, "num_train_epochs": numTrainEpochs,
            "train_batch_size": trainBatchSize, "log_history": hist, "best_metric": NSNull(),
            "best_model_checkpoint": NSNull(), "is_local_process_zero": true, "is_world_process_zero": true,
            "is_hyper_param_search": false, "logging_steps": loggingSteps, "total_flos": 0, "trial_name": NSNull(), "trial_params": NSNull(),
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: d, options: [.prettyPrinted, .sortedKeys]), to: url)
    }
}

/// A run folder in the Hugging Face Trainer layout (docs/contracts.md §3):
/// `config.json`, `vocab.txt`, `winnow.json`, `checkpoint-<step>/`, `dynamics.safetensors`.
///
///     let run = try RunFolder(url: URL(fileURLWithPath: "runs/rt"))
///     for ck in run.checkpoints { print(ck.step, (try? run.learningRate(of: ck)) ?? .nan) }
public struct RunFolder: Sendable {
    /// One `checkpoint-<step>` folder of a run.
    public struct Checkpoint: Sendable, Equatable {
        /// The step in the folder's name.
        public let step: Int
        /// The checkpoint folder.
        public let url: URL

        /// A checkpoint at `step` in `url`.
        public init(step: Int, url: URL) { self.step = step; self.url = url }
    }

    /// Whether the folder itself holds a model (`model.safetensors`, or a PEFT adapter's
    /// `adapter_model.safetensors`): a model folder rather than a run, when it has no checkpoints.
    public var holdsModel: Bool {
        ["model.safetensors", "adapter_model.safetensors"].contains { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }
    }

    /// The run folder.
    public let url: URL
    /// Checkpoints sorted by step.
    public let checkpoints: [Checkpoint]

    /// Opens the run folder at `url` and lists its `checkpoint-<step>` folders.
    ///
    /// - Throws: `WinnowError.missingFile` when `url` is not a folder; the file system's error when it cannot
    ///   be listed.
    public init(url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
            throw WinnowError.missingFile(path: url.path, reason: FileManager.default.fileExists(atPath: url.path)
                ? "is a file, not a run folder (a run is the folder `winnow train --out` writes)" : "no such run folder")
        }
        self.url = url
        guard let items = try? FileManager.default.contentsOfDirectory(atPath: url.path) else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot be listed (permissions?)")
        }
        checkpoints = items.compactMap { name -> Checkpoint? in
            guard name.hasPrefix("checkpoint-"), let s = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            return Checkpoint(step: s, url: url.appendingPathComponent(name))
        }.sorted { $0.step < $1.step }
    }

    /// `config.json` at the run root (it may not exist).
    public var configURL: URL { url.appendingPathComponent("config.json") }
    /// `vocab.txt` at the run root (it may not exist).
    public var vocabURL: URL { url.appendingPathComponent("vocab.txt") }
    /// `dynamics.safetensors` at the run root: the training dynamics (it may not exist).
    public var dynamicsURL: URL { url.appendingPathComponent("dynamics.safetensors") }
    /// True when the run has a `dynamics.safetensors`.
    public var hasDynamics: Bool { FileManager.default.fileExists(atPath: dynamicsURL.path) }

    /// The token limit a Winnow run was trained with (`options.maxLength` in its `winnow.json`, or in the run's
    /// when this is one of its `checkpoint-<step>` folders); nil for a run of another tool, a model folder, or a
    /// run of CSV features. Scoring and predicting at another limit reads examples the model never saw whole, or
    /// positions it never trained.
    public var trainedMaxLength: Int? {
        guard let options = runInfo?["options"] as? [String: Any], let n = (options["maxLength"] as? NSNumber)?.intValue, n > 0 else { return nil }
        return n
    }

    /// The fields a Winnow run's training file was read by (`text_field`, `pair_field`, `label_field` in its
    /// `winnow.json`; nil where none is recorded); nil for a run of another tool or a model folder.
    public var trainedFields: FieldNames? {
        guard let info = runInfo, info["text_field"] != nil || info["label_field"] != nil else { return nil }
        return FieldNames(text: info["text_field"] as? String, pair: info["pair_field"] as? String, label: info["label_field"] as? String)
    }

    /// `winnow.json` of the run (or of the run a `checkpoint-<step>` folder belongs to), nil when absent or unreadable.
    package var runInfo: [String: Any]? {
        var info = url.appendingPathComponent("winnow.json")
        if !FileManager.default.fileExists(atPath: info.path), url.standardizedFileURL.lastPathComponent.hasPrefix("checkpoint-") {
            info = url.standardizedFileURL.deletingLastPathComponent().appendingPathComponent("winnow.json")
        }
        guard let d = try? Data(contentsOf: info) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }

    /// The last checkpoint step of a Winnow run that has not finished (its winnow.json and checkpoints, and no
    /// final model at its root: killed, or still training); nil for a finished run or any other folder.
    package var unfinishedLastStep: Int? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: url.appendingPathComponent("winnow.json").path),
              !["model.safetensors", "adapter_model.safetensors"].contains(where: { fm.fileExists(atPath: url.appendingPathComponent($0).path) }),
              let last = checkpoints.last else { return nil }
        return last.step
    }

    /// For a `checkpoint-<step>` folder of a run: its step and the run's last checkpoint step (nil otherwise).
    package var checkpointOfRun: (step: Int, runURL: URL, lastStep: Int)? {
        let u = url.standardizedFileURL
        guard u.lastPathComponent.hasPrefix("checkpoint-"), let step = Int(u.lastPathComponent.dropFirst("checkpoint-".count)),
              let parent = try? RunFolder(url: u.deletingLastPathComponent()), let last = parent.checkpoints.last?.step else { return nil }
        return (step, parent.url, last)
    }

    /// The folder holding the tokenizer files: the run itself, or else its last checkpoint.
    public var tokenizerFolder: URL {
        let fm = FileManager.default
        for dir in [url] + checkpoints.reversed().map(\.url) {
            for f in ["vocab.txt", "tokenizer.json"] where fm.fileExists(atPath: dir.appendingPathComponent(f).path) { return dir }
        }
        return url
    }

    /// The folder of the final model: the run root when it holds weights (or a PEFT adapter), else the last checkpoint.
    public var finalModelFolder: URL {
        for f in ["model.safetensors", "adapter_model.safetensors"] where FileManager.default.fileExists(atPath: url.appendingPathComponent(f).path) {
            return url
        }
        return checkpoints.last?.url ?? url
    }

    /// Trainer state of the last checkpoint (or the run root), whichever has the most history.
    public func trainerState() throws -> TrainerState {
        let root = url.appendingPathComponent("trainer_state.json")
        if FileManager.default.fileExists(atPath: root.path) { return try TrainerState(contentsOf: root) }
        guard let last = checkpoints.last else {
            throw WinnowError.missingFile(path: root.path, reason: "no trainer_state.json and no checkpoint-* folders")
        }
        return try TrainerState(contentsOf: last.url.appendingPathComponent("trainer_state.json"))
    }

    /// eta_k for a checkpoint, from the run's trainer state.
    public func learningRate(of ck: Checkpoint) throws -> Double {
        let state = try trainerState()
        guard let lr = state.learningRate(atStep: ck.step) else {
            throw WinnowError.invalidFile(path: url.appendingPathComponent("trainer_state.json").path, line: nil,
                reason: "no learning_rate logged at or before step \(ck.step); pass --lr")
        }
        return lr
    }

    /// The checkpoints `selection` names, in step order as listed.
    ///
    /// - Throws: `WinnowError` when the run has no checkpoints or lacks a listed step.
    public func select(_ selection: CheckpointSelection) throws -> [Checkpoint] {
        guard !checkpoints.isEmpty else {
            throw WinnowError.missingFile(path: url.path, reason: "this run has no checkpoint-<step> folders")
        }
        switch selection {
        case .all: return checkpoints
        case .first: return [checkpoints[0]]
        case .last: return [checkpoints[checkpoints.count - 1]]
        case let .list(refs):
            let chosen: [Checkpoint] = try refs.map { ref in
                switch ref {
                case .first: return checkpoints[0]
                case .last: return checkpoints[checkpoints.count - 1]
                case let .epoch(e):
                    // The trainer state's max_steps / num_train_epochs steps make an epoch.
                    let state = try trainerState()
                    guard state.numTrainEpochs >= 1, (1...state.numTrainEpochs).contains(e) else {
                        throw WinnowError.invalidOption(name: "checkpoints", reason: "epoch\(e): \(url.path) trained \(state.numTrainEpochs) epoch(s)")
                    }
                    let target = Double(state.maxSteps) * Double(e) / Double(state.numTrainEpochs)
                    return checkpoints.min { abs(Double($0.step) - target) < abs(Double($1.step) - target) }!
                case let .step(s):
                    guard let ck = checkpoints.first(where: { $0.step == s }) else {
                        throw WinnowError.invalidOption(name: "checkpoints", reason:
                            "no checkpoint-\(s) in \(url.path); steps here: \(checkpoints.map { String($0.step) }.joined(separator: ","))")
                    }
                    return ck
                }
            }
            // A checkpoint listed twice would count twice (TracIn doubled, VoG's variance shrunk).
            var seen = Set<Int>()
            if let twice = chosen.first(where: { !seen.insert($0.step).inserted }) {
                throw WinnowError.invalidOption(name: "checkpoints", reason:
                    "\(selection) names checkpoint-\(twice.step) more than once (steps here: \(checkpoints.map { String($0.step) }.joined(separator: ",")))")
            }
            return chosen
        }
    }
}

/// Which checkpoints of a run a score averages over.
///
///     let cks = try run.select(CheckpointSelection(parsing: "first,last")!)
public enum CheckpointSelection: Sendable, Hashable, CustomStringConvertible {
    /// Every checkpoint of the run (`all`), its first, or its last.
    case all, first, last
    /// Listed checkpoints, in this order.
    case list([Ref])

    /// One listed checkpoint: the first, the last, the one saved at a step, or the one nearest the end of
    /// an epoch (1-based; from the trainer state's max_steps and num_train_epochs).
    public enum Ref: Sendable, Hashable {
        /// The run's first or last checkpoint.
        case first, last
        /// The checkpoint saved at this global step (`checkpoint-STEP`).
        case step(Int)
        /// The checkpoint nearest the end of this 1-based epoch (`epochE`).
        case epoch(Int)
    }

    /// The words `init(parsing:)` takes, for help texts.
    public static let syntax = "all, first, last, or STEP,STEP,... (first, last and epochE, the checkpoint nearest the end of epoch E (the earlier at a tie), may be listed too)"

    /// Parses `all`, `first`, `last`, or a comma-separated list of steps, `first`, `last` and `epochE`.
    public init?(parsing s: String) {
        switch s {
        case "all": self = .all
        case "first": self = .first
        case "last": self = .last
        default:
            var refs: [Ref] = []
            for part in s.split(separator: ",", omittingEmptySubsequences: false) {
                let word = part.trimmingCharacters(in: .whitespaces)
                if word == "first" { refs.append(.first) } else if word == "last" { refs.append(.last) }
                else if let n = Int(word), n >= 0 { refs.append(.step(n)) }
                else if word.hasPrefix("epoch"), let e = Int(word.dropFirst("epoch".count)), e >= 1 { refs.append(.epoch(e)) }
                else { return nil }
            }
            guard !refs.isEmpty else { return nil }
            self = .list(refs)
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .first: "first"
        case .last: "last"
        case let .list(refs):
            refs.map { r -> String in
                switch r {
                case .first: "first"
                case .last: "last"
                case let .step(n): String(n)
                case let .epoch(e): "epoch\(e)"
                }
            }.joined(separator: ",")
        }
    }
}
