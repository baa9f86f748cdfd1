import ArgumentParser
import Foundation
import Winnow

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pre-train a masked or causal language model, plainly or with PRESENCE self-influence reweighting.",
        discussion: """
        Each line of --corpus is one document, cut into windows [CLS] up to T-2 tokens [SEP] (T = --seq-len). \
        mlm masks 15% of tokens (80% [MASK], 10% random, 10% kept; BertForMaskedLM names); causal predicts the \
        next token with causal attention (BertLMHeadModel names, is_decoder). The loss is the mean over samples \
        of each sample's mean token loss. --reweight presence splits each batch into microbatches of \
        --microbatch-size samples, computes SI_j = ||dL_j/dtheta_S||^2 over --si-params in the same backward pass \
        (Gram form), scales SI by its batch mean, and minimises sum_j softmax(tau * SI)_j L_j with tau = --tau1 \
        before --switch-step and --tau2 from it on. --si-log writes step,line,si,weight for every sample.
        """)

    @Option(help: "Text corpus, one document a line.") var corpus: String
    @Option(help: "vocab.txt (WordPiece vocabulary, lower-cased).") var vocab: String
    @Option(help: "Masked or causal language modelling.") var objective: LMObjective = .mlm
    @Option(help: "Reweight microbatches by self-influence (PRESENCE) or not.") var reweight: PresenceOptions.Reweight = PresenceOptions().reweight
    @Option(help: "PRESENCE temperature before --switch-step.") var tau1: Double = PresenceOptions().tau1
    @Option(help: "PRESENCE temperature from --switch-step on.") var tau2: Double = PresenceOptions().tau2
    @Option(help: "First step (1-based) that uses --tau2 (default: half of --steps, plus one).") var switchStep: Int?
    @Option(help: "Tensors for self-influence: first-layer, last-layer, or PREFIX,... (encoder tensors).") var siParams: ParameterSelection.Spec = PresenceOptions().siParams
    @Option(help: "Samples per microbatch (1: per-sample weights).") var microbatchSize: Int = PresenceOptions().microbatchSize
    @Option(help: "SI scaling before the softmax: mean (SI / batch mean) or none.") var siScale: PresenceOptions.Scale = PresenceOptions().scale
    @Option(help: "Optimizer steps.") var steps: Int = PretrainOptions().steps
    @Option(help: "Samples per step.") var batchSize: Int = PretrainOptions().batchSize
    @Option(help: "Window length T in tokens, [CLS] and [SEP] included.") var seqLen: Int = 128
    @Option(help: "Encoder layers.") var layers: Int = 2
    @Option(help: "Hidden size.") var hidden: Int = 128
    @Option(help: "Attention heads.") var heads: Int = 2
    @Option(help: "Intermediate size (default 4 x hidden).") var intermediate: Int?
    @Option(name: .customLong("lr"), help: "Peak learning rate (linear warm-up, then linear decay).") var learningRate: Float = PretrainOptions().learningRate
    @Option(help: "Warm-up fraction of the steps.") var warmupRatio: Float = PretrainOptions().warmupRatio
    @Option(help: "AdamW weight decay.") var weightDecay: Float = PretrainOptions().weightDecay
    @Option(help: "Evenly spaced checkpoints.") var checkpoints: Int = PretrainOptions().checkpoints
    @Option(help: "Seed of init, window order, masking and dropout.") var seed: UInt64 = PretrainOptions().seed
    @Option(help: "CSV of step,line,si,weight for every sample of every batch.") var siLog: String?
    @Option(help: "Held-out corpus: report the mean loss on it at the end (fixed masks, inference mode).") var heldout: String?
    @Option(help: "Run folder to write.") var out: String
    @Flag(help: "Continue an interrupted run in --out from its latest checkpoint (same options and corpus); the result equals an uninterrupted run.") var resume = false

    func validate() throws {
        guard steps >= 1, batchSize >= 1, microbatchSize >= 1 else { throw ValidationError("--steps, --batch-size and --microbatch-size must be positive") }
        guard seqLen >= 3 else { throw ValidationError("--seq-len must be at least 3") }
        guard hidden > 0, heads > 0, hidden % heads == 0, layers >= 1 else { throw ValidationError("--hidden must be a multiple of --heads") }
    }

    func run() throws {
        let vocabURL = URL(fileURLWithPath: vocab)
        let vocabulary = try Vocabulary(contentsOf: vocabURL)
        let tokenizer = BertTokenizer(vocabulary: vocabulary)
        let corpusURL = URL(fileURLWithPath: corpus)
        let lm = try LMCorpus(url: corpusURL, tokenizer: tokenizer, seqLen: seqLen)
        let obj = objective
        let config = BertConfig.small(vocabSize: vocabulary.count, hidden: hidden, layers: layers, heads: heads,
                                      intermediate: intermediate, maxPositions: max(512, seqLen))
        let model = BertLanguageModel(config: config, objective: obj, seed: seed)
        var o = PretrainOptions()
        o.steps = steps; o.batchSize = batchSize; o.learningRate = learningRate; o.warmupRatio = warmupRatio
        o.weightDecay = weightDecay; o.checkpoints = checkpoints; o.seed = seed
        o.presence.reweight = reweight; o.presence.tau1 = tau1; o.presence.tau2 = tau2
        o.presence.switchStep = switchStep; o.presence.siParams = siParams
        o.presence.microbatchSize = microbatchSize; o.presence.scale = siScale
        printError("pretrain: \(lm.count) windows of at most \(seqLen) tokens from \(corpusURL.path); \(obj.rawValue), "
                   + "\(model.parameters.scalarCount) parameters, reweight \(reweight)"
                   + (reweight == .presence ? " (tau \(tau1) before step \(o.presence.switchStep(totalSteps: steps)), \(tau2) after; microbatches of \(microbatchSize))" : ""))
        let runURL = URL(fileURLWithPath: out)
        let s = try PreTrainer(options: o).train(model, on: lm, run: runURL, extraFiles: [vocabURL],
                                                 siLog: siLog.map { URL(fileURLWithPath: $0) }, reporter: TerminalReporter(), resume: resume)
        print(String(format: "pre-trained %d steps in %.1f s (%.1f samples/s), final loss %.4f; run written to %@",
                     s.steps, s.seconds, s.examplesPerSecond, s.finalLoss, runURL.path))
        if let heldout {
            let h = try LMCorpus(url: URL(fileURLWithPath: heldout), tokenizer: tokenizer, seqLen: seqLen)
            let loss = PreTrainer.evaluate(model, on: h, batchSize: batchSize)
            let obj: [String: Any] = ["heldout": URL(fileURLWithPath: heldout).path, "windows": h.count, "loss": loss, "objective": objective.rawValue]
            try AtomicFile.write(JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]),
                                 to: runURL.appendingPathComponent("heldout.json"))
            print(String(format: "held-out %@ loss %.4f over %d windows (%@)", objective.rawValue, loss, h.count, heldout))
        }
    }
}
