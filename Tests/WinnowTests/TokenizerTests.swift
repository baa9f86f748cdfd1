import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

// MARK: - Golden cases from transformers

/// Paths relative to this file: the fixture cases (made by transformers' BertTokenizer on MiniLM's vocab.txt) and
/// the vocabulary that scripts/fetch-pretrained.sh puts in models/minilm/.
private enum TokenizerFixtures {
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let cases = testsFolder.appendingPathComponent("../Fixtures/tokenizer/cases.jsonl").standardized
    /// Edge cases the main set lacks (make_tokenizer_edge_golden.py: a capital sigma's lower case by its word).
    static let edgeCases = testsFolder.appendingPathComponent("../Fixtures/tokenizer/edge-cases.jsonl").standardized
    static let repo = testsFolder.deletingLastPathComponent().deletingLastPathComponent()
    static let vocab = repo.appendingPathComponent("models/minilm/vocab.txt")
    static var haveVocab: Bool { FileManager.default.fileExists(atPath: vocab.path) }
}

/// One line of cases.jsonl. `strip_accents` is optional (absent means transformers' default, nil).
private struct TokenizerCase: Decodable {
    var text: String
    var text_pair: String?
    var max_length: Int?
    var lower: Bool
    var strip_accents: Bool?
    var input_ids: [Int32]
    var token_type_ids: [Int32]
}

@Suite("BertTokenizer equals transformers' BertTokenizer")
struct TokenizerGoldenTests {
    @Test(arguments: [TokenizerFixtures.cases, TokenizerFixtures.edgeCases])
    func everyFixtureCaseMatches(_ file: URL) throws {
        // make test fetches MiniLM first; a missing vocabulary is a failure, not a skip.
        try #require(TokenizerFixtures.haveVocab, "models/minilm/vocab.txt missing: run scripts/fetch-pretrained.sh")
        let vocab = try Vocabulary(contentsOf: TokenizerFixtures.vocab)
        let text = try String(contentsOf: file, encoding: .utf8)
        var tokenizers: [String: BertTokenizer] = [:]
        var checked = 0
        var mismatches = 0
        var first: String?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let c = try JSONDecoder().decode(TokenizerCase.self, from: Data(line.utf8))
            let key = "\(c.lower)/\(String(describing: c.strip_accents))"
            let tokenizer = tokenizers[key]
                ?? BertTokenizer(vocabulary: vocab, doLowerCase: c.lower, stripAccents: c.strip_accents)
            tokenizers[key] = tokenizer
            let got = tokenizer.encode(c.text, pair: c.text_pair, maxLength: c.max_length)
            checked += 1
            if got != Encoding(inputIDs: c.input_ids, tokenTypeIDs: c.token_type_ids) {
                mismatches += 1
                if first == nil {
                    first = """
                        line \(index + 1): text \(c.text.debugDescription) \
                        pair \(c.text_pair?.debugDescription ?? "nil") \
                        max_length \(c.max_length.map(String.init) ?? "nil") lower \(c.lower)
                          expected ids \(c.input_ids) types \(c.token_type_ids)
                          actual   ids \(got.inputIDs) types \(got.tokenTypeIDs)
                        """
                }
            }
        }
        #expect(checked >= (file == TokenizerFixtures.cases ? 500 : 20), "only \(checked) cases in \(file.path)")
        if let first {
            Issue.record("\(mismatches) of \(checked) cases differ; first:\n\(first)")
        }
    }
}

// MARK: - Hand-made vocabulary

private let tinyTokens = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",       // 0-4
    "un", "##aff", "##able", "a", "##a", "##ff",        // 5-10
    "##b", "##le", "hello", "world", "!", ",",          // 11-16
    "##s", "cafe", "café", "e", "中", "文",               // 17-22
]

private func tiny(lower: Bool = true, stripAccents: Bool? = nil, maxChars: Int = 100) -> BertTokenizer {
    BertTokenizer(vocabulary: Vocabulary(tokens: tinyTokens), doLowerCase: lower, stripAccents: stripAccents,
                  maxInputCharsPerWord: maxChars)
}

@Suite("BertTokenizer on a tiny vocabulary")
struct TokenizerUnitTests {
    @Test func greedyLongestMatchFirst() {
        // "##aff" beats "##a" + "##ff"; "##able" beats "##a" + "##b" + "##le".
        #expect(tiny().tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(tiny().tokenize("aa") == ["a", "##a"])
        #expect(tiny().tokenize("hellos") == ["hello", "##s"])
    }

    @Test func unknownWords() {
        // One uncoverable position makes the whole word [UNK], not just the rest.
        #expect(tiny().tokenize("hello unx world") == ["hello", "[UNK]", "world"])
        // A continuation needs "##": "world" exists but "##world" does not.
        #expect(tiny().tokenize("helloworld") == ["[UNK]"])
        // Longer than maxInputCharsPerWord code points: [UNK] even though pieces exist.
        #expect(tiny(maxChars: 5).tokenize("hello hellos") == ["hello", "[UNK]"])
        #expect(tiny().tokenize(String(repeating: "a", count: 100)).count == 100)
        #expect(tiny().tokenize(String(repeating: "a", count: 101)) == ["[UNK]"])
    }

    @Test func basicTokenizer() {
        #expect(tiny().tokenize("HELLO,world!") == ["hello", ",", "world", "!"])
        // Accents are stripped when lower-casing (NFD, drop Mn), kept otherwise.
        #expect(tiny().tokenize("CAFÉ Café") == ["cafe", "cafe"])
        #expect(tiny(stripAccents: false).tokenize("CAFÉ") == ["café"])
        #expect(tiny(lower: false).tokenize("café Hello") == ["café", "[UNK]"])
        // NFC first: e + combining acute is the vocabulary's "é".
        #expect(tiny(lower: false).tokenize("cafe\u{301}") == ["café"])
        // Control and zero-width characters vanish, odd spaces split, CJK ideographs stand alone.
        #expect(tiny().tokenize("hel\u{200B}lo\u{0}\u{7}\u{A0}world\u{3000}中文") == ["hello", "world", "中", "文"])
        #expect(tiny().tokenize("") == [])
        #expect(tiny().tokenize(" \n\t\u{2003} ") == [])
        // A lone combining mark becomes an empty word and disappears.
        #expect(tiny().tokenize("hello \u{301} world") == ["hello", "world"])
    }

    @Test func specialTokensInText() {
        #expect(tiny().tokenize("hello[SEP]world [MASK]") == ["hello", "[SEP]", "world", "[MASK]"])
        #expect(tiny().tokenize("[sep]") == ["[UNK]", "[UNK]", "[UNK]"])  // "[", "sep", "]" are not in the vocabulary
    }

    @Test func encodeSingleAndPair() {
        let t = tiny()
        #expect(t.encode("hello world") == Encoding(inputIDs: [2, 13, 14, 3], tokenTypeIDs: [0, 0, 0, 0]))
        #expect(t.encode("hello", pair: "world !")
            == Encoding(inputIDs: [2, 13, 3, 14, 15, 3], tokenTypeIDs: [0, 0, 0, 1, 1, 1]))
        #expect(t.encode("") == Encoding(inputIDs: [2, 3], tokenTypeIDs: [0, 0]))
    }

    /// (len a, len b or -1 for none, max length) -> kept (len a, len b), per transformers' truncate_sequences.
    @Test(arguments: [
        (5, 5, 10, 4, 3),    // tie: the second side loses the odd token
        (6, 2, 8, 3, 2),     // the longer side alone absorbs the cut
        (6, 4, 8, 3, 2),
        (2, 7, 8, 2, 3),
        (3, 3, 3, 0, 0),     // nothing but specials left
        (2, 2, 1, 0, 0),
        (4, 4, 20, 4, 4),    // fits: untouched
        (5, -1, 4, 2, -1),   // single sequence
        (3, -1, 2, 3, -1),   // single too short to absorb the cut: transformers keeps it whole
        (3, -1, 0, 3, -1),   // max_length 0 means no truncation
    ])
    func longestFirstTruncation(la: Int, lb: Int, maxLength: Int, keptA: Int, keptB: Int) {
        var a = (0..<la).map { Int32(100 + $0) }
        var b: [Int32]? = lb < 0 ? nil : (0..<lb).map { Int32(200 + $0) }
        BertTokenizer.truncateLongestFirst(&a, &b, maxLength: maxLength)
        #expect(a == (0..<keptA).map { Int32(100 + $0) })
        #expect(b == (keptB < 0 ? nil : (0..<keptB).map { Int32(200 + $0) }))
    }

    @Test func encodeTruncates() {
        let enc = tiny().encode("hello world hello", pair: "world hello world", maxLength: 7)
        #expect(enc == Encoding(inputIDs: [2, 13, 14, 3, 14, 13, 3], tokenTypeIDs: [0, 0, 0, 0, 1, 1, 1]))
    }
}

@Suite("Vocabulary")
struct VocabularyTests {
    private func write(_ bytes: [UInt8]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-vocab-\(UUID().uuidString).txt")
        try Data(bytes).write(to: url)
        return url
    }

    @Test func duplicatesKeepTheLastLineAndLookupIsPerCodePoint() {
        let v = Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x", "é", "x"])
        #expect(v.id("x") == 6)
        #expect(v.count == 7)
        #expect(v.id("é") == 5)
        #expect(v.id("e\u{301}") == nil)   // canonically equal in Swift, a different string in Python
        #expect(v.maskID == v.unkID)         // no [MASK]: transformers would map it to [UNK] too
    }

    @Test func readsLinesLikePython() throws {
        let url = try write(Array("[PAD]\r\n[UNK]\r[CLS]\n\n[SEP]\nlast ".utf8))
        defer { try? FileManager.default.removeItem(at: url) }
        let v = try Vocabulary(contentsOf: url)
        #expect(v.tokens == ["[PAD]", "[UNK]", "[CLS]", "", "[SEP]", "last "])
        #expect((v.padID, v.unkID, v.clsID, v.sepID) == (0, 1, 2, 4))
    }

    @Test func rejectsBadFiles() throws {
        for (bytes, line) in [([UInt8](), nil), (Array("[PAD]\n[CLS]\n[SEP]\n".utf8), nil),
                              (Array("[PAD]\n[UNK]\n".utf8) + [0xFF, 0x0A], 3)] as [([UInt8], Int?)] {
            let url = try write(bytes)
            defer { try? FileManager.default.removeItem(at: url) }
            do {
                _ = try Vocabulary(contentsOf: url)
                Issue.record("accepted \(bytes)")
            } catch let WinnowError.invalidFile(path, errorLine, _) {
                #expect(path == url.path)
                #expect(errorLine == line)
            }
        }
    }
}

@Suite("Long texts are tokenized only as far as truncation needs")
struct LongTextTokenizerTests {
    @Test func cappedEncodingEqualsTheFullEncoding() throws {
        let tok = try BertTokenizer(folder: Paths.minilm)
        var rng = SeededGenerator(seed: 3)
        let words = ["the", "film's", "über-long", "Ending,", "was", "ok!", "漢字", "and", "(really)", "café", "x" + String(repeating: "y", count: 120)]
        func text(_ n: Int) -> String { (0..<n).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: rng.next() % 5 == 0 ? "\n" : " ") }
        for (na, nb) in [(8_000, nil), (8_000, 5), (3, 8_000), (8_000, 10_000), (10, 20)] as [(Int, Int?)] {
            let a = text(na), b = nb.map(text)
            for m in [3, 4, 16, 17, 128, 512] {
                let capped = tok.encode(a, pair: b, maxLength: m)
                var full = tok.ids(a)
                var pair = b.map { tok.ids($0) }
                BertTokenizer.truncateLongestFirst(&full, &pair, maxLength: m)
                let expected = [tok.vocabulary.clsID] + full + [tok.vocabulary.sepID] + (pair.map { $0 + [tok.vocabulary.sepID] } ?? [])
                #expect(capped.inputIDs == expected, "a \(na) words, b \(nb ?? 0) words, max length \(m)")
            }
        }
    }
}

@Suite("tokenizer_config.json: the keys winnow reads, and clear errors for the wrong types")
struct TokenizerConfigTests {
    static let fuzz = Paths.fixtures.appendingPathComponent("fuzz/tokenizer-config")

    @Test func readsTheKeysOfBertAndDecoderConfigurations() throws {
        let bert = try TokenizerConfig(contentsOf: Self.fuzz.appendingPathComponent("ok-bert.json"))
        #expect(bert == TokenizerConfig(doLowerCase: true))
        let chat = try TokenizerConfig(contentsOf: Self.fuzz.appendingPathComponent("ok-added-token-eos.json"))
        #expect(chat.eosToken == "<|im_end|>")
        #expect(chat.chatTemplate == "{% for message in messages %}{{ message }}{% endfor %}")
        // A list of named templates: the one named "default", as transformers picks it.
        let named = try TokenizerConfig(contentsOf: Self.fuzz.appendingPathComponent("ok-named-templates.json"))
        #expect(named == TokenizerConfig(chatTemplate: "x", eosToken: "</s>"))
        #expect(try TokenizerConfig(contentsOf: Self.fuzz.appendingPathComponent("ok-empty-object.json")) == TokenizerConfig())
        #expect(try TokenizerConfig.read(Self.fuzz.appendingPathComponent("absent.json")) == nil)
    }

    @Test(arguments: [("string-lower-case.json", "key 'do_lower_case'"), ("number-lower-case.json", "key 'do_lower_case'"),
                      ("array-strip-accents.json", "key 'strip_accents'"), ("number-template.json", "key 'chat_template'"),
                      ("named-template-without-text.json", "key 'chat_template'"), ("eos-number.json", "key 'eos_token'"),
                      ("eos-content-number.json", "key 'eos_token'"), ("truncated.json", "not valid JSON"),
                      ("array.json", "not a JSON object"), ("deep-nesting.json", "not valid JSON")])
    func wrongTypesNameTheKey(_ file: String, _ message: String) {
        let url = Self.fuzz.appendingPathComponent(file)
        #expect { try TokenizerConfig(contentsOf: url) } throws: { e in
            let d = "\(e)"
            return e is WinnowError && d.contains(file) && d.contains(message) && !d.contains("\n")
        }
    }

    /// A BERT folder whose tokenizer_config.json is malformed is refused with the file named, not read with defaults.
    @Test func aMalformedConfigStopsTheTokenizer() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-tc-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafe\n".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try #"{"do_lower_case": false, "strip_accents": false}"#.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let cased = try BertTokenizer(folder: dir)
        #expect(!cased.doLowerCase && cased.stripAccents == false)
        try #"{"do_lower_case": "false"}"#.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        #expect { try BertTokenizer(folder: dir) } throws: { "\($0)".contains("tokenizer_config.json") && "\($0)".contains("do_lower_case") }
    }
}
