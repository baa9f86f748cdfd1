import Foundation
import WinnowCore

/// Tokenized examples with class indices, ready for batching.
///
///     let enc = try EncodedDataset(data, tokenizer: tok, labels: model.config.labels, maxLength: 128)
///     for batch in enc.batches(size: 32, order: enc.shuffledOrder(seed: 1, epoch: 0)) { ... }
public struct EncodedDataset: Sendable {
    /// Model inputs per example, truncated to `maxLength` tokens, not padded.
    public var encodings: [Encoding]
    /// Class index per example (-1 when the example has no label).
    public var labels: [Int32]
    /// 1-based input line per example.
    public var lines: [Int]
    /// The `id` field per example, nil where the line has none.
    public var ids: [String?]
    /// Class names (the model's labels); `labels` index into them.
    public var labelNames: [String]
    /// The tokenizer's padding id, which `batch` pads with.
    public var padID: Int32
    /// Added to batch indices (a chunk of a streamed file numbers its examples from here).
    public var indexOffset = 0

    /// Number of examples.
    public var count: Int { encodings.count }

    /// Examples longest first (ties in input order): inference batches then pad little, and the first
    /// batch sizes the model's workspace once for the whole pass.
    public var longestFirstOrder: [Int] {
        (0..<count).sorted { a, b in
            let la = encodings[a].inputIDs.count, lb = encodings[b].inputIDs.count
            return la != lb ? la > lb : a < b
        }
    }

    /// Encodes `data`; a label outside `labels` is an error naming file and line.
    /// `null` replaces every input with the empty text (the PVI null model's inputs).
    /// `modelVocabulary` (the model's `vocab_size`), when given, makes an id at or above it an error naming
    /// the line (a tokenizer that does not belong to the model) instead of a read past the embedding table.
    public init(_ data: JSONLDataset, tokenizer: any TextTokenizer, labels: [String], maxLength: Int,
                null: Bool = false, modelVocabulary: Int? = nil) throws {
        try self.init(examples: data.examples, url: data.url, tokenizer: tokenizer, labels: labels, maxLength: maxLength, null: null,
                      modelVocabulary: modelVocabulary)
    }

    /// Encodes examples read from `url` (for error messages); `modelVocabulary` as above.
    public init(examples: [Example], url: URL, tokenizer: any TextTokenizer, labels: [String], maxLength: Int,
                null: Bool = false, modelVocabulary: Int? = nil) throws {
        let index = Dictionary(labels.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { a, _ in a })
        encodings = []
        encodings.reserveCapacity(examples.count)
        self.labels = []
        lines = []
        ids = []
        labelNames = labels
        padID = tokenizer.padID
        for ex in examples {
            // A decoder's data (prompt and completion, messages) is named as such before its labels are checked.
            if !null && ex.inputIDs == nil && ex.text == nil {
                throw WinnowError.invalidFile(path: url.path, line: ex.line, reason:
                    "holds \(ex.messages != nil ? "messages" : "prompt and completion"), which only a decoder (causal language model) reads; "
                    + "a classifier needs a text field")
            }
            var y: Int32 = -1
            if let l = ex.label {
                // A model with transformers' default names (LABEL_0, LABEL_1, ...) reads integer labels as their ids.
                guard let i = index[l] ?? (Int(l) != nil ? index["LABEL_" + l] : nil) else {
                    throw WinnowError.invalidFile(path: url.path, line: ex.line,
                        reason: "label '\(l)' is not one of the model's labels [\(labels.joined(separator: ", "))]")
                }
                y = i
            }
            var e: Encoding
            if null {
                e = tokenizer.encode("", pair: ex.pair != nil ? "" : nil, maxLength: maxLength)
            } else if let ids = ex.inputIDs {
                if ex.lossMask != nil {
                    throw WinnowError.invalidFile(path: url.path, line: ex.line, reason:
                        "holds a loss mask beside input_ids (completion_mask, assistant_masks, scored or labels), which marks the ids a decoder's loss reads; a classifier reads input_ids whole")
                }
                let n = min(ids.count, maxLength)
                e = Encoding(inputIDs: Array(ids.prefix(n)), tokenTypeIDs: Array((ex.tokenTypeIDs ?? Array(repeating: 0, count: ids.count)).prefix(n)))
                if let bad = e.inputIDs.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                    throw WinnowError.invalidFile(path: url.path, line: ex.line,
                        reason: "input id \(bad) is outside the vocabulary (size \(tokenizer.vocabularySize))")
                }
            } else {
                e = tokenizer.encode(ex.text ?? "", pair: ex.pair, maxLength: maxLength)   // a text, checked above
            }
            if let v = modelVocabulary, let bad = e.inputIDs.first(where: { Int($0) >= v }) {
                throw WinnowError.invalidFile(path: url.path, line: ex.line, reason: Tokenizers.outsideModelVocabulary(bad, v))
            }
            guard !e.inputIDs.isEmpty else {
                throw WinnowError.invalidFile(path: url.path, line: ex.line, reason:
                    "has no tokens (empty input_ids, or empty text for a tokenizer that adds no special token): a classifier reads at least one")
            }
            encodings.append(e)
            self.labels.append(y)
            lines.append(ex.line)
            ids.append(ex.id)
        }
    }

    /// Refuses examples a model of `vocabulary` token ids and `positions` positions cannot read: an id at or
    /// above the vocabulary (a tokenizer that does not belong to the model) would read past its embedding
    /// table, a longer example past its position table. The library's trainers and predictors check it.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `data` (and the example's line) or `maxLength`.
    public func checkFits(vocabulary: Int, positions: Int) throws {
        for (i, e) in encodings.enumerated() {
            if let bad = e.inputIDs.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw WinnowError.invalidOption(name: "data", reason: "the example of line \(lines[i]): \(Tokenizers.outsideModelVocabulary(bad, vocabulary))")
            }
            if e.inputIDs.count > positions {
                throw WinnowError.invalidOption(name: "maxLength", reason:
                    "the example of line \(lines[i]) has \(e.inputIDs.count) tokens, more than the model's \(positions) positions: encode with maxLength \(positions) or less")
            }
        }
    }

    /// One batch of the given example indices.
    public func batch(_ idx: [Int]) -> Batch {
        Batch(encodings: idx.map { encodings[$0] }, labels: idx.map { labels[$0] }, indices: idx.map { $0 + indexOffset }, padID: padID)
    }
}

extension EncodedDataset {
    /// The examples at `idx`, in that order (batch indices restart at 0).
    public func subset(_ idx: [Int]) -> EncodedDataset {
        var d = self
        d.encodings = idx.map { encodings[$0] }
        d.labels = idx.map { labels[$0] }
        d.lines = idx.map { lines[$0] }
        d.ids = idx.map { ids[$0] }
        d.indexOffset = 0
        return d
    }
}
