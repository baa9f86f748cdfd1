import Foundation
import WinnowCore

/// A plain-text corpus for language-model pre-training: each non-empty line is one document; its
/// WordPiece tokens (no special tokens) are cut into consecutive chunks of T - 2 tokens and each chunk
/// becomes a window `[CLS] chunk [SEP]` of at most T tokens (the last chunk of a document may be
/// shorter; windows never cross documents). Every window remembers its 1-based line.
///
///     let corpus = try LMCorpus(url: URL(fileURLWithPath: "data/austen/train.txt"), tokenizer: tok, seqLen: 128)
public struct LMCorpus: Sendable {
    /// The corpus file read.
    public let url: URL
    /// Token ids of every window, `[CLS] chunk [SEP]` (a causal corpus's windows have no special tokens).
    public private(set) var windows: [[Int32]] = []
    /// 1-based corpus line of each window.
    public private(set) var lines: [Int] = []
    /// Window length T: the most tokens a window holds, [CLS] and [SEP] included (at least 3).
    public let seqLen: Int
    /// The special ids masking and padding use, from the corpus's tokenizer. A causal corpus
    /// (`init(url:causalTokenizer:seqLen:)`) has no [CLS], [SEP] or [MASK]: there `cls`, `sep` and `mask` are
    /// the padding id and `causalOnly` is true (it makes causal batches only).
    public let specials: SpecialTokens

    /// Ids of the special tokens of a WordPiece vocabulary, and its size (random replacements).
    public struct SpecialTokens: Sendable, Equatable {
        /// Ids of `[CLS]`, `[SEP]`, `[PAD]` and `[MASK]`.
        public var cls, sep, pad, mask: Int32
        /// Number of ids in the vocabulary; random MLM replacements are drawn from 0..<vocabularySize.
        public var vocabularySize: Int
    }

    /// Tokenizes every line of `url` into windows of at most `seqLen` tokens.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `seqLen` when it is below 3 ([CLS], a token, [SEP]);
    ///   `WinnowError.missingFile` when `url` does not exist; `WinnowError.invalidFile` for a line that is
    ///   not valid UTF-8, or a corpus without any tokens.
    public init(url: URL, tokenizer: BertTokenizer, seqLen: Int) throws {
        guard seqLen >= 3 else { throw WinnowError.invalidOption(name: "seqLen", reason: "\(seqLen): a window needs at least 3 tokens ([CLS], a token, [SEP])") }
        self.url = url
        self.seqLen = seqLen
        guard FileManager.default.fileExists(atPath: url.path) else { throw WinnowError.missingFile(path: url.path, reason: "no such corpus file") }
        let file = try LineFile(url: url)
        let v = tokenizer.vocabulary
        specials = SpecialTokens(cls: v.clsID, sep: v.sepID, pad: v.padID, mask: v.maskID, vocabularySize: v.count)
        for n in stride(from: 1, through: file.count, by: 1) {
            let raw = file.bytes[file.ranges[n - 1]]
            guard let text = String(data: raw, encoding: .utf8) else {
                throw WinnowError.invalidFile(path: url.path, line: n, reason: "not valid UTF-8")
            }
            let ids = tokenizer.ids(text)
            var start = 0
            while start < ids.count {
                let chunk = ids[start..<min(ids.count, start + seqLen - 2)]
                windows.append([v.clsID] + chunk + [v.sepID])
                lines.append(n)
                start += seqLen - 2
            }
        }
        guard !windows.isEmpty else { throw WinnowError.invalidFile(path: url.path, line: nil, reason: "the corpus has no text") }
    }

    /// Tokenizes every line of `url` for a causal decoder: each line's ids as the model's tokenizer gives
    /// them (its own special tokens; none for SmolLM2 and Llama 3 text) cut into consecutive windows of at
    /// most `seqLen` tokens, without [CLS] or [SEP]. Such a corpus has causal batches only.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `seqLen` when it is below 2 (a token and its next);
    ///   `WinnowError.missingFile` when `url` does not exist; `WinnowError.invalidFile` for a line
    ///   that is not valid UTF-8, or a corpus without any tokens.
    public init(url: URL, causalTokenizer tokenizer: any TextTokenizer, seqLen: Int) throws {
        guard seqLen >= 2 else { throw WinnowError.invalidOption(name: "seqLen", reason: "\(seqLen): a causal window needs at least 2 tokens") }
        self.url = url
        self.seqLen = seqLen
        guard FileManager.default.fileExists(atPath: url.path) else { throw WinnowError.missingFile(path: url.path, reason: "no such corpus file") }
        let file = try LineFile(url: url)
        let pad = tokenizer.padID
        specials = SpecialTokens(cls: pad, sep: pad, pad: pad, mask: pad, vocabularySize: tokenizer.vocabularySize)
        causalOnly = true
        for n in stride(from: 1, through: file.count, by: 1) {
            var raw = file.bytes[file.ranges[n - 1]]
            while let l = raw.last, l == 0x0A || l == 0x0D { raw = raw.dropLast() }      // the line break is not text
            guard let text = String(data: raw, encoding: .utf8) else {
                throw WinnowError.invalidFile(path: url.path, line: n, reason: "not valid UTF-8")
            }
            let ids = tokenizer.encode(text, pair: nil, maxLength: nil).inputIDs
            // A window of one token has no next-token target: it is dropped (a line's last token only).
            for start in stride(from: 0, to: ids.count, by: seqLen) where ids.count - start >= 2 {
                windows.append(Array(ids[start..<min(ids.count, start + seqLen)]))
                lines.append(n)
            }
        }
        guard !windows.isEmpty else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: file.count == 0 ? "the corpus has no text"
                : "no line has two tokens or more: a causal window needs a next token to predict (lines of one token are dropped)")
        }
    }

    /// Refuses a token id at or above `vocabulary` (the model's `vocab_size`): the tokenizer does not belong
    /// to the model, whose embedding table has no row for it.
    /// - Throws: `WinnowError.invalidFile` naming the corpus line of the first such id.
    public func checkIDs(below vocabulary: Int) throws {
        for (w, ids) in windows.enumerated() {
            if let bad = ids.first(where: { Int($0) >= vocabulary }) {
                throw WinnowError.invalidFile(path: url.path, line: lines[w], reason: Tokenizers.outsideModelVocabulary(bad, vocabulary))
            }
        }
    }

    /// Whether the windows are a decoder's (`init(url:causalTokenizer:seqLen:)`): causal batches only.
    public private(set) var causalOnly = false

    /// Number of windows.
    public var count: Int { windows.count }

    /// The batch of windows `idx` for `objective`. MLM (as transformers' DataCollatorForLanguageModeling):
    /// each non-special token is chosen with probability `maskProbability` (one is chosen at random when
    /// none was, so every sample has a loss); a chosen token becomes
    /// [MASK] 80 % of the time, a random vocabulary token 10 %, stays 10 %, and is the target. Causal: the
    /// target at position t is the token at t + 1 (none at the last position). Random choices come from
    /// `seed` (one stream per step), or with `seedPerWindow` from `seed + w` for window w (one stream per
    /// window: its masks then do not depend on the batch it is in, as a held-out evaluation needs).
    public func batch(_ idx: [Int], objective: LMObjective, seed: UInt64,
                      maskProbability: Double = 0.15, seedPerWindow: Bool = false) -> LMBatch {
        precondition(objective == .causal || !causalOnly, "LMCorpus: a decoder's corpus has no masked-LM batches")
        let v = specials
        let encs = idx.map { Encoding(inputIDs: windows[$0], tokenTypeIDs: [Int32](repeating: 0, count: windows[$0].count)) }
        var b = Batch(encodings: encs, labels: [Int32](repeating: -1, count: idx.count), indices: idx, padID: v.pad)
        let T = b.length
        var targets = [Int32](repeating: -1, count: idx.count * T)
        switch objective {
        case .causal:
            for (s, w) in idx.enumerated() {
                let ids = windows[w]
                for t in 0..<(ids.count - 1) { targets[s * T + t] = ids[t + 1] }
            }
        case .mlm:
            var rng = SeededGenerator(seed: seed, stream: "mlm-mask")
            let special: Set<Int32> = [v.cls, v.sep, v.pad]
            for (s, w) in idx.enumerated() {
                if seedPerWindow { rng = SeededGenerator(seed: seed &+ UInt64(w), stream: "mlm-mask") }
                func choose(_ t: Int, _ id: Int32, _ u2: Double, _ r: UInt64) {
                    targets[s * T + t] = id
                    if u2 < 0.8 { b.inputIDs[s * T + t] = v.mask }
                    else if u2 < 0.9 { b.inputIDs[s * T + t] = Int32(r % UInt64(v.vocabularySize)) }
                }
                var chosen = 0
                for (t, id) in windows[w].enumerated() {
                    let u = rng.nextUniform(), u2 = rng.nextUniform(), r = rng.next()
                    guard !special.contains(id), u < maskProbability else { continue }
                    choose(t, id, u2, r)
                    chosen += 1
                }
                // Every sample gets at least one target, so every sample and microbatch carries a loss.
                let candidates = windows[w].indices.filter { !special.contains(windows[w][$0]) }
                if chosen == 0, !candidates.isEmpty {
                    let t = candidates[Int(rng.next() % UInt64(candidates.count))]
                    choose(t, windows[w][t], rng.nextUniform(), rng.next())
                }
            }
        }
        return LMBatch(batch: b, targets: targets, lines: idx.map { lines[$0] })
    }
}
