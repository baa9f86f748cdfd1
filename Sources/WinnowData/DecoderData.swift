import Foundation
import WinnowCore

/// One decoder example as token ids and the tokens its loss is on (docs/contracts.md §2b).
public struct DecoderEncoding: Sendable, Equatable {
    /// Token ids, special tokens included, at most the encoder's maximum length.
    public var ids: [Int32]
    /// Whether the model's prediction of token j (from position j - 1) is scored; false for token 0.
    public var scored: [Bool]

    /// Ids and their scored flags (the same count).
    public init(ids: [Int32], scored: [Bool]) {
        precondition(ids.count == scored.count, "DecoderEncoding: \(ids.count) ids, \(scored.count) flags")
        self.ids = ids
        self.scored = scored
    }

    /// Number of scored tokens.
    public var scoredCount: Int { scored.lazy.filter { $0 }.count }

    /// Next-token targets per position of a row of `length` (the row padded to it): the id of token
    /// j + 1 at position j when that token is scored, else -1.
    public func targets(length: Int) -> [Int32] {
        var t = [Int32](repeating: -1, count: length)
        for j in 1..<max(1, ids.count) where scored[j] { t[j - 1] = ids[j] }
        return t
    }
}

/// What a decoder model folder says about its text format: the end-of-sequence id (appended after a
/// completion), its chat template (rendered by ``ChatTemplate`` as transformers renders it) and the special
/// tokens' spellings the template writes.
public struct DecoderTemplate: Sendable {
    /// The model's end-of-sequence token (`eos_token_id` / `eos_token`), nil when it declares none.
    public var eosID: Int32?
    /// The chat template as stored (a Jinja source), nil when the model has none.
    public var chatTemplate: String?
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` as the tokenizer spells them, for the template.
    public var specialTokens: [String: String]
    /// What the template's `strftime_now` reads (Llama 3.1-3.3 write today's date): the time the template
    /// was read, so that one run writes one date.
    public var now: Date
    /// The template parsed, or why it cannot be (nil without a template).
    let parsed: Result<ChatTemplate, ChatTemplate.Failure>?

    /// A template from its parts.
    public init(eosID: Int32?, chatTemplate: String?, specialTokens: [String: String] = [:], now: Date = Date()) {
        self.eosID = eosID
        self.chatTemplate = chatTemplate
        self.specialTokens = specialTokens
        self.now = now
        parsed = chatTemplate.map { src in Result { try ChatTemplate(source: src) }.mapError { $0 as! ChatTemplate.Failure } }
    }

    /// The template of a model folder (or of the `.gguf` file `folder` names): GGUF metadata
    /// (`tokenizer.chat_template`, `tokenizer.ggml.eos_token_id`), else `tokenizer_config.json`
    /// (`chat_template`, `eos_token`) with `config.json`'s `eos_token_id`, the template read from
    /// `chat_template.jinja` when the config holds none.
    ///
    /// - Throws: `WinnowError.invalidFile` when a file is present but malformed.
    public static func load(folder: URL, tokenizer: any DecoderTokenizer) throws -> DecoderTemplate {
        if let g = Tokenizers.ggufFile(in: folder) {
            let m = try GGUFFile(url: g).metadata
            let eos = m["tokenizer.ggml.eos_token_id"]?.int.map { Int32($0) }
            // The spellings as the file stores them (a byte-level vocabulary respells tokens outside its alphabet,
            // such as DeepSeek's "<｜begin▁of▁sentence｜>", which the template must write as they are).
            var specials: [String: String] = [:]
            let spelt = m["tokenizer.ggml.tokens"]?.array ?? []
            for name in ["bos", "eos", "unknown", "padding"] {
                if let id = m["tokenizer.ggml.\(name)_token_id"]?.int, id >= 0, id < spelt.count, let t = spelt[id].string {
                    specials[["bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token"][name]!] = t
                }
            }
            return DecoderTemplate(eosID: eos, chatTemplate: m["tokenizer.chat_template"]?.string, specialTokens: specials)
        }
        var eos: Int32? = nil
        var template: String? = nil
        var specials: [String: String] = [:]
        if let c = try JSONObjectFile.read(folder.appendingPathComponent("config.json")) {
            if let n = c["eos_token_id"] as? NSNumber { eos = Int32(n.intValue) }
            else if let l = c["eos_token_id"] as? [NSNumber], let first = l.first { eos = Int32(first.intValue) }
        }
        if let tc = try TokenizerConfig.read(folder.appendingPathComponent("tokenizer_config.json")) {
            template = tc.chatTemplate
            specials = tc.specialTokens
            if let name = tc.eosToken, let id = tokenizer.addedTokens.first(where: { $0.content == name })?.id { eos = id }
        }
        // Recent transformers saves the template in a file of its own.
        let jinja = folder.appendingPathComponent("chat_template.jinja")
        if template == nil, FileManager.default.fileExists(atPath: jinja.path) {
            guard let text = try? String(contentsOf: jinja, encoding: .utf8) else {
                throw WinnowError.invalidFile(path: jinja.path, line: nil, reason: "cannot be read as UTF-8 text")
            }
            template = text
        }
        return DecoderTemplate(eosID: eos, chatTemplate: template, specialTokens: specials)
    }
}

/// Turns decoder examples into ids and scored tokens (docs/contracts.md §2b):
/// - `text`: the tokenizer's encoding (with the BOS/EOS it adds); every token after the first is scored.
/// - `input_ids`: those ids; every id after the first is scored, or those TRL's `completion_mask` (or
///   `assistant_masks`) marks 1. No tokenizer is needed.
/// - `prompt` + `completion`: ids of prompt + completion (one string, as TRL tokenizes it) then EOS;
///   the completion's tokens and the EOS are scored. A prompt that leaves no room for a completion token
///   within `maxLength` is an error.
/// - `messages`: with a ChatML template, turns `<|im_start|>ROLE\nCONTENT<|im_end|>\n` (with the template's
///   default system message when the first message is not a system message); with any other, the template
///   rendered by ``ChatTemplate``; ids as `apply_chat_template` gives them. Scored: the assistant turns' content
///   and their end-of-turn tokens (a token spanning the turn's first characters counts as the turn's). A
///   template that raises, that Winnow does not read, or that writes earlier turns otherwise once the
///   conversation goes on is refused.
/// Longer examples are truncated to `maxLength` tokens (the end is dropped).
public struct DecoderEncoder: Sendable {
    /// A note when the token limit asked for (`--max-length`) is longer than the model reads (its positions) and the
    /// model's is used; nil otherwise.
    package static func lengthNote(given: Int, modelLimit: Int) -> String? {
        given > modelLimit ? "note: the token limit \(given) (--max-length) exceeds the model's longest sequence (max_position_embeddings); using \(modelLimit)" : nil
    }

    /// What lifts the limit examples reach: --max-length, unless the model's own limit is the one in force.
    package static func limitAdvice(given: Int, modelLimit: Int) -> String {
        given >= modelLimit ? "the model reads no more (its positions)" : "--max-length raises the limit"
    }

    /// The model's tokenizer; nil when Winnow does not read it (another normalizer or split pattern,
    /// none at all): then `input_ids` lines encode, and every other line is refused with `tokenizerRefusal`.
    public let tokenizer: (any DecoderTokenizer)?
    /// Why `tokenizer` is nil (the error reading it); nil when it is read.
    public let tokenizerRefusal: String?
    /// The model's EOS and chat template.
    public let template: DecoderTemplate
    /// Tokens per example after truncation.
    public let maxLength: Int
    /// Rows of the model's embedding table (`vocab_size`), when known: an id at or above it is an error
    /// (a tokenizer that does not belong to the model), never a read past the table.
    public var modelVocabulary: Int?

    /// An encoder for a model's tokenizer and template.
    public init(tokenizer: any DecoderTokenizer, template: DecoderTemplate, maxLength: Int, modelVocabulary: Int? = nil) {
        self.init(tokenizer: tokenizer, refusal: nil, template: template, maxLength: maxLength, modelVocabulary: modelVocabulary)
    }

    private init(tokenizer: (any DecoderTokenizer)?, refusal: String?, template: DecoderTemplate, maxLength: Int, modelVocabulary: Int?) {
        self.tokenizer = tokenizer
        self.tokenizerRefusal = refusal
        self.template = template
        self.maxLength = maxLength
        self.modelVocabulary = modelVocabulary
    }

    /// The tokenizer and template of a decoder model folder (or GGUF file). A tokenizer Winnow does not read
    /// (or none) is no error here: lines that carry `input_ids` need none, and the others are refused by
    /// `encode` with the reason.
    ///
    /// - Throws: `WinnowError` when the chat template or generation config is malformed.
    public init(folder: URL, maxLength: Int, modelVocabulary: Int? = nil) throws {
        let tok: (any DecoderTokenizer)?, refusal: String?
        do {
            tok = try Tokenizers.decoder(folder: folder)
            refusal = nil
        } catch let e as WinnowError {
            tok = nil; refusal = e.description
        }
        if let tok {
            try self.init(tokenizer: tok, template: DecoderTemplate.load(folder: folder, tokenizer: tok), maxLength: maxLength,
                          modelVocabulary: modelVocabulary)
        } else {
            self.init(tokenizer: nil, refusal: refusal, template: DecoderTemplate(eosID: nil, chatTemplate: nil), maxLength: maxLength,
                      modelVocabulary: modelVocabulary)
        }
    }

    /// The id batches are padded with (masked out; 0 without a tokenizer).
    public var padID: Int32 { tokenizer?.padID ?? 0 }

    /// The encoding of one example read from `url` (for error messages).
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and line when the prompt does not fit, the
    ///   chat template refuses the messages, an id is outside the vocabulary, or the example has no text.
    public func encode(_ ex: Example, url: URL) throws -> DecoderEncoding {
        func fail(_ why: String) -> WinnowError { .invalidFile(path: url.path, line: ex.line, reason: why) }
        var ids: [Int32] = [], scored: [Bool] = []
        func add(_ part: [Int32], _ s: Bool) { ids += part; scored += [Bool](repeating: s, count: part.count) }
        if let given = ex.inputIDs {
            if let size = tokenizer?.vocabularySize ?? modelVocabulary, let bad = given.first(where: { $0 < 0 || Int($0) >= size }) {
                throw fail("input id \(bad) is outside the vocabulary (size \(size))")
            } else if let bad = given.first(where: { $0 < 0 }) {
                throw fail("input id \(bad) is negative")
            }
            if let mask = ex.lossMask {
                for (id, m) in zip(given, mask) { add([id], m) }
            } else {
                add(given, true)
            }
        } else if let tokenizerRefusal, tokenizer == nil {
            throw fail("needs the model's tokenizer to encode its text, which Winnow does not read (\(tokenizerRefusal)); "
                       + "give each example as input_ids, the ids of the model's own tokenizer (transformers' AutoTokenizer)")
        } else if let tokenizer, let text = ex.text {
            add(tokenizer.encode(text, pair: ex.pair, maxLength: maxLength).inputIDs, true)   // specials kept, as transformers truncates
        } else if let tokenizer, let prompt = ex.prompt, let completion = ex.completion {
            if let b = tokenizer.bosID { add([b], false) }
            let p = tokenizer.ids(prompt), full = tokenizer.ids(prompt + completion)
            // The completion starts where the prompt's own ids end (TRL's completion mask).
            let cut = full.starts(with: p) ? p.count : commonPrefix(p, full)
            add(Array(full[..<cut]), false)
            add(Array(full[cut...]), true)
            // TRL appends EOS to a completion that does not already end with it.
            if let e = template.eosID, !(full.count > cut && full.last == e) { add([e], true) }
        } else if let tokenizer, let messages = ex.messages {
            guard messages.contains(where: { $0.role == "assistant" }) else { throw fail("messages hold no assistant turn: nothing to score") }
            (ids, scored) = try renderedTurns(ex.chatMessages ?? ChatMessages(messages), tokenizer, fail)
        } else {
            throw fail("no text, prompt and completion, messages or input_ids")
        }
        if !scored.isEmpty { scored[0] = false }
        if ex.prompt != nil || ex.messages != nil || ex.lossMask != nil, let first = scored.firstIndex(of: true), first >= maxLength {
            throw fail(ex.lossMask != nil
                ? "the first id the mask marks is at position \(first), which leaves no marked id within the maximum length of \(maxLength) tokens"
                : "the prompt is \(first) tokens, which leaves no completion token within the maximum length of \(maxLength) tokens")
        }
        if ids.count > maxLength { ids.removeLast(ids.count - maxLength); scored.removeLast(scored.count - maxLength) }
        if let v = modelVocabulary, let bad = ids.first(where: { Int($0) >= v }) {
            throw fail(Tokenizers.outsideModelVocabulary(bad, v))
        }
        return DecoderEncoding(ids: ids, scored: scored)
    }

    private static let otherWay = "give prompt and completion instead, or input_ids with a completion_mask (as TRL tokenizes conversational prompt-completion data)"

    /// Messages through the model's own chat template (``ChatTemplate``, as apply_chat_template renders it):
    /// the ids of the whole conversation; scored, each assistant turn as the template writes it after the
    /// generation prompt (from the end of the messages before it rendered with `add_generation_prompt` to where
    /// the rendering that ends with it and the whole conversation's part), trailing whitespace aside. A token
    /// that ends inside a turn counts as the turn's (one spanning its first character too); one that runs past its
    /// end does not.
    private func renderedTurns(_ messages: ChatMessages, _ tokenizer: any DecoderTokenizer,
                               _ fail: (String) -> WinnowError) throws -> ([Int32], [Bool]) {
        guard let parsed = template.parsed else {
            throw fail("holds messages, but the model has no chat template; " + Self.otherWay)
        }
        let chat: ChatTemplate
        switch parsed {
        case .success(let t): chat = t
        case .failure(let f): throw fail("holds messages, but the model's chat template cannot be read (\(f)); " + Self.otherWay)
        }
        func render(_ n: Int, _ generation: Bool) throws -> [Unicode.Scalar] {
            Array(try chat.render(messages.prefix(n), addGenerationPrompt: generation, specialTokens: template.specialTokens,
                                  now: template.now).unicodeScalars)
        }
        let full: [Unicode.Scalar]
        do { full = try render(messages.count, false) } catch {
            throw fail("holds messages the model's chat template does not render (\(error))")
        }
        var spans: [Range<Int>] = []
        for (i, role) in messages.roles.enumerated() where role == "assistant" {
            let p: [Unicode.Scalar], r: [Unicode.Scalar]
            do { (p, r) = (try render(i, true), try render(i + 1, false)) } catch {
                throw fail("holds messages whose assistant turn \(spans.count + 1) cannot be located: the model's chat template does not render "
                           + "the conversation up to it (\(error)); a conversation that starts with an assistant turn? " + Self.otherWay)
            }
            guard r.starts(with: p), full.starts(with: p) else {
                throw fail("holds messages, but the model's chat template writes the conversation before assistant turn \(spans.count + 1) "
                           + "differently once it goes on (it drops or rewrites earlier turns), so the turn cannot be located; " + Self.otherWay)
            }
            // The turn ends where the rendering that stops after it and the whole conversation part (a template may
            // write something after the last message only, such as Phi-3.5's EOS), trailing whitespace aside.
            var end = zip(r, full).prefix { $0 == $1 }.count
            while end > p.count, ChatTemplate.isSpace(full[end - 1]) { end -= 1 }
            guard end > p.count else {
                throw fail("holds messages, but the model's chat template writes nothing for assistant turn \(spans.count + 1) (does it write the message's content?); " + Self.otherWay)
            }
            spans.append(p.count..<end)
        }
        func text(_ s: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(s)) }
        let whole = text(full[...])
        let ids = tokenizer.ids(whole)
        var scored = [Bool](repeating: false, count: ids.count)
        // Byte-level BPE spells every byte of the text once: each token's end is known, and a token is the turn's when it
        // ends inside it (one that starts before the turn included), as the offsets of transformers' tokenizers say.
        if let bpe = tokenizer as? ByteLevelBPETokenizer, !bpe.normalizeNFC || UnicodeNFC.compose(full[...], asOf: UnicodeNFC.tokenizersVersion) == full,
           let ends = bpe.byteEnds(of: ids), ends.last == whole.utf8.count {
            var byteAt = [0]
            byteAt.reserveCapacity(full.count + 1)
            for c in full { byteAt.append(byteAt.last! + String(c).utf8.count) }
            for s in spans {
                let a = byteAt[s.lowerBound], b = byteAt[s.upperBound]
                for (k, e) in ends.enumerated() where e > a && e <= b { scored[k] = true }
            }
            return (ids, scored)
        }
        // Otherwise (SentencePiece, whose "▁" the text does not hold): the tokens the ids of the text before the turn do not reproduce.
        for s in spans {
            let a = commonPrefix(tokenizer.ids(text(full[..<s.lowerBound])), ids), b = commonPrefix(tokenizer.ids(text(full[..<s.upperBound])), ids)
            for k in a..<max(a, b) { scored[k] = true }
        }
        return (ids, scored)
    }

    private func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        return i
    }
}
