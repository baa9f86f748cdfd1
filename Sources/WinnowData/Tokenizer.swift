import Foundation
import WinnowCore

// BERT tokenization, equal to transformers' slow tokenizer (`BertTokenizerLegacy` in transformers 5):
//   1. special-token split: the literal strings [UNK] [SEP] [PAD] [CLS] [MASK] in the text become those tokens;
//   2. lower-casing of everything else, if do_lower_case, as Python's str.lower() of each whitespace token
//      (code point by code point, but a capital sigma by its word: final ς);
//   3. BasicTokenizer: _clean_text, _tokenize_chinese_chars, NFC, whitespace split, accent stripping,
//      punctuation split;
//   4. WordPiece: greedy longest-match-first with "##" continuations, [UNK] for a word that cannot be covered or
//      that has more than max_input_chars_per_word code points;
//   5. [CLS] a [SEP] (b [SEP]) with token types 0 (1), truncation "longest_first".
// Everything runs on Unicode scalars, as Python does; see Tokenizer+Unicode.swift for the character classes.
// Not covered: do_basic_tokenize = false, tokenize_chinese_chars = false, custom special-token names, added tokens.

// MARK: - Vocabulary

/// A WordPiece vocabulary: the lines of a `vocab.txt`, the line index being the token id.
///
/// Lookups compare tokens code point by code point, as Python does (Swift's `String ==` would treat "é" and
/// "e" + U+0301 as equal). A token that appears on several lines keeps the id of its last line, as in
/// transformers' `load_vocab`.
///
///     let vocab = try Vocabulary(contentsOf: folder.appendingPathComponent("vocab.txt"))
///     let cls = vocab.clsID
public struct Vocabulary: Sendable {
    /// The tokens in id order, one per line of the file (duplicates included).
    public let tokens: [String]
    /// Ids of the special tokens. `[PAD]`, `[UNK]`, `[CLS]` and `[SEP]` must exist; a missing `[MASK]` maps to
    /// `unkID`, as transformers' `convert_tokens_to_ids` would.
    public var padID, unkID, clsID, sepID, maskID: Int32

    /// Trie over the tokens' scalars; holds the id of every distinct token.
    let trie: WordPieceTrie

    /// Number of ids (lines), which is the embedding table's row count.
    public var count: Int { tokens.count }

    static let requiredTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]

    /// Builds a vocabulary from tokens in id order. Traps if `[PAD]`, `[UNK]`, `[CLS]` or `[SEP]` is missing.
    ///
    ///     let vocab = Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able"])
    public init(tokens: [String]) {
        precondition(tokens.count <= Int(Int32.max), "Vocabulary: \(tokens.count) tokens do not fit Int32 ids")
        let trie = WordPieceTrie(tokens: tokens)
        let missing = Self.requiredTokens.filter { trie.id(of: $0) == nil }
        precondition(missing.isEmpty, "Vocabulary: missing special tokens \(missing)")
        self.init(tokens: tokens, trie: trie)
    }

    private init(tokens: [String], trie: WordPieceTrie) {
        self.tokens = tokens
        self.trie = trie
        let unk = trie.id(of: "[UNK]")!
        unkID = unk
        padID = trie.id(of: "[PAD]")!
        clsID = trie.id(of: "[CLS]")!
        sepID = trie.id(of: "[SEP]")!
        maskID = trie.id(of: "[MASK]") ?? unk
    }

    /// Reads a `vocab.txt`: UTF-8, one token per line. Lines end in "\n", "\r\n" or "\r" (Python's universal
    /// newlines); only the line break is removed, so other whitespace belongs to the token.
    ///
    ///     let vocab = try Vocabulary(contentsOf: URL(fileURLWithPath: "models/minilm/vocab.txt"))
    ///
    /// - Throws: `WinnowError.invalidFile` when the file cannot be read, is empty, has a line that is not valid
    ///   UTF-8, or lacks `[PAD]`, `[UNK]`, `[CLS]` or `[SEP]`.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WinnowError.invalidFile(
                path: path, line: nil, reason: "cannot read vocabulary (\(error.localizedDescription))")
        }
        if data.isEmpty {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "vocabulary file is empty")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(data.count / 6)
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            var i = 0
            func addLine(_ end: Int) throws {
                guard let token = String(validating: bytes[start..<end], as: UTF8.self) else {
                    throw WinnowError.invalidFile(path: path, line: tokens.count + 1, reason: "line is not valid UTF-8")
                }
                tokens.append(token)
            }
            while i < bytes.count {
                let b = bytes[i]
                if b == 0x0A || b == 0x0D {
                    try addLine(i)
                    i += (b == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A) ? 2 : 1
                    start = i
                } else {
                    i += 1
                }
            }
            if start < bytes.count { try addLine(bytes.count) }
        }
        if tokens.count > Int(Int32.max) {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "\(tokens.count) tokens do not fit Int32 ids")
        }
        let trie = WordPieceTrie(tokens: tokens)
        let missing = Self.requiredTokens.filter { trie.id(of: $0) == nil }
        if !missing.isEmpty {
            // Python keeps a byte-order mark as part of the first token, and so do we; say so, it is easy to miss.
            let bom = tokens.first?.unicodeScalars.first == "\u{FEFF}" ? "; line 1 starts with a byte-order mark" : ""
            throw WinnowError.invalidFile(
                path: path, line: nil,
                reason: "vocabulary lacks \(missing.joined(separator: ", ")) (\(tokens.count) lines\(bom))")
        }
        self.init(tokens: tokens, trie: trie)
    }

    /// The id of `token` (compared code point by code point), or nil when it is not in the vocabulary.
    ///
    ///     vocab.id("[SEP]")   // 102 in BERT's uncased vocabulary
    public func id(_ token: String) -> Int32? {
        trie.id(of: token)
    }
}

// MARK: - Trie

/// A trie over Unicode scalars. Greedy longest-match-first WordPiece is a walk down this trie: the deepest node
/// with a token on the path from `start` is the longest vocabulary entry that `word[start...]` begins with, found
/// in one pass without building candidate substrings.
struct WordPieceTrie: Sendable {
    /// Token id per node, -1 where no token ends. Node 0 is the root (the empty string).
    private(set) var tokenIDs: [Int32] = [-1]
    /// Child links keyed by `node << 21 | scalar` (scalars need 21 bits).
    private var children: [UInt64: Int32] = [:]

    static let root: Int32 = 0

    init(tokens: [String]) {
        children.reserveCapacity(tokens.count * 4)
        for (index, token) in tokens.enumerated() {
            var node = Self.root
            for s in token.unicodeScalars {
                let key = Self.key(node, s)
                if let next = children[key] {
                    node = next
                } else {
                    let next = Int32(tokenIDs.count)
                    tokenIDs.append(-1)
                    children[key] = next
                    node = next
                }
            }
            tokenIDs[Int(node)] = Int32(index)  // later lines win, as in a Python dict
        }
    }

    @inline(__always)
    private static func key(_ node: Int32, _ s: Unicode.Scalar) -> UInt64 {
        UInt64(UInt32(bitPattern: node)) << 21 | UInt64(s.value)
    }

    @inline(__always)
    func child(_ node: Int32, _ s: Unicode.Scalar) -> Int32? {
        children[Self.key(node, s)]
    }

    /// The node reached by walking all of `scalars` from `node`, or nil.
    func walk(_ scalars: String.UnicodeScalarView, from node: Int32 = root) -> Int32? {
        var node = node
        for s in scalars {
            guard let next = child(node, s) else { return nil }
            node = next
        }
        return node
    }

    func id(of token: String) -> Int32? {
        guard let node = walk(token.unicodeScalars) else { return nil }
        let id = tokenIDs[Int(node)]
        return id >= 0 ? id : nil
    }
}

// MARK: - Encoding

/// Model inputs for one example: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with token type 0 for `[CLS]`, a and
/// the first `[SEP]`, and 1 for b and the last `[SEP]`. No padding.
///
///     let enc = tokenizer.encode("a great film", pair: "it was good", maxLength: 128)
///     enc.inputIDs.count == enc.tokenTypeIDs.count   // true
public struct Encoding: Sendable, Equatable {
    /// Token ids, special tokens included.
    public var inputIDs: [Int32]
    /// Segment of each token (0: first text, 1: pair), one per entry of `inputIDs`.
    public var tokenTypeIDs: [Int32]

    /// Wraps ids and token types as given (not checked; they should have the same count).
    public init(inputIDs: [Int32], tokenTypeIDs: [Int32]) {
        self.inputIDs = inputIDs
        self.tokenTypeIDs = tokenTypeIDs
    }
}

// MARK: - BertTokenizer

/// Hugging Face's `BertTokenizer` (basic tokenizer + WordPiece), token for token.
///
///     let tokenizer = try BertTokenizer(folder: URL(fileURLWithPath: "models/minilm"))
///     tokenizer.tokenize("Unaffable!")          // ["una", "##ffa", "##ble", "!"]
///     let enc = tokenizer.encode("a premise", pair: "a hypothesis", maxLength: 128)
public struct BertTokenizer: Sendable {
    /// The WordPiece vocabulary tokens are looked up in.
    public let vocabulary: Vocabulary
    /// Lower-case the text (transformers' `do_lower_case`).
    public let doLowerCase: Bool
    /// Strip accents (NFD, drop Mn). nil follows `doLowerCase`, as in the original BERT.
    public let stripAccents: Bool?
    /// Words with more code points than this become `[UNK]`.
    public let maxInputCharsPerWord: Int

    /// Trie node of "##", where continuation pieces start; nil when no token begins with "##".
    private let continuationNode: Int32?
    /// The special-token strings split out of raw text, with their ids.
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    private let stripsAccents: Bool

    /// Creates a tokenizer over `vocabulary`.
    ///
    ///     let tokenizer = BertTokenizer(vocabulary: vocab, doLowerCase: false)
    public init(vocabulary: Vocabulary, doLowerCase: Bool = true, stripAccents: Bool? = nil,
                maxInputCharsPerWord: Int = 100) {
        self.vocabulary = vocabulary
        self.doLowerCase = doLowerCase
        self.stripAccents = stripAccents
        self.maxInputCharsPerWord = maxInputCharsPerWord
        stripsAccents = doLowerCase ? stripAccents != false : stripAccents == true
        continuationNode = vocabulary.trie.walk("##".unicodeScalars)
        // transformers' all_special_tokens; a string missing from the vocabulary gets the [UNK] id.
        specialTokens = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"].map {
            (Array($0.unicodeScalars), vocabulary.id($0) ?? vocabulary.unkID)
        }
    }

    /// Loads `vocab.txt` from a model folder and, when present, `do_lower_case` and `strip_accents` from
    /// `tokenizer_config.json` (defaults: true and nil).
    ///
    ///     let tokenizer = try BertTokenizer(folder: URL(fileURLWithPath: "models/minilm"))
    ///
    /// - Throws: `WinnowError.invalidFile` for a missing or malformed `vocab.txt` or an unreadable config.
    public init(folder: URL) throws {
        let vocabURL = folder.appendingPathComponent("vocab.txt")
        let jsonURL = folder.appendingPathComponent("tokenizer.json")
        if !FileManager.default.fileExists(atPath: vocabURL.path) && FileManager.default.fileExists(atPath: jsonURL.path) {
            // transformers 5 saves only tokenizer.json (a WordPiece model with a BertNormalizer).
            try self.init(tokenizerJSON: jsonURL)
            return
        }
        let vocabulary = try Vocabulary(contentsOf: vocabURL)
        let config = try TokenizerConfig.read(folder.appendingPathComponent("tokenizer_config.json"))
        self.init(vocabulary: vocabulary, doLowerCase: config?.doLowerCase ?? true, stripAccents: config?.stripAccents)
    }

    /// Reads a Hugging Face `tokenizer.json` holding a WordPiece model: its vocabulary (token -> id)
    /// and the BertNormalizer's `lowercase` / `strip_accents`.
    public init(tokenizerJSON url: URL) throws {
        func bad(_ why: String) -> WinnowError { .invalidFile(path: url.path, line: nil, reason: why) }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        guard let model = obj["model"] as? [String: Any], (model["type"] as? String) == "WordPiece" else {
            throw bad("model.type is not WordPiece; only BERT WordPiece tokenizers are supported")
        }
        guard let vocab = model["vocab"] as? [String: Any], !vocab.isEmpty else { throw bad("model.vocab is missing or empty") }
        var tokens = [String](repeating: "", count: vocab.count)
        for (tok, v) in vocab {
            guard let id = (v as? NSNumber)?.intValue, id >= 0, id < vocab.count else {
                throw bad("model.vocab: id of '\(tok)' is not in 0..<\(vocab.count)")
            }
            tokens[id] = tok
        }
        let missing = Vocabulary.requiredTokens.filter { vocab[$0] == nil }
        guard missing.isEmpty else { throw bad("model.vocab lacks the special tokens \(missing)") }
        let normalizer = obj["normalizer"] as? [String: Any]
        let lower = normalizer?["lowercase"] as? Bool ?? true
        let strip = normalizer?["strip_accents"] as? Bool
        let maxChars = (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100
        self.init(vocabulary: Vocabulary(tokens: tokens), doLowerCase: lower, stripAccents: strip, maxInputCharsPerWord: maxChars)
    }

    // MARK: Public API

    /// The WordPiece tokens of `text`, without `[CLS]`/`[SEP]`.
    ///
    ///     tokenizer.tokenize("Héllo, world")   // ["hello", ",", "world"]
    public func tokenize(_ text: String) -> [String] {
        let tokens = vocabulary.tokens
        return ids(text).map { tokens[Int($0)] }
    }

    /// Token ids of `text`, without `[CLS]`/`[SEP]`.
    ///
    ///     let ids = tokenizer.ids("a great film")
    public func ids(_ text: String) -> [Int32] {
        var out: [Int32] = []
        var scratch = Scratch()
        appendIDs(of: text, to: &out, scratch: &scratch)
        return out
    }

    /// `[CLS] text [SEP]`, or `[CLS] text [SEP] pair [SEP]`, truncated to `maxLength` tokens (specials included)
    /// with transformers' "longest_first" rule: tokens leave the end of the longer side, the second on a tie.
    /// As in transformers, a single text too short to absorb the cut (max length below 3) is left whole.
    ///
    ///     let enc = tokenizer.encode("the film", pair: "a movie", maxLength: 8)
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var scratch = Scratch()
        // Truncation keeps at most maxLength tokens of each side, and longest_first gives the same result
        // when each side is known only up to maxLength tokens, so a huge text is tokenized only as far as
        // needed (time and memory stay bounded by the max length, not by the line).
        let cap = (maxLength ?? 0) >= 3 ? maxLength : nil
        var a: [Int32] = []
        appendIDs(of: text, cap: cap, to: &a, scratch: &scratch)
        var b: [Int32]? = nil
        if let pair {
            var ids: [Int32] = []
            appendIDs(of: pair, cap: cap, to: &ids, scratch: &scratch)
            b = ids
        }
        if let maxLength {
            Self.truncateLongestFirst(&a, &b, maxLength: maxLength)
        }
        let cls = vocabulary.clsID, sep = vocabulary.sepID
        var ids: [Int32] = []
        ids.reserveCapacity(a.count + (b?.count ?? 0) + 3)
        ids.append(cls)
        ids.append(contentsOf: a)
        ids.append(sep)
        var types = [Int32](repeating: 0, count: ids.count)
        if let b {
            ids.append(contentsOf: b)
            ids.append(sep)
            types.append(contentsOf: repeatElement(1, count: b.count + 1))
        }
        return Encoding(inputIDs: ids, tokenTypeIDs: types)
    }

    /// Token ids of the text, or of a prefix that ends at whitespace and yields at least `cap` tokens
    /// (the tokens before a whitespace never depend on the text after it).
    func appendIDs(of text: String, cap: Int?, to out: inout [Int32], scratch: inout Scratch) {
        let utf8 = text.utf8
        guard let cap, utf8.count > max(4096, 64 * cap) else { return appendIDs(of: text, to: &out, scratch: &scratch) }
        var limit = max(4096, 64 * cap)
        while limit < utf8.count {
            var i = utf8.index(utf8.startIndex, offsetBy: limit)
            while i < utf8.endIndex, ![0x20, 0x09, 0x0A, 0x0D].contains(utf8[i]) { i = utf8.index(after: i) }
            if i == utf8.endIndex { break }
            var ids: [Int32] = []
            appendIDs(of: String(text[..<i]), to: &ids, scratch: &scratch)
            if ids.count >= cap {
                out.append(contentsOf: ids)
                return
            }
            limit *= 4
        }
        appendIDs(of: text, to: &out, scratch: &scratch)
    }

    /// transformers' `prepare_for_model` + `truncate_sequences` for `longest_first`, truncation side right.
    static func truncateLongestFirst(_ a: inout [Int32], _ b: inout [Int32]?, maxLength: Int) {
        let total = a.count + (b?.count ?? 0) + (b == nil ? 2 : 3)
        guard maxLength != 0, total > maxLength else { return }  // `if max_length and total_len > max_length`
        let remove = total - maxLength
        guard var second = b else {
            // Single sequence: cut only when it is longer than the cut (otherwise HF logs an error and keeps all).
            if a.count > remove { a.removeLast(remove) }
            return
        }
        // Closed form of "remove one token from the longer side, from the second on a tie".
        let la = a.count, lb = second.count
        let first = min(abs(lb - la), remove)
        let rest = remove - first
        let fromA = la > lb ? first + rest / 2 : rest / 2
        let fromB = la > lb ? rest - rest / 2 : first + rest - rest / 2
        a.removeLast(min(fromA, la))
        second.removeLast(min(fromB, lb))
        b = second
    }

    // MARK: Pipeline

    /// Buffers reused across the words of one call.
    struct Scratch {
        var text: [Unicode.Scalar] = []
        var word: [Unicode.Scalar] = []
    }

    /// Steps 1-4 of the file header for one text, appending ids to `out`.
    func appendIDs(of text: String, to out: inout [Int32], scratch: inout Scratch) {
        let scalars = Array(text.unicodeScalars)
        var chunkStart = 0
        var i = 0
        // 1. Split out special tokens. All of them are "[" + capitals + "]", so no two matches overlap and the
        //    leftmost-match scan equals transformers' trie split.
        while i < scalars.count {
            if scalars[i] == "[", let special = matchSpecial(scalars, at: i) {
                appendBasic(scalars[chunkStart..<i], to: &out, scratch: &scratch)
                out.append(special.id)
                i += special.length
                chunkStart = i
            } else {
                i += 1
            }
        }
        appendBasic(scalars[chunkStart...], to: &out, scratch: &scratch)
    }

    private func matchSpecial(_ scalars: [Unicode.Scalar], at i: Int) -> (length: Int, id: Int32)? {
        for special in specialTokens {
            let n = special.scalars.count
            if i + n <= scalars.count, scalars[i..<(i + n)].elementsEqual(special.scalars) {
                return (n, special.id)
            }
        }
        return nil
    }

    private func isSpecial(_ word: ArraySlice<Unicode.Scalar>) -> Bool {
        specialTokens.contains { $0.scalars.elementsEqual(word) }
    }

    /// Steps 2-4 for the text between special tokens.
    private func appendBasic(_ chunk: ArraySlice<Unicode.Scalar>, to out: inout [Int32], scratch: inout Scratch) {
        if chunk.isEmpty { return }
        // 2. + _clean_text + _tokenize_chinese_chars, all per code point, lower-casing as it goes (what the basic
        //    tokenizer's token.lower() gives per word, but for Σ, whose lower case depends on its word: step 3).
        var text: [Unicode.Scalar] = []
        swap(&text, &scratch.text)
        text.removeAll(keepingCapacity: true)
        for s in chunk {
            if !doLowerCase || (s.value < 0x80 && !(0x41...0x5A).contains(s.value)) || s.value == 0x3A3 {
                Self.appendCleaned(s, to: &text)
            } else if s.value < 0x80 {
                Self.appendCleaned(Unicode.Scalar(s.value + 0x20)!, to: &text)
            } else if s.properties.changesWhenLowercased {
                for l in s.properties.lowercaseMapping.unicodeScalars { Self.appendCleaned(l, to: &text) }
            } else {
                Self.appendCleaned(s, to: &text)
            }
        }
        // NFC, after cleaning and CJK spacing (transformers 4.40 and later; 4.30 had no NFC step).
        text = Self.nfc(text)

        // 3. Whitespace split, then per word: accent stripping and punctuation split. The basic tokenizer's own
        //    token.lower() is skipped: lower() is idempotent and NFC of lower-cased text stays lower-case
        //    (checked over all of Unicode 14 in Python), so the text is already what it would produce.
        var i = text.startIndex
        let end = text.endIndex
        while i < end {
            if text[i].pythonIsSpace {
                i += 1
                continue
            }
            var j = i + 1
            while j < end && !text[j].pythonIsSpace { j += 1 }
            if doLowerCase { Self.lowerCapitalSigma(&text, in: i..<j) }
            let word = text[i..<j]
            i = j
            if isSpecial(word) {
                // never_split: a special-token string that only appeared after cleaning (e.g. "[SE\u{200B}P]"
                // when not lower-casing) is neither lower-cased nor split, and WordPiece finds it whole.
                appendWordPiece(word, to: &out)
                continue
            }
            if stripsAccents {
                Self.stripAccents(word, into: &scratch.word)
                appendPunctuationSplit(scratch.word[...], to: &out)
            } else {
                appendPunctuationSplit(word, to: &out)
            }
        }
        scratch.text = text
    }

    /// Python's str.lower() of Σ within one word (Unicode's Final_Sigma): ς when a cased letter precedes it
    /// and none follows (case-ignorable scalars such as "." or "'" skipped on both sides), else σ.
    static func lowerCapitalSigma(_ text: inout [Unicode.Scalar], in word: Range<Int>) {
        for k in word where text[k].value == 0x3A3 {
            var b = k - 1
            while b >= word.lowerBound && text[b].properties.isCaseIgnorable { b -= 1 }
            var a = k + 1
            while a < word.upperBound && text[a].properties.isCaseIgnorable { a += 1 }
            let final = b >= word.lowerBound && text[b].properties.isCased && !(a < word.upperBound && text[a].properties.isCased)
            text[k] = Unicode.Scalar(final ? 0x3C2 : 0x3C3)!
        }
    }

    @inline(__always)
    private static func appendCleaned(_ s: Unicode.Scalar, to text: inout [Unicode.Scalar]) {
        if s.bertIsDropped { return }
        if s.bertIsWhitespace {
            text.append(" ")
        } else if s.bertIsCJK {
            text.append(" ")
            text.append(s)
            text.append(" ")
        } else {
            text.append(s)
        }
    }

    /// `_run_split_on_punc`: every punctuation scalar is a word of its own. An empty word (all accents) vanishes.
    private func appendPunctuationSplit(_ word: ArraySlice<Unicode.Scalar>, to out: inout [Int32]) {
        var start = word.startIndex
        var i = word.startIndex
        while i < word.endIndex {
            if word[i].bertIsPunctuation {
                if start < i { appendWordPiece(word[start..<i], to: &out) }
                appendWordPiece(word[i..<(i + 1)], to: &out)
                start = i + 1
            }
            i += 1
        }
        if start < word.endIndex { appendWordPiece(word[start..<word.endIndex], to: &out) }
    }

    /// 4. WordPiece on one non-empty word: from each position, the longest vocabulary entry (with "##" after the
    ///    first piece) that the rest of the word starts with; `[UNK]` for the whole word if some position has none
    ///    or the word is longer than `maxInputCharsPerWord` code points.
    private func appendWordPiece(_ word: ArraySlice<Unicode.Scalar>, to out: inout [Int32]) {
        if word.count > maxInputCharsPerWord {
            out.append(vocabulary.unkID)
            return
        }
        let trie = vocabulary.trie
        let mark = out.count
        var start = word.startIndex
        while start < word.endIndex {
            let from = start == word.startIndex ? WordPieceTrie.root : continuationNode
            var bestEnd = -1
            var bestID: Int32 = -1
            if var node = from {
                var j = start
                while j < word.endIndex, let next = trie.child(node, word[j]) {
                    node = next
                    j += 1
                    let id = trie.tokenIDs[Int(node)]
                    if id >= 0 {
                        bestEnd = j
                        bestID = id
                    }
                }
            }
            if bestEnd < 0 {
                out.removeSubrange(mark...)
                out.append(vocabulary.unkID)
                return
            }
            out.append(bestID)
            start = bestEnd
        }
    }
}
