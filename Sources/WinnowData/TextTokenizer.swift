import Foundation
import WinnowCore

/// What datasets need of a tokenizer: text (and an optional second segment) to the ids a model reads,
/// with the model's special tokens, truncated to a length. A tokenizer family (WordPiece now, byte-level
/// BPE next) conforms to this; nothing above the data layer names a concrete tokenizer.
///
///     let tok = try Tokenizers.load(folder: URL(fileURLWithPath: "models/minilm"))
///     let enc = tok.encode("a premise", pair: "a hypothesis", maxLength: 128)
public protocol TextTokenizer: Sendable {
    /// Ids of `text` (and `pair`) with the model's special tokens, at most `maxLength` tokens.
    func encode(_ text: String, pair: String?, maxLength: Int?) -> Encoding
    /// Number of ids the tokenizer can produce.
    var vocabularySize: Int { get }
    /// The id batches are padded with.
    var padID: Int32 { get }
}

/// The tokenizers decoder models read: byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen2) and SentencePiece
/// BPE (Llama 2, Mistral, TinyLlama). Ids of plain text without special tokens (`tokenizer(text,
/// add_special_tokens=False)`), and the special tokens a model's tokenizer puts around one text or a pair.
///
///     let tok = try Tokenizers.decoder(folder: URL(fileURLWithPath: "models/smollm2"))
///     tok.ids("Hello world")        // [19556, 905]
public protocol DecoderTokenizer: TextTokenizer {
    /// Every token's spelling by id (the model's vocabulary, then added tokens beyond it).
    var tokens: [String] { get }
    /// Tokens matched whole in the raw text before anything else, with their ids; `special` ones are the
    /// model's control tokens.
    var addedTokens: [(content: String, id: Int32, special: Bool)] { get }
    /// Prepended to a single text when set.
    var bosID: Int32? { get }
    /// Appended to a single text when set.
    var eosID: Int32? { get }
    /// The special ids around a pair: before the first text, between the two, after the second.
    var pairTemplate: (prefix: [Int32], middle: [Int32], suffix: [Int32]) { get }
    /// The ids of `text` without BOS/EOS.
    func ids(_ text: String) -> [Int32]
}

extension DecoderTokenizer {
    /// Number of tokens.
    public var vocabularySize: Int { tokens.count }

    /// Ids of `text` (a `pair` follows it; an empty pair is none, as transformers reads it), with the
    /// BOS/EOS the tokenizer adds, truncated to `maxLength` (the end of the longer side first, as
    /// transformers' longest_first).
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var a = ids(text)
        var b = pair.flatMap { $0.isEmpty ? nil : ids($0) }
        let specials = b == nil ? (bosID != nil ? 1 : 0) + (eosID != nil ? 1 : 0)
            : pairTemplate.prefix.count + pairTemplate.middle.count + pairTemplate.suffix.count
        if let maxLength {
            let budget = max(0, maxLength - specials)
            while a.count + (b?.count ?? 0) > budget {
                if let bb = b, bb.count > a.count { b!.removeLast() } else if !a.isEmpty { a.removeLast() } else { b!.removeLast() }
            }
        }
        var out: [Int32] = []
        if let b {
            out = pairTemplate.prefix + a + pairTemplate.middle + b + pairTemplate.suffix
        } else {
            if let bosID { out.append(bosID) }
            out += a
            if let eosID { out.append(eosID) }
        }
        return Encoding(inputIDs: out, tokenTypeIDs: [Int32](repeating: 0, count: out.count))
    }
}

extension BertTokenizer: TextTokenizer {
    /// Number of ids in the vocabulary.
    public var vocabularySize: Int { vocabulary.count }
    /// The vocabulary's `[PAD]` id.
    public var padID: Int32 { vocabulary.padID }
}

/// Finds the tokenizer of a model or run folder.
public enum Tokenizers {
    /// The error text for a token id the model's embedding table has no row for.
    package static func outsideModelVocabulary(_ id: Int32, _ vocabulary: Int) -> String {
        "token id \(id) is outside the model's vocabulary of \(vocabulary) (config vocab_size): the tokenizer does not belong to this model"
    }

    /// The tokenizer saved in `folder` (or the `.gguf` file `folder` names): byte-level or SentencePiece
    /// BPE from a GGUF file's metadata when the folder holds one and no `vocab.txt`, or from a BPE
    /// `tokenizer.json`; else WordPiece from `vocab.txt` (with `tokenizer_config.json`) or from a WordPiece
    /// `tokenizer.json`.
    ///
    /// - Throws: `WinnowError` naming the file that is missing or malformed.
    public static func load(folder: URL) throws -> any TextTokenizer {
        try checkOneGGUF(in: folder)
        if let gguf = ggufFile(in: folder) { return try Self.gguf(GGUFFile(url: gguf)) }
        let json = folder.appendingPathComponent("tokenizer.json")
        // A BPE tokenizer.json is the model's whatever else lies beside it (a stray vocab.txt included).
        if let data = FileManager.default.contents(atPath: json.path),
           let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           (obj["model"] as? [String: Any])?["type"] as? String == "BPE" {
            return try bpe(tokenizerJSON: json, object: obj)
        }
        let fm = FileManager.default
        if !fm.fileExists(atPath: folder.appendingPathComponent("vocab.txt").path) && !fm.fileExists(atPath: json.path) {
            // Name what is missing rather than the vocab.txt a WordPiece reader would look for.
            throw WinnowError.missingFile(path: folder.path, reason: fm.fileExists(atPath: folder.path)
                ? "no tokenizer here: tokenizer.json (byte-level BPE or WordPiece), vocab.txt or a .gguf file" : "no such file or folder")
        }
        return try BertTokenizer(folder: folder)
    }

    /// The tokenizer of a decoder model folder (or `.gguf` file): byte-level or SentencePiece BPE.
    ///
    /// - Throws: `WinnowError` naming the file that is missing or malformed, or the folder when its
    ///   tokenizer is WordPiece (an encoder's).
    public static func decoder(folder: URL) throws -> any DecoderTokenizer {
        guard let tok = try load(folder: folder) as? any DecoderTokenizer else {
            throw WinnowError.invalidFile(path: folder.path, line: nil, reason: "holds a WordPiece tokenizer (an encoder's); a decoder needs byte-level or SentencePiece BPE (GGUF or tokenizer.json)")
        }
        return tok
    }

    /// A BPE `tokenizer.json`: byte-level when a `ByteLevel` pre-tokenizer is among its steps, else
    /// SentencePiece's (which refuses a file that is neither, naming the key).
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and key.
    public static func bpe(tokenizerJSON url: URL) throws -> any DecoderTokenizer {
        let (d, _) = try TokenizerJSON.read(url)
        return try bpe(tokenizerJSON: url, object: d)
    }

    private static func bpe(tokenizerJSON url: URL, object d: [String: Any]) throws -> any DecoderTokenizer {
        let pre = d["pre_tokenizer"] as? [String: Any]
        let steps = pre?["type"] as? String == "Sequence" ? (pre?["pretokenizers"] as? [[String: Any]] ?? []) : (pre.map { [$0] } ?? [])
        if steps.contains(where: { $0["type"] as? String == "ByteLevel" }) { return try ByteLevelBPETokenizer(tokenizerJSON: url) }
        return try SentencePieceBPETokenizer(tokenizerJSON: url)
    }

    /// The tokenizer of a GGUF file's `tokenizer.ggml.*` metadata: byte-level BPE (model `gpt2`) or
    /// SentencePiece BPE (model `llama`).
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and the key that is missing or unsupported.
    package static func gguf(_ f: GGUFFile) throws -> any DecoderTokenizer {
        let model = f.metadata["tokenizer.ggml.model"]?.string
        if model == "llama" { return try SentencePieceBPETokenizer(gguf: f) }
        return try ByteLevelBPETokenizer(gguf: f)
    }

    /// Refuses a folder that holds several `.gguf` files (a Q4_1 and a Q8_0 beside each other): which one is
    /// the model would be a guess.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the folder and the files.
    package static func checkOneGGUF(in url: URL) throws {
        guard url.pathExtension.lowercased() != "gguf", let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return }
        let ggufs = names.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        if ggufs.count > 1 {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason:
                "holds \(ggufs.count) .gguf files (\(ggufs.joined(separator: ", "))): give the path of the one to use")
        }
    }

    /// `url` itself when it is a `.gguf` file, or the one `.gguf` file of a folder without `vocab.txt`.
    package static func ggufFile(in url: URL) -> URL? {
        if url.pathExtension.lowercased() == "gguf" { return url }
        let fm = FileManager.default
        guard !fm.fileExists(atPath: url.appendingPathComponent("vocab.txt").path),
              let names = try? fm.contentsOfDirectory(atPath: url.path) else { return nil }
        let ggufs = names.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        return ggufs.first.map { url.appendingPathComponent($0) }
    }
}
