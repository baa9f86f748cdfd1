import CKernels
import Foundation
import WinnowCore
import WinnowData

/// One post-LN transformer layer of Hugging Face BERT (`bert.encoder.layer.{i}.*`).
package struct EncoderLayer: Sendable {
    let query, key, value, attentionOutput: Linear
    let attentionNorm: LayerNorm
    let intermediate, output: Linear
    let outputNorm: LayerNorm
}

/// Where each encoder tensor lives in a `ParameterStore`, with Hugging Face names under `prefix`
/// ("bert." for BertForSequenceClassification / BertForMaskedLM).
///
/// Forward, per docs/contracts.md §3: E = word[ids] (the `inputs_embeds`), x0 = dropout(LN(E + pos + type));
/// each layer: r1 = x + dropout(Wo attn(Wq x, Wk x, Wv x)), h = LN(r1), r2 = h + dropout(W2 gelu(W1 h)),
/// x' = LN(r2); pooled = tanh(Wp x_L[CLS]).
package struct BertEncoder: Sendable {
    var config: BertConfig
    let wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings: Int
    let embeddingNorm: LayerNorm
    let layers: [EncoderLayer]
    let pooler: Linear?

    init(config c: BertConfig, store s: inout ParameterStore, prefix: String, pooler withPooler: Bool = true) {
        config = c
        let C = c.hiddenSize
        wordEmbeddings = s.add("\(prefix)embeddings.word_embeddings.weight", Tensor(shape: [c.vocabSize, C]))
        positionEmbeddings = s.add("\(prefix)embeddings.position_embeddings.weight", Tensor(shape: [c.maxPositionEmbeddings, C]))
        tokenTypeEmbeddings = s.add("\(prefix)embeddings.token_type_embeddings.weight", Tensor(shape: [c.typeVocabSize, C]))
        embeddingNorm = LayerNorm(&s, "\(prefix)embeddings.LayerNorm", dim: C, eps: c.layerNormEps)
        var ls: [EncoderLayer] = []
        for i in 0..<c.numHiddenLayers {
            let p = "\(prefix)encoder.layer.\(i)."
            ls.append(EncoderLayer(
                query: Linear(&s, p + "attention.self.query", in: C, out: C),
                key: Linear(&s, p + "attention.self.key", in: C, out: C),
                value: Linear(&s, p + "attention.self.value", in: C, out: C),
                attentionOutput: Linear(&s, p + "attention.output.dense", in: C, out: C),
                attentionNorm: LayerNorm(&s, p + "attention.output.LayerNorm", dim: C, eps: c.layerNormEps),
                intermediate: Linear(&s, p + "intermediate.dense", in: C, out: c.intermediateSize),
                output: Linear(&s, p + "output.dense", in: c.intermediateSize, out: C),
                outputNorm: LayerNorm(&s, p + "output.LayerNorm", dim: C, eps: c.layerNormEps)))
        }
        layers = ls
        pooler = withPooler ? Linear(&s, "\(prefix)pooler.dense", in: C, out: C) : nil
    }

    /// Hugging Face's `_init_weights`: normal(0, initializer_range) for linear and embedding weights,
    /// zero biases, LayerNorm weight 1 and bias 0, the padding row of the word embeddings zero.
    func initialize(_ s: inout ParameterStore, rng: inout SeededGenerator) {
        let std = Double(config.initializerRange)
        func normal(_ i: Int) {
            s[i].withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] = Float(rng.nextNormal() * std) } }
        }
        for e in [wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings] { normal(e) }
        let C = config.hiddenSize
        if config.padTokenID < config.vocabSize {
            s[wordEmbeddings].withUnsafeMutableBufferPointer { b in
                for j in 0..<C { b[config.padTokenID * C + j] = 0 }
            }
        }
        for l in layers {
            for lin in [l.query, l.key, l.value, l.attentionOutput, l.intermediate, l.output] { normal(lin.weight) }
        }
        if let pooler { normal(pooler.weight) }
    }

    /// Every linear layer with a short role name, in forward order (for per-layer gradient work).
    var linearLayers: [(String, Linear)] {
        var out: [(String, Linear)] = []
        for (i, l) in layers.enumerated() {
            out += [("layer.\(i).query", l.query), ("layer.\(i).key", l.key), ("layer.\(i).value", l.value),
                    ("layer.\(i).attention.output", l.attentionOutput),
                    ("layer.\(i).intermediate", l.intermediate), ("layer.\(i).output", l.output)]
        }
        if let pooler { out.append(("pooler", pooler)) }
        return out
    }
}
