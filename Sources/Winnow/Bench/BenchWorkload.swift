import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowExperiment
import WinnowModels
import WinnowScores
import WinnowTraining

/// The end-to-end work `winnow bench` times and `Benchmarks/EndToEnd` runs under package-benchmark, so
/// both measure the same code: a BERT-style classifier of the given shape with random weights, one
/// batch of random tokens, and each measured unit of work as the scorers and trainers run it.
///
///     let w = BenchWorkload(layers: 4, hidden: 512, heads: 8, seqLen: 128, batchSize: 32)
///     w.trainStep(); _ = w.gradientNorms()
///
/// Not part of the library's API: visible with `@_spi(Benchmarks) import Winnow` only.
@_spi(Benchmarks) public final class BenchWorkload: @unchecked Sendable {
    /// The classifier every measurement runs: `config`'s shape, random weights from the init's `seed`.
    public let model: BertClassifier
    /// The measured batch: `batchSize` sequences of exactly `seqLen` random tokens (no padding), labels
    /// alternating 0 and 1.
    public let batch: Batch
    /// The model's shape: `BertConfig.small` with a 30522-token vocabulary, the given sizes, at least 512
    /// positions and the two labels `a` and `b`.
    public let config: BertConfig
    var grads: ParameterStore
    var optimizer: Optimizer
    let all: ParameterSelection
    var vogMean: Tensor, vogM2: Tensor
    /// TracIn's test batch: the same lengths as `batch`, other tokens.
    public let testBatch: Batch
    private var tracinTest: GradientFactors?
    var lmState: (lm: BertLanguageModel, batch: LMBatch, grads: ParameterStore, optimizer: Optimizer,
                          selection: ParameterSelection)?

    /// Builds the model with weights from `seed` and the two batches (their tokens come from a fixed seed).
    /// `intermediate` nil gives 4 x `hidden`; `seqLen` is the length of every sequence, special tokens included.
    public init(layers: Int, hidden: Int, heads: Int, intermediate: Int? = nil, seqLen: Int, batchSize: Int, seed: UInt64 = 1) {
        var config = BertConfig.small(vocabSize: 30522, hidden: hidden, layers: layers, heads: heads,
                                      intermediate: intermediate, maxPositions: max(512, seqLen))
        config.labels = ["a", "b"]
        self.config = config
        model = BertClassifier(config: config, seed: seed)
        var rng = SeededGenerator(seed: 7)
        let encs = (0..<batchSize).map { _ in
            Encoding(inputIDs: [2] + (0..<(seqLen - 2)).map { _ in Int32(1000 + rng.next() % 20000) } + [3],
                     tokenTypeIDs: Array(repeating: 0, count: seqLen))
        }
        batch = Batch(encodings: encs, labels: (0..<batchSize).map { Int32($0 % 2) }, indices: Array(0..<batchSize))
        // TracIn's test batch: the same lengths, other tokens.
        let testEncs = encs.map { e in Encoding(inputIDs: e.inputIDs.map { $0 > 1000 ? $0 + 7 : $0 }, tokenTypeIDs: e.tokenTypeIDs) }
        testBatch = Batch(encodings: testEncs, labels: batch.labels, indices: batch.indices)
        grads = model.parameters.zeros()
        optimizer = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
        all = try! ParameterSelection(.all, layout: model.parameterLayout)
        vogMean = Tensor(shape: [batchSize * seqLen, hidden])
        vogM2 = Tensor(shape: [batchSize * seqLen, hidden])
    }

    /// Inference with every hidden state, as PyTorch's forward under no_grad.
    public func forward() { _ = model.logits(batch) }

    /// Inference as `predict`, `eval`, EL2N and PVI run it: the last layer after attention on [CLS] rows.
    public func classLogits() { _ = model.classLogits(batch) }

    /// One fine-tuning step: zero gradients, forward, backward, AdamW.
    public func trainStep() {
        Profile.section("zero gradients") { grads.zeroAll() }
        model.lossAndGradients(batch, grads: &grads, training: true, seed: 1)
        Profile.section("optimizer (AdamW)") { optimizer.step(&model.parameters, grads: grads, lr: 1e-5) }
    }

    /// Per-example gradient norms over every parameter, as GraNd computes them: one forward, one
    /// data-only backward, Gram-form norms from the factors. Returns the squared norms.
    @discardableResult
    public func gradientNorms() -> [Float] {
        Profile.section("forward and data backward") { model.perExampleLossBackward(batch) }
        var sq = [Float](repeating: 0, count: batch.size)
        let f = Profile.section("gradient factors (packing)") { model.gradientFactors(batch, selection: all) }
        Profile.section("Gram-form norms") { f.addNorms(into: &sq, scale: 1) }
        return sq
    }

    /// TracIn train-to-test over every parameter for one training batch: forward, data backward,
    /// factors, and the batch x test-batch dot products against a test batch (its factors made once,
    /// on the first call). Returns the dot products, row-major training x test.
    @discardableResult
    public func tracinBatch() -> [Float] {
        if tracinTest == nil {
            model.perExampleLossBackward(testBatch)
            tracinTest = model.gradientFactors(testBatch, selection: all)
        }
        Profile.section("forward and data backward") { model.perExampleLossBackward(batch) }
        let f = Profile.section("gradient factors (packing)") { model.gradientFactors(batch, selection: all) }
        var dots = [Float](repeating: 0, count: batch.size * batch.size)
        Profile.section("Gram-form dots") {
            dots.withUnsafeMutableBufferPointer { f.addDots(with: tracinTest!, into: $0.baseAddress!, ldo: batch.size, scale: 1) }
        }
        return dots
    }

    /// VoG at one checkpoint, as `VoG.score` runs it: forward, backward of the true logit to
    /// inputs_embeds, Welford update of the running mean and M2 over checkpoints.
    public func vogCheckpoint() {
        let C = config.hiddenSize, rows = batch.size * batch.length
        model.forward(batch, clsOnly: true)
        var dlogits = Tensor(shape: [batch.size, model.numLabels])
        for b in 0..<batch.size { dlogits[b, Int(batch.labels[b])] = 1 }
        var none: ParameterStore? = nil
        model.backward(dlogits: dlogits, grads: &none)
        let g = packRows(model.workspace.dInputsEmbeds.ptr, ld: C, width: C, batch: batch,
                         lengths: (0..<batch.size).map { batch.realLength($0) })
        ck_vog_accumulate(vogMean.mptr, vogM2.mptr, g.ptr, rows * C, 2)
    }

    /// One masked-LM pre-training step on an encoder of the same shape (every 7th token a target),
    /// through `PreTrainer.step`, plain or with PRESENCE (first-layer self-influence per microbatch,
    /// in the same backward pass), then AdamW. The language model is built on the first call.
    public func pretrainStep(presence: Bool) {
        if lmState == nil {
            let lm = BertLanguageModel(config: config, objective: .mlm, seed: 1)
            var targets = [Int32](repeating: -1, count: batch.inputIDs.count)
            for i in stride(from: 1, to: targets.count, by: 7) { targets[i] = batch.inputIDs[i] }
            lmState = (lm, LMBatch(batch: batch, targets: targets, lines: Array(1...batch.size)), lm.parameters.zeros(),
                       Optimizer(kind: .adamw, parameters: lm.parameters, weightDecay: 0.01),
                       try! lm.selfInfluenceSelection(.firstLayer))
        }
        var o = PretrainOptions()
        o.presence.reweight = presence ? .presence : PresenceOptions.Reweight.none
        let trainer = PreTrainer(options: o)
        _ = trainer.step(lmState!.lm, lmState!.batch, grads: &lmState!.grads, step: 1, seed: 1,
                         selection: presence ? lmState!.selection : nil, computeSI: presence)
        lmState!.optimizer.step(&lmState!.lm.parameters, grads: lmState!.grads, lr: 1e-5)
    }
}
