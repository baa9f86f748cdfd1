import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining

/// Rules training shares with Hugging Face: which tensors get weight decay, and a held-out masked-LM loss
/// that depends on the model alone (not on the batch size it is computed with).
@Suite struct TrainingRulesTests {
    /// Trainer's `get_decay_parameter_names`: no decay on biases and normalisation weights, BERT's and Llama's
    /// (before, Llama's RMSNorm weights were decayed: names matched only `LayerNorm.` and `layer_norm.`).
    @Test func weightDecaySkipsBiasesAndEveryNormalisation() {
        for name in ["bert.encoder.layer.0.attention.output.LayerNorm.weight", "bert.embeddings.LayerNorm.bias", "classifier.bias",
                     "model.layers.0.input_layernorm.weight", "model.layers.3.post_attention_layernorm.weight", "model.norm.weight",
                     "encoder.layer_norm.weight", "x.q_norm.weight"] {
            #expect(!Optimizer.decaysWeight(of: name), "\(name)")
        }
        for name in ["bert.encoder.layer.0.attention.self.query.weight", "model.layers.0.self_attn.q_proj.weight", "lm_head.weight",
                     "model.embed_tokens.weight", "score.weight", "model.layers.0.mlp.down_proj.lora_A.weight", "normal.weight"] {
            #expect(Optimizer.decaysWeight(of: name), "\(name)")
        }
    }

    @Test func heldOutMaskedLossDoesNotDependOnTheBatchSize() throws {
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let corpus = try LMCorpus(url: Paths.tinyBert.appendingPathComponent("train.jsonl"), tokenizer: BertTokenizer(vocabulary: vocab), seqLen: 12)
        var c = BertConfig.small(vocabSize: vocab.count, hidden: 16, layers: 1, heads: 2, maxPositions: 64)
        c.hiddenDropoutProb = 0; c.attentionProbsDropoutProb = 0
        let model = BertLanguageModel(config: c, objective: .mlm, seed: 4)
        let losses = [1, 4, 16].map { PreTrainer.evaluate(model, on: corpus, batchSize: $0) }
        #expect(losses.allSatisfy { abs($0 - losses[0]) <= 1e-5 * abs(losses[0]) }, "\(losses)")
    }
}
