import Foundation
import WinnowCore

/// The keys winnow reads from a Hugging Face `tokenizer_config.json` (all others are ignored):
/// `do_lower_case` and `strip_accents` for WordPiece tokenizers, `chat_template` and `eos_token` for
/// decoders. Each key may be absent or null; a key of the wrong type is an error naming the key.
///
///     let c = try TokenizerConfig.read(folder.appendingPathComponent("tokenizer_config.json"))
///     let lower = c?.doLowerCase ?? true
public struct TokenizerConfig: Sendable, Equatable {
    /// `do_lower_case`; nil when absent (BERT's default then: lower-case).
    public var doLowerCase: Bool?
    /// `strip_accents`; nil when absent or null (accents are stripped when lower-casing).
    public var stripAccents: Bool?
    /// `chat_template`: the template, or the one named "default" when the file holds a list of named
    /// templates (`[{"name": ..., "template": ...}]`, as transformers picks it); nil when there is none.
    public var chatTemplate: String?
    /// `eos_token`: its text, given as a string or as an added-token object's `content`.
    public var eosToken: String?
    /// `bos_token`, `unk_token` and `pad_token` alike (chat templates write them).
    public var bosToken: String?, unkToken: String?, padToken: String?

    /// The special tokens' spellings by the names chat templates use (`bos_token`, `eos_token`, ...).
    public var specialTokens: [String: String] {
        var d: [String: String] = [:]
        for (k, v) in [("bos_token", bosToken), ("eos_token", eosToken), ("unk_token", unkToken), ("pad_token", padToken)] { d[k] = v }
        return d
    }

    /// A configuration with the given keys.
    public init(doLowerCase: Bool? = nil, stripAccents: Bool? = nil, chatTemplate: String? = nil, eosToken: String? = nil) {
        self.doLowerCase = doLowerCase
        self.stripAccents = stripAccents
        self.chatTemplate = chatTemplate
        self.eosToken = eosToken
    }

    /// Parses a `tokenizer_config.json`.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file, and the key, when it cannot be read, is not a
    ///   JSON object, or holds one of the keys above with the wrong type.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot read the tokenizer configuration")
        }
        do {
            self = try JSONDecoder().decode(TokenizerConfig.self, from: data)
        } catch let e as DecodingError {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: Self.describe(e))
        }
    }

    /// The configuration in `url`; nil when the file does not exist.
    ///
    /// - Throws: as `init(contentsOf:)` when the file exists but is malformed.
    public static func read(_ url: URL) throws -> TokenizerConfig? {
        FileManager.default.fileExists(atPath: url.path) ? try TokenizerConfig(contentsOf: url) : nil
    }

    /// One line for a decoding error: the key path, then what was wrong.
    static func describe(_ e: DecodingError) -> String {
        let context: DecodingError.Context
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
        @unknown default: return "not a tokenizer configuration"
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        guard !path.isEmpty else {
            if case .typeMismatch = e { return "not a JSON object" }
            return "not valid JSON"
        }
        return "key '\(path)': \(context.debugDescription)"
    }
}

extension TokenizerConfig: Decodable {
    private enum Key: String, CodingKey { case do_lower_case, strip_accents, chat_template, eos_token, bos_token, unk_token, pad_token }
    private struct NamedTemplate: Decodable { var name: String; var template: String }
    private struct AddedToken: Decodable { var content: String }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        func present(_ k: Key) throws -> Bool { try c.contains(k) && !c.decodeNil(forKey: k) }
        doLowerCase = try c.decodeIfPresent(Bool.self, forKey: .do_lower_case)
        stripAccents = try c.decodeIfPresent(Bool.self, forKey: .strip_accents)
        if try present(.chat_template) {
            if let s = try? c.decode(String.self, forKey: .chat_template) {
                chatTemplate = s
            } else if let named = try? c.decode([NamedTemplate].self, forKey: .chat_template) {
                chatTemplate = named.first { $0.name == "default" }?.template
            } else {
                throw DecodingError.typeMismatch(String.self, .init(codingPath: [Key.chat_template],
                    debugDescription: "expected a string or a list of {\"name\", \"template\"} objects"))
            }
        }
        func token(_ k: Key) throws -> String? {
            guard try present(k) else { return nil }
            if let s = try? c.decode(String.self, forKey: k) { return s }
            if let t = try? c.decode(AddedToken.self, forKey: k) { return t.content }
            throw DecodingError.typeMismatch(String.self, .init(codingPath: [k],
                debugDescription: "expected a string or an object with a string \"content\""))
        }
        eosToken = try token(.eos_token)
        bosToken = try token(.bos_token)
        unkToken = try token(.unk_token)
        padToken = try token(.pad_token)
    }
}
