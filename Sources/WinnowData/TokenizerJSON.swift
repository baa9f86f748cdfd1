import Foundation
import WinnowCore

/// The parts of a Hugging Face `tokenizer.json` that byte-level and SentencePiece BPE read alike: the
/// model's vocabulary and merges, the added tokens and the post-processor's special tokens. Every
/// error names the file and the key.
enum TokenizerJSON {
    /// One added token as the file states it.
    struct Added {
        var content: String
        var id: Int32
        var special: Bool
        /// Matched in the normalized text rather than the raw one.
        var normalized: Bool
        /// Whitespace before (lstrip) or after (rstrip) a match is taken into it.
        var lstrip = false, rstrip = false
    }

    /// The file as a JSON object, and a maker of errors naming it and a key.
    static func read(_ url: URL) throws -> (object: [String: Any], bad: (String, String) -> WinnowError) {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw WinnowError.missingFile(path: path, reason: "no tokenizer.json here") }
        guard let d = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not a JSON object")
        }
        return (d, { key, why in .invalidFile(path: path, line: nil, reason: "key '\(key)': \(why)") })
    }

    /// `model`, checked to be BPE without dropout or a subword prefix or suffix.
    static func bpeModel(_ d: [String: Any], bad: (String, String) -> WinnowError) throws -> [String: Any] {
        guard let model = d["model"] as? [String: Any] else { throw bad("model", "missing or not an object") }
        guard model["type"] as? String == "BPE" else { throw bad("model.type", "'\(model["type"] ?? "none")' is not BPE") }
        for k in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[k] as? String, !v.isEmpty { throw bad("model.\(k)", "'\(v)' is not supported") }
        }
        if let drop = model["dropout"] as? NSNumber, drop.doubleValue > 0 { throw bad("model.dropout", "BPE dropout is not supported") }
        return model
    }

    /// `model.vocab` as spellings by id.
    static func vocabulary(_ model: [String: Any], bad: (String, String) -> WinnowError) throws -> [String] {
        guard let vocab = model["vocab"] as? [String: Any] else { throw bad("model.vocab", "missing or not an object") }
        var tokens = [String](repeating: "", count: vocab.count)
        for (t, v) in vocab {
            guard let n = (v as? NSNumber)?.intValue, n >= 0, n < vocab.count else { throw bad("model.vocab", "'\(t)' has id \(v), outside 0..<\(vocab.count)") }
            tokens[n] = t
        }
        return tokens
    }

    /// `model.vocab` as spellings by id, read from the file's bytes: a Swift dictionary keyed by String merges
    /// canonically equivalent keys (Greek "ί" U+03AF and U+1F77 are two tokens of Llama 2), so the object
    /// JSONSerialization gives loses tokens; this walks the (already validated) JSON and keeps every key as written.
    static func vocabularyAsWritten(_ data: Data, bad: (String, String) -> WinnowError) throws -> [String] {
        var w = JSONWalker(bytes: [UInt8](data))
        guard let entries = try w.objectEntries(at: ["model", "vocab"]) else { throw bad("model.vocab", "missing or not an object") }
        var tokens = [String?](repeating: nil, count: entries.count)
        for (t, v) in entries {
            guard let n = v, n >= 0, n < entries.count else { throw bad("model.vocab", "'\(t)' has id \(v.map(String.init) ?? "that is not an integer"), outside 0..<\(entries.count)") }
            tokens[n] = t
        }
        return tokens.map { $0 ?? "" }
    }

    /// `model.merges`, as "a b" strings or pairs.
    static func merges(_ model: [String: Any], bad: (String, String) -> WinnowError) throws -> [(String, String)] {
        try (model["merges"] as? [Any] ?? []).enumerated().map { i, m -> (String, String) in
            if let s = m as? String {
                // Cut at the space scalar: a space followed by a combining mark is one Character in Swift.
                let parts = s.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw bad("model.merges[\(i)]", "'\(s)' is not two tokens separated by a space") }
                return (String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1])))
            }
            guard let pair = m as? [String], pair.count == 2 else { throw bad("model.merges[\(i)]", "is neither \"a b\" nor a pair of strings") }
            return (pair[0], pair[1])
        }
    }

    /// `added_tokens`; a token beyond the vocabulary extends `tokens` (its spelling filled in).
    static func addedTokens(_ d: [String: Any], tokens: inout [String], bad: (String, String) -> WinnowError) throws -> [Added] {
        let vocabCount = tokens.count
        let list = d["added_tokens"] as? [[String: Any]] ?? []
        var added: [Added] = []
        for (i, a) in list.enumerated() {
            guard let content = a["content"] as? String, let id = (a["id"] as? NSNumber)?.intValue, id >= 0 else {
                throw bad("added_tokens[\(i)]", "needs a string content and a non-negative id")
            }
            if a["single_word"] as? Bool == true { throw bad("added_tokens[\(i)].single_word", "is not supported") }
            let limit = vocabCount + list.count
            guard id < limit else { throw bad("added_tokens[\(i)]", "id \(id) is beyond the vocabulary and the added tokens (\(limit))") }
            while tokens.count <= id { tokens.append("") }
            if tokens[id].isEmpty { tokens[id] = content }
            let special = a["special"] as? Bool ?? false
            // tokenizers' default: a special token is matched in the raw text, another in the normalized one.
            added.append(Added(content: content, id: Int32(id), special: special, normalized: a["normalized"] as? Bool ?? !special,
                               lstrip: a["lstrip"] as? Bool ?? false, rstrip: a["rstrip"] as? Bool ?? false))
        }
        return added
    }

    /// The special tokens the post-processor puts around one text (BOS, EOS) and around a pair: a
    /// `TemplateProcessing` (`[special] $A [special]`), `ByteLevel` (none), or a `Sequence` of them.
    static func postProcessor(_ d: [String: Any], bad: (String, String) -> WinnowError) throws
        -> (bos: Int32?, eos: Int32?, pair: (prefix: [Int32], middle: [Int32], suffix: [Int32])) {
        var bos: Int32? = nil, eos: Int32? = nil
        var pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32]) = ([], [], [])
        // A Sequence (Llama 3's: ByteLevel, which only trims offsets, then TemplateProcessing) is read as its steps.
        var posts: [[String: Any]] = []
        if let post = d["post_processor"] as? [String: Any] {
            posts = post["type"] as? String == "Sequence" ? (post["processors"] as? [[String: Any]] ?? []) : [post]
            if posts.count(where: { $0["type"] as? String != "ByteLevel" }) > 1 {
                throw bad("post_processor", "a Sequence with more than one TemplateProcessing is not supported")
            }
        }
        for post in posts {
            switch post["type"] as? String {
            case "ByteLevel": break
            case "TemplateProcessing":
                let single = post["single"] as? [[String: Any]] ?? []
                let specials = post["special_tokens"] as? [String: [String: Any]] ?? [:]
                func id(_ item: [String: Any]) throws -> Int32? {
                    guard let st = item["SpecialToken"] as? [String: Any], let name = st["id"] as? String else { return nil }
                    guard let ids = specials[name]?["ids"] as? [NSNumber], ids.count == 1 else {
                        throw bad("post_processor.special_tokens", "'\(name)' needs exactly one id")
                    }
                    return Int32(ids[0].intValue)
                }
                guard let a = single.firstIndex(where: { ($0["Sequence"] as? [String: Any])?["id"] as? String == "A" }),
                      a <= 1, single.count - a - 1 <= 1 else {
                    throw bad("post_processor.single", "only [special] $A [special] templates are supported")
                }
                bos = a == 1 ? try id(single[0]) : nil
                eos = a + 1 < single.count ? try id(single[a + 1]) : nil
                let pair = post["pair"] as? [[String: Any]] ?? []
                func seq(_ item: [String: Any]) -> String? { (item["Sequence"] as? [String: Any])?["id"] as? String }
                guard let pa = pair.firstIndex(where: { seq($0) == "A" }), let pb = pair.firstIndex(where: { seq($0) == "B" }), pa < pb else {
                    throw bad("post_processor.pair", "needs $A before $B")
                }
                func ids(_ items: ArraySlice<[String: Any]>) throws -> [Int32] { try items.map { item in
                    guard let v = try id(item) else { throw bad("post_processor.pair", "only special tokens may stand around $A and $B") }
                    return v
                } }
                pairTemplate = (try ids(pair[..<pa]), try ids(pair[(pa + 1)..<pb]), try ids(pair[(pb + 1)...]))
            default:
                throw bad("post_processor", "'\(post["type"] ?? "?")' is not supported (TemplateProcessing and ByteLevel are)")
            }
        }
        return (bos, eos, pairTemplate)
    }

    /// The id batches are padded with: a padding-like added token, else EOS, else 0.
    static func padID(_ added: [Added], eos: Int32?) -> Int32 {
        added.first { ["<|endoftext|>", "<pad>", "<|pad|>"].contains($0.content) }?.id ?? eos ?? 0
    }
}

/// A reader of one object's entries in a JSON text that JSONSerialization has already accepted: keys are
/// decoded as written (escapes and surrogate pairs included) and integer values read; everything else is
/// skipped. Nesting deeper than 512 levels is refused rather than recursed into.
struct JSONWalker {
    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    enum Failure: Error { case malformed, tooDeep }

    /// The entries of the object at `path` (object keys from the top), each with its value when that is an
    /// integer; nil when the path leads nowhere or to something other than an object.
    mutating func objectEntries(at path: [String]) throws -> [(String, Int?)]? {
        do {
            i = 0
            skipSpace()
            return try find(path[...], depth: 0)
        } catch {
            return nil
        }
    }

    private mutating func find(_ path: ArraySlice<String>, depth: Int) throws -> [(String, Int?)]? {
        guard depth < 512 else { throw Failure.tooDeep }
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { try skipValue(depth: depth); return nil }
        i += 1
        var out: [(String, Int?)] = []
        var found: [(String, Int?)]? = nil
        skipSpace()
        if peek() == UInt8(ascii: "}") { i += 1; return path.isEmpty ? out : nil }
        while true {
            skipSpace()
            let key = try string()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            if path.isEmpty {
                out.append((key, integer()))
                try skipValue(depth: depth + 1)
            } else if key == path.first! {
                // A repeated key: the last one stands, as serde reads it.
                if let f = try find(path.dropFirst(), depth: depth + 1) { found = f }
            } else {
                try skipValue(depth: depth + 1)
            }
            skipSpace()
            if peek() == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "}"))
            return path.isEmpty ? out : found
        }
    }

    private func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func expect(_ c: UInt8) throws {
        guard peek() == c else { throw Failure.malformed }
        i += 1
    }

    private mutating func skipSpace() {
        while let c = peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
    }

    /// The integer at the cursor, without moving it; nil for any other value.
    private func integer() -> Int? {
        var j = i, v = 0, negative = false
        if j < bytes.count && bytes[j] == UInt8(ascii: "-") { negative = true; j += 1 }
        let start = j
        while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, j - start < 18 { v = v * 10 + Int(bytes[j] - 0x30); j += 1 }
        guard j > start, j == bytes.count || !"0123456789.eE".utf8.contains(bytes[j]) else { return nil }
        return negative ? -v : v
    }

    private mutating func string() throws -> String {
        guard let s = JSONText.string(bytes, &i) else { throw Failure.malformed }
        return s
    }

    /// Moves past one value of any kind.
    private mutating func skipValue(depth: Int) throws {
        guard depth < 512 else { throw Failure.tooDeep }
        guard let c = peek() else { throw Failure.malformed }
        switch c {
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            skipSpace()
            if peek() == close { i += 1; return }
            while true {
                skipSpace()
                if c == UInt8(ascii: "{") { _ = try string(); skipSpace(); try expect(UInt8(ascii: ":")); skipSpace() }
                try skipValue(depth: depth + 1)
                skipSpace()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(close)
                return
            }
        default:
            while let d = peek(), !",}] \n\r\t".utf8.contains(d) { i += 1 }
        }
    }
}

/// JSON text pieces both byte-level readers share (`JSONWalker`, and the chat messages' ordered reader).
enum JSONText {
    /// The string whose opening quote is at `bytes[i]`, `i` moved past its closing quote; nil when it is malformed
    /// (no closing quote, a bad escape). A lone surrogate escape reads as U+FFFD.
    static func string(_ bytes: [UInt8], _ i: inout Int) -> String? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        var scalars = String.UnicodeScalarView()
        var run = i
        func flush(_ upTo: Int) { if upTo > run { scalars.append(contentsOf: String(decoding: bytes[run..<upTo], as: UTF8.self).unicodeScalars) } }
        func hex4() -> UInt32? {
            guard i + 4 <= bytes.count, bytes[i..<(i + 4)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else { return nil }
            defer { i += 4 }
            return UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { flush(i); i += 1; return String(scalars) }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            flush(i)
            guard i + 1 < bytes.count else { return nil }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{8}")
            case UInt8(ascii: "f"): scalars.append("\u{C}")
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(e))
            case UInt8(ascii: "u"):
                guard var u = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(u), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    guard let low = hex4() else { return nil }
                    if (0xDC00..<0xE000).contains(low) { u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00) } else { i = save }
                }
                scalars.append(Unicode.Scalar(u) ?? "\u{FFFD}")
            default: return nil
            }
            run = i
        }
        return nil
    }
}
