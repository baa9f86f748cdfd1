import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData

/// SmolLM2's byte-level BPE against transformers (scripts/reference/make_bpe_golden.py): the WordPiece
/// suite's texts and pairs, Rotten Tomatoes reviews, and hand-written edges of the GPT-2 pattern and the
/// added tokens. SmolLM2 comes from `scripts/fetch-pretrained.sh smollm2` (make test fetches it).
@Suite(.serialized) struct ByteLevelBPETests {
    struct Case: Decodable { let text: String; let text_pair: String?; let input_ids: [Int32] }

    static let gguf = Paths.repo.appendingPathComponent("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    static let tokenizer: ByteLevelBPETokenizer? = try? ByteLevelBPETokenizer(gguf: GGUFFile(url: gguf))

    @Test func idsEqualTransformersOnEveryCase() throws {
        let tok = try #require(Self.tokenizer, "fetch SmolLM2 first: bash scripts/fetch-pretrained.sh smollm2")
        let url = Paths.fixtures.appendingPathComponent("tokenizer/smollm2.jsonl")
        let cases = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Case.self, from: Data($0.utf8))
        }
        #expect(cases.count > 1000)
        var wrong = 0
        for c in cases {
            let got = tok.encode(c.text, pair: c.text_pair, maxLength: nil).inputIDs
            if got != c.input_ids {
                wrong += 1
                if wrong <= 5 { Issue.record("\(c.text.debugDescription): got \(got), transformers \(c.input_ids)") }
            }
        }
        #expect(wrong == 0, "\(wrong) of \(cases.count) cases differ")
    }

    @Test func theModelsSettings() throws {
        let tok = try #require(Self.tokenizer)
        #expect(tok.vocabularySize == 49152 && tok.padID == 2)
        #expect(tok.bosID == nil && tok.eosID == nil)          // tokenizer.ggml.add_bos_token is false
        #expect(tok.addedTokens.filter(\.special).count == 17)
        #expect(tok.tokens[198] == "Ċ")                         // "\n" spelt in the byte alphabet
    }

    @Test func truncationKeepsTheFirstTokensOfTheLongerSide() throws {
        let tok = try #require(Self.tokenizer)
        let full = tok.encode("one two three four five six", pair: nil, maxLength: nil).inputIDs
        #expect(tok.encode("one two three four five six", pair: nil, maxLength: 4).inputIDs == Array(full.prefix(4)))
        let a = tok.ids("a b"), b = tok.ids("c d e f g h")
        let pair = tok.encode("a b", pair: "c d e f g h", maxLength: 5).inputIDs
        #expect(pair == a + Array(b.prefix(3)))
    }

    @Test func theGPT2PatternSplitsAsTokenizersDoes() {
        func split(_ s: String) -> [String] {
            let sc = Array(s.unicodeScalars)
            return ByteLevelBPETokenizer.pieces(sc[...]).map { String(String.UnicodeScalarView(sc[$0])) }
        }
        #expect(split("I'm here") == ["I", "'m", " here"])
        #expect(split("a   b") == ["a", "  ", " b"])
        #expect(split("end   ") == ["end", "   "])
        #expect(split("x\n\ny") == ["x", "\n", "\n", "y"])
        #expect(split("1234 abc!!") == ["1234", " abc", "!!"])
        #expect(split("don't") == ["don", "'t"])
        #expect(split("'x") == ["'", "x"])
    }

    @Test func badTokenizerMetadataIsNamed() throws {
        // The fixture's GGUF has no tokenizer at all.
        let types = Paths.fixtures.appendingPathComponent("gguf/types.gguf")
        #expect(throws: WinnowError.self) { try ByteLevelBPETokenizer(gguf: GGUFFile(url: types)) }
        do { _ = try ByteLevelBPETokenizer(gguf: GGUFFile(url: types)) } catch let e as WinnowError {
            #expect(e.description.contains("tokenizer.ggml.model") && e.description.contains(types.path))
        }
        #expect(throws: WinnowError.self) {
            try ByteLevelBPETokenizer(tokens: ["a", "b"], merges: [("a", "b")], added: [], bosID: nil, eosID: nil, padID: 0, source: "t")
        }
    }

    /// Hugging Face tokenizer.json files (scripts/reference/make_bpe_json_golden.py): Digits then
    /// ByteLevel with a BOS template, ByteLevel alone with ignore_merges, Llama 3's Split (ignore_merges, a
    /// Sequence post-processor) and Qwen2's (NFC, one number a piece); 739 texts each, the Split patterns'
    /// edges (line breaks, runs of spaces and digits, contractions in any case, decomposed accents) among them.
    @Test(arguments: ["bpe-digits", "bpe-plain", "bpe-llama3", "bpe-qwen2"])
    func tokenizerJSONEqualsAutoTokenizer(_ name: String) throws {
        let dir = Paths.fixtures.appendingPathComponent("tokenizer/\(name)")
        let tok = try #require(try Tokenizers.load(folder: dir) as? ByteLevelBPETokenizer)
        #expect(tok.isolateDigits == (name == "bpe-digits") && tok.ignoreMerges == ["bpe-plain", "bpe-llama3"].contains(name))
        #expect(tok.split == (name == "bpe-llama3" ? .llama3(maxDigits: 3) : name == "bpe-qwen2" ? .llama3(maxDigits: 1) : .gpt2))
        #expect(tok.normalizeNFC == (name == "bpe-qwen2"))
        let cases = try String(contentsOf: dir.appendingPathComponent("ids.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Case.self, from: Data($0.utf8))
        }
        var wrong = 0
        for c in cases where tok.encode(c.text, pair: c.text_pair, maxLength: nil).inputIDs != c.input_ids {
            wrong += 1
            if wrong <= 5 { Issue.record("\(c.text.debugDescription): got \(tok.encode(c.text, pair: c.text_pair, maxLength: nil).inputIDs), transformers \(c.input_ids)") }
        }
        #expect(wrong == 0, "\(wrong) of \(cases.count) cases differ")
    }

    /// GGUF files whose `tokenizer.ggml.pre` names Llama 3's and Qwen2's patterns
    /// (scripts/reference/make_bpe_gguf_split_golden.py): the ids of the tokenizer transformers builds from them
    /// (with Llama 3's ignore_merges, as llama.cpp and its tokenizer.json tokenize), on 671 texts.
    @Test(arguments: ["gguf-llama-bpe", "gguf-qwen2"])
    func ggufSplitPatternsEqualTransformers(_ name: String) throws {
        let dir = Paths.fixtures.appendingPathComponent("tokenizer/\(name)")
        let tok = try #require(try Tokenizers.load(folder: dir) as? ByteLevelBPETokenizer)
        #expect(tok.split == (name == "gguf-qwen2" ? .llama3(maxDigits: 1) : .llama3(maxDigits: 3)) && !tok.normalizeNFC)
        #expect(tok.ignoreMerges == (name == "gguf-llama-bpe"))
        struct Single: Decodable { let text: String; let input_ids: [Int32] }
        let cases = try String(contentsOf: dir.appendingPathComponent("ids.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Single.self, from: Data($0.utf8))
        }
        var wrong = 0
        for c in cases where tok.ids(c.text) != c.input_ids {
            wrong += 1
            if wrong <= 5 { Issue.record("\(c.text.debugDescription): got \(tok.ids(c.text)), transformers \(c.input_ids)") }
        }
        #expect(wrong == 0 && cases.count > 600, "\(wrong) of \(cases.count) cases differ")
    }

    /// The Split pattern's pieces where `tokenizers` (its regex engine, Oniguruma) reads characters its own way,
    /// found by differential testing on 40,000 random texts: the long s folds to s in `(?i:'s)`, and letters and
    /// numbers Unicode 17 added are "other" (Oniguruma knows Unicode 16).
    @Test func splitPiecesFollowTokenizersCharacterClasses() {
        func pieces(_ text: String, _ maxDigits: Int = 3) -> [String] {
            let s = Array(text.unicodeScalars)
            return ByteLevelBPETokenizer.llama3Pieces(s[...], maxDigits: maxDigits).map { String(String.UnicodeScalarView(s[$0])) }
        }
        #expect(pieces("'\u{17F}e") == ["'\u{17F}", "e"])
        #expect(pieces("IT'S they'Re") == ["IT", "'S", " they", "'Re"])
        #expect(pieces("\u{16EA0}'s") == ["\u{16EA0}'", "s"])                 // Unicode 17's Beria Erfe letter
        #expect(pieces("1\u{11DE0}70") == ["1", "\u{11DE0}", "70"])           // Unicode 17's Tolong Siki digit
        #expect(pieces("12345 a\r\n\r\n  b") == ["123", "45", " a", "\r\n\r\n", " ", " b"])
        #expect(pieces("12345", 1) == ["1", "2", "3", "4", "5"])
    }

    @Test func unsupportedTokenizerJSONIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-tokjson-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try JSONSerialization.jsonObject(with: Data(contentsOf: Paths.fixtures.appendingPathComponent("tokenizer/bpe-plain/tokenizer.json"))) as! [String: Any]
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("normalizer", { $0["normalizer"] = ["type": "NFKC"] }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "x"]] }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": ByteLevelBPETokenizer.SplitPattern.llama3Regex], "behavior": "Removed", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]] }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": ByteLevelBPETokenizer.SplitPattern.llama3Regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]]] }),
            ("model.byte_fallback", { var m = $0["model"] as! [String: Any]; m["byte_fallback"] = true; $0["model"] = m }),
            ("model.merges[0]", { var m = $0["model"] as! [String: Any]; m["merges"] = ["a b c"]; $0["model"] = m }),
            ("post_processor", { $0["post_processor"] = ["type": "RobertaProcessing"] }),
        ]
        for (key, damage) in cases {
            var d = good
            damage(&d)
            let url = dir.appendingPathComponent("tokenizer.json")
            try JSONSerialization.data(withJSONObject: d).write(to: url)
            do {
                _ = try ByteLevelBPETokenizer(tokenizerJSON: url)
                Issue.record("\(key): accepted")
            } catch let e as WinnowError {
                #expect(e.description.contains(url.path) && e.description.contains(key), "\(key): \(e)")
            }
        }
    }
}
