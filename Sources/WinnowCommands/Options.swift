import ArgumentParser
import Foundation
import Winnow

/// Where examples come from and how they are read and tokenized.
struct DataOptions: ParsableArguments {
    @Option(help: "JSONL file, one example a line (or, for an MLP run of numeric features, a CSV with a header).")
    var data: String

    @Option(help: "Text field (default: first of text, sentence, sentence1, premise; reading a Winnow run, the one it was trained on when the file has it).")
    var textField: String?

    @Option(help: "Second-segment field for pairs (default: first of text_pair, sentence2, hypothesis; reading a Winnow run, the one it was trained on when the file has it).")
    var pairField: String?

    @Option(help: "Label field (default: label or gold_label; reading a Winnow run, the one it was trained on when the file has it; a CSV's label column, default label).")
    var labelField: String?

    @Option(name: .customLong("max-length"), parsing: .unconditional, help: "Truncate sequences to this many tokens, specials included (longest-first for pairs; default \(ScoreOptions().maxLength), and for reading a Winnow run the limit it was trained with).")
    var maxLengthGiven: Int?
    var maxLength: Int { maxLengthGiven ?? ScoreOptions().maxLength }

    var fields: FieldNames { FieldNames(text: textField, pair: pairField, label: labelField) }

    /// Without --max-length, a Winnow run is read at the token limit it was trained with (its winnow.json),
    /// said in a note; other runs and model folders keep the default.
    mutating func adoptMaxLength(ofRun run: String) {
        guard maxLengthGiven == nil, let folder = try? RunFolder(url: URL(fileURLWithPath: run)), let n = folder.trainedMaxLength,
              n != ScoreOptions().maxLength else { return }
        maxLengthGiven = n
        printError("note: --max-length \(n), the limit \(run) was trained with (its winnow.json); give --max-length to choose another")
    }

    /// Without --text-field, --pair-field or --label-field, a Winnow run's own file format is read as its training
    /// read it: a field its winnow.json records is adopted when the data file's first example holds it and
    /// detection would pick another (a file with `label` and `gold_label`, trained on `gold_label`), with a note.
    mutating func adoptFields(ofRun run: String) {
        // A pipe is read once, by the command: nothing is peeked at.
        guard !data.lowercased().hasSuffix(".csv"), FileFingerprint.isRegularFile(URL(fileURLWithPath: data)), let recorded = (try? RunFolder(url: URL(fileURLWithPath: run)))?.trainedFields,
              let first = firstJSONObject(data) else { return }
        func adopt(_ given: inout String?, _ trained: String?, _ candidates: [String], _ flag: String) {
            guard given == nil, let t = trained, first[t] != nil, candidates.first(where: { first[$0] != nil }) != t else { return }
            given = t
            printError("note: \(flag) \(t), the field \(run) was trained on (its winnow.json); give \(flag) to choose another")
        }
        adopt(&textField, recorded.text, FieldNames.textCandidates, "--text-field")
        adopt(&pairField, recorded.pair, FieldNames.pairCandidates, "--pair-field")
        adopt(&labelField, recorded.label, FieldNames.labelCandidates, "--label-field")
    }

    func validate() throws {
        let named = [("--text-field", textField), ("--pair-field", pairField), ("--label-field", labelField)].compactMap { n, v in v.map { (n, $0) } }
        for (i, a) in named.enumerated() {
            if let b = named[(i + 1)...].first(where: { $0.1 == a.1 }) {
                throw ValidationError("\(a.0) and \(b.0) both name the field '\(a.1)': one field has one role")
            }
        }
        // Below 4 a BERT pair has no room for any text beside its special tokens, and transformers (so Winnow) then
        // does not truncate at all: a shorter limit would be silently ignored.
        guard maxLength >= 4 else { throw ValidationError("--max-length must be at least 4, for every model (the least a BERT pair needs: [CLS], two [SEP] and one token of text)") }
    }

    func read(requireLabels: Bool = true) throws -> JSONLDataset {
        try JSONLDataset(url: URL(fileURLWithPath: data), fields: fields, requireLabels: requireLabels, keepUnlabelled: !requireLabels)
    }
}

/// A note when the first example of a file read as single texts holds another field of text (three words or
/// more) that is not read: a second text under a name detection does not know (`question`, `text_b`) would
/// otherwise be left out silently.
func noteUnreadText(_ d: JSONLDataset) {
    guard d.fields.pair == nil, FileFingerprint.isRegularFile(d.url), let first = firstJSONObject(d.url.path) else { return }
    let read: Set<String> = [d.fields.text, d.fields.label, "id", "idx"].compactMap { $0 }.reduce(into: []) { $0.insert($1) }
    let unread = first.keys.sorted().filter { k in
        !read.contains(k) && ((first[k] as? String)?.split(separator: " ").count ?? 0) >= 3
    }
    guard !unread.isEmpty else { return }
    printError("note: \(d.url.path) holds text in \(unread.map { "'\($0)'" }.joined(separator: ", ")), which is not read (the text is "
               + "'\(d.fields.text ?? "input_ids")'); give --pair-field to read a second text")
}

/// Prints a summary line about skipped examples.
func reportSkipped(_ d: JSONLDataset) {
    if d.skipped > 0 { printError("note: skipped \(d.skipped) example(s) without a gold label in \(d.url.path)") }
    if let w = JSONLDataset.minusOneWarning(d.skippedMinusOne, of: d.examples.count + d.skipped, path: d.url.path) { printError(w) }
}

/// Predictions of a run on a data file (`Predictor.predict`), with notes and progress on stderr.
func predictFile(run: String, checkpoint: CheckpointSelection?, data dataOptions: DataOptions, batchSize: Int, requireLabels: Bool,
                 label: String, shard: Shard? = nil, base: String? = nil, precision: ArithmeticPrecision) throws -> Predictions {
    var o = PredictOptions()
    o.checkpoint = checkpoint; o.fields = dataOptions.fields; o.maxLength = dataOptions.maxLength; o.batchSize = batchSize
    o.requireLabels = requireLabels; o.shard = shard; o.adapterBase = base.map { URL(fileURLWithPath: $0) }; o.precision = precision
    o.reporter = TerminalReporter(); o.label = label
    if let note = Scorer.pairsNote(run: URL(fileURLWithPath: run), data: URL(fileURLWithPath: dataOptions.data), fields: dataOptions.fields) { printError(note) }
    noteRunRead(run: run, checkpoints: checkpoint)
    return try Predictor.predict(run: URL(fileURLWithPath: run), data: URL(fileURLWithPath: dataOptions.data), options: o)
}

/// Notes on the run a command reads (`eval`, `predict`, `score`): a run without its final model (killed, or
/// still training) is read from the checkpoints it has; an epochE that no checkpoint ends reads the nearest.
func noteRunRead(run: String, checkpoints: CheckpointSelection?) {
    guard let folder = try? RunFolder(url: URL(fileURLWithPath: run)) else { return }
    if let last = folder.unfinishedLastStep {
        printError("note: \(run) is an unfinished run (no final model: killed, or still training); its last checkpoint, step \(last), is read "
                   + "as its end. `winnow train` with the same options and --resume finishes it")
    }
    guard case let .list(refs)? = checkpoints, let state = try? folder.trainerState(), state.numTrainEpochs >= 1 else { return }
    for case let .epoch(e) in refs {
        guard let ck = try? folder.select(.list([.epoch(e)])).first else { continue }
        let end = Double(state.maxSteps) * Double(e) / Double(state.numTrainEpochs)
        if Double(ck.step) != end {
            printError(String(format: "note: epoch%d reads checkpoint-%d, the checkpoint nearest the end of epoch %d (step %.0f)", e, ck.step, e, end))
        }
    }
}

/// The first JSON object of a JSONL file (its first non-blank line, read up to 1 MiB), nil when there is none.
func firstJSONObject(_ path: String) -> [String: Any]? {
    guard let h = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? h.close() }
    guard let chunk = try? h.read(upToCount: 1 << 20) else { return nil }
    for line in chunk.split(separator: 0x0A) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
        return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
    }
    return nil
}

/// Checks the options of `eval` and `predict` before anything is read: one checkpoint, a positive batch, and no
/// text options for a CSV of numeric features (the MLP run that reads it has no text, tokens or length).
func validatePrediction(checkpoint: CheckpointSelection?, batchSize: Int, data: DataOptions) throws {
    var o = PredictOptions()
    o.checkpoint = checkpoint; o.batchSize = batchSize
    do { try o.validate() } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
    if data.data.lowercased().hasSuffix(".csv") {
        for (given, name) in [(data.textField != nil, "--text-field"), (data.pairField != nil, "--pair-field"), (data.maxLengthGiven != nil, "--max-length")] where given {
            throw ValidationError("\(name) does not apply to a CSV of numeric features, which an MLP run reads (its label column is --label-field)")
        }
    }
}

/// Refuses an output file path that names one of the command's input files (it would replace the input), or a
/// folder (the finished file could not be renamed into place, after all the work).
func refuseOverwriting(_ out: String, option: String = "--out", inputs: [String]) throws {
    // An empty value (an unset shell variable) would name the current folder.
    guard !out.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("\(option) is empty; give a file path") }
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue {
        throw ValidationError("\(option) \(out) is a folder; give a file path")
    }
    // The nearest existing folder on the path must be one (a file there makes the output impossible, after the work).
    var parent = URL(fileURLWithPath: out).standardizedFileURL.deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDir) && parent.path != "/" { parent.deleteLastPathComponent() }
    if !isDir.boolValue { throw ValidationError("\(option) \(out): \(parent.path) is a file, not a folder") }
    // The finished file is renamed into its folder: one the user cannot write is found now, not after the work
    // (a device or pipe, such as /dev/stdout, is written through, not renamed).
    // A link is followed, as the write follows it (`--out /dev/stdout > file.csv` writes beside file.csv).
    let target = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath()
    var folder = target.deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: folder.path) && folder.path != "/" { folder.deleteLastPathComponent() }
    if !FileManager.default.fileExists(atPath: target.path) || FileFingerprint.isRegularFile(target), access(folder.path, W_OK) != 0 {
        throw ValidationError("\(option) \(out): cannot write in \(folder.path) (no permission)")
    }
    let o = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath().path
    if let same = inputs.first(where: { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path == o }) {
        throw ValidationError("\(option) \(out) is the input file \(same); choose another output path")
    }
}

/// Refuses an output path that is a model file the command reads, or a file inside a run or model folder it
/// reads other than a .csv, .jsonl or .npy output: writing there would replace the model's weights, config or
/// tokenizer (or leave a file the next command reads as one).
func refuseWritingIntoModel(_ out: String, option: String = "--out", models: [String]) throws {
    let o = resolvedPath(out)
    for m in models {
        let mu = resolvedPath(m)
        if o == mu { throw ValidationError("\(option) \(out) is the model \(m) the command reads; choose another output path") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: mu, isDirectory: &isDir), isDir.boolValue else { continue }
        // A checkpoint folder's run holds the final model and the run's own files too.
        var folders = [mu]
        if (mu as NSString).lastPathComponent.hasPrefix("checkpoint-") { folders.append((mu as NSString).deletingLastPathComponent) }
        guard folders.contains(where: { o.hasPrefix($0 + "/") }),
              !["csv", "jsonl", "npy"].contains((o as NSString).pathExtension.lowercased()) else { continue }
        throw ValidationError("\(option) \(out) is inside the folder \(m) the command reads a model from\(folders.count > 1 ? " (or its run)" : ""), "
                              + "where only .csv, .jsonl or .npy outputs are written (it would replace or shadow the model's files); choose another output path")
    }
    // Any other model or run folder: its own files (weights, config, tokenizer, log) are never an output's name.
    let name = (o as NSString).lastPathComponent, folder = (o as NSString).deletingLastPathComponent
    let modelFiles: Set<String> = ["model.safetensors", "adapter_model.safetensors", "adapter_config.json", "config.json", "vocab.txt",
                                   "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "trainer_state.json", "winnow.json",
                                   "optimizer.safetensors", "dynamics.safetensors", "generation_config.json"]
    let isModelFolder = ["config.json", "winnow.json", "adapter_config.json"].contains { FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) }
    if isModelFolder && (modelFiles.contains(name) || name.lowercased().hasSuffix(".gguf")) {
        throw ValidationError("\(option) \(out) is a file of the model or run folder \(folder) (its \(name)); choose another output path")
    }
}

/// Refuses a run folder `out` that is, or holds, a model the command reads: the run's end writes its model,
/// config and tokenizer there (replacing that model's), and a fresh start removes checkpoints (such as the
/// one given as --init).
func refuseRunOverModel(_ out: String, models: [String]) throws {
    let o = resolvedPath(out)
    for m in models {
        let mu = resolvedPath(m)
        guard mu == o || mu.hasPrefix(o + "/") else { continue }
        throw ValidationError("--out \(out) \(mu == o ? "is" : "holds") the model \(m) the command reads: the run would replace its files; choose another --out")
    }
}

/// Refuses, as a usage error before any file is read, a `--out` that cannot take a new run (`RunOutput.check`:
/// a file, a folder of other things, a run already there without --resume); the training checks it again when it starts.
func refuseRunOut(_ out: String, resume: Bool) throws {
    // Under MPI rank 0 writes the run (and may already have begun to when another rank starts).
    guard Distributed.isRoot else { return }
    do { try RunOutput.check(URL(fileURLWithPath: out), resume: resume) } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
}

/// The tokenizer and generation files of a decoder's folder that a run of it carries (those present).
func decoderFiles(in folder: URL) -> [URL] {
    ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"]
        .map { folder.appendingPathComponent($0) }.filter { FileManager.default.fileExists(atPath: $0.path) }
}

/// Refuses a full (not LoRA) decoder run from `model` when `tokenizerSource` holds no tokenizer.json to copy
/// into it: the run would be a model folder nothing can read text with. A GGUF file keeps its tokenizer inside
/// (a LoRA adapter names it as its base); a Hugging Face folder without one cannot be read at all.
func refuseFullRunWithoutTokenizer(_ model: URL, tokenizerSource: URL, doing: String) throws {
    guard !decoderFiles(in: tokenizerSource).contains(where: { $0.lastPathComponent == "tokenizer.json" }) else { return }
    if Tokenizers.ggufFile(in: tokenizerSource) != nil {
        throw WinnowError.invalidOption(name: "--lora-rank", reason:
            "\(doing) \(model.path) would write a model folder without a tokenizer (its tokenizer lives in the GGUF file); train a LoRA adapter (--lora-rank) or start from a Hugging Face folder")
    }
    throw WinnowError.invalidFile(path: tokenizerSource.path, line: nil, reason:
        "has no tokenizer.json: a decoder is read with its Hugging Face tokenizer (tokenizer.json, tokenizer_config.json); copy them from the model's repository")
}

/// The model folders a command reading `run` reads: the run, `base` when given, and else the base model an
/// adapter's adapter_config.json names (its files must not be replaced either).
func modelsRead(run: String, base: String?) -> [String] {
    if let base { return [run, base] }
    let url = URL(fileURLWithPath: run)
    guard ModelLoader.isAdapter(url), let b = try? ModelLoader.adapterBase(url) else { return [run] }
    return [run, b.path]
}

/// A note when `--base` names another model than the local one an adapter's adapter_config.json names:
/// the given base is read, which a user who mistyped it should know (shapes are checked; weights are not).
func noteBaseOverride(adapter: String, base: String?) {
    guard let base, ModelLoader.isAdapter(URL(fileURLWithPath: adapter)),
          let named = try? ModelLoader.adapterBase(URL(fileURLWithPath: adapter)),
          resolvedPath(named.path) != resolvedPath(base) else { return }
    printError("note: --base \(base) is read instead of \(named.path), the base model \(adapter)'s adapter_config.json names")
}

/// The absolute path of `path` with symbolic links resolved, also for a file that does not exist yet (its
/// folder is resolved; on Linux Foundation resolves nothing in a path whose last part is missing).
func resolvedPath(_ path: String) -> String {
    let u = URL(fileURLWithPath: path).standardizedFileURL
    if FileManager.default.fileExists(atPath: u.path) { return u.resolvingSymlinksInPath().path }
    return u.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(u.lastPathComponent).path
}

/// Prints that a resumed run was complete already (nothing trained, no loss or rate to report) and returns
/// true; false when the call trained.
func completeAlready(_ s: TrainingSummary, run: URL) -> Bool {
    guard s.stepsRun == 0 else { return false }
    print("\(run.path) is complete (\(s.steps) steps): nothing trained")
    return true
}

/// "N parameters" of a model, with the number its training updates when an adapter freezes the rest.
func parameterCount(_ m: some TrainableModel) -> String {
    let all = m.parameters.scalarCount
    guard let trained = m.trainableTensors else { return "\(all) parameters" }
    let t = zip(m.parameters.names, m.parameters.tensors).reduce(0) { $0 + (trained($1.0) ? $1.1.count : 0) }
    return "\(all) parameters (\(t) trained)"
}

func formatPercent(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }

/// The model of `winnow train` and `winnow experiment`: fresh (--vocab and sizes) or pretrained (--init).
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("init"), help: "Start from a pretrained model: a BERT folder (config.json, model.safetensors, vocab.txt or tokenizer.json; a bare encoder gets a fresh head, a classifier keeps its trained head, as transformers does) or, for `train`, a Llama-family decoder (a .gguf file, a folder holding one, a Hugging Face folder).")
    var initFrom: String?
    @Option(help: "vocab.txt for a fresh model (default: the --init folder's).") var vocab: String?
    @Option(name: .customLong("layers"), parsing: .unconditional, help: "Encoder layers of a fresh model (hidden layers of the MLP; default \(ModelSpec().layers); not with --init).")
    var layersGiven: Int?
    @Option(name: .customLong("hidden"), parsing: .unconditional, help: "Hidden size of a fresh model (width of the MLP; default \(ModelSpec().hidden); not with --init).")
    var hiddenGiven: Int?
    @Option(name: .customLong("heads"), parsing: .unconditional, help: "Attention heads of a fresh model (default \(ModelSpec().heads); not with --init).") var headsGiven: Int?
    var layers: Int { layersGiven ?? ModelSpec().layers }
    var hidden: Int { hiddenGiven ?? ModelSpec().hidden }
    var heads: Int { headsGiven ?? ModelSpec().heads }
    @Option(parsing: .unconditional, help: "Intermediate (feed-forward) size of a fresh model (default 4 x hidden; not with --init).") var intermediate: Int?
    @Option(help: "Classifier head of a fresh model or a bare --init encoder: hf (one linear layer) or paper (3 layers, 64 wide, GELU). (default: hf)") var head: BertConfig.Head?
    @Option(parsing: .unconditional, help: "Dropout on hidden states and attention probabilities (default: 0.1 for a fresh model, the --init config.json's otherwise).") var dropout: Float?

    var spec: ModelSpec {
        var s = ModelSpec()
        s.initFrom = initFrom; s.vocab = vocab; s.layers = layers; s.hidden = hidden; s.heads = heads
        s.intermediate = intermediate; s.head = head ?? ModelSpec().head; s.dropout = dropout
        return s
    }

    func validate() throws {
        // A mistyped path is named as such, before any reader looks for the files inside it.
        for (path, option) in [(initFrom, "--init"), (vocab, "--vocab")] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw WinnowError.missingFile(path: path, reason: "no such file or folder (\(option))")
            }
        }
        if initFrom == nil {
            guard layers >= 1 else { throw ValidationError("--layers must be at least 1") }
            guard hidden > 0, heads > 0 else { throw ValidationError("--\(hidden > 0 ? "heads" : "hidden") must be at least 1") }
            guard hidden % heads == 0 else { throw ValidationError("--hidden \(hidden) must be a multiple of --heads \(heads)") }
        } else {
            // A pretrained model's config.json gives its shape: these would be ignored.
            for (given, name) in [(layersGiven != nil, "--layers"), (hiddenGiven != nil, "--hidden"), (headsGiven != nil, "--heads"),
                                  (intermediate != nil, "--intermediate")] where given {
                throw ValidationError("\(name) shapes a fresh model; --init brings its own (its config.json)")
            }
        }
        if let initFrom, let head {
            let weights = URL(fileURLWithPath: initFrom).appendingPathComponent("model.safetensors")
            if let f = try? SafeTensorsFile(url: weights), f.entry("classifier.weight") != nil || f.entry("classifier.0.weight") != nil {
                throw ValidationError("--head \(head.rawValue): \(initFrom) holds a trained classifier head, which it keeps (as transformers does); "
                                      + "--head applies to a fresh model or a bare encoder")
            }
        }
        if let dropout, !(0..<1).contains(dropout) { throw ValidationError("--dropout must be in [0, 1)") }
    }
}

/// The seed and checkpoints of one `winnow train` run (the experiment sets its own: seed 0 and
/// --score-checkpoints for its scoring run, --seeds for the retrainings).
struct RunFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Seed of every random choice: init, shuffling, dropout.") var seed: UInt64 = TrainingOptions().seed
    @Option(parsing: .unconditional, help: "Save K evenly spaced checkpoints (default: one per epoch).") var checkpoints: Int?

    func validate() throws {
        if let k = checkpoints, k < 1 { throw ValidationError("--checkpoints must be at least 1") }
    }
}

/// How to train: the optimiser and schedule options shared by `train` and `experiment`.
struct TrainingFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Epochs.") var epochs: Int = TrainingOptions().epochs
    @Option(parsing: .unconditional, help: "Examples per step.") var batchSize: Int = TrainingOptions().batchSize
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate (default: 5e-5 to fine-tune a BERT --init, 1e-3 for a model trained from scratch; for `train` also 5e-4 for a BERT LoRA adapter, 2e-5 for every parameter of a decoder, 2e-4 for a decoder's LoRA adapter).")
    var learningRate: Float?
    @Option(parsing: .unconditional, help: "Weight decay (not on biases and LayerNorm weights).") var weightDecay: Float = TrainingOptions().weightDecay
    @Option(parsing: .unconditional, help: "Linear warm-up over this fraction of the steps, then linear decay to 0.") var warmupRatio: Float = TrainingOptions().warmupRatio
    @Option(help: "Optimizer (sgd with momentum).") var optimizer: Optimizer.Kind = TrainingOptions().optimizer
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Float = TrainingOptions().momentum
    @Option(parsing: .unconditional, help: "Clip the global gradient norm (0 disables).") var maxGradNorm: Float = TrainingOptions().maxGradNorm ?? 0

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let learningRate, !(learningRate > 0) { throw ValidationError("--lr must be positive") }
        guard (0...1).contains(warmupRatio) else { throw ValidationError("--warmup-ratio must be in [0, 1]") }
        guard weightDecay >= 0, momentum >= 0, maxGradNorm >= 0 else {
            throw ValidationError("--weight-decay, --momentum and --max-grad-norm must not be negative")
        }
        if momentum != TrainingOptions().momentum && optimizer != .sgd { throw ValidationError("--momentum applies to --optimizer sgd") }
    }

    /// The options, the learning rate fitting the model when --lr is not given.
    func options(maxLength: Int, pretrained: Bool, run: RunFlags? = nil) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batchSize = batchSize; o.weightDecay = weightDecay
        o.learningRate = learningRate ?? TrainingOptions.defaultLearningRate(for: pretrained ? .pretrainedEncoder : .encoderFromScratch)
        o.warmupRatio = warmupRatio; o.optimizer = optimizer; o.momentum = momentum
        o.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil
        if let run { o.seed = run.seed; o.checkpoints = run.checkpoints }
        o.maxLength = maxLength
        return o
    }
}

/// The LoRA adapter of a decoder's fine-tuning or continued pre-training (`train`, `pretrain`).
struct LoRAOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Train a LoRA adapter of this rank instead of every parameter (needs --init: a decoder, or for `train` a BERT encoder whose head is trained beside the adapter); the run is a PEFT adapter folder.") var loraRank: Int?
    @Option(parsing: .unconditional, help: "LoRA alpha (the update is alpha / r * B A). (default: 2 x --lora-rank)") var loraAlpha: Double?
    @Option(parsing: .unconditional, help: "LoRA dropout on the adapter's input during training (decoders only).") var loraDropout: Double = 0
    @Option(help: "LoRA target modules, comma-separated: decoders \(LoRAModule.decoderModules.map(\.rawValue).joined(separator: ",")); BERT \(LoRAModule.encoderModules.map(\.rawValue).joined(separator: ",")) (dense: every dense layer, as PEFT matches it). (default: q_proj,v_proj or query,value)", transform: { s in
        var seen: [LoRAModule] = []
        for n in s.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let m = LoRAModule(rawValue: n) else {
                throw ValidationError("--lora-targets: '\(n)' is not one of \(LoRAModule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard !seen.contains(m) else { throw ValidationError("--lora-targets: '\(n)' is given twice") }
            seen.append(m)
        }
        return seen
    })
    var loraTargets: [LoRAModule]?

    func validate() throws {
        if let r = loraRank, r < 1 { throw ValidationError("--lora-rank must be at least 1") }
        if let a = loraAlpha, !(a > 0 && a.isFinite) { throw ValidationError("--lora-alpha must be a positive number") }
        guard (0..<1).contains(loraDropout) else { throw ValidationError("--lora-dropout must be in [0, 1)") }
        if loraRank == nil && (loraAlpha != nil || loraDropout != 0 || loraTargets != nil) {
            throw ValidationError("--lora-alpha, --lora-dropout and --lora-targets need --lora-rank")
        }
    }

    /// The adapter to add to a decoder, nil without --lora-rank.
    var config: LoRAConfig? { config(decoder: true) }

    /// The adapter to add to a decoder or an encoder, nil without --lora-rank.
    func config(decoder: Bool) -> LoRAConfig? {
        loraRank.map { LoRAConfig(rank: $0, alpha: loraAlpha ?? Double(2 * $0), dropout: loraDropout,
                                  targets: loraTargets ?? LoRAModule.defaultTargets(decoder: decoder)) }
    }

    /// Refuses targets of the other family.
    func checkTargets(decoder: Bool) throws {
        let allowed = decoder ? LoRAModule.decoderModules : LoRAModule.encoderModules
        if let m = loraTargets?.first(where: { !allowed.contains($0) }) {
            throw ValidationError("--lora-targets: '\(m.rawValue)' is not a module of \(decoder ? "a Llama-family decoder" : "a BERT encoder") (\(allowed.map(\.rawValue).joined(separator: ", ")))")
        }
    }
}

/// The data file as a shard's job names it: its real path (symbolic links resolved) and, for a shard,
/// its contents' fingerprint, so that `merge` refuses shards of a file edited between them and joins
/// shards that reached one file by different paths.
/// The weights a shard read, for its manifest's job: `FileFingerprint.weightsDigest` of the model folders (or
/// files) `paths`, computed only for a shard, so that `winnow merge` refuses shards of a model retrained between them.
func shardModels(_ paths: [String?], sharded: Bool) -> String {
    "models \(sharded ? FileFingerprint.weightsDigest(paths.compactMap { $0 }.map { URL(fileURLWithPath: $0) }) : "-")"
}

func shardData(_ path: String, sharded: Bool) -> String {
    let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
    let fingerprint = sharded ? ((try? FileFingerprint.fnv1a64(url)) ?? "-") : "-"
    return "data \(url.path) (fnv1a64 \(fingerprint))"
}
