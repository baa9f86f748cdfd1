import Foundation
import WinnowCore

/// Hugging Face's byte-level BPE (the `tokenizers` pipeline of GPT-2, SmolLM2, Llama 3, Qwen2): added
/// tokens are split out of the raw text first; the rest is cut by the GPT-2 pattern, each piece's UTF-8
/// bytes are spelt in the byte alphabet (`Ġ` for a space) and merged by rank. Ids equal
/// `AutoTokenizer.from_pretrained(...)(text)["input_ids"]`, the BOS/EOS included only when the model's
/// tokenizer adds them.
///
///     let tok = try ByteLevelBPETokenizer(gguf: file)          // tokenizer.ggml.* of a GGUF file
///     tok.encode("Hello world", pair: nil, maxLength: nil).inputIDs   // [19556, 905]
public struct ByteLevelBPETokenizer: TextTokenizer {
    /// Every token, spelt in the byte alphabet, by id.
    public let tokens: [String]
    /// Tokens matched whole in the raw text before anything else, with their ids; `special` ones are
    /// the model's control tokens.
    public let addedTokens: [(content: String, id: Int32, special: Bool)]
    /// Prepended / appended to every sequence when set.
    public let bosID: Int32?, eosID: Int32?
    /// The id batches are padded with.
    public let padID: Int32

    private let idOf: [String: Int32]
    /// Merge rank and result of each mergeable pair of ids.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// The id of each byte's one-character spelling; -1 where the vocabulary has none (such a byte is
    /// dropped, as tokenizers' BPE does without an unknown token or byte fallback).
    private let byteIDs: [Int32]
    private let added: AddedTokenMatcher

    /// Number of tokens.
    public var vocabularySize: Int { tokens.count }

    /// A tokenizer from its parts. `merges` are pairs of token spellings, highest priority first.
    ///
    /// - Throws: `WinnowError.invalidFile` (naming `source`) when a merge names an unknown token or its
    ///   result is not a token.
    public init(tokens: [String], merges: [(String, String)], added: [(content: String, id: Int32, special: Bool)],
                bosID: Int32?, eosID: Int32?, padID: Int32, source: String) throws {
        self.tokens = tokens
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

    /// Ids of `text` (a `pair` follows it), with the BOS/EOS the tokenizer adds, truncated to `maxLength`
    /// (the end of the longer side first, as transformers' longest_first).
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var a = ids(text)
        var b = pair.map { ids($0) }
        let specials = (bosID != nil ? 1 : 0) + (eosID != nil ? 1 : 0)
        if let maxLength {
            let budget = max(0, maxLength - specials * (b == nil ? 1 : 2))
            while a.count + (b?.count ?? 0) > budget {
                if let bb = b, bb.count > a.count { b!.removeLast() } else if !a.isEmpty { a.removeLast() } else { b!.removeLast() }
            }
        }
        var out: [Int32] = []
        func wrap(_ x: [Int32]) { if let bosID { out.append(bosID) }; out += x; if let eosID { out.append(eosID) } }
        wrap(a)
        if let b { wrap(b) }
        return Encoding(inputIDs: out, tokenTypeIDs: [Int32](repeating: 0, count: out.count))
    }

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

    /// Pre-tokenises text without added tokens by the GPT-2 pattern and merges each piece.
    func encodePlain(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        for piece in Self.pieces(s) {
            var bytes: [UInt8] = []
            for sc in s[piece] { bytes += Array(String(sc).utf8) }
            merge(bytes, into: &out)
        }
    }

    /// BPE on one piece: start from its bytes' tokens, merge the pair of lowest rank (the leftmost on a
    /// tie) until no pair merges.
    func merge(_ bytes: [UInt8], into out: inout [Int32]) {
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

    /// The ranges of `s` that `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// matches one after another (it matches every character).
    static func pieces(_ s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = s.startIndex
        let end = s.endIndex
        func isLetter(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
            default: false
            }
        }
        func isNumber(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: true
            default: false
            }
        }
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
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
    /// `tokenizer.ggml.pre` values for which transformers splits text by another pattern than GPT-2's
    /// (Llama 3, Qwen2, GPT-4o and their kin); Winnow refuses them rather than tokenize differently.
    static let otherSplits: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                                           "jina-v5-nano", "dbrx", "smaug-bpe", "tekken", "qwen2", "deepseek-r1-qwen", "kormo",
                                           "f2llmv2", "megrez", "qwen35", "gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"]

    /// The tokenizer of a GGUF file's `tokenizer.ggml.*` metadata, built as transformers builds it from the
    /// file: model `gpt2` (byte-level BPE) with the GPT-2 pattern; CONTROL tokens (type 3) are special
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
            throw bad("tokenizer.ggml.model", "'\(model)' is not supported (byte-level BPE, 'gpt2', is)")
        }
        if let pre = m["tokenizer.ggml.pre"]?.string, Self.otherSplits.contains(pre) {
            throw bad("tokenizer.ggml.pre", "'\(pre)' splits text by another pattern than GPT-2's, which Winnow does not implement")
        }
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
                      padID: try id("tokenizer.ggml.padding_token_id") ?? eos ?? 0, source: path)
    }
}
