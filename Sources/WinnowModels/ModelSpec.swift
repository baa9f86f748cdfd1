import Foundation
import WinnowCore
import WinnowData

/// Which classifier to build: a fresh BERT-style encoder (vocabulary plus sizes) or a pretrained
/// encoder folder (`initFrom`, e.g. models/minilm) with a fresh head. The options of `winnow train`
/// and `winnow experiment` that shape the model.
///
///     var spec = ModelSpec(); spec.vocab = "models/minilm/vocab.txt"; spec.layers = 2
///     let model = try spec.makeModel(labels: data.sortedLabels, maxLength: 64, seed: 0)
public struct ModelSpec: Codable, Sendable, Equatable {
    /// Pretrained model folder to start the encoder from (`--init`); nil for a fresh model.
    public var initFrom: String?
    /// Path of the vocab.txt to use (`--vocab`); nil: the `initFrom` folder's vocab.txt.
    public var vocab: String?
    /// Encoder layers of a fresh model (`num_hidden_layers`; default 2); unused with `initFrom`.
    public var layers = 2
    /// Hidden size of a fresh model (`hidden_size`; default 128), a multiple of `heads`; unused with `initFrom`.
    public var hidden = 128
    /// Attention heads of a fresh model (`num_attention_heads`; default 2); unused with `initFrom`.
    public var heads = 2
    /// Feed-forward size (nil: 4 x hidden).
    public var intermediate: Int?
    /// hf (one linear layer) or paper (3 layers, 64 wide, GELU).
    public var head: BertConfig.Head = .huggingFace
    /// Dropout on hidden states and attention probabilities; nil keeps the config's (the pretrained folder's,
    /// or 0.1 for a fresh model).
    public var dropout: Float?

    /// The defaults: a fresh 2-layer encoder, 128 wide with 2 heads, and the Hugging Face head. A fresh model
    /// still needs `vocab`.
    public init() {}

    /// The vocabulary file the tokenizer reads.
    public var vocabURL: URL {
        if let vocab { return URL(fileURLWithPath: vocab).standardizedFileURL }
        return URL(fileURLWithPath: initFrom ?? ".").appendingPathComponent("vocab.txt").standardizedFileURL
    }

    /// Files copied into every run folder so it is self-contained (vocab.txt or tokenizer.json, tokenizer_config.json).
    /// A folder saved with `tokenizer.json` and no `vocab.txt` (as recent transformers saves one) gives its tokenizer.json.
    public var extraFiles: [URL] {
        guard vocab == nil, let initFrom else { return [vocabURL] }
        let fm = FileManager.default, folder = URL(fileURLWithPath: initFrom)
        let json = folder.appendingPathComponent("tokenizer.json")
        var files = [fm.fileExists(atPath: vocabURL.path) || !fm.fileExists(atPath: json.path) ? vocabURL : json.standardizedFileURL]
        let tc = folder.appendingPathComponent("tokenizer_config.json")
        if fm.fileExists(atPath: tc.path) { files.append(tc) }
        return files
    }

    /// Checks the sizes of a fresh model (a pretrained `initFrom` has its own) and that the model has a vocabulary.
    ///
    /// - Throws: `WinnowError.invalidOption` when a fresh model's `hidden` is not a positive multiple of `heads`
    ///   or its `layers` is below 1, neither `initFrom` nor `vocab` is set, or `vocab` is not named `vocab.txt` (the
    ///   run carries it under its own name, and every reader of a run, transformers included, looks for vocab.txt).
    public func validate() throws {
        if let vocab, URL(fileURLWithPath: vocab).lastPathComponent != "vocab.txt" {
            throw WinnowError.invalidOption(name: "vocab", reason: "\(vocab) is not named vocab.txt: a run carries the file under its own name and is read "
                                            + "by vocab.txt (transformers too); copy or rename it to vocab.txt")
        }
        if initFrom == nil {
            guard hidden > 0, heads > 0, hidden % heads == 0 else {
                throw WinnowError.invalidOption(name: "hidden", reason: "must be a positive multiple of --heads")
            }
            guard layers >= 1 else { throw WinnowError.invalidOption(name: "layers", reason: "must be at least 1") }
        }
        if initFrom == nil && vocab == nil {
            throw WinnowError.invalidOption(name: "vocab", reason: "a fresh model needs --vocab FILE (or start from --init DIR)")
        }
    }

    /// The tokenizer of the model: the `initFrom` folder's when `vocab` is nil, else a `BertTokenizer` over `vocabURL`.
    ///
    /// - Throws: `WinnowError.invalidFile` when the vocabulary or the tokenizer configuration cannot be read.
    public func tokenizer() throws -> BertTokenizer {
        if let initFrom, vocab == nil { return try BertTokenizer(folder: URL(fileURLWithPath: initFrom)) }
        return BertTokenizer(vocabulary: try Vocabulary(contentsOf: vocabURL))
    }

    /// A new classifier for `labels` (a pretrained folder's own label names win when it has real ones).
    ///
    /// - Throws: as ``validate()``; `WinnowError.invalidFile` when the pretrained folder cannot be read or `vocab`
    ///   holds another number of tokens than its embeddings; `WinnowError.invalidOption` naming `maxLength` beyond its positions.
    public func makeModel(labels dataLabels: [String], maxLength: Int, seed: UInt64) throws -> BertClassifier {
        try validate()
        let headKind = head
        let model: BertClassifier
        if let initFrom {
            let dir = URL(fileURLWithPath: initFrom)
            var labels = dataLabels
            if let cfg = try? BertConfig(contentsOf: dir.appendingPathComponent("config.json")),
               !cfg.labels.isEmpty, !cfg.labels.allSatisfy({ $0.hasPrefix("LABEL_") }) {
                labels = cfg.labels
            }
            model = try BertClassifier(folder: dir, labels: labels, head: headKind, seed: seed)
            if let dropout { model.setDropout(dropout) }
            // Another vocabulary for a pretrained model: ids beyond its embedding table would read outside it, and a
            // vocabulary of another size is another tokenizer, whose ids do not index the pretrained rows.
            if vocab != nil {
                let n = try Vocabulary(contentsOf: vocabURL).count
                guard n == model.config.vocabSize else {
                    throw WinnowError.invalidFile(path: vocabURL.path, line: nil, reason:
                        "holds \(n) tokens, \(n > model.config.vocabSize ? "more than" : "not") the \(model.config.vocabSize) of \(initFrom)'s embeddings "
                        + "(vocab_size): another tokenizer's ids do not index the pretrained rows; leave --vocab out to use the model's own")
                }
            }
        } else {
            let vocabulary = try Vocabulary(contentsOf: vocabURL)
            var config = BertConfig.small(vocabSize: vocabulary.count, hidden: hidden, layers: layers, heads: heads,
                                          intermediate: intermediate, maxPositions: max(512, maxLength))
            config.labels = dataLabels
            config.head = headKind
            config.padTokenID = Int(vocabulary.padID)     // transformers' pad_token_id: the vocabulary's [PAD]
            if let dropout { config.hiddenDropoutProb = dropout; config.attentionProbsDropoutProb = dropout }
            model = BertClassifier(config: config, seed: seed)
        }
        guard model.config.maxPositionEmbeddings >= maxLength else {
            throw WinnowError.invalidOption(name: "maxLength", reason:
                "\(maxLength) exceeds the model's max_position_embeddings \(model.config.maxPositionEmbeddings)")
        }
        return model
    }
}
