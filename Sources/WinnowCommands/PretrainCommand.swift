import ArgumentParser
import Foundation
import Winnow

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pre-train a masked or causal language model, or continue pre-training a decoder, plainly or with PRESENCE self-influence reweighting.",
        discussion: """
        Each line of --corpus is one document, cut into windows [CLS] up to T-2 tokens [SEP] (T = --seq-len). \
        mlm masks 15% of tokens (80% [MASK], 10% random, 10% kept; BertForMaskedLM names); causal predicts the \
        next token with causal attention (BertLMHeadModel names, is_decoder). The loss is the mean over samples \
        of each sample's mean token loss. --reweight presence splits each batch into microbatches of \
        --microbatch-size samples, computes SI_j = ||dL_j/dtheta_S||^2 over --si-params in the same backward pass \
        (Gram form), scales SI by its batch mean, and minimises sum_j softmax(tau * SI)_j L_j with tau = --tau1 \
        before --switch-step and --tau2 from it on. --si-log writes step,line,si,weight for every sample.

        With --init a Llama-family decoder (a GGUF file or folder, a Hugging Face folder, a PEFT adapter \
        folder), continues its causal pre-training: each line's tokens (the model's tokenizer) in windows of \
        up to T tokens, the same PRESENCE step (--si-params may be first-layer, last-layer, lora or tensor \
        prefixes), a LoRA adapter with --lora-rank (the run is a PEFT adapter folder; default lr 2e-4) or \
        every parameter (default lr 2e-5). A decoder's PRESENCE defaults are --tau1 -1 (inverse weighting \
        throughout) and --si-params last-layer: on SmolLM2 with 20 % noisy lines the paper's schedule \
        (--tau1 1 --si-params first-layer) gave a held-out loss of 4.03 against 3.89 plain and 3.87 for \
        these (3 seeds; README, "PRESENCE on a pretrained decoder"). With --init a BERT masked or causal LM \
        folder, continues it.
        """)

    @Option(help: "Text corpus, one document a line.") var corpus: String
    @Option(help: "vocab.txt (WordPiece vocabulary, lower-cased) of a fresh BERT; not with --init.") var vocab: String?
    @Option(name: .customLong("init"), help: "Continue pre-training this model: a Llama-family decoder (GGUF file or folder, Hugging Face folder, PEFT adapter folder) or a BERT language-model folder.") var initFrom: String?
    @Option(help: "The base model of a LoRA adapter folder given as --init (default: its base_model_name_or_path, when local).") var base: String?
    @OptionGroup var loraOptions: LoRAOptions
    @Option(help: "Masked or causal language modelling (default: mlm for a fresh BERT, causal for a decoder, the folder's own for --init BERT).") var objective: LMObjective?
    @Option(help: "Reweight microbatches by self-influence (PRESENCE) or not.") var reweight: PresenceOptions.Reweight = PresenceOptions().reweight
    @Option(parsing: .unconditional, help: "PRESENCE temperature before --switch-step. (default: 1, the paper's, for a BERT; -1, inverse weighting throughout, for a decoder: README, \"PRESENCE on a pretrained decoder\")") var tau1: Double?
    @Option(parsing: .unconditional, help: "PRESENCE temperature from --switch-step on.") var tau2: Double = PresenceOptions().tau2
    @Option(parsing: .unconditional, help: "First step (1-based) that uses --tau2 (default: half of --steps, plus one).") var switchStep: Int?
    @Option(help: "Tensors for self-influence: first-layer, last-layer, lora (a decoder's adapter), or PREFIX,... (encoder or decoder tensors). (default: first-layer, the paper's, for a BERT; last-layer for a decoder)") var siParams: ParameterSelection.Spec?
    @Option(name: .customLong("microbatch-size"), parsing: .unconditional, help: "PRESENCE: samples per microbatch (1: per-sample weights; default \(PresenceOptions().microbatchSize)).")
    var microbatchSizeGiven: Int?
    @Option(name: .customLong("si-scale"), help: "PRESENCE: SI scaling before the softmax: mean (SI / batch mean; the default) or none.")
    var siScaleGiven: PresenceOptions.Scale?
    var microbatchSize: Int { microbatchSizeGiven ?? PresenceOptions().microbatchSize }
    var siScale: PresenceOptions.Scale { siScaleGiven ?? PresenceOptions().scale }
    @Option(parsing: .unconditional, help: "Optimizer steps.") var steps: Int = PretrainOptions().steps
    @Option(parsing: .unconditional, help: "Samples per step.") var batchSize: Int = PretrainOptions().batchSize
    @Option(parsing: .unconditional, help: "Window length T in tokens ([CLS] and [SEP] included for a BERT; a decoder's windows hold up to T tokens).") var seqLen: Int = 128
    @Option(name: .customLong("layers"), parsing: .unconditional, help: "Encoder layers of a fresh BERT (default 2; not with --init).") var layersGiven: Int?
    @Option(name: .customLong("hidden"), parsing: .unconditional, help: "Hidden size of a fresh BERT (default 128; not with --init).") var hiddenGiven: Int?
    @Option(name: .customLong("heads"), parsing: .unconditional, help: "Attention heads of a fresh BERT (default 2; not with --init).") var headsGiven: Int?
    @Option(parsing: .unconditional, help: "Intermediate size of a fresh BERT (default 4 x hidden; not with --init).") var intermediate: Int?
    var layers: Int { layersGiven ?? 2 }
    var hidden: Int { hiddenGiven ?? 128 }
    var heads: Int { headsGiven ?? 2 }
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate (linear warm-up, then linear decay). (default: 5e-4 for a fresh BERT, 5e-5 for --init BERT, 2e-4 for a decoder's LoRA adapter, 2e-5 for every parameter of a decoder)") var learningRate: Float?
    @Option(parsing: .unconditional, help: "Warm-up fraction of the steps.") var warmupRatio: Float = PretrainOptions().warmupRatio
    @Option(parsing: .unconditional, help: "AdamW weight decay.") var weightDecay: Float = PretrainOptions().weightDecay
    @Option(parsing: .unconditional, help: "Save K evenly spaced checkpoints (the last is at the final step).") var checkpoints: Int = PretrainOptions().checkpoints
    @Option(parsing: .unconditional, help: "Seed of init, window order, masking and dropout.") var seed: UInt64 = PretrainOptions().seed
    @Option(help: "CSV of step,line,si,weight for every sample of every batch.") var siLog: String?
    @Option(help: "Held-out corpus: report its loss at the end, the mean over its windows of each window's mean token loss (fixed masks, inference mode; compare runs of one --seq-len).") var heldout: String?
    @Option(help: "Run folder to write.") var out: String
    @Flag(help: "Continue an interrupted run in --out from its latest checkpoint (same options and corpus); the result equals an uninterrupted run.") var resume = false

    func validate() throws {
        guard steps >= 1, batchSize >= 1, microbatchSize >= 1 else { throw ValidationError("--steps, --batch-size and --microbatch-size must be positive") }
        guard steps <= 1_000_000_000 else { throw ValidationError("--steps must be at most 10^9") }
        guard batchSize <= 1_000_000 else { throw ValidationError("--batch-size must be at most 10^6") }
        guard seqLen >= 3 else { throw ValidationError("--seq-len must be at least 3") }
        // The final step always saves a checkpoint (resume and scoring read it): 0 would save one all the same.
        guard checkpoints >= 1 else { throw ValidationError("--checkpoints must be at least 1 (the final step always saves one)") }
        for (name, t) in [("--tau1", tau1), ("--tau2", tau2)] {
            if let t, !t.isFinite { throw ValidationError("\(name) must be a finite number, not \(t)") }
        }
        if reweight != .presence && (tau1 != nil || tau2 != PresenceOptions().tau2 || switchStep != nil) {
            throw ValidationError("--tau1, --tau2 and --switch-step apply to --reweight presence")
        }
        if reweight != .presence && siLog == nil && (siParams != nil || microbatchSizeGiven != nil || siScaleGiven != nil) {
            throw ValidationError("--si-params, --microbatch-size and --si-scale shape PRESENCE's self-influence (--reweight presence) or the --si-log")
        }
        if reweight == .presence {
            guard microbatchSize < batchSize else {
                throw ValidationError("--microbatch-size \(microbatchSize) leaves one microbatch a batch of \(batchSize): its weight is always 1, "
                                      + "so PRESENCE would be plain training; give a --microbatch-size below --batch-size")
            }
            if let s = switchStep, !(1...steps).contains(s) || (s == 1 && tau1 != nil) {
                throw ValidationError("--switch-step \(s) leaves --tau\(s > steps ? "2" : "1") unused (steps 1...\(steps); --tau2 holds from --switch-step on)")
            }
        }
        guard layers >= 1 else { throw ValidationError("--layers must be at least 1") }
        guard hidden >= 1, heads >= 1 else { throw ValidationError("--\(hidden < 1 ? "hidden" : "heads") must be at least 1") }
        guard hidden % heads == 0 else { throw ValidationError("--hidden \(hidden) must be a multiple of --heads \(heads)") }
        if let i = intermediate, i < 1 { throw ValidationError("--intermediate must be at least 1") }
        // A fresh BERT's position table holds max(512, --seq-len) rows.
        if initFrom == nil && seqLen > 8192 { throw ValidationError("--seq-len \(seqLen) is beyond what a fresh BERT is made with here (at most 8192)") }
        try refuseRunOverModel(out, models: [initFrom, base].compactMap { $0 })
        if let siLog {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: siLog, isDirectory: &isDir), isDir.boolValue {
                throw ValidationError("--si-log \(siLog) is a folder; give a file path such as \(out)/si-log.csv")
            }
            try refuseOverwriting(siLog, option: "--si-log", inputs: [corpus] + [vocab, heldout].compactMap { $0 })
            // Inside the run (or a model read) only a .csv: not a file the run or model is made of.
            let s = resolvedPath(siLog), o = resolvedPath(out)
            if s == o || (s.hasPrefix(o + "/") && (s as NSString).pathExtension.lowercased() != "csv") {
                throw ValidationError("--si-log \(siLog) \(s == o ? "is the run folder" : "is inside the run folder \(out), where it would replace or shadow the run's files"); "
                                      + "give a .csv path such as \(out)/si-log.csv")
            }
            try refuseWritingIntoModel(siLog, option: "--si-log", models: [initFrom, base].compactMap { $0 })
        }
        try refuseRunOut(out, resume: resume)
        if initFrom != nil {
            // The model's own config.json gives its shape.
            for (given, name) in [(layersGiven != nil, "--layers"), (hiddenGiven != nil, "--hidden"), (headsGiven != nil, "--heads"),
                                  (intermediate != nil, "--intermediate")] where given {
                throw ValidationError("\(name) shapes a fresh BERT; --init brings its own")
            }
        } else if base != nil {
            throw ValidationError("--base is the base model of an adapter given as --init")
        }
        if initFrom == nil {
            guard let vocab else { throw ValidationError("give --vocab (a fresh BERT) or --init (a model to continue)") }
            if !FileManager.default.fileExists(atPath: vocab) { throw WinnowError.missingFile(path: vocab, reason: "no such file (--vocab)") }
            guard URL(fileURLWithPath: vocab).lastPathComponent == "vocab.txt" else {
                throw ValidationError("--vocab \(vocab) is not named vocab.txt: the run carries the file under its own name and is read by vocab.txt; copy or rename it")
            }
            guard loraOptions.loraRank == nil else { throw ValidationError("--lora-rank needs --init with a causal language model (a Llama-family decoder)") }
        } else {
            guard vocab == nil else { throw ValidationError("--vocab is for a fresh BERT; --init brings its own tokenizer") }
        }
    }

    /// The options every kind of run shares, with `lr` when --lr is not given; a decoder's PRESENCE
    /// defaults are inverse weighting throughout over the last layer (what the SmolLM2 experiment favours).
    func options(lr: Float, decoder: Bool = false) -> PretrainOptions {
        var o = PretrainOptions()
        o.steps = steps; o.batchSize = batchSize; o.learningRate = learningRate ?? lr; o.warmupRatio = warmupRatio
        o.weightDecay = weightDecay; o.checkpoints = checkpoints; o.seed = seed
        let defaults = decoder ? PresenceOptions.decoderDefaults : PresenceOptions()
        o.presence.reweight = reweight; o.presence.tau1 = tau1 ?? defaults.tau1; o.presence.tau2 = tau2
        o.presence.switchStep = switchStep; o.presence.siParams = siParams ?? defaults.siParams
        o.presence.microbatchSize = microbatchSize; o.presence.scale = siScale
        return o
    }

    func describe(_ o: PretrainOptions) -> String {
        let p = o.presence
        let schedule = p.tau1 == p.tau2 ? "tau \(p.tau1) throughout" : "tau \(p.tau1) before step \(p.switchStep(totalSteps: steps)), \(p.tau2) from it on"
        return "reweight \(reweight)" + (reweight == .presence ? " (\(schedule); microbatches of \(microbatchSize); SI over \(p.siParams))" : "")
            + String(format: ", lr %g", o.learningRate)
    }

    /// Resolves the self-influence tensors before anything is printed or trained, naming --si-params when they
    /// select none; refuses a --switch-step between equal temperatures (the model's defaults may make them so).
    func checkSIParams(_ o: PretrainOptions, layout: ParameterLayout) throws {
        if let s = switchStep, o.presence.tau1 == o.presence.tau2 {
            throw WinnowError.invalidOption(name: "--switch-step", reason:
                "\(s) changes nothing: the temperature is \(o.presence.tau1) before and after it (give --tau1 and --tau2 that differ)")
        }
        guard o.presence.reweight == .presence || siLog != nil else { return }
        do { _ = try ParameterSelection(o.presence.siParams, layout: layout) } catch let WinnowError.invalidOption(_, reason) {
            throw WinnowError.invalidOption(name: "--si-params", reason: reason)
        }
    }

    /// Writes RUN/heldout.json with the mean loss of `model` on the --heldout corpus.
    func reportHeldout(_ model: some LanguageModel, corpus h: LMCorpus, run: URL) throws {
        guard let heldout else { return }
        let loss = PreTrainer.evaluate(model, on: h, batchSize: batchSize)
        let obj: [String: Any] = ["heldout": URL(fileURLWithPath: heldout).path, "windows": h.count, "loss": loss, "objective": model.objective.rawValue]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]),
                             to: run.appendingPathComponent("heldout.json"))
        print(String(format: "held-out %@ loss %.4f over %d windows (%@)", model.objective.rawValue, loss, h.count, heldout))
    }

    /// Continued causal pre-training of a Llama-family decoder, its LoRA adapter or every parameter.
    func pretrainDecoder(_ url: URL) throws {
        if let objective, objective != .causal { throw WinnowError.invalidOption(name: "--objective", reason: "a decoder is pre-trained with the causal objective") }
        let baseURL = base.map { URL(fileURLWithPath: $0) }
        if base != nil && !ModelLoader.isAdapter(url) {
            throw WinnowError.invalidOption(name: "--base", reason: "applies to a LoRA adapter folder given as --init; \(url.path) is a whole model")
        }
        guard let lm = try ModelLoader.causalLM(url, base: baseURL) as? LlamaForCausalLM else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a Llama-family model Winnow can train")
        }
        let base = ModelLoader.isAdapter(url) ? try ModelLoader.adapterBase(url, base: baseURL) : url
        if let lora = loraOptions.config {
            guard lm.loraConfig == nil else { throw WinnowError.invalidOption(name: "--lora-rank", reason: "\(url.path) is an adapter already: its adapter is trained, without --lora-rank") }
            try lm.addLoRA(lora, seed: seed)
        }
        let tokenizerFolder = try ModelLoader.tokenizerFolder(url, base: baseURL)
        let extra = decoderFiles(in: tokenizerFolder)
        if lm.loraConfig == nil { try refuseFullRunWithoutTokenizer(url, tokenizerSource: tokenizerFolder, doing: "continuing every parameter of") }
        guard seqLen <= lm.maxSequenceLength else { throw WinnowError.invalidOption(name: "--seq-len", reason: "\(seqLen) exceeds the model's \(lm.maxSequenceLength) positions") }
        let tokenizer = try Tokenizers.load(folder: tokenizerFolder)
        let corpusURL = URL(fileURLWithPath: corpus)
        let windows = try LMCorpus(url: corpusURL, causalTokenizer: tokenizer, seqLen: seqLen)
        try windows.checkIDs(below: lm.vocabularySize)
        // Read before training, so that a bad --heldout file fails before the run is written.
        let held = try heldout.map { try LMCorpus(url: URL(fileURLWithPath: $0), causalTokenizer: tokenizer, seqLen: seqLen) }
        try held?.checkIDs(below: lm.vocabularySize)
        let o = options(lr: TrainingOptions.defaultLearningRate(for: lm.loraConfig != nil ? .decoderLoRA : .decoder), decoder: true)
        try checkSIParams(o, layout: lm.parameterLayout)
        let trained = lm.loraConfig.map { "LoRA r \($0.rank) alpha \($0.alpha) on \($0.targets.map(\.rawValue).joined(separator: ","))" } ?? "every parameter"
        let runURL = URL(fileURLWithPath: out)
        let info = ["init": url.standardizedFileURL.path]
        // Every refusal (a resumed run of other settings included) before the banner.
        try PreTrainer(options: o).check(decoder: lm, base: base, on: windows, run: runURL, siLog: siLog.map { URL(fileURLWithPath: $0) },
                                         runInfo: info, resume: resume)
        printError("pretrain: \(windows.count) windows of at most \(seqLen) tokens from \(corpusURL.path); causal, \(parameterCount(lm)), "
                   + "\(trained) trained, \(describe(o))")
        let s = try PreTrainer(options: o).train(decoder: lm, base: base, on: windows, run: runURL, extraFiles: extra,
                                                 siLog: siLog.map { URL(fileURLWithPath: $0) }, runInfo: info,
                                                 reporter: TerminalReporter(), resume: resume)
        if !completeAlready(s, run: runURL) {
            print(String(format: "pre-trained %@ in %.1f s (%.1f samples/s), final loss %.4f; %@ written to %@",
                         s.stepsDescription, s.seconds, s.examplesPerSecond, s.finalLoss, lm.loraConfig == nil ? "model" : "adapter", runURL.path))
        }
        if let held { try reportHeldout(lm, corpus: held, run: runURL) }
    }

    func run() throws {
        // Under MPI rank 0 writes the run.
        let lock = Distributed.isRoot ? try OutputLock(URL(fileURLWithPath: out)) : nil
        defer { lock?.release() }
        if let initFrom, Distributed.isRoot { noteBaseOverride(adapter: initFrom, base: base) }
        // A JSONL file read as a corpus is read as text, its syntax included: say so (the text field is not picked out).
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: corpus, isDirectory: &isDir), !isDir.boolValue,
           let h = FileHandle(forReadingAtPath: corpus), let head = String(data: h.readData(ofLength: 4096), encoding: .utf8),
           head.drop(while: { $0 == "\u{FEFF}" || $0.isWhitespace }).first == "{" {
            printError("note: \(corpus) looks like JSONL: pretrain reads every line as plain text, braces, keys and quotes included "
                       + "(write the text field out first for a corpus of its text: python3 -c 'import json,sys; [print(json.loads(l)[\"text\"]) for l in sys.stdin]')")
        }
        if let i = initFrom {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: i, isDirectory: &isDir) else { throw WinnowError.missingFile(path: i, reason: "no such model (--init)") }
            if ModelLoader.isCausalLM(URL(fileURLWithPath: i)) { return try pretrainDecoder(URL(fileURLWithPath: i)) }
            if ModelLoader.isDecoderClassifier(URL(fileURLWithPath: i)) {
                throw WinnowError.invalidFile(path: i, line: nil, reason:
                    "is a decoder sequence classifier (a score head, no language-model head): pretrain continues a causal language model; "
                    + "give the decoder it was fine-tuned from")
            }
            guard isDir.boolValue else {
                throw WinnowError.invalidFile(path: i, line: nil, reason: "--init takes a model folder (a BERT language model, a Llama-family decoder) or a .gguf file")
            }
            if base != nil { throw WinnowError.invalidOption(name: "--base", reason: "applies to a decoder's LoRA adapter folder given as --init, not to the BERT folder \(i)") }
        }
        guard loraOptions.loraRank == nil else { throw WinnowError.invalidOption(name: "--lora-rank", reason: "LoRA needs --init with a causal language model (a Llama-family decoder)") }
        // A fresh BERT's WordPiece is lower-cased; a folder's tokenizer keeps its own casing (tokenizer_config.json),
        // and the run gets the same tokenizer files.
        let tokenizer: BertTokenizer
        let tokenizerFiles: [URL]
        if let i = initFrom {
            let folder = URL(fileURLWithPath: i)
            tokenizer = try BertTokenizer(folder: folder)
            tokenizerFiles = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"].map { folder.appendingPathComponent($0) }
                .filter { FileManager.default.fileExists(atPath: $0.path) }
        } else {
            let vocabURL = URL(fileURLWithPath: vocab!)
            tokenizer = BertTokenizer(vocabulary: try Vocabulary(contentsOf: vocabURL))
            tokenizerFiles = [vocabURL]
        }
        let vocabulary = tokenizer.vocabulary
        let corpusURL = URL(fileURLWithPath: corpus)
        let lm = try LMCorpus(url: corpusURL, tokenizer: tokenizer, seqLen: seqLen)
        let held = try heldout.map { try LMCorpus(url: URL(fileURLWithPath: $0), tokenizer: tokenizer, seqLen: seqLen) }
        let model: BertLanguageModel
        if let i = initFrom {
            // A bare encoder (BertModel, as MiniLM's sentence-transformers folder) has no language-model head to continue.
            if let cfg = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: i).appendingPathComponent("config.json")))) as? [String: Any],
               let arch = cfg["architectures"] as? [String], arch.contains("BertModel") {
                throw WinnowError.invalidFile(path: URL(fileURLWithPath: i).appendingPathComponent("config.json").path, line: nil, reason:
                    "is a bare BertModel (architectures [BertModel]: no language-model head); pretrain continues a BertForMaskedLM or BertLMHeadModel, "
                    + "or starts a fresh BERT with --vocab \(URL(fileURLWithPath: i).appendingPathComponent("vocab.txt").path)")
            }
            model = try BertLanguageModel(folder: URL(fileURLWithPath: i), objective: objective)
            guard seqLen <= model.config.maxPositionEmbeddings else {
                throw WinnowError.invalidOption(name: "--seq-len", reason: "\(seqLen) exceeds the model's \(model.config.maxPositionEmbeddings) positions")
            }
        } else {
            let config = BertConfig.small(vocabSize: vocabulary.count, hidden: hidden, layers: layers, heads: heads,
                                          intermediate: intermediate, maxPositions: max(512, seqLen))
            model = BertLanguageModel(config: config, objective: objective ?? .mlm, seed: seed)
        }
        let o = options(lr: initFrom == nil ? PretrainOptions().learningRate : TrainingOptions.defaultLearningRate(for: .pretrainedEncoder))
        try checkSIParams(o, layout: model.parameterLayout)
        let runURL = URL(fileURLWithPath: out)
        // What --resume must find again: the model started from and the vocabulary (its ids are the run's).
        var info: [String: String] = [:]
        if let i = initFrom { info["init"] = URL(fileURLWithPath: i).standardizedFileURL.path }
        if let v = tokenizerFiles.first(where: { $0.lastPathComponent == "vocab.txt" }) { info["vocab_fnv1a64"] = try FileFingerprint.fnv1a64(v) }
        // Every refusal (a resumed run of other settings included) before the banner.
        try PreTrainer(options: o).check(model, on: lm, run: runURL, siLog: siLog.map { URL(fileURLWithPath: $0) }, runInfo: info, resume: resume)
        printError("pretrain: \(lm.count) windows of at most \(seqLen) tokens from \(corpusURL.path); \(model.objective.rawValue), "
                   + "\(model.parameters.scalarCount) parameters, \(describe(o))")
        let s = try PreTrainer(options: o).train(model, on: lm, run: runURL, extraFiles: tokenizerFiles,
                                                 siLog: siLog.map { URL(fileURLWithPath: $0) }, runInfo: info, reporter: TerminalReporter(), resume: resume)
        if !completeAlready(s, run: runURL) {
            print(String(format: "pre-trained %@ in %.1f s (%.1f samples/s), final loss %.4f; run written to %@",
                         s.stepsDescription, s.seconds, s.examplesPerSecond, s.finalLoss, runURL.path))
        }
        if let held { try reportHeldout(model, corpus: held, run: runURL) }
    }
}
