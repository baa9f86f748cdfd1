import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData

/// SentencePiece's BPE (Llama 2, Mistral, TinyLlama, Gemma) against Hugging Face (scripts/reference/make_spm_golden.py):
/// a small vocabulary with byte fallback in five tokenizer.json forms and as a llama.cpp GGUF file, 730 texts
/// each (the WordPiece suite's texts and pairs, leading and repeated spaces, special tokens inside text,
/// characters outside the vocabulary, line breaks).
@Suite struct SentencePieceBPETests {
    struct Case: Decodable { let text: String; let text_pair: String?; let input_ids: [Int32] }

    static func cases(_ name: String) throws -> [Case] {
        let url = Paths.fixtures.appendingPathComponent("tokenizer/\(name)/ids.jsonl")
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    @Test(arguments: ["spm-legacy", "spm-flags", "spm-metaspace", "spm-split", "spm-gemma"])
    func tokenizerJSONEqualsAutoTokenizer(_ name: String) throws {
        let dir = Paths.fixtures.appendingPathComponent("tokenizer/\(name)")
        let tok = try #require(try Tokenizers.load(folder: dir) as? SentencePieceBPETokenizer)
        #expect(tok.prefix == ["spm-legacy": .everyText, "spm-flags": .everyText, "spm-metaspace": .firstText, "spm-split": .everyTextUnmarked,
                               "spm-gemma": SentencePieceBPETokenizer.Prefix.none][name])
        #expect(tok.splitAtSpaces == (name == "spm-split"))
        #expect(tok.bosID == 1 && tok.eosID == nil && tok.pairTemplate.middle == [1])
        let cases = try Self.cases(name)
        var wrong = 0
        for c in cases where tok.encode(c.text, pair: c.text_pair, maxLength: nil).inputIDs != c.input_ids {
            wrong += 1
            if wrong <= 5 { Issue.record("\(name) \(c.text.debugDescription): got \(tok.encode(c.text, pair: c.text_pair, maxLength: nil).inputIDs), transformers \(c.input_ids)") }
        }
        #expect(wrong == 0 && cases.count > 700, "\(wrong) of \(cases.count) cases differ")
        // Byte fallback by hand: a line break is not in the vocabulary, so it is <0x0A> (id 3 + 10) after the "▁" put before the text.
        let marker = Int32(tok.tokens.firstIndex(of: "\u{2581}")!)
        #expect(tok.tokens[13] == "<0x0A>" && tok.ids("\n") == (name == "spm-gemma" ? [13] : [marker, 13]))
    }

    @Test func ggufEqualsLlamaCppAsTransformersBuildsIt() throws {
        let dir = Paths.fixtures.appendingPathComponent("tokenizer/gguf-llama-spm")
        let tok = try #require(try Tokenizers.load(folder: dir) as? SentencePieceBPETokenizer)
        #expect(tok.prefix == .everyText && !tok.splitAtSpaces && tok.bosID == 1 && tok.eosID == nil)
        #expect(tok.addedTokens.map(\.content).sorted() == ["</s>", "<s>", "<unk>", "<|im_end|>", "<|im_start|>"])
        let cases = try Self.cases("gguf-llama-spm")
        var wrong = 0
        for c in cases where tok.ids(c.text) != c.input_ids {
            wrong += 1
            if wrong <= 5 { Issue.record("\(c.text.debugDescription): got \(tok.ids(c.text)), transformers \(c.input_ids)") }
        }
        #expect(wrong == 0 && cases.count > 600, "\(wrong) of \(cases.count) cases differ")
        #expect(tok.encode("Hello", pair: nil, maxLength: nil).inputIDs == [1] + tok.ids("Hello"))
    }

    /// The heap-ordered merge loop against its plain-loop twin (merge the lowest-priority pair, the leftmost on
    /// a tie, one at a time) on random symbol sequences and random merge tables with tied priorities.
    @Test func mergeLoopEqualsItsPlainTwin() {
        func mergeRef(_ input: [Int32], _ merges: [UInt64: (rank: Int32, id: Int32)]) -> [Int32] {
            var ids = input
            while ids.count > 1 {
                var best = -1, bestRank = Int32.max
                for i in 0..<(ids.count - 1) {
                    if let m = merges[BPEMerger.key(ids[i], ids[i + 1])], m.rank < bestRank { best = i; bestRank = m.rank }
                }
                guard best >= 0 else { break }
                ids[best] = merges[BPEMerger.key(ids[best], ids[best + 1])]!.id
                ids.remove(at: best + 1)
            }
            return ids
        }
        var rng = SeededGenerator(seed: 7)
        for trial in 0..<400 {
            var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
            for _ in 0..<(4 + trial % 20) {
                let a = Int32(rng.next() % 6), b = Int32(rng.next() % 6)
                merges[BPEMerger.key(a, b)] = (Int32(rng.next() % 5), Int32(rng.next() % 9))
            }
            let input = (0..<Int(rng.next() % 40)).map { _ in Int32(rng.next() % 6) }
            let got = BPEMerger.mergeAll(input, merges), want = mergeRef(input, merges)
            #expect(got == want, "trial \(trial): \(input) -> \(got), plain loop \(want)")
            if got != want { return }
        }
    }

    @Test func unsupportedTokenizerJSONIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-spmjson-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = Self.tinyJSON
        func model(_ d: inout [String: Any], _ k: String, _ v: Any) { var m = d["model"] as! [String: Any]; m[k] = v; d["model"] = m }
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("normalizer", { $0["normalizer"] = ["type": "NFKC"] }),
            ("normalizer", { $0["normalizer"] = ["type": "Prepend", "prepend": "\u{2581}"] }),
            ("normalizer", { $0["normalizer"] = NSNull() }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Whitespace"] }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false] }),
            ("pre_tokenizer.replacement", { $0["normalizer"] = NSNull(); $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "_"] }),
            ("pre_tokenizer.prepend_scheme", { $0["normalizer"] = NSNull(); $0["pre_tokenizer"] = ["type": "Metaspace", "prepend_scheme": "sometimes"] }),
            ("model.unk_token", { model(&$0, "unk_token", "<nope>") }),
            ("model.ignore_merges", { model(&$0, "ignore_merges", true) }),
            ("model.merges[0]", { model(&$0, "merges", ["a b c"]) }),
            ("model.merges[0]", { model(&$0, "merges", ["zz qq"]) }),
            ("model.type", { model(&$0, "type", "Unigram") }),
            ("post_processor", { $0["post_processor"] = ["type": "RobertaProcessing"] }),
            ("added_tokens[0]", { $0["added_tokens"] = [["content": 3, "id": 0]] }),
        ]
        for (key, damage) in cases {
            var d = good
            damage(&d)
            let url = dir.appendingPathComponent("tokenizer.json")
            try JSONSerialization.data(withJSONObject: d).write(to: url)
            do {
                _ = try Tokenizers.load(folder: dir)
                Issue.record("\(key): accepted")
            } catch let e as WinnowError {
                #expect(e.description.contains(url.path) && e.description.contains(key), "\(key): \(e)")
            }
        }
    }

    /// A tokenizer.json small enough to write by hand: Llama 2's legacy form, no byte fallback.
    nonisolated(unsafe) static let tinyJSON: [String: Any] = [
        "added_tokens": [["id": 0, "content": "<unk>", "special": true, "normalized": false],
                         ["id": 1, "content": "<s>", "special": true, "normalized": false]],
        "normalizer": ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "\u{2581}"],
                                                           ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]]],
        "pre_tokenizer": NSNull(),
        "post_processor": ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                           "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                           "special_tokens": ["<s>": ["id": "<s>", "ids": [1], "tokens": ["<s>"]]]],
        "model": ["type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
                  "vocab": ["<unk>": 0, "<s>": 1, "\u{2581}": 2, "a": 3, "b": 4, "\u{2581}a": 5, "ab": 6, "\u{2581}ab": 7],
                  "merges": ["\u{2581} a", "a b", "\u{2581}a b"]],
    ]

    /// Unknown characters without byte fallback: consecutive ones fuse into one <unk> (fuse_unk), as tokenizers does.
    @Test func unknownCharactersFuseWithoutByteFallback() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-spmtiny-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONSerialization.data(withJSONObject: Self.tinyJSON).write(to: dir.appendingPathComponent("tokenizer.json"))
        let tok = try #require(try Tokenizers.load(folder: dir) as? SentencePieceBPETokenizer)
        #expect(tok.ids("ab") == [7])                   // ▁a b -> ▁ab (▁ a first: rank 0)
        #expect(tok.ids("ba") == [2, 4, 3])             // ▁ b a: no pair merges
        #expect(tok.ids("axyzb ab") == [5, 0, 4, 7])     // x, y and z fused into one <unk>
        #expect(tok.encode("a", pair: "b", maxLength: nil).inputIDs == [5, 2, 4])
    }

    /// The vocabulary is read from the file's bytes (Swift dictionaries merge canonically equivalent keys):
    /// \u escapes, a surrogate pair and every short escape decode as JSON says; Greek tonos and oxia stay two tokens.
    @Test func vocabularyKeepsEverySpelling() throws {
        let url = Paths.fixtures.appendingPathComponent("fuzz/tokenizer-json/ok-spm-escapes.json")
        let tok = try #require(try Tokenizers.bpe(tokenizerJSON: url) as? SentencePieceBPETokenizer)
        #expect(tok.tokens.count == 13)
        #expect(Array(tok.tokens[8].unicodeScalars) == ["\u{1F999}"])
        #expect(tok.tokens[9].unicodeScalars.map(\.value) == [0x3AF] && tok.tokens[10].unicodeScalars.map(\.value) == [0x1F77])
        #expect(Array(tok.tokens[12].unicodeScalars) == Array("q\"\\/\u{8}\u{C}\n\r\t".unicodeScalars))
        #expect(tok.ids("\u{3AF}\u{1F77}\u{1F999}\n") == [2, 9, 10, 8, 11])
    }

    /// llama.cpp strips the whitespace after a Phi-3 model's special tokens (by `general.name`; its tokenizer.json marks
    /// them rstrip): differential testing against llama.cpp on 65,000 texts found this, now equal on all of them.
    @Test func phi3SpecialTokensTakeTheWhitespaceAfterThem() throws {
        let f = try GGUFFile(url: Paths.fixtures.appendingPathComponent("tokenizer/gguf-llama-spm/tokenizer.gguf"))
        var m = f.metadata
        let plain = try SentencePieceBPETokenizer(ggufMetadata: m, path: "t")
        m["general.name"] = .string("Phi3 Mini")
        let phi3 = try SentencePieceBPETokenizer(ggufMetadata: m, path: "t")
        let end = try #require(phi3.addedTokens.first { $0.content == "<|im_end|>" }?.id), s = Int32(1)
        #expect(phi3.ids("<|im_end|>\n  hi") == [end] + phi3.ids("hi"))
        #expect(plain.ids("<|im_end|>\n  hi") != phi3.ids("<|im_end|>\n  hi"))
        #expect(phi3.ids("<s> hi") == plain.ids("<s> hi") && phi3.ids("<s> hi").first == s)    // <s> keeps it, as llama.cpp
    }

    @Test func badGGUFTokenizerIsNamed() throws {
        let good = Paths.fixtures.appendingPathComponent("tokenizer/gguf-llama-spm/tokenizer.gguf")
        let f = try GGUFFile(url: good)
        let cases: [(String, (inout [String: GGUFValue]) -> Void)] = [
            ("tokenizer.ggml.scores", { $0["tokenizer.ggml.scores"] = nil }),
            ("tokenizer.ggml.scores", { $0["tokenizer.ggml.scores"] = .array(6, [.float(0)]) }),
            ("tokenizer.ggml.token_type", { $0["tokenizer.ggml.token_type"] = .array(5, [.int(1)]) }),
            ("tokenizer.ggml.tokens", { $0["tokenizer.ggml.tokens"] = .string("x") }),
            ("tokenizer.ggml.bos_token_id", { $0["tokenizer.ggml.bos_token_id"] = .uint(1 << 40) }),
        ]
        for (key, damage) in cases {
            var m = f.metadata
            damage(&m)
            do {
                _ = try SentencePieceBPETokenizer(ggufMetadata: m, path: good.path)
                Issue.record("\(key): accepted")
            } catch let e as WinnowError {
                #expect(e.description.contains(good.path) && e.description.contains(key), "\(key): \(e)")
            }
        }
    }

    /// Prompt + completion on a SentencePiece model: the prompt's ids end where ids(prompt + completion)'s own do
    /// (TRL's completion mask), BOS first and unscored, EOS appended and scored.
    @Test func promptAndCompletionEncodeAsTRL() throws {
        let dir = Paths.fixtures.appendingPathComponent("tokenizer/spm-legacy")
        let tok = try Tokenizers.decoder(folder: dir)
        let enc = DecoderEncoder(tokenizer: tok, template: DecoderTemplate(eosID: 2, chatTemplate: nil), maxLength: 64)
        let url = dir.appendingPathComponent("x.jsonl")
        var ex = Example(line: 1)
        ex.prompt = "The cat sat on"
        ex.completion = " the mat."
        let e = try enc.encode(ex, url: url)
        let full = tok.ids("The cat sat on the mat."), p = tok.ids("The cat sat on")
        #expect(full.starts(with: p))
        #expect(e.ids == [1] + full + [2])
        #expect(e.scored == [false] + [Bool](repeating: false, count: p.count) + [Bool](repeating: true, count: full.count - p.count + 1))
    }
}
