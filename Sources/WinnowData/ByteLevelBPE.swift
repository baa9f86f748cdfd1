import Foundation
import WinnowCore

/// Hugging Face's byte-level BPE (the `tokenizers` pipeline of GPT-2, SmolLM2, Llama 3, Qwen2): added
/// tokens are split out of the raw text first; the rest is cut by the tokenizer's pattern (GPT-2's, or Llama 3's or Qwen2's Split, after Qwen2's NFC), each piece's UTF-8
/// bytes are spelt in the byte alphabet (`Ġ` for a space) and merged by rank. Ids equal
/// `AutoTokenizer.from_pretrained(...)(text)["input_ids"]`, the BOS/EOS included only when the model's
/// tokenizer adds them.
///
///     let tok = try Tokenizers.load(folder: URL(fileURLWithPath: "models/smollm2"))   // tokenizer.ggml.* of its GGUF file
///     tok.encode("Hello world", pair: nil, maxLength: nil).inputIDs                    // [19556, 905]
public struct ByteLevelBPETokenizer: DecoderTokenizer {
    /// Every token, spelt in the byte alphabet, by id.
    public let tokens: [String]
    /// Tokens matched whole in the raw text before anything else, with their ids; `special` ones are
    /// the model's control tokens.
    public let addedTokens: [(content: String, id: Int32, special: Bool)]
    /// Prepended / appended to a single sequence when set.
    public let bosID: Int32?, eosID: Int32?
    /// The special ids around a pair: before the first text, between the two, after the second.
    public let pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32])
    /// The id batches are padded with.
    public let padID: Int32
    /// Split every number character into a piece of its own first (tokenizers' `Digits` pre-tokenizer
    /// with individual_digits, as SmolLM2's tokenizer.json has before ByteLevel).
    public let isolateDigits: Bool
    /// Take a piece that is itself a token whole, without merging (tokenizers' `ignore_merges`).
    public let ignoreMerges: Bool
    /// The pattern text is cut by before the merges: GPT-2's, or Llama 3's or Qwen2's `Split` pre-tokenizer.
    public let split: SplitPattern
    /// Compose the text to Unicode NFC first (tokenizers' `NFC` normalizer, Qwen2's).
    public let normalizeNFC: Bool

    /// The patterns Winnow cuts text by, each reproduced character class by character class.
    public enum SplitPattern: Sendable, Equatable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2, SmolLM2).
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// with at most `maxDigits` numbers a piece: 3 for Llama 3, 1 for Qwen2.
        case llama3(maxDigits: Int)

        /// The Split pattern of Llama 3's tokenizer.json.
        static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        /// The Split pattern of Qwen2's tokenizer.json (one number a piece).
        static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }

    private let idOf: [String: Int32]
    /// Merge rank and result of each mergeable pair of ids.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// The id of each byte's one-character spelling; -1 where the vocabulary has none (such a byte is
    /// dropped, as tokenizers' BPE does without an unknown token or byte fallback).
    private let byteIDs: [Int32]
    private let added: AddedTokenMatcher

    /// A tokenizer from its parts. `merges` are pairs of token spellings, highest priority first.
    ///
    /// - Throws: `WinnowError.invalidFile` (naming `source`) when a merge names an unknown token or its
    ///   result is not a token.
    public init(tokens: [String], merges: [(String, String)], added: [(content: String, id: Int32, special: Bool)],
                bosID: Int32?, eosID: Int32?, padID: Int32, pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32])? = nil,
                isolateDigits: Bool = false, ignoreMerges: Bool = false, split: SplitPattern = .gpt2, normalizeNFC: Bool = false,
                source: String) throws {
        let b = bosID.map { [$0] } ?? [], e = eosID.map { [$0] } ?? []
        self.pairTemplate = pairTemplate ?? (b, e + b, e)
        self.tokens = tokens
        self.isolateDigits = isolateDigits
        self.ignoreMerges = ignoreMerges
        self.split = split
        self.normalizeNFC = normalizeNFC
        var idOf: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() { idOf[t] = Int32(i) }    // a later duplicate wins, as in tokenizers
        self.idOf = idOf
        var table: [UInt64: (Int32, Int32)] = [:]
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = idOf[a], let ib = idOf[b] else {
                throw WinnowError.invalidFile(path: source, line: nil, reason: "merge \(rank) ('\(a) \(b)') names a token that is not in the vocabulary")
            }
            guard let m = idOf[a + b] else {
                throw WinnowError.invalidFile(path: source, line: nil, reason: "merge \(rank) ('\(a) \(b)') makes '\(a + b)', which is not in the vocabulary")
            }
            let key = Self.key(ia, ib)
            if table[key] == nil { table[key] = (Int32(rank), m) }
        }
        self.merges = table
        self.byteIDs = (0..<256).map { idOf[String(Self.byteAlphabet[$0])] ?? -1 }
        addedTokens = added
        self.added = AddedTokenMatcher(added.map { (Array($0.content.unicodeScalars), $0.id) })
        self.bosID = bosID
        self.eosID = eosID
        self.padID = padID
    }

    /// Where each token of `ids` ends in the UTF-8 bytes of the text it encodes (its spelling's bytes, an added
    /// token's content); nil for an id outside the vocabulary.
    public func byteEnds(of ids: [Int32]) -> [Int]? {
        let addedBytes = Dictionary(addedTokens.map { ($0.id, $0.content.utf8.count) }, uniquingKeysWith: { a, _ in a })
        var ends: [Int] = [], at = 0
        ends.reserveCapacity(ids.count)
        for id in ids {
            if let n = addedBytes[id] { at += n } else {
                guard id >= 0, Int(id) < tokens.count else { return nil }
                at += tokens[Int(id)].count      // one character of the byte alphabet per byte
            }
            ends.append(at)
        }
        return ends
    }

    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other 68 bytes for
    /// U+0100 onwards in byte order (a space is `Ġ`, a newline `Ċ`).
    public static let byteAlphabet: [Character] = {
        var out = [Character](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            out[b] = Character(Unicode.Scalar(printable ? UInt32(b) : 256 + extra)!)
            if !printable { extra += 1 }
        }
        return out
    }()

    // MARK: - Encoding

    /// The ids of `text` without BOS/EOS.
    public func ids(_ text: String) -> [Int32] {
        var out: [Int32] = []
        let scalars = Array(text.unicodeScalars)
        var start = 0
        for (lo, hi, id) in added.matches(in: scalars) {
            if lo > start { encodePlain(scalars[start..<lo], into: &out) }
            out.append(id)
            start = hi
        }
        if start < scalars.count { encodePlain(scalars[start...], into: &out) }
        return out
    }

    /// Pre-tokenises text without added tokens by the tokenizer's pattern and merges each piece.
    func encodePlain(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        if normalizeNFC {
            let composed = UnicodeNFC.compose(s, asOf: UnicodeNFC.tokenizersVersion)
            if !composed.elementsEqual(s) { return Self.plain(self, composed[...], into: &out) }
        }
        Self.plain(self, s, into: &out)
    }

    private static func plain(_ t: ByteLevelBPETokenizer, _ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        if case .llama3(let maxDigits) = t.split {
            for piece in llama3Pieces(s, maxDigits: maxDigits) { t.mergeScalars(s[piece], into: &out) }
            return
        }
        t.encodeDigitsThenWords(s, into: &out)
    }

    /// The UTF-8 bytes of `s`, merged as one piece.
    func mergeScalars(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        var bytes: [UInt8] = []
        for sc in s { bytes += Array(String(sc).utf8) }
        merge(bytes, into: &out)
    }

    /// GPT-2's pattern, after every number character is made a piece of its own when `isolateDigits`.
    func encodeDigitsThenWords(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        guard isolateDigits else { return encodeWords(s, into: &out) }
        var start = s.startIndex
        for i in s.indices where Self.isNumber(s[i]) {
            if i > start { encodeWords(s[start..<i], into: &out) }
            encodeWords(s[i...i], into: &out)
            start = i + 1
        }
        if start < s.endIndex { encodeWords(s[start...], into: &out) }
    }

    /// The GPT-2 pattern's pieces of `s`, each merged.
    func encodeWords(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        for piece in Self.pieces(s) { mergeScalars(s[piece], into: &out) }
    }

    /// BPE on one piece: start from its bytes' tokens, merge the pair of lowest rank (the leftmost on a
    /// tie) until no pair merges.
    func merge(_ bytes: [UInt8], into out: inout [Int32]) {
        if ignoreMerges, let whole = idOf[String(bytes.map { Self.byteAlphabet[Int($0)] })] { out.append(whole); return }
        var ids = bytes.map { byteIDs[Int($0)] }.filter { $0 >= 0 }
        while ids.count > 1 {
            var best = -1, bestRank = Int32.max, bestID: Int32 = 0
            for i in 0..<(ids.count - 1) {
                if let m = merges[Self.key(ids[i], ids[i + 1])], m.rank < bestRank { best = i; bestRank = m.rank; bestID = m.id }
            }
            guard best >= 0 else { break }
            // Merge every occurrence of this pair left to right, as tokenizers' word merge does.
            let (l, r) = (ids[best], ids[best + 1])
            var merged: [Int32] = []
            merged.reserveCapacity(ids.count)
            var i = 0
            while i < ids.count {
                if i + 1 < ids.count && ids[i] == l && ids[i + 1] == r { merged.append(bestID); i += 2 } else { merged.append(ids[i]); i += 1 }
            }
            ids = merged
        }
        out += ids
    }

    // MARK: - The GPT-2 pattern

    /// Whether `c` was assigned by Unicode 16 or before: the regex engine of `tokenizers` (Oniguruma) knows
    /// no later letters or numbers, so the characters Unicode 17 added are "other" there, and here.
    static func knownToTokenizers(_ c: Unicode.Scalar) -> Bool {
        guard let age = c.properties.age else { return false }
        return age.major <= 16
    }

    /// Unicode categories Nd, Nl and No (`\p{N}`, Rust's `char::is_numeric`), as of Unicode 16.
    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        guard c.isASCII || knownToTokenizers(c) else { return false }
        return switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    /// Unicode categories Lu, Ll, Lt, Lm and Lo (`\p{L}`), as of Unicode 16.
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        guard c.isASCII || knownToTokenizers(c) else { return false }
        return switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    /// The ranges of `s` that Llama 3's pattern
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,MAX}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// matches one after another, the first alternative that matches at each place winning (it matches
    /// every character).
    static func llama3Pieces(_ s: ArraySlice<Unicode.Scalar>, maxDigits: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = s.startIndex
        let end = s.endIndex
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
        func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }
        func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        // Case-insensitive as Oniguruma's case folding: the long s (U+017F) folds to s.
        func lower(_ c: Unicode.Scalar) -> String { c == "\u{17F}" ? "s" : String(c).lowercased() }
        while i < end {
            let c = s[i]
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == "'" && i + 1 < end {
                let n = lower(s[i + 1])
                if ["s", "t", "m", "d"].contains(n) { out.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < end, ["re", "ve", "ll"].contains(n + lower(s[i + 2])) { out.append(i..<(i + 3)); i += 3; continue }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            let l = !isNewline(c) && !isLetter(c) && !isNumber(c) && i + 1 < end && isLetter(s[i + 1]) ? i + 1 : i
            if isLetter(s[l]) {
                var k = l + 1
                while k < end && isLetter(s[k]) { k += 1 }
                out.append(i..<k); i = k; continue
            }
            // \p{N}{1,MAX}
            if isNumber(c) {
                var k = i + 1
                while k < end && k - i < maxDigits && isNumber(s[k]) { k += 1 }
                out.append(i..<k); i = k; continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let o = c == " " && i + 1 < end && isOther(s[i + 1]) ? i + 1 : i
            if isOther(s[o]) {
                var k = o + 1
                while k < end && isOther(s[k]) { k += 1 }
                while k < end && isNewline(s[k]) { k += 1 }
                out.append(i..<k); i = k; continue
            }
            // Whitespace from here: c is a space.
            var run = i
            while run < end && isSpace(s[run]) { run += 1 }
            // \s*[\r\n]+ ends at the last line break of the run.
            if let last = (i..<run).last(where: { isNewline(s[$0]) }) { out.append(i..<(last + 1)); i = last + 1; continue }
            // \s+(?!\S) leaves the last space before a non-space to the next piece; \s+ takes a lone one.
            let k = max(i + 1, run < end && run - i >= 2 ? run - 1 : run)   // every character is in one class: never empty
            out.append(i..<k); i = k
        }
        return out
    }

    /// The ranges of `s` that `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// matches one after another (it matches every character).
    static func pieces(_ s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = s.startIndex
        let end = s.endIndex
        let isLetter = Self.isLetter
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
        let isNumber = Self.isNumber
        func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        while i < end {
            let c = s[i]
            // Contractions (case-sensitive).
            if c == "'" && i + 1 < end {
                let n = s[i + 1]
                if n == "s" || n == "t" || n == "m" || n == "d" { out.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < end {
                    let two = String(String.UnicodeScalarView([n, s[i + 2]]))
                    if two == "re" || two == "ve" || two == "ll" { out.append(i..<(i + 3)); i += 3; continue }
                }
            }
            // ` ?X+` for letters, numbers, then other characters.
            let j = c == " " && i + 1 < end ? i + 1 : i
            var matched = false
            for cls in [isLetter, isNumber, isOther] where cls(s[j]) {
                var k = j + 1
                while k < end && cls(s[k]) { k += 1 }
                out.append(i..<k)
                i = k
                matched = true
                break
            }
            if matched { continue }
            // Whitespace: `\s+(?!\S)` leaves the last space before a non-space to the next piece; `\s+`.
            var k = i
            while k < end && isSpace(s[k]) { k += 1 }
            if k < end && k - i >= 2 { k -= 1 }
            out.append(i..<k)
            i = k
        }
        return out
    }
}

/// Leftmost-longest matching of added tokens in raw text (as tokenizers' AddedVocabulary).
struct AddedTokenMatcher: Sendable {
    private let byFirst: [Unicode.Scalar: [([Unicode.Scalar], Int32)]]

    init(_ tokens: [([Unicode.Scalar], Int32)]) {
        var m: [Unicode.Scalar: [([Unicode.Scalar], Int32)]] = [:]
        for (s, id) in tokens where !s.isEmpty { m[s[0], default: []].append((s, id)) }
        for k in m.keys { m[k]!.sort { $0.0.count > $1.0.count } }
        byFirst = m
    }

    /// Non-overlapping matches, left to right: (start, end, id).
    func matches(in s: [Unicode.Scalar]) -> [(Int, Int, Int32)] {
        guard !byFirst.isEmpty else { return [] }
        var out: [(Int, Int, Int32)] = []
        var i = 0
        while i < s.count {
            if let cands = byFirst[s[i]], let hit = cands.first(where: { c in
                i + c.0.count <= s.count && s[i..<(i + c.0.count)].elementsEqual(c.0)
            }) {
                out.append((i, i + hit.0.count, hit.1))
                i += hit.0.count
            } else {
                i += 1
            }
        }
        return out
    }
}

extension ByteLevelBPETokenizer {
    /// `tokenizer.ggml.pre` values for which transformers splits text by Llama 3's pattern, and by Qwen2's.
    static let llama3Splits: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                                            "jina-v5-nano", "dbrx", "smaug-bpe"]
    /// Of those, the ones llama.cpp reads as Llama 3's own, which take a piece that is a token whole (Llama 3's
    /// tokenizer.json has `ignore_merges`; transformers' GGUF conversion leaves it out and cuts words such as
    /// " Việt" into three tokens).
    static let llama3IgnoreMerges: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"]
    static let qwen2Splits: Set<String> = ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"]
    /// `tokenizer.ggml.pre` values for which transformers splits text by yet another pattern (Tekken, GPT-4o and
    /// their kin); Winnow refuses them rather than tokenize differently.
    static let otherSplits: Set<String> = ["tekken", "qwen35", "gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"]

    /// The tokenizer of a GGUF file's `tokenizer.ggml.*` metadata, built as transformers builds it from the
    /// file: model `gpt2` (byte-level BPE) with the GPT-2 pattern, or Llama 3's or Qwen2's when
    /// `tokenizer.ggml.pre` names them (no normalizer, as transformers builds it; Llama 3's own types with
    /// ignore_merges, as its tokenizer.json and llama.cpp tokenize, where transformers' conversion does not); CONTROL tokens (type 3) are special
    /// added tokens and USER_DEFINED ones (type 4) plain added tokens; BOS and EOS are added only when
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token` say so.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or unsupported.
    package init(gguf f: GGUFFile) throws {
        let path = f.url.path
        func bad(_ key: String, _ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: "key '\(key)': \(why)") }
        let m = f.metadata
        guard let model = m["tokenizer.ggml.model"]?.string else { throw bad("tokenizer.ggml.model", "missing: the file holds no tokenizer") }
        guard model == "gpt2" else {
            throw bad("tokenizer.ggml.model", "'\(model)' is not supported (byte-level BPE, 'gpt2', and SentencePiece BPE, 'llama', are)")
        }
        if let pre = m["tokenizer.ggml.pre"]?.string, Self.otherSplits.contains(pre) {
            throw bad("tokenizer.ggml.pre", "'\(pre)' splits text by another pattern than GPT-2's, Llama 3's or Qwen2's, which Winnow does not implement")
        }
        let pre = m["tokenizer.ggml.pre"]?.string ?? ""
        let split: SplitPattern = Self.llama3Splits.contains(pre) ? .llama3(maxDigits: 3) : Self.qwen2Splits.contains(pre) ? .llama3(maxDigits: 1) : .gpt2
        guard let raw = m["tokenizer.ggml.tokens"]?.array else { throw bad("tokenizer.ggml.tokens", "missing or not an array") }
        let alphabet = Set(Self.byteAlphabet)
        var tokens: [String] = []
        tokens.reserveCapacity(raw.count)
        for (i, v) in raw.enumerated() {
            guard let s = v.string else { throw bad("tokenizer.ggml.tokens", "entry \(i) is not a string") }
            // A token outside the byte alphabet is spelt byte by byte, as transformers does.
            tokens.append(s.allSatisfy { alphabet.contains($0) } ? s : String(s.utf8.map { Self.byteAlphabet[Int($0)] }))
        }
        let types = try (m["tokenizer.ggml.token_type"]?.array ?? []).enumerated().map { i, v -> Int in
            guard let t = v.int else { throw bad("tokenizer.ggml.token_type", "entry \(i) is not an integer") }
            return t
        }
        guard types.isEmpty || types.count == tokens.count else {
            throw bad("tokenizer.ggml.token_type", "has \(types.count) entries for \(tokens.count) tokens")
        }
        guard let rawMerges = m["tokenizer.ggml.merges"]?.array else { throw bad("tokenizer.ggml.merges", "missing or not an array") }
        let merges = try rawMerges.enumerated().map { i, v -> (String, String) in
            guard let s = v.string else { throw bad("tokenizer.ggml.merges", "entry \(i) is not a string") }
            let parts = s.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw bad("tokenizer.ggml.merges", "entry \(i) ('\(s)') is not two tokens separated by a space") }
            return (String(parts[0]), String(parts[1]))
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = m[key] else { return nil }
            guard let n = v.int, n >= 0, n < tokens.count else { throw bad(key, "\(v.summary) is not a token id") }
            return Int32(n)
        }
        var added: [(content: String, id: Int32, special: Bool)] = []
        for (i, t) in types.enumerated() where t == 3 || t == 4 {
            let content = raw[i].string!
            if t == 3 && !content.allSatisfy({ alphabet.contains($0) }) { continue }
            added.append((content, Int32(i), t == 3))
        }
        // transformers' GPT2Tokenizer also registers its default <|endoftext|> as special.
        if !added.contains(where: { $0.content == "<|endoftext|>" }), let i = tokens.firstIndex(of: "<|endoftext|>") {
            added.append(("<|endoftext|>", Int32(i), true))
        }
        let bos = try id("tokenizer.ggml.bos_token_id"), eos = try id("tokenizer.ggml.eos_token_id")
        let addBOS = m["tokenizer.ggml.add_bos_token"]?.bool ?? false, addEOS = m["tokenizer.ggml.add_eos_token"]?.bool ?? false
        try self.init(tokens: tokens, merges: merges, added: added, bosID: addBOS ? bos : nil, eosID: addEOS ? eos : nil,
                      padID: try id("tokenizer.ggml.padding_token_id") ?? eos ?? 0, ignoreMerges: Self.llama3IgnoreMerges.contains(pre),
                      split: split, source: path)
    }
}

extension ByteLevelBPETokenizer {
    /// A Hugging Face `tokenizer.json` with a byte-level BPE model: `BPE` (merges as "a b" strings or
    /// pairs; no subword prefix or suffix, no byte fallback), no normalizer or `NFC`, a `ByteLevel`
    /// pre-tokenizer with its GPT-2 pattern (optionally after `Digits` with individual digits) or after
    /// Llama 3's or Qwen2's `Split`, added tokens, and a `TemplateProcessing` or `ByteLevel` post-processor
    /// (or a `Sequence` of them), which decides BOS/EOS.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or unsupported.
    public init(tokenizerJSON url: URL) throws {
        let path = url.path
        let (d, bad) = try TokenizerJSON.read(url)
        let model = try TokenizerJSON.bpeModel(d, bad: bad)
        if model["byte_fallback"] as? Bool == true { throw bad("model.byte_fallback", "byte fallback is not supported with a ByteLevel pre-tokenizer") }
        // Normalizer: none, or NFC (Qwen2's).
        var nfc = false
        if let n = d["normalizer"], !(n is NSNull) {
            guard (n as? [String: Any])?["type"] as? String == "NFC" else {
                throw bad("normalizer", "'\((n as? [String: Any])?["type"] ?? n)' is not supported (none or NFC is)")
            }
            nfc = true
        }
        // Pre-tokenizer: ByteLevel, or Digits(individual) then ByteLevel, or Llama 3's or Qwen2's Split then ByteLevel without its regex.
        var isolate = false
        var split = SplitPattern.gpt2
        var steps: [[String: Any]] = []
        if let pre = d["pre_tokenizer"] as? [String: Any] {
            steps = pre["type"] as? String == "Sequence" ? (pre["pretokenizers"] as? [[String: Any]] ?? []) : [pre]
        }
        var sawByteLevel = false
        for (i, st) in steps.enumerated() {
            switch st["type"] as? String {
            case "Digits" where i == 0 && st["individual_digits"] as? Bool == true: isolate = true
            case "Split" where i == 0:
                let regex = (st["pattern"] as? [String: Any])?["Regex"] as? String
                guard st["behavior"] as? String == "Isolated", st["invert"] as? Bool != true,
                      let regex, [SplitPattern.llama3Regex, SplitPattern.qwen2Regex].contains(regex) else {
                    throw bad("pre_tokenizer", "this Split is not supported (Llama 3's and Qwen2's patterns, Isolated, are)")
                }
                split = .llama3(maxDigits: regex == SplitPattern.llama3Regex ? 3 : 1)
            case "ByteLevel":
                if st["add_prefix_space"] as? Bool == true { throw bad("pre_tokenizer", "ByteLevel add_prefix_space is not supported") }
                // After a Split the pieces are final (use_regex false); alone, ByteLevel cuts by GPT-2's pattern.
                if (st["use_regex"] as? Bool ?? true) != (split == .gpt2) {
                    throw bad("pre_tokenizer", split == .gpt2 ? "ByteLevel without its regex is not supported" : "ByteLevel after a Split must not cut again (use_regex false)")
                }
                sawByteLevel = true
            default:
                throw bad("pre_tokenizer", "'\(st["type"] ?? "?")' is not supported (ByteLevel, after Digits with individual digits or Llama 3's or Qwen2's Split, is)")
            }
        }
        guard sawByteLevel else { throw bad("pre_tokenizer", "no ByteLevel pre-tokenizer") }
        var tokens = try TokenizerJSON.vocabulary(model, bad: bad)
        let added = try TokenizerJSON.addedTokens(d, tokens: &tokens, bad: bad)
        if let i = added.firstIndex(where: { $0.lstrip || $0.rstrip }) {
            throw bad("added_tokens[\(i)].\(added[i].lstrip ? "lstrip" : "rstrip")", "is not supported with byte-level BPE")
        }
        // Under a normalizer, a token marked normalized is matched in the normalized text, which Winnow does not do.
        if nfc, let i = added.firstIndex(where: { $0.normalized && !$0.special && $0.content.precomposedStringWithCanonicalMapping != $0.content }) {
            throw bad("added_tokens[\(i)].normalized", "'\(added[i].content)' changes under NFC and is matched after it: not supported")
        }
        let merges = try TokenizerJSON.merges(model, bad: bad)
        let post = try TokenizerJSON.postProcessor(d, bad: bad)
        try self.init(tokens: tokens, merges: merges, added: added.map { ($0.content, $0.id, $0.special) }, bosID: post.bos, eosID: post.eos,
                      padID: TokenizerJSON.padID(added, eos: post.eos), pairTemplate: post.pair, isolateDigits: isolate,
                      ignoreMerges: model["ignore_merges"] as? Bool ?? false, split: split, normalizeNFC: nfc, source: path)
    }
}
