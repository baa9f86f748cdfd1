import ArgumentParser
import Foundation
import Winnow

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a BERT-style classifier, or fine-tune a Llama-family decoder (full or LoRA), and write a run folder.",
        discussion: """
        Starts from a fresh model (--vocab plus --layers/--hidden/--heads) or from a pretrained folder (--init, \
        e.g. models/minilm) with a fresh head (a classifier folder keeps its trained head, as transformers does). \
        Writes RUN/config.json, vocab.txt, winnow.json, model.safetensors and trainer_state.json (the final model and its \
        log), checkpoint-<step>/ (model.safetensors, config.json, trainer_state.json, and the optimizer state and dynamics \
        that --resume continues from) and dynamics.safetensors \
        (per presentation of each example: loss, p_y, margin, correctness, recorded in training mode before \
        the update, for the forgetting, cartography and AUM scores).

        With --init a causal language model (a GGUF file or folder, a Hugging Face Llama, Mistral, Qwen2, Qwen3 or Gemma 3 \
        folder), fine-tunes it on decoder data (text, prompt + completion with the loss on the completion, messages \
        through the model's chat template with the loss on the assistant turns): a LoRA adapter with --lora-rank (a PEFT adapter folder that peft and \
        `winnow score --run` load; default lr 2e-4) or every parameter (a Hugging Face folder; default lr 2e-5). \
        --init a decoder's PEFT adapter folder trains that adapter on (without --lora-rank).

        --task classify trains LlamaForSequenceClassification from a causal language model: every parameter \
        (default lr 2e-5), or with --lora-rank a LoRA adapter and the score head (a PEFT SEQ_CLS adapter folder; \
        default lr 2e-4).

        With --init a BERT encoder and --lora-rank, trains a LoRA adapter (--lora-targets query,value,key,dense) \
        and the classifier beside it, the rest frozen (default lr 5e-4): the run is a PEFT SEQ_CLS adapter \
        folder that peft, `winnow eval` and `winnow score` load.
        """)

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Run folder to write.")
    var out: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var trainingFlags: TrainingFlags
    @OptionGroup var runFlags: RunFlags
    @Flag(help: "Train the PVI null model: every input is empty ([CLS] [SEP]).") var null = false
    @Flag(help: "Do not record training dynamics.") var noDynamics = false
    @Flag(help: "Continue an interrupted run in --out from its latest checkpoint (same options and data); the result equals an uninterrupted run.") var resume = false
    @OptionGroup var loraOptions: LoRAOptions
    @Option(help: "Decoders: lm (causal LM on text, prompt + completion, messages, or input_ids with an optional completion_mask, assistant_masks or labels) or classify (LlamaForSequenceClassification on labelled data, a fresh score head on the last token; records dynamics for forgetting, cartography and AUM).")
    var task: DecoderTask = .lm

    enum DecoderTask: String, ExpressibleByArgument, CaseIterable { case lm, classify }

    func validate() throws {
        try refuseRunOverModel(out, models: [modelOptions.initFrom].compactMap { $0 })
        try refuseRunOut(out, resume: resume)
        if dataOptions.data.lowercased().hasSuffix(".csv") {
            // Numeric features train the MLP: the text and transformer options would change nothing.
            let m = modelOptions, d = dataOptions
            for (given, name) in [(m.initFrom != nil, "--init"), (m.vocab != nil, "--vocab"), (m.headsGiven != nil, "--heads"),
                                  (m.intermediate != nil, "--intermediate"), (m.head != nil, "--head"), (m.dropout != nil, "--dropout"),
                                  (loraOptions.loraRank != nil, "--lora-rank"), (null, "--null"), (task != .lm, "--task"),
                                  (d.textField != nil, "--text-field"), (d.pairField != nil, "--pair-field"),
                                  (d.maxLengthGiven != nil, "--max-length")] where given {
                throw ValidationError("\(name) does not apply to a CSV of numeric features, which trains an MLP (--layers hidden layers of --hidden units); "
                                      + "text data goes in JSONL, one {\"text\": ..., \"label\": ...} object a line")
            }
            return
        }
        if let i = modelOptions.initFrom, ModelLoader.isCausalLM(URL(fileURLWithPath: i)) {
            guard !null else { throw ValidationError("--null is not available for decoders") }
            guard modelOptions.head == nil else { throw ValidationError("--head applies to BERT classifiers (a decoder classifier has one linear score head)") }
            // The decoder's own files give its shape and tokenizer, and a Llama has no dropout.
            let m = modelOptions
            for (given, name) in [(m.vocab != nil, "--vocab"), (m.dropout != nil, "--dropout")] where given {
                throw ValidationError("\(name) does not apply to a decoder --init (its config.json and tokenizer give the model; a Llama has no dropout)")
            }
            try loraOptions.checkTargets(decoder: true)
            if task == .lm {
                // A causal LM reads no labels and records no per-example dynamics (those are a classifier's).
                for (given, name) in [(noDynamics, "--no-dynamics"), (dataOptions.labelField != nil, "--label-field")] where given {
                    throw ValidationError("\(name) applies to --task classify; a causal language model's training reads no labels and records no dynamics")
                }
                if ModelLoader.isAdapter(URL(fileURLWithPath: i)) && loraOptions.loraRank != nil {
                    throw ValidationError("--init \(i) is a LoRA adapter: its adapter trains on without --lora-rank (or start from its base model with --lora-rank)")
                }
            } else if ModelLoader.isAdapter(URL(fileURLWithPath: i)) {
                throw ValidationError("--task classify starts from a causal language model (a fresh score head); \(i) is an adapter: give its base model")
            }
            return
        }
        if let i = modelOptions.initFrom, ModelLoader.isDecoderClassifier(URL(fileURLWithPath: i)) {
            throw ValidationError("--init \(i) is a decoder sequence classifier: fine-tuning starts from a causal language model "
                                  + "(--init its base with --task classify); score or evaluate this one with `winnow score`/`eval --run`")
        }
        if task != .lm { throw ValidationError("--task applies to decoders (--init a causal language model)") }
        if loraOptions.loraRank != nil {
            guard modelOptions.initFrom != nil else { throw ValidationError("--lora-rank needs --init: a pretrained model (a BERT encoder or a Llama-family decoder) to adapt") }
            guard loraOptions.loraDropout == 0 else { throw ValidationError("--lora-dropout is not available for BERT encoders (their hidden and attention dropout still apply); leave it at 0") }
            guard !null else { throw ValidationError("--null trains the PVI null model in full; leave out --lora-rank") }
            try loraOptions.checkTargets(decoder: false)
        }
        do { try modelOptions.spec.validate() } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
    }

    func run() throws {
        // Under MPI rank 0 writes the run.
        let lock = Distributed.isRoot ? try OutputLock(URL(fileURLWithPath: out)) : nil
        defer { lock?.release() }
        if let i = modelOptions.initFrom, ModelLoader.isCausalLM(URL(fileURLWithPath: i)) { return try trainDecoder(URL(fileURLWithPath: i)) }
        if dataOptions.data.lowercased().hasSuffix(".csv") { return try trainMLP() }
        let data = try dataOptions.read()
        reportSkipped(data)
        noteUnreadText(data)
        let spec = modelOptions.spec
        let tokenizer = try spec.tokenizer()
        let model = try spec.makeModel(labels: classLabels(data.sortedLabels), maxLength: dataOptions.maxLength, seed: runFlags.seed)
        let encoded = try EncodedDataset(data, tokenizer: tokenizer, labels: model.config.labels, maxLength: dataOptions.maxLength, null: null,
                                         modelVocabulary: model.config.vocabSize)
        var o = trainingOptions()
        if var lora = loraOptions.config(decoder: false), let i = spec.initFrom {
            // A base without a pooler gets a fresh one, which an adapter neither trains nor saves: its reader
            // (Winnow or peft) would draw another.
            let weights = URL(fileURLWithPath: i).appendingPathComponent("model.safetensors")
            if let st = try? SafeTensorsFile(url: weights), st.entry("pooler.dense.weight") == nil && st.entry("bert.pooler.dense.weight") == nil {
                throw WinnowError.invalidTensor(path: weights.path, tensor: "pooler.dense.weight", reason:
                    "missing: a LoRA adapter on this base would read a fresh pooler that it neither trains nor saves; fine-tune every parameter (without --lora-rank), or start from a base with a pooler")
            }
            // A LoRA adapter on the pretrained encoder; the head trains beside it (default lr 5e-4).
            lora.baseModel = URL(fileURLWithPath: i).standardizedFileURL.path
            try model.addLoRA(lora, seed: runFlags.seed)
            if trainingFlags.learningRate == nil { o.learningRate = TrainingOptions.defaultLearningRate(for: .encoderLoRA) }
            printError("train: LoRA r \(lora.rank) alpha \(lora.alpha) on \(lora.targets.map(\.rawValue).joined(separator: ",")) and the head; "
                       + "\(model.parameters.names.enumerated().filter { BertClassifier.isAdapterTensor($0.element) }.reduce(0) { $0 + model.parameters[$1.offset].count }) trainable parameters, lr \(o.learningRate)")
        }
        let runURL = URL(fileURLWithPath: out)
        printError("train: \(encoded.count) examples, labels [\(model.config.labels.joined(separator: ", "))], "
                   + "\(model.parameters.scalarCount) parameters, \(model.config.numHiddenLayers) layer\(model.config.numHiddenLayers == 1 ? "" : "s") x \(model.config.hiddenSize)")
        var info = try dataInfo(fields: data.fields)
        // What the model is, so that --resume refuses another one (its shape, head, dropout, vocabulary, start).
        info["init"] = spec.initFrom.map { URL(fileURLWithPath: $0).path } ?? "none"
        let c = model.config
        info["model"] = "layers \(c.numHiddenLayers) hidden \(c.hiddenSize) heads \(c.numAttentionHeads) intermediate \(c.intermediateSize) "
            + "head \(c.head.rawValue) dropout \(c.hiddenDropoutProb)/\(c.attentionProbsDropoutProb) vocab \(c.vocabSize)"
        if spec.vocab != nil { info["vocab_fnv1a64"] = try FileFingerprint.fnv1a64(spec.vocabURL) }
        info["lora"] = model.loraConfig.map { lora in
            "r \(lora.rank) alpha \(lora.alpha) dropout \(lora.dropout) targets \(lora.targets.map(\.rawValue).joined(separator: ","))"
        } ?? "none"
        let summary = try Trainer(options: o).train(model, on: encoded, run: runURL, extraFiles: spec.extraFiles, runInfo: info,
                                                    reporter: TerminalReporter(), resume: resume)
        recordPadToken(in: runURL, id: model.config.padTokenID, tokenizer: tokenizer)
        if completeAlready(summary, run: runURL) { return }
        print(String(format: "trained %@ in %.1f s (%.1f examples/s), final loss %.4f; run written to %@",
                     summary.stepsDescription, summary.seconds, summary.examplesPerSecond, summary.finalLoss, runURL.path))
    }

    /// A Llama-family decoder on decoder data (text, prompt + completion, messages): a LoRA
    /// adapter (--lora-rank) or every parameter.
    func trainDecoder(_ initURL: URL) throws {
        if task == .classify { return try trainDecoderClassifier(initURL) }
        guard let lm = try ModelLoader.causalLM(initURL) as? LlamaForCausalLM else {
            throw WinnowError.invalidFile(path: initURL.path, line: nil, reason: "not a Llama-family model Winnow can train")
        }
        // An adapter folder trains its adapter on; the run's adapter names the same base model.
        let base = ModelLoader.isAdapter(initURL) ? try ModelLoader.adapterBase(initURL) : initURL
        let tokenizerFolder = try ModelLoader.tokenizerFolder(initURL)
        let extra = decoderFiles(in: tokenizerFolder)
        if loraOptions.loraRank == nil && lm.loraConfig == nil { try refuseFullRunWithoutTokenizer(base, tokenizerSource: tokenizerFolder, doing: "full fine-tuning of") }
        let maxLength = min(dataOptions.maxLength, lm.maxSequenceLength)
        if let note = DecoderEncoder.lengthNote(given: dataOptions.maxLength, modelLimit: lm.maxSequenceLength) { printError(note) }
        let encoder = try DecoderEncoder(folder: tokenizerFolder, maxLength: maxLength, modelVocabulary: lm.config.vocabSize)
        let data = try DecoderTrainer.encode(URL(fileURLWithPath: dataOptions.data), fields: dataOptions.fields, encoder: encoder)
        // A labelled text file trained as a language model: the labels are not read, which a user meaning a classifier should know.
        if FileFingerprint.isRegularFile(URL(fileURLWithPath: dataOptions.data)), let first = firstJSONObject(dataOptions.data),
           first["prompt"] == nil, first["messages"] == nil, let l = FieldNames.labelCandidates.first(where: { first[$0] != nil && $0 != dataOptions.textField }) {
            printError("note: the examples' '\(l)' field is not read: --task lm trains the model on the text alone; --task classify trains a classifier of the labels")
        }
        let atLimit = data.count { $0.ids.count >= maxLength }
        if atLimit > 0 {
            printError("note: \(atLimit) of \(data.count) examples reach the limit of \(maxLength) tokens: longer ones are cut there, and their ends "
                       + "(completions included) are not trained on; " + DecoderEncoder.limitAdvice(given: dataOptions.maxLength, modelLimit: lm.maxSequenceLength))
        }
        let unscored = data.count { $0.scoredCount == 0 }
        if unscored > 0 {
            printError("note: \(unscored) of \(data.count) examples have no token to train on (such as an empty text): "
                       + "they add nothing to the loss, and a batch of only such examples still takes an optimizer step with a zero gradient, as PyTorch's would")
        }
        var o = trainingFlags.options(maxLength: maxLength, pretrained: true, run: runFlags)
        if trainingFlags.learningRate == nil { o.learningRate = TrainingOptions.defaultLearningRate(for: loraOptions.loraRank != nil || lm.loraConfig != nil ? .decoderLoRA : .decoder) }
        o.recordDynamics = false
        let lora = loraOptions.config
        let adapter = lora ?? lm.loraConfig
        let runURL = URL(fileURLWithPath: out)
        printError("train: \(data.count) examples, \(data.reduce(0) { $0 + $1.scoredCount }) scored tokens, \(lm.parameters.scalarCount) base-model parameters"
                   + (adapter.map { ", \(lora == nil ? "the adapter of --init, " : "")LoRA r \($0.rank) alpha \($0.alpha) on \($0.targets.map(\.rawValue).joined(separator: ","))" } ?? ", every parameter trained")
                   + String(format: ", lr %g", o.learningRate))
        let summary = try DecoderTrainer(options: o, lora: lora).train(lm, on: data, base: base, run: runURL, extraFiles: extra,
                                                                         runInfo: try dataInfo().merging(decoderFieldsInfo().merging([
                                                                             "init": initURL.standardizedFileURL.path,
                                                                             "fields": ["text", "pair"].map { k in "\(k) \((k == "text" ? dataOptions.textField : dataOptions.pairField) ?? "detected")" }
                                                                                 .joined(separator: ", ")]) { a, _ in a }) { a, _ in a },
                                                                         reporter: TerminalReporter(), resume: resume)
        if completeAlready(summary, run: runURL) { return }
        print(String(format: "trained %@ in %.1f s (%.1f examples/s), final loss %.4f; %@ written to %@",
                     summary.stepsDescription, summary.seconds, summary.examplesPerSecond, summary.finalLoss, adapter == nil ? "model" : "adapter", runURL.path))
    }

    /// The fields a decoder's language-model run was told to read (`text_field`, `pair_field` in winnow.json), so
    /// that scoring the run reads the same ones (`DataOptions.adoptFields`); detected fields are detected again.
    func decoderFieldsInfo() -> [String: String] {
        var info: [String: String] = [:]
        if let t = dataOptions.textField { info["text_field"] = t }
        if let p = dataOptions.pairField { info["pair_field"] = p }
        return info
    }

    /// A Llama-family sequence classifier (a fresh `score` head on the last real token), every parameter
    /// trained by the classifier trainer, with dynamics.
    func trainDecoderClassifier(_ base: URL) throws {
        let tokenizerFolder = try ModelLoader.tokenizerFolder(base)
        // A full run is a model folder read by itself: from a GGUF file it would have no tokenizer (an adapter names its base).
        if loraOptions.loraRank == nil { try refuseFullRunWithoutTokenizer(base, tokenizerSource: tokenizerFolder, doing: "full fine-tuning of") }
        let data = try dataOptions.read()
        reportSkipped(data)
        let tokenizer = try Tokenizers.load(folder: tokenizerFolder)
        if let bpe = tokenizer as? any DecoderTokenizer, bpe.pairTemplate.middle.isEmpty, let pairField = data.fields.pair,
           data.examples.contains(where: { $0.pair != nil }) {
            printError("note: each \(data.fields.text ?? "text") and its \(pairField) are joined with no token between them, as transformers' "
                       + "tokenizer(text, text_pair) joins them with this tokenizer; end the first text with a separator of its own, "
                       + "or write one prompt per example (scripts/data/to_prompts.py)")
        }
        let model = try LlamaForSequenceClassification(folder: base, labels: classLabels(data.sortedLabels), seed: runFlags.seed)
        model.recordPadding(Int(tokenizer.padID))   // the id batches are padded with, as transformers users set it
        let maxLength = min(dataOptions.maxLength, model.config.maxSequenceLength)
        if let note = DecoderEncoder.lengthNote(given: dataOptions.maxLength, modelLimit: model.config.maxSequenceLength) { printError(note) }
        let encoded = try EncodedDataset(data, tokenizer: tokenizer, labels: model.labelNames, maxLength: maxLength,
                                         modelVocabulary: model.dimensions.vocabulary)
        var o = trainingFlags.options(maxLength: maxLength, pretrained: true, run: runFlags)
        if trainingFlags.learningRate == nil { o.learningRate = TrainingOptions.defaultLearningRate(for: loraOptions.loraRank != nil ? .decoderLoRA : .decoder) }
        o.recordDynamics = !noDynamics
        var what = "every parameter"
        if var lora = loraOptions.config(decoder: true) {
            lora.baseModel = base.standardizedFileURL.path
            try model.addLoRA(lora, seed: runFlags.seed)
            what = "LoRA r \(lora.rank) alpha \(lora.alpha) on \(lora.targets.map(\.rawValue).joined(separator: ",")) and the score head"
        }
        let extra = decoderFiles(in: tokenizerFolder)
        let runURL = URL(fileURLWithPath: out)
        printError("train: \(encoded.count) examples, labels [\(model.labelNames.joined(separator: ", "))], \(model.parameters.scalarCount) parameters, "
                   + "LlamaForSequenceClassification, \(what), lr \(o.learningRate)")
        let summary = try Trainer(options: o).train(model, on: encoded, run: runURL, extraFiles: extra,
                                                    runInfo: try dataInfo(fields: data.fields).merging([
                                                              "init": base.path, "task": "classify",
                                                              "lora": model.loraConfig.map { l in
                                                                  "r \(l.rank) alpha \(l.alpha) dropout \(l.dropout) targets \(l.targets.map(\.rawValue).joined(separator: ","))"
                                                              } ?? "none"]) { a, _ in a },
                                                    reporter: TerminalReporter(), resume: resume)
        recordPadToken(in: runURL, id: model.config.padTokenID, tokenizer: tokenizer)
        if completeAlready(summary, run: runURL) { return }
        print(String(format: "trained %@ in %.1f s (%.1f examples/s), final loss %.4f; run written to %@",
                     summary.stepsDescription, summary.seconds, summary.examplesPerSecond, summary.finalLoss, runURL.path))
    }

    /// The training file's labels, refused when there are fewer than two (a one-label classifier learns nothing, and
    /// transformers reads `num_labels` 1 as regression).
    func classLabels(_ labels: [String]) throws -> [String] {
        guard labels.count >= 2 else {
            throw WinnowError.invalidFile(path: dataOptions.data, line: nil, reason:
                "has \(labels.isEmpty ? "no label" : "one label ('\(labels[0])')"); a classifier needs two or more")
        }
        return labels
    }

    /// Numeric CSV features: an MLP with `--layers` hidden layers of `--hidden` units.
    func trainMLP() throws {
        var data = try CSVDataset(url: URL(fileURLWithPath: dataOptions.data), labelColumn: dataOptions.labelField ?? "label")
        if data.skipped > 0 { printError("note: skipped \(data.skipped) row(s) without a label in \(data.url.path)") }
        let labels = try classLabels(data.sortedLabels)
        try data.assignLabels(labels)
        let mlp = MLPClassifier(inputSize: data.featureNames.count, hidden: Array(repeating: modelOptions.hidden, count: modelOptions.layers), labels: labels,
                                seed: runFlags.seed, featureNames: data.featureNames)
        mlp.fitStandardization(data.features)
        var o = trainingOptions()
        o.maxLength = 0
        printError("train: \(data.count) rows, \(data.featureNames.count) features, labels [\(labels.joined(separator: ", "))], MLP \(([data.featureNames.count] + mlp.hidden + [labels.count]).map(String.init).joined(separator: "-"))")
        let runURL = URL(fileURLWithPath: out)
        let summary = try Trainer(options: o).train(mlp, on: data, run: runURL, runInfo: try dataInfo(fields: FieldNames(label: dataOptions.labelField ?? "label")).merging([
                                                        "model": "mlp layers \(modelOptions.layers) hidden \(modelOptions.hidden)"]) { a, _ in a },
                                                    reporter: TerminalReporter(), resume: resume)
        if completeAlready(summary, run: runURL) { return }
        print(String(format: "trained %@ in %.1f s, final loss %.4f; run written to %@", summary.stepsDescription, summary.seconds, summary.finalLoss, runURL.path))
    }

    /// The training file as a run records it: its path and content fingerprint (scores that read the
    /// run's training dynamics refuse another file).
    /// With `fields`, also the fields the examples were read by (a run trained on pairs refuses single texts).
    func dataInfo(fields: FieldNames? = nil) throws -> [String: String] {
        try Trainer.runInfo(data: URL(fileURLWithPath: dataOptions.data), fields: fields)
    }

    func trainingOptions() -> TrainingOptions {
        var o = trainingFlags.options(maxLength: dataOptions.maxLength, pretrained: modelOptions.initFrom != nil
                                      && !dataOptions.data.lowercased().hasSuffix(".csv"), run: runFlags)
        o.null = null; o.recordDynamics = !noDynamics
        return o
    }
}

/// Names the padding token in a decoder classifier run's copied tokenizer_config.json when the base's
/// names none: transformers' tokenizer refuses `padding=True` without one, and the model pools by it.
func recordPadToken(in run: URL, id: Int?, tokenizer: any TextTokenizer) {
    let url = run.appendingPathComponent("tokenizer_config.json")
    guard let id, let bpe = tokenizer as? any DecoderTokenizer, id >= 0, id < bpe.tokens.count,
          let d = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any],
          d["pad_token"] == nil || d["pad_token"] is NSNull,
          let data = try? JSONSerialization.data(withJSONObject: d.merging(["pad_token": bpe.tokens[id]]) { _, new in new }, options: [.prettyPrinted, .sortedKeys])
    else { return }
    try? AtomicFile.write(data, to: url)
}
