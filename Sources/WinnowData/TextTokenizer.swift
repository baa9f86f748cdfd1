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

    /// The tokenizer saved in `folder` (or the `.gguf` file `folder` names): byte-level BPE from a GGUF
    /// file's metadata when the folder holds one and no `vocab.txt`, or from a BPE `tokenizer.json`; else
    /// WordPiece from `vocab.txt` (with `tokenizer_config.json`) or from a WordPiece `tokenizer.json`.
    ///
    /// - Throws: `WinnowError` naming the file that is missing or malformed.
    public static func load(folder: URL) throws -> any TextTokenizer {
        try checkOneGGUF(in: folder)
        if let gguf = ggufFile(in: folder) { return try ByteLevelBPETokenizer(gguf: GGUFFile(url: gguf)) }
        let json = folder.appendingPathComponent("tokenizer.json")
        // A BPE tokenizer.json is the model's whatever else lies beside it (a stray vocab.txt included).
        if let data = FileManager.default.contents(atPath: json.path),
           let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           (obj["model"] as? [String: Any])?["type"] as? String == "BPE" {
            return try ByteLevelBPETokenizer(tokenizerJSON: json)
        }
        let fm = FileManager.default
        if !fm.fileExists(atPath: folder.appendingPathComponent("vocab.txt").path) && !fm.fileExists(atPath: json.path) {
            // Name what is missing rather than the vocab.txt a WordPiece reader would look for.
            throw WinnowError.missingFile(path: folder.path, reason: fm.fileExists(atPath: folder.path)
                ? "no tokenizer here: tokenizer.json (byte-level BPE or WordPiece), vocab.txt or a .gguf file" : "no such file or folder")
        }
        return try BertTokenizer(folder: folder)
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
