import Foundation
import WinnowCore

/// SentencePiece's BPE as Hugging Face's `tokenizers` and llama.cpp run it (Llama 2, Mistral, TinyLlama,
/// Phi-3, Gemma): added tokens are split out of the raw text first; in the rest a space is the token character
/// "▁" and a "▁" is put before the text; its characters are merged by priority (the merge list's rank, or
/// a GGUF file's token scores), and a character the vocabulary lacks becomes its UTF-8 bytes' `<0xXX>`
/// tokens (byte fallback) or the unknown token. Ids equal `AutoTokenizer.from_pretrained(...)(text)["input_ids"]`.
///
///     let tok = try Tokenizers.decoder(folder: URL(fileURLWithPath: "models/tinyllama"))
///     tok.ids("Hello world")     // [15043, 3186]: "▁Hello", "▁world"
public struct SentencePieceBPETokenizer: DecoderTokenizer {
    /// Every token's spelling by id ("▁" for a space, `<0x0A>` for a byte).
    public let tokens: [String]
    /// Tokens matched whole before anything else, with their ids; `special` ones are control tokens.
    public let addedTokens: [(content: String, id: Int32, special: Bool)]
    /// Prepended to a single text when set (the post-processor's, or the GGUF file's when it adds one).
    public let bosID: Int32?
    /// Appended to a single text when set.
    public let eosID: Int32?
    /// The special ids around a pair: before the first text, between the two, after the second.
    public let pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32])
    /// The id batches are padded with.
    public let padID: Int32
    /// Where a "▁" is put before the text.
    public let prefix: Prefix
    /// Cut the text before every "▁" and merge each piece alone (`Metaspace` with split); else the whole
    /// text between added tokens is one piece.
    public let splitAtSpaces: Bool

    /// Where the space marker "▁" goes before text.
    public enum Prefix: Sendable, Equatable {
        /// Before every stretch of text between added tokens, whatever it starts with (Llama 2's legacy
        /// normalizer `Prepend("▁")`, llama.cpp's add_space_prefix).
        case everyText
        /// Before the text at the very start of the input only, unless it already starts with "▁"
        /// (`Metaspace` with prepend_scheme first: Mistral v0.3, transformers' non-legacy Llama).
        case firstText
        /// Before every stretch of text that does not start with "▁" (`Metaspace`, prepend_scheme always).
        case everyTextUnmarked
        /// Nowhere.
        case none
    }

    /// The space marker.
    public static let marker: Unicode.Scalar = "\u{2581}"

    /// Ids by spelling, compared scalar by scalar.
    private let idOf: [Spelling: Int32]
    /// Ids of the one-character tokens.
    private let charID: [Unicode.Scalar: Int32]
    /// Priority (lower first) and result of each mergeable pair of ids.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// `<0xXX>` per byte, -1 where the vocabulary has none.
    private let byteIDs: [Int32]?
    private let unkID: Int32?
    private let fuseUnknown: Bool
    private let raw: AddedTokenMatcher
    private let normalized: AddedTokenMatcher
    /// Added tokens that take the whitespace before (lstrip) or after (rstrip) them into their match.
    private let strips: [Int32: (left: Bool, right: Bool)]
    /// Strip only ASCII whitespace (llama.cpp's `isspace`), else Unicode's (tokenizers').
    private let asciiStrip: Bool

    /// A tokenizer from its parts: `merges` are pairs of ids with their priority (lower merges first) and
    /// result; `normalizedAdded` are added tokens matched after the space marker is put in (tokenizers'
    /// `normalized: true` under a normalizer).
    init(tokens: [String], merges: [UInt64: (rank: Int32, id: Int32)], added: [(content: String, id: Int32, special: Bool)],
         normalizedAdded: Set<Int32> = [], strips: [Int32: (left: Bool, right: Bool)] = [:], asciiStrip: Bool = false,
         bosID: Int32?, eosID: Int32?, padID: Int32,
         pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32]), prefix: Prefix, splitAtSpaces: Bool,
         byteFallback: Bool, unkID: Int32?, fuseUnknown: Bool) {
        self.strips = strips
        self.asciiStrip = asciiStrip
        self.tokens = tokens
        var idOf: [Spelling: Int32] = [:], charID: [Unicode.Scalar: Int32] = [:]
        for (i, t) in tokens.enumerated() {     // a later duplicate wins, as in tokenizers
            idOf[Spelling(t)] = Int32(i)
            if t.unicodeScalars.count == 1 { charID[t.unicodeScalars.first!] = Int32(i) }
        }
        self.idOf = idOf
        self.charID = charID
        self.merges = merges
        self.addedTokens = added
        self.bosID = bosID
        self.eosID = eosID
        self.padID = padID
        self.pairTemplate = pairTemplate
        self.prefix = prefix
        self.splitAtSpaces = splitAtSpaces
        self.byteIDs = byteFallback ? (0..<256).map { idOf[Spelling(String(format: "<0x%02X>", $0))] ?? -1 } : nil
        self.unkID = unkID
        self.fuseUnknown = fuseUnknown
        raw = AddedTokenMatcher(added.filter { !normalizedAdded.contains($0.id) }.map { (Array($0.content.unicodeScalars), $0.id) })
        // A normalized token is matched as the normalizer writes it ("<s>" as "▁<s>" under Prepend), as tokenizers does.
        normalized = AddedTokenMatcher(added.filter { normalizedAdded.contains($0.id) }.map {
            ((prefix == .everyText ? [Self.marker] : []) + $0.content.unicodeScalars.map { $0 == " " ? Self.marker : $0 }, $0.id)
        })
    }

    private func isStripSpace(_ c: Unicode.Scalar) -> Bool {
        asciiStrip ? c == " " || ("\t"..."\r").contains(c) : c.properties.isWhitespace
    }

    // MARK: - Encoding

    /// The ids of `text` without BOS/EOS.
    public func ids(_ text: String) -> [Int32] {
        var out: [Int32] = []
        let scalars = Array(text.unicodeScalars)
        var start = 0
        for (lo, hi, id) in raw.matches(in: scalars) where lo >= start {
            var lo = lo, hi = hi
            if let st = strips[id] {
                if st.left { while lo > start, isStripSpace(scalars[lo - 1]) { lo -= 1 } }
                if st.right { while hi < scalars.count, isStripSpace(scalars[hi]) { hi += 1 } }
            }
            if lo > start { encodeText(scalars[start..<lo], atStart: start == 0, into: &out) }
            out.append(id)
            start = hi
        }
        if start < scalars.count { encodeText(scalars[start...], atStart: start == 0, into: &out) }
        return out
    }

    /// One stretch of text between raw-matched added tokens: spaces marked, the prefix put in, then
    /// normalized added tokens split out and the rest merged.
    private func encodeText(_ s: ArraySlice<Unicode.Scalar>, atStart: Bool, into out: inout [Int32]) {
        var t = s.map { $0 == " " ? Self.marker : $0 }
        let prefixed = switch prefix {
        case .everyText: true
        case .firstText: atStart && t.first != Self.marker
        case .everyTextUnmarked: t.first != Self.marker
        case .none: false
        }
        if prefixed { t.insert(Self.marker, at: 0) }
        var from = 0
        for (lo, hi, id) in normalized.matches(in: t) {
            if lo > from { encodePieces(t[from..<lo], into: &out) }
            out.append(id)
            from = hi
        }
        if from < t.count { encodePieces(t[from...], into: &out) }
    }

    /// Cuts before every "▁" when `splitAtSpaces`, and merges each piece.
    private func encodePieces(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        guard splitAtSpaces else { return merge(s, into: &out) }
        var from = s.startIndex
        for i in s.indices where s[i] == Self.marker && i > from {
            merge(s[from..<i], into: &out)
            from = i
        }
        if from < s.endIndex { merge(s[from...], into: &out) }
    }

    /// BPE on one piece: each character's token (or its bytes' tokens, or the unknown token, consecutive
    /// unknowns fused), then the pair of lowest priority merged, the leftmost on a tie, until none merges.
    func merge(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        var ids: [Int32] = []
        ids.reserveCapacity(s.count)
        var pendingUnknown = false
        for c in s {
            if let id = charID[c] {
                if pendingUnknown, let u = unkID { ids.append(u) }
                pendingUnknown = false
                ids.append(id)
                continue
            }
            if let byteIDs {
                let bytes = Array(String(c).utf8).map { byteIDs[Int($0)] }
                if !bytes.contains(-1) { ids += bytes; continue }
            }
            guard let u = unkID else { continue }     // without an unknown token the character is dropped, as tokenizers does
            if pendingUnknown && !fuseUnknown { ids.append(u) }
            pendingUnknown = true
        }
        if pendingUnknown, let u = unkID { ids.append(u) }
        out += BPEMerger.mergeAll(ids, merges)
    }
}

/// BPE's merge loop over a sequence of ids, as tokenizers' `Word::merge_all` and llama.cpp's SentencePiece
/// session run it: a heap of adjacent pairs ordered by priority then position; a popped pair is merged
/// when it is still there, and its new neighbours' pairs are pushed.
enum BPEMerger {
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    static func mergeAll(_ input: [Int32], _ merges: [UInt64: (rank: Int32, id: Int32)]) -> [Int32] {
        let n = input.count
        guard n > 1 else { return input }
        var sym = input
        var prev = (0..<n).map { $0 - 1 }, next = (0..<n).map { $0 + 1 == n ? -1 : $0 + 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ pos: Int) {
            let nx = next[pos]
            guard nx >= 0, let m = merges[key(sym[pos], sym[nx])] else { return }
            heap.push(UInt64(UInt32(bitPattern: m.rank)) << 32 | UInt64(pos))
        }
        for i in 0..<(n - 1) { push(i) }
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF), rank = Int32(bitPattern: UInt32(top >> 32))
            let nx = next[pos]
            guard alive[pos], nx >= 0, let m = merges[key(sym[pos], sym[nx])], m.rank == rank else { continue }
            sym[pos] = m.id
            alive[nx] = false
            next[pos] = next[nx]
            if next[nx] >= 0 { prev[next[nx]] = pos }
            if prev[pos] >= 0 { push(prev[pos]) }
            push(pos)
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 { out.append(sym[i]); i = next[i] }
        return out
    }

    /// A binary min-heap of packed (priority, position) keys.
    struct MinHeap {
        private var a: [UInt64] = []
        mutating func push(_ v: UInt64) {
            a.append(v)
            var i = a.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard a[p] > a[i] else { break }
                a.swapAt(p, i); i = p
            }
        }
        mutating func pop() -> UInt64? {
            guard let top = a.first else { return nil }
            let last = a.removeLast()
            if !a.isEmpty {
                a[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < a.count && a[l] < a[m] { m = l }
                    if r < a.count && a[r] < a[m] { m = r }
                    if m == i { break }
                    a.swapAt(m, i); i = m
                }
            }
            return top
        }
    }
}

extension SentencePieceBPETokenizer {
    /// A Hugging Face `tokenizer.json` of SentencePiece's kind: `BPE` (merges; byte_fallback, unk_token and
    /// fuse_unk as given), then either Llama 2's legacy normalizer (`Prepend("▁")` and `Replace(" ", "▁")`,
    /// or `Replace` alone) with no pre-tokenizer (or Gemma's `Split` at " ", which then splits nothing), or no
    /// normalizer and a `Metaspace` pre-tokenizer ("▁",
    /// prepend_scheme first, always or never, split or not); added tokens; a `TemplateProcessing`
    /// post-processor for BOS/EOS.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or unsupported.
    public init(tokenizerJSON url: URL) throws {
        let (d, bad) = try TokenizerJSON.read(url)
        let model = try TokenizerJSON.bpeModel(d, bad: bad)
        if model["ignore_merges"] as? Bool == true { throw bad("model.ignore_merges", "is not supported with SentencePiece's BPE") }
        let mark = String(Self.marker)
        var prefix = Prefix.none, split = false, normalizerMarks = false
        if let n = d["normalizer"], !(n is NSNull) {
            let obj = n as? [String: Any]
            let steps = obj?["type"] as? String == "Sequence" ? (obj?["normalizers"] as? [[String: Any]] ?? []) : (obj.map { [$0] } ?? [])
            for st in steps {
                switch st["type"] as? String {
                case "Prepend" where st["prepend"] as? String == mark: prefix = .everyText
                case "Replace" where (st["pattern"] as? [String: Any])?["String"] as? String == " " && st["content"] as? String == mark:
                    normalizerMarks = true
                default:
                    throw bad("normalizer", "'\(st["type"] ?? "?")' is not supported (SentencePiece's Prepend(\"▁\") and Replace(\" \", \"▁\") are)")
                }
            }
            guard normalizerMarks else { throw bad("normalizer", "Prepend(\"▁\") without Replace(\" \", \"▁\") is not supported") }
        }
        if let pre = d["pre_tokenizer"] as? [String: Any], normalizerMarks, pre["type"] as? String == "Split",
           (pre["pattern"] as? [String: Any])?["String"] as? String == " ", pre["invert"] as? Bool != true {
            // Gemma's: a split at " " after a normalizer that has made every space "▁" splits nothing.
        } else if let pre = d["pre_tokenizer"], !(pre is NSNull) {
            guard let p = pre as? [String: Any], p["type"] as? String == "Metaspace" else {
                throw bad("pre_tokenizer", "'\((pre as? [String: Any])?["type"] ?? pre)' is not supported with SentencePiece's BPE (Metaspace, or none, is)")
            }
            guard !normalizerMarks else { throw bad("pre_tokenizer", "Metaspace after a normalizer that marks spaces is not supported") }
            guard (p["replacement"] as? String ?? mark) == mark else { throw bad("pre_tokenizer.replacement", "only \"▁\" is supported") }
            // Older files say add_prefix_space (true: always) instead of prepend_scheme, and split by default.
            let scheme = p["prepend_scheme"] as? String ?? ((p["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            switch scheme {
            case "first": prefix = .firstText
            case "always": prefix = .everyTextUnmarked
            case "never": prefix = .none
            default: throw bad("pre_tokenizer.prepend_scheme", "'\(scheme)' is not first, always or never")
            }
            split = p["split"] as? Bool ?? true
        } else if !normalizerMarks {
            throw bad("normalizer", "neither a normalizer nor a Metaspace pre-tokenizer marks spaces: not SentencePiece's BPE")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw WinnowError.missingFile(path: url.path, reason: "cannot be read") }
        var tokens = try TokenizerJSON.vocabularyAsWritten(data, bad: bad)
        let vocabCount = tokens.count
        let added = try TokenizerJSON.addedTokens(d, tokens: &tokens, bad: bad)
        var idOf: [Spelling: Int32] = [:]
        for (i, t) in tokens.enumerated() { idOf[Spelling(t)] = Int32(i) }
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        for (rank, (a, b)) in try TokenizerJSON.merges(model, bad: bad).enumerated() {
            guard let ia = idOf[Spelling(a)], let ib = idOf[Spelling(b)] else { throw bad("model.merges[\(rank)]", "'\(a) \(b)' names a token that is not in the vocabulary") }
            guard let m = idOf[Spelling(a + b)] else { throw bad("model.merges[\(rank)]", "'\(a) \(b)' makes '\(a + b)', which is not in the vocabulary") }
            let k = BPEMerger.key(ia, ib)
            if table[k] == nil { table[k] = (Int32(rank), m) }
        }
        var unk: Int32? = nil
        if let name = model["unk_token"] as? String {
            guard let id = idOf[Spelling(name)], Int(id) < vocabCount else { throw bad("model.unk_token", "'\(name)' is not in the vocabulary") }
            unk = id
        }
        let post = try TokenizerJSON.postProcessor(d, bad: bad)
        // A normalized added token is matched after the normalizer (which marks spaces); without one, in the raw text.
        let normalizedAdded = normalizerMarks ? Set(added.filter(\.normalized).map(\.id)) : []
        var strips: [Int32: (left: Bool, right: Bool)] = [:]
        for a in added where a.lstrip || a.rstrip { strips[a.id] = (a.lstrip, a.rstrip) }
        self.init(tokens: tokens, merges: table, added: added.map { ($0.content, $0.id, $0.special) }, normalizedAdded: normalizedAdded,
                  strips: strips,
                  bosID: post.bos, eosID: post.eos, padID: TokenizerJSON.padID(added, eos: post.eos), pairTemplate: post.pair,
                  prefix: prefix, splitAtSpaces: split, byteFallback: model["byte_fallback"] as? Bool ?? false, unkID: unk,
                  fuseUnknown: model["fuse_unk"] as? Bool ?? false)
    }

    /// The tokenizer of a GGUF file whose `tokenizer.ggml.model` is `llama` (SentencePiece), tokenized as
    /// llama.cpp does: a pair of pieces merges when their concatenation is a token, the highest-scoring
    /// first (`tokenizer.ggml.scores`), the leftmost on a tie; a "▁" before every stretch of text
    /// (`tokenizer.ggml.add_space_prefix`, true unless said otherwise); characters outside the vocabulary
    /// fall back to BYTE tokens (type 6, `<0xXX>`), else the unknown token; CONTROL (3) and UNKNOWN (2)
    /// tokens are special added tokens and USER_DEFINED (4) plain ones; BOS added unless
    /// `tokenizer.ggml.add_bos_token` is false, EOS only when `add_eos_token` is true.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or malformed.
    package init(gguf f: GGUFFile) throws {
        try self.init(ggufMetadata: f.metadata, path: f.url.path)
    }

    /// The tokenizer of a GGUF file's metadata, errors naming `path`.
    package init(ggufMetadata m: [String: GGUFValue], path: String) throws {
        func bad(_ key: String, _ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: "key '\(key)': \(why)") }
        guard let raw = m["tokenizer.ggml.tokens"]?.array else { throw bad("tokenizer.ggml.tokens", "missing or not an array") }
        let tokens = try raw.enumerated().map { i, v -> String in
            guard let s = v.string else { throw bad("tokenizer.ggml.tokens", "entry \(i) is not a string") }
            return s
        }
        guard let rawScores = m["tokenizer.ggml.scores"]?.array else { throw bad("tokenizer.ggml.scores", "missing: SentencePiece's pieces merge by score") }
        guard rawScores.count == tokens.count else { throw bad("tokenizer.ggml.scores", "has \(rawScores.count) entries for \(tokens.count) tokens") }
        let scores = try rawScores.enumerated().map { i, v -> Double in
            guard let x = v.double, x.isFinite || x == -.infinity else { throw bad("tokenizer.ggml.scores", "entry \(i) is not a number") }
            return x
        }
        let types = try (m["tokenizer.ggml.token_type"]?.array ?? []).enumerated().map { i, v -> Int in
            guard let t = v.int else { throw bad("tokenizer.ggml.token_type", "entry \(i) is not an integer") }
            return t
        }
        guard types.isEmpty || types.count == tokens.count else {
            throw bad("tokenizer.ggml.token_type", "has \(types.count) entries for \(tokens.count) tokens")
        }
        var idOf: [Spelling: Int32] = [:]
        for (i, t) in tokens.enumerated() { idOf[Spelling(t)] = Int32(i) }
        // Priority: the rank of a token's score among the distinct scores, highest first (equal scores tie,
        // and the leftmost pair wins, as in llama.cpp).
        let distinct = Array(Set(scores)).sorted(by: >)
        var rankOf: [Double: Int32] = [:]
        for (r, x) in distinct.enumerated() { rankOf[x] = Int32(r) }
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        for (i, t) in tokens.enumerated() where idOf[Spelling(t)] == Int32(i) {
            let sc = Array(t.unicodeScalars)
            guard sc.count > 1 else { continue }
            for cut in 1..<sc.count {
                guard let l = idOf[Spelling(sc[..<cut])], let r = idOf[Spelling(sc[cut...])] else { continue }
                table[BPEMerger.key(l, r)] = (rankOf[scores[i]]!, Int32(i))
            }
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = m[key] else { return nil }
            guard let n = v.int, n >= 0, n < tokens.count else { throw bad(key, "\(v.summary) is not a token id") }
            return Int32(n)
        }
        var added: [(content: String, id: Int32, special: Bool)] = []
        for (i, t) in types.enumerated() where t == 2 || t == 3 || t == 4 { added.append((tokens[i], Int32(i), t != 4)) }
        let bos = try id("tokenizer.ggml.bos_token_id"), eos = try id("tokenizer.ggml.eos_token_id")
        let unk = try id("tokenizer.ggml.unknown_token_id") ?? (types.firstIndex(of: 2).map { Int32($0) })
        let addBOS = m["tokenizer.ggml.add_bos_token"]?.bool ?? true, addEOS = m["tokenizer.ggml.add_eos_token"]?.bool ?? false
        let b = addBOS ? bos.map { [$0] } ?? [] : [], e = addEOS ? eos.map { [$0] } ?? [] : []
        let pad = try id("tokenizer.ggml.padding_token_id") ?? added.first { $0.content == "<pad>" }?.id ?? eos ?? 0
        // llama.cpp strips the whitespace after Phi-3's special tokens (its tokenizer.json marks them rstrip), by the model's name.
        var strips: [Int32: (left: Bool, right: Bool)] = [:]
        let name = (m["general.name"]?.string ?? "").lowercased()
        if name.contains("phi3") || name.contains("phi-3") {
            for a in added where !["<unk>", "<s>", "<|endoftext|>"].contains(a.content) { strips[a.id] = (false, true) }
            if let e = idOf[Spelling("</s>")] { strips[e] = (false, true) }
        }
        self.init(tokens: tokens, merges: table, added: added, strips: strips, asciiStrip: true,
                  bosID: addBOS ? bos : nil, eosID: addEOS ? eos : nil, padID: pad,
                  pairTemplate: (b, e + b, e), prefix: m["tokenizer.ggml.add_space_prefix"]?.bool ?? true ? .everyText : .none,
                  splitAtSpaces: false, byteFallback: true, unkID: unk, fuseUnknown: false)
    }
}

/// A token's spelling compared scalar by scalar: Swift's String equality treats canonically equivalent
/// spellings as one (Greek "ί" U+03AF and U+1F77, "Å" U+00C5 and U+212B), which a vocabulary holds as
/// different tokens.
struct Spelling: Hashable {
    let scalars: [UInt32]
    init(_ s: some StringProtocol) { scalars = s.unicodeScalars.map(\.value) }
    init(_ s: ArraySlice<Unicode.Scalar>) { scalars = s.map(\.value) }
}
