import Foundation
import Testing

/// A user's own decoder folders and options: config keys Winnow does not implement are refused, not
/// ignored; a Mistral's and a Gemma's attention windows mask the keys before them; options that change nothing are refused;
/// a decoder classifier run carries the padding id transformers needs.
@Suite(.serialized) struct DecoderInputCLITests {
    let fm = FileManager.default
    let fixtures = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")

    /// A copy of the tiny tied decoder with `edit` applied to its config.json.
    func model(_ dir: URL, _ name: String, edit: (inout [String: Any]) -> Void) throws -> URL {
        let m = dir.appendingPathComponent(name)
        try fm.copyItem(at: fixtures.appendingPathComponent("tied"), to: m)
        let u = m.appendingPathComponent("config.json")
        var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
        edit(&c)
        try JSONSerialization.data(withJSONObject: c).write(to: u)
        return m
    }

    func loss(_ m: URL, _ out: URL, _ extra: [String] = [], data: String? = nil) throws -> CLIResult {
        try CLI.run(["score", "loss", "--run", m.path, "--data", data ?? fixtures.appendingPathComponent("text.jsonl").path, "--out", out.path] + extra)
    }

    /// A Llama 2-style tokenizer (SentencePiece BPE with byte fallback, tokenizer.json in its legacy form):
    /// `winnow tokenize` gives the ids transformers gives, and a decoder with it scores text and prompt + completion
    /// lines as it scores the ids `tokenize` writes for them.
    @Test func aSentencePieceTokenizerTokenizesAndScores() throws {
        let dir = try CLI.tempDir("decoder-spm")
        defer { try? fm.removeItem(at: dir) }
        let spm = CLI.repo.appendingPathComponent("Tests/Fixtures/tokenizer/spm-legacy")
        struct Case: Decodable { let text: String; let text_pair: String?; let input_ids: [Int] }
        let golden = try String(contentsOf: spm.appendingPathComponent("ids.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }.filter { $0.text_pair == nil && !$0.text.isEmpty }
        let texts = dir.appendingPathComponent("texts.jsonl"), ids = dir.appendingPathComponent("ids.jsonl")
        try golden.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0.text]), as: UTF8.self) }
            .joined(separator: "\n").appending("\n").write(to: texts, atomically: true, encoding: .utf8)
        let tok = try CLI.run(["tokenize", "--model", spm.path, "--data", texts.path, "--out", ids.path])
        #expect(tok.status == 0, "\(tok.stderr)")
        let got = try String(contentsOf: ids, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["input_ids"] as? [Int]
        }
        #expect(golden.count > 100 && got == golden.map(\.input_ids))
        // The tiny decoder (401 embeddings) with the tokenizer cut to its first 401 ids.
        let m = try model(dir, "llama2") { _ in }
        var t = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: spm.appendingPathComponent("tokenizer.json"))) as? [String: Any])
        var bpe = t["model"] as! [String: Any]
        let vocab = (bpe["vocab"] as! [String: Int]).filter { $0.value < 401 }
        bpe["vocab"] = vocab
        bpe["merges"] = (bpe["merges"] as! [[String]]).filter { vocab[$0[0]] != nil && vocab[$0[1]] != nil && vocab[$0[0] + $0[1]] != nil }
        t["model"] = bpe
        t["added_tokens"] = (t["added_tokens"] as! [[String: Any]]).filter { ($0["id"] as! Int) < 401 }
        try JSONSerialization.data(withJSONObject: t).write(to: m.appendingPathComponent("tokenizer.json"))
        try fm.removeItem(at: m.appendingPathComponent("tokenizer_config.json"))
        for data in ["text.jsonl", "pc.jsonl"] {
            let source = fixtures.appendingPathComponent(data), asIDs = dir.appendingPathComponent("ids-" + data)
            let r = try CLI.run(["tokenize", "--model", m.path, "--data", source.path, "--out", asIDs.path])
            #expect(r.status == 0, "\(r.stderr)")
            let a = dir.appendingPathComponent("a-\(data).csv"), b = dir.appendingPathComponent("b-\(data).csv")
            let fromText = try loss(m, a, data: source.path), fromIDs = try loss(m, b, data: asIDs.path)
            #expect(fromText.status == 0 && fromIDs.status == 0, "\(fromText.stderr)\(fromIDs.stderr)")
            #expect(try Data(contentsOf: a) == Data(contentsOf: b), "\(data)")
        }
        // BOS first (the template's <s>), the byte-fallback ids of a line break in the text.
        let first = try String(contentsOf: dir.appendingPathComponent("ids-text.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        #expect(first.contains("\"input_ids\":[1,") || first.contains("\"input_ids\": [1,"), "\(first)")
    }

    /// A decoder whose tokenizer Winnow does not read (here an NFKC normalizer) scores and
    /// trains on `input_ids` lines: the scores equal the readable model's on the same examples as text; a text line is
    /// refused naming the line, the tokenizer's key and the remedy, with no output.
    @Test func aModelWithAnUnreadTokenizerReadsInputIDs() throws {
        let dir = try CLI.tempDir("decoder-unread-tokenizer")
        defer { try? fm.removeItem(at: dir) }
        let nfc = try model(dir, "nfc") { _ in }
        let tj = nfc.appendingPathComponent("tokenizer.json")
        var t = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: tj)) as? [String: Any])
        t["normalizer"] = ["type": "NFKC"]
        try JSONSerialization.data(withJSONObject: t).write(to: tj)
        let ids = dir.appendingPathComponent("ids.jsonl")
        let tok = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", fixtures.appendingPathComponent("text.jsonl").path, "--out", ids.path])
        #expect(tok.status == 0, "\(tok.stderr)")
        let a = dir.appendingPathComponent("a.csv"), b = dir.appendingPathComponent("b.csv")
        let fromIDs = try loss(nfc, a, data: ids.path), fromText = try loss(fixtures.appendingPathComponent("tied"), b)
        #expect(fromIDs.status == 0 && fromText.status == 0, "\(fromIDs.stderr)\(fromText.stderr)")
        // tokenize carries each line's id and label: the score files are the same, byte for byte.
        #expect(try Data(contentsOf: a) == Data(contentsOf: b))
        // Prompt + completion lines as ids with `winnow tokenize`'s "scored" mask: the loss reads the completion tokens
        // only, as it does from the text; TRL's completion_mask, transformers' labels with -100, and true/false read alike.
        let pcIDs = dir.appendingPathComponent("pc-ids.jsonl")
        let pcTok = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", fixtures.appendingPathComponent("pc.jsonl").path, "--out", pcIDs.path])
        #expect(pcTok.status == 0, "\(pcTok.stderr)")
        let pcText = try String(contentsOf: pcIDs, encoding: .utf8)
        #expect(pcText.contains("\"scored\""))
        let c = dir.appendingPathComponent("c.csv"), d = dir.appendingPathComponent("d.csv")
        let pcFromIDs = try loss(nfc, c, data: pcIDs.path), pcFromText = try loss(fixtures.appendingPathComponent("tied"), d, data: fixtures.appendingPathComponent("pc.jsonl").path)
        #expect(pcFromIDs.status == 0 && pcFromText.status == 0, "\(pcFromIDs.stderr)\(pcFromText.stderr)")
        #expect(try Data(contentsOf: c) == Data(contentsOf: d))
        func rewritten(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
            let u = dir.appendingPathComponent(name)
            var lines: [String] = []
            for l in pcText.split(separator: "\n") {
                var o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
                edit(&o)
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self))
            }
            try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
            return u
        }
        let variants = [
            try rewritten("trl.jsonl") { $0["completion_mask"] = $0.removeValue(forKey: "scored") },
            try rewritten("bools.jsonl") { $0["completion_mask"] = ($0.removeValue(forKey: "scored") as! [Int]).map { $0 == 1 } },
            try rewritten("labels.jsonl") { o in
                let ids = o["input_ids"] as! [Int], m = o.removeValue(forKey: "scored") as! [Int]
                o["labels"] = zip(ids, m).map { $1 == 1 ? $0 : -100 }
            },
            // Both of TRL's masks apply (a token needs 1 in each), as its collator does.
            try rewritten("both.jsonl") { o in
                let m = o.removeValue(forKey: "scored") as! [Int]
                o["completion_mask"] = m
                o["assistant_masks"] = [Int](repeating: 1, count: m.count)
            },
        ]
        for v in variants {
            let e = dir.appendingPathComponent(v.lastPathComponent + ".csv")
            let r = try loss(nfc, e, data: v.path)
            #expect(r.status == 0, "\(v.lastPathComponent): \(r.stderr)")
            #expect(try Data(contentsOf: e) == Data(contentsOf: d), "\(v.lastPathComponent)")
        }
        for (line, why) in [("{\"input_ids\": [1, 2, 3], \"completion_mask\": [0, 1]}", "completion_mask has 2 entries, input_ids 3"),
                            ("{\"input_ids\": [1, 2], \"completion_mask\": [0, 2]}", "completion_mask holds 2; expected 0 or 1"),
                            ("{\"input_ids\": [1, 2], \"labels\": [-100, 7]}", "labels[1] is 7, neither -100 nor input_ids[1] (2)"),
                            ("{\"text\": \"The cat\", \"completion_mask\": [0, 1]}", "holds completion_mask but no input_ids"),
                            ("{\"input_ids\": [5, 6, 7]}\n{\"text\": \"The cat\"}", "bad.jsonl:2: holds plain text but the file's first example is input_ids"),
                            ("{\"input_ids\": [1, 2, 3, 4, 5, 6], \"completion_mask\": [0, 0, 0, 0, 1, 1]}",
                             "the first id the mask marks is at position 4, which leaves no marked id within the maximum length of 4 tokens")] {
            let bad = dir.appendingPathComponent("bad.jsonl"), o = dir.appendingPathComponent("bad.csv")
            try (line + "\n").write(to: bad, atomically: true, encoding: .utf8)
            let r = try loss(nfc, o, ["--max-length", "4"], data: bad.path)
            #expect(r.status == 1 && r.stderr.contains(why.hasPrefix("bad.jsonl") ? why : "bad.jsonl:1: " + why) && !fm.exists(o), "\(r.stderr)")
        }
        // A classifier reads input_ids whole: a loss mask there is refused, not ignored.
        let masked = dir.appendingPathComponent("masked.jsonl"), cls = dir.appendingPathComponent("cls.csv")
        try "{\"input_ids\": [2, 5, 3], \"completion_mask\": [0, 1, 1], \"label\": \"pos\"}\n".write(to: masked, atomically: true, encoding: .utf8)
        let bert = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", masked.path, "--out", cls.path])
        #expect(bert.status == 1 && bert.stderr.contains("masked.jsonl:1: holds a loss mask beside input_ids") && !fm.exists(cls), "\(bert.stderr)")
        // tokenize cannot encode with such a tokenizer, and says where ids come from.
        let cannot = try CLI.run(["tokenize", "--model", nfc.path, "--data", fixtures.appendingPathComponent("text.jsonl").path, "--out", dir.appendingPathComponent("no.jsonl").path])
        #expect(cannot.status != 0 && cannot.stderr.contains("tokenize with transformers (AutoTokenizer) instead"), "\(cannot.stderr)")
        let out = dir.appendingPathComponent("refused.csv")
        let text = try loss(nfc, out)
        #expect(text.status == 1 && !fm.exists(out), "\(text.stderr)")
        #expect(text.stderr.contains("text.jsonl:1: needs the model's tokenizer") && text.stderr.contains("key 'normalizer': 'NFKC' is not supported")
                && text.stderr.contains("give each example as input_ids"), "\(text.stderr)")
        let run = dir.appendingPathComponent("lora")
        let train = try CLI.run(["train", "--init", nfc.path, "--data", ids.path, "--lora-rank", "4", "--epochs", "1", "--out", run.path])
        #expect(train.status == 0 && fm.exists(run.appendingPathComponent("adapter_model.safetensors")), "\(train.stderr)")
        let grand = try CLI.run(["score", "grand", "--run", run.path, "--data", ids.path, "--out", dir.appendingPathComponent("g.csv").path])
        #expect(grand.status == 0, "\(grand.stderr)")
    }

    @Test func configKeysAndTensorsWinnowWouldIgnoreAreRefused() throws {
        let dir = try CLI.tempDir("decoder-config")
        defer { try? fm.removeItem(at: dir) }
        let out = dir.appendingPathComponent("s.csv")
        let bias = try model(dir, "bias") { $0["mlp_bias"] = true }
        let r = try loss(bias, out)
        #expect(r.status == 1 && r.stderr.contains("mlp_bias") && !fm.exists(out), "\(r.stderr)")
        let attention = try model(dir, "attention-bias") { $0["attention_bias"] = true }
        let a = try loss(attention, out)
        #expect(a.status == 1 && a.stderr.contains("attention_bias") && a.stderr.contains("o_proj") && !fm.exists(out), "\(a.stderr)")
        // A tensor of a third layer in a two-layer model.
        let extra = try model(dir, "extra") { _ in }
        let st = extra.appendingPathComponent("model.safetensors")
        var d = try Data(contentsOf: st)
        let n = d.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var header = try #require(try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as? [String: Any])
        let dataBytes = d.count - 8 - n
        header["model.layers.2.mlp.down_proj.weight"] = ["dtype": "F32", "shape": [1], "data_offsets": [dataBytes, dataBytes + 4]]
        var h = try JSONSerialization.data(withJSONObject: header)
        while h.count % 8 != 0 { h.append(0x20) }
        var file = Data((0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) })
        file.append(h)
        file.append(d.subdata(in: (8 + n)..<d.count))
        file.append(Data(count: 4))
        d = file
        try d.write(to: st)
        let e = try loss(extra, out)
        #expect(e.status == 1 && e.stderr.contains("model.layers.2.mlp.down_proj.weight") && e.stderr.contains("num_hidden_layers"), "\(e.stderr)")
    }

    /// A Qwen3 folder (q_norm and k_norm) through the CLI: scored over its last layer (the norms among its 11
    /// tensors), LoRA-trained, and its adapter run scored.
    @Test func aQwen3FolderScoresAndTrainsALoRAAdapter() throws {
        let dir = try CLI.tempDir("decoder-qwen3")
        defer { try? fm.removeItem(at: dir) }
        let qwen3 = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/qwen3").path
        let data = dir.appendingPathComponent("ids.jsonl")
        try (0..<12).map { i in "{\"input_ids\": [\((0..<(5 + i)).map { String(($0 * 7 + i) % 101) }.joined(separator: ", "))]}" }
            .joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let g = try CLI.run(["score", "grand", "--run", qwen3, "--data", data.path, "--params", "last-layer", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(g.status == 0 && g.stderr.contains("over 11 tensor(s)"), "\(g.stderr)")
        let run = dir.appendingPathComponent("lora")
        let t = try CLI.run(["train", "--init", qwen3, "--data", data.path, "--lora-rank", "2", "--epochs", "1", "--batch-size", "4", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let l = try CLI.run(["score", "loss", "--run", run.path, "--data", data.path, "--out", dir.appendingPathComponent("l.csv").path])
        #expect(l.status == 0 && l.stderr.contains("wrote 12 loss scores"), "\(l.stderr)")
    }

    /// A Gemma 3 folder (norms on the attention's and MLP's outputs, q and k norms: 13 tensors in its last layer; Gemma's
    /// tokenizer form) scores, trains a LoRA adapter, and trains a classifier written as Gemma3TextForSequenceClassification;
    /// sequences of up to 16 tokens run past its local layers' window of 12.
    @Test func aGemma3FolderScoresTrainsAndClassifies() throws {
        let dir = try CLI.tempDir("decoder-gemma3")
        defer { try? fm.removeItem(at: dir) }
        let gemma = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/gemma3").path
        let data = dir.appendingPathComponent("ids.jsonl")
        try (0..<12).map { i in "{\"input_ids\": [\((0..<(5 + i)).map { String(($0 * 7 + i) % 101) }.joined(separator: ", "))], \"label\": \"\(i % 2 == 0 ? "even" : "odd")\"}" }
            .joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let g = try CLI.run(["score", "grand", "--run", gemma, "--data", data.path, "--params", "last-layer", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(g.status == 0 && g.stderr.contains("over 13 tensor(s)") && g.stderr.contains("using 64"), "\(g.stderr)")
        let run = dir.appendingPathComponent("lora")
        let t = try CLI.run(["train", "--init", gemma, "--data", data.path, "--lora-rank", "2", "--lora-targets", "q_proj,v_proj,down_proj",
                             "--epochs", "1", "--batch-size", "4", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let l = try CLI.run(["score", "loss", "--run", run.path, "--data", data.path, "--out", dir.appendingPathComponent("l.csv").path])
        #expect(l.status == 0 && l.stderr.contains("wrote 12 loss scores"), "\(l.stderr)")
        let cls = dir.appendingPathComponent("cls")
        let texts = dir.appendingPathComponent("texts.jsonl")
        try (0..<12).map { "{\"text\": \"\($0 % 2 == 0 ? "a good film" : "a bad film") number \($0)\", \"label\": \"\($0 % 2 == 0 ? "pos" : "neg")\"}" }
            .joined(separator: "\n").write(to: texts, atomically: true, encoding: .utf8)
        let c = try CLI.run(["train", "--init", gemma, "--task", "classify", "--data", texts.path, "--epochs", "1", "--out", cls.path])
        #expect(c.status == 0, "\(c.stderr)")
        let cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cls.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(cfg["architectures"] as? [String] == ["Gemma3TextForSequenceClassification"] && cfg["model_type"] as? String == "gemma3_text")
        let p = try CLI.run(["predict", "--run", cls.path, "--data", texts.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0, "\(p.stderr)")
        // Gemma's tokenizer form (a Replace normalizer and a Split at " ") tokenizes without a "▁" before the text.
        let ids = dir.appendingPathComponent("tokens.jsonl")
        let tok = try CLI.run(["tokenize", "--model", gemma, "--data", texts.path, "--out", ids.path])
        #expect(tok.status == 0, "\(tok.stderr)")
        let first = try #require(try String(contentsOf: ids, encoding: .utf8).split(separator: "\n").first)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let tj = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: gemma).appendingPathComponent("tokenizer.json"))) as? [String: Any])
        let vocab = try #require((tj["model"] as? [String: Any])?["vocab"] as? [String: Int])
        let got = try #require(row["input_ids"] as? [Int])
        #expect(got.count > 3 && got[0] == 1 && vocab["a"].map { got[1] == $0 } == true, "\(got): <s>, then \"a\" with no \"▁\" before it")
    }

    /// A Mistral's window (16 keys) masks the keys before it on longer sequences: the same weights score otherwise than
    /// as a Llama, and as a Llama when every sequence fits in the window.
    @Test func aMistralWindowMasksKeysBeforeIt() throws {
        let dir = try CLI.tempDir("decoder-window")
        defer { try? fm.removeItem(at: dir) }
        let window = try model(dir, "mistral") { $0["model_type"] = "mistral"; $0["sliding_window"] = 16 }
        let plain = try model(dir, "llama") { _ in }
        let a = dir.appendingPathComponent("a.csv"), b = dir.appendingPathComponent("b.csv")
        let r = try loss(window, a)
        #expect(r.status == 0 && !r.stderr.contains("longest sequence"), "\(r.stderr)")
        #expect(try loss(plain, b).status == 0)
        #expect(try Data(contentsOf: a) != Data(contentsOf: b), "past 16 tokens a Mistral's window changes the losses")
        #expect(try loss(window, a, ["--max-length", "16"]).status == 0 && loss(plain, b, ["--max-length", "16"]).status == 0)
        #expect(try Data(contentsOf: a) == Data(contentsOf: b), "within its window a Mistral scores as the same Llama")
        // A Mistral classifier run is written as one and read back (its head found by the family's class name).
        let data = dir.appendingPathComponent("d.jsonl")
        try "{\"text\": \"a good film\", \"label\": \"pos\"}\n{\"text\": \"a bad film\", \"label\": \"neg\"}\n".write(to: data, atomically: true, encoding: .utf8)
        let cls = dir.appendingPathComponent("cls")
        #expect(try CLI.run(["train", "--init", window.path, "--task", "classify", "--data", data.path, "--epochs", "1", "--max-length", "16",
                             "--out", cls.path]).status == 0)
        let cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cls.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(cfg["architectures"] as? [String] == ["MistralForSequenceClassification"] && cfg["sliding_window"] as? Int == 16)
        let p = try CLI.run(["predict", "--run", cls.path, "--data", data.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0, "\(p.stderr)")
    }

    @Test func decoderOptionsThatChangeNothingAreRefused() throws {
        let dir = try CLI.tempDir("decoder-options")
        defer { try? fm.removeItem(at: dir) }
        let tied = fixtures.appendingPathComponent("tied").path, pc = fixtures.appendingPathComponent("pc.jsonl").path
        let out = dir.appendingPathComponent("x").path
        for (args, message) in [(["score", "loss", "--run", tied, "--data", pc, "--checkpoints", "first", "--out", out], "one model without checkpoints"),
                                (["score", "vog", "--run", tied, "--data", pc, "--target", "predicted", "--out", out], "--target predicted is for classifiers"),
                                (["train", "--init", tied, "--data", pc, "--dropout", "0.1", "--out", out], "--dropout does not apply to a decoder"),
                                (["train", "--init", tied, "--data", pc, "--layers", "3", "--out", out], "--layers shapes a fresh model")] {
            let r = try CLI.run(args)
            #expect(r.status != 0 && r.stderr.contains(message) && !fm.fileExists(atPath: out), "\(args): \(r.stderr)")
        }
        // A full run resumed as an adapter run is another run.
        let full = dir.appendingPathComponent("full")
        let fa = ["train", "--init", tied, "--data", pc, "--epochs", "1", "--max-length", "64", "--lr", "1e-4", "--out", full.path]
        #expect(try CLI.run(fa).status == 0)
        let asLoRA = try CLI.run(fa + ["--lora-rank", "2", "--resume"])
        #expect(asLoRA.status != 0 && asLoRA.stderr.contains("another lora"), "\(asLoRA.stderr)")
    }

    @Test func aDecoderClassifierRunRecordsItsPaddingAndRefusesPVI() throws {
        let dir = try CLI.tempDir("decoder-cls")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        let texts = ["a good film", "a bad film", "great acting", "dull plot", "lovely music", "awful script"]
        try texts.enumerated().map { "{\"text\": \"\($0.element)\", \"label\": \"\($0.offset % 2 == 0 ? "pos" : "neg")\"}" }
            .joined(separator: "\n").appending("\n").write(to: data, atomically: true, encoding: .utf8)
        // In full from a GGUF file the run would have no tokenizer (it lives in the GGUF): refused, as for --task lm.
        let fromGGUF = try CLI.run(["train", "--init", CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf").path, "--task", "classify",
                                    "--data", data.path, "--epochs", "1", "--max-length", "16", "--out", dir.appendingPathComponent("g").path])
        #expect(fromGGUF.status != 0 && fromGGUF.stderr.contains("without a tokenizer") && !fm.fileExists(atPath: dir.appendingPathComponent("g").path),
                "\(fromGGUF.stderr)")
        // A folder holding the GGUF file: the same reason as the file itself.
        let ggufFolder = dir.appendingPathComponent("gguf-folder")
        try fm.createDirectory(at: ggufFolder, withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf"), to: ggufFolder.appendingPathComponent("tiny.gguf"))
        let inFolder = try CLI.run(["train", "--init", ggufFolder.path, "--task", "classify", "--data", data.path, "--epochs", "1", "--max-length", "16",
                                    "--out", dir.appendingPathComponent("gf").path])
        #expect(inFolder.status != 0 && inFolder.stderr.contains("lives in the GGUF file"), "\(inFolder.stderr)")
        // A Hugging Face folder without its tokenizer.json is named as such (not as a GGUF file), for train and pretrain alike.
        let bare = dir.appendingPathComponent("bare")
        try fm.createDirectory(at: bare, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] { try fm.copyItem(at: fixtures.appendingPathComponent("tied/\(f)"), to: bare.appendingPathComponent(f)) }
        for (args, out) in [(["train", "--init", bare.path, "--task", "classify", "--data", data.path, "--epochs", "1", "--max-length", "16"], "b1"),
                            (["train", "--init", bare.path, "--data", data.path, "--epochs", "1", "--max-length", "16"], "b2"),
                            (["pretrain", "--init", bare.path, "--corpus", fixtures.appendingPathComponent("corpus.txt").path, "--steps", "1"], "b3")] {
            let r = try CLI.run(args + ["--out", dir.appendingPathComponent(out).path])
            #expect(r.status == 1 && r.stderr.contains("bare: has no tokenizer.json") && !r.stderr.contains("GGUF"), "\(args): \(r.stderr)")
        }
        let run = dir.appendingPathComponent("cls")
        let t = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--task", "classify", "--data", data.path,
                             "--epochs", "1", "--batch-size", "3", "--max-length", "16", "--out", run.path])
        #expect(t.status == 0 && !t.stderr.contains("joined with no token"), "\(t.stderr)")
        // Pairs are joined as transformers joins them with this tokenizer (no token between): said once.
        let pairs = dir.appendingPathComponent("pairs.jsonl")
        try texts.enumerated().map { "{\"premise\": \"\($0.element)\", \"hypothesis\": \"it is\", \"label\": \"\($0.offset % 2 == 0 ? "pos" : "neg")\"}" }
            .joined(separator: "\n").appending("\n").write(to: pairs, atomically: true, encoding: .utf8)
        let tp = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--task", "classify", "--data", pairs.path,
                              "--epochs", "1", "--batch-size", "3", "--max-length", "16", "--out", dir.appendingPathComponent("pairs-run").path])
        #expect(tp.status == 0 && tp.stderr.components(separatedBy: "each premise and its hypothesis are joined with no token between them").count == 2,
                "\(tp.stderr)")
        let cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(cfg["pad_token_id"] is NSNumber, "transformers refuses batches of more than one sequence without pad_token_id")
        let tc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("tokenizer_config.json"))) as? [String: Any])
        #expect(tc["pad_token"] is String, "transformers' tokenizer refuses padding=True without a pad_token")
        let p = try CLI.run(["score", "pvi", "--run", run.path, "--null-run", run.path, "--data", data.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 1 && p.stderr.contains("BERT encoders only"), "\(p.stderr)")
        // A base whose pad_token_id is not the id batches are padded with: predictions do not depend on the batch.
        let padded = try model(dir, "pad1") { $0["pad_token_id"] = 1 }
        let run1 = dir.appendingPathComponent("cls1")
        #expect(try CLI.run(["train", "--init", padded.path, "--task", "classify", "--data", data.path, "--epochs", "1", "--batch-size", "3",
                             "--max-length", "16", "--out", run1.path]).status == 0)
        let one = dir.appendingPathComponent("one.csv"), all = dir.appendingPathComponent("all.csv")
        #expect(try CLI.run(["predict", "--run", run1.path, "--data", data.path, "--batch-size", "1", "--out", one.path]).status == 0)
        #expect(try CLI.run(["predict", "--run", run1.path, "--data", data.path, "--batch-size", "64", "--out", all.path]).status == 0)
        // The same rows and classes, probabilities equal up to the GEMM's summation order (OpenBLAS's differs with the
        // batch shape; a head that read padding would move them by far more).
        let rowsOne = try String(contentsOf: one, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let rowsAll = try String(contentsOf: all, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rowsOne.count == rowsAll.count && rowsOne.count == 7)
        for (a, b) in zip(rowsOne.dropFirst(), rowsAll.dropFirst()) {
            #expect(a.prefix(5) == b.prefix(5), "the head read padding: \(a) vs \(b)")
            for (x, y) in zip(a.dropFirst(5), b.dropFirst(5)) { #expect(abs(Double(x)! - Double(y)!) <= 1e-5, "the head read padding: \(a) vs \(b)") }
        }
        // A LoRA classifier run resumed with another alpha is refused: its checkpoints belong to the first.
        let lora = dir.appendingPathComponent("lora")
        let la = ["train", "--init", fixtures.appendingPathComponent("tied").path, "--task", "classify", "--data", data.path, "--epochs", "1",
                  "--batch-size", "3", "--max-length", "16", "--lora-rank", "2", "--out", lora.path]
        #expect(try CLI.run(la).status == 0)
        let again = try CLI.run(la + ["--lora-alpha", "64", "--resume"])
        #expect(again.status != 0 && again.stderr.contains("another lora"), "\(again.stderr)")
        // An option error found when the model loads leaves no parts folder behind.
        let out = dir.appendingPathComponent("g.csv")
        let g = try CLI.run(["score", "grand", "--run", fixtures.appendingPathComponent("tied").path, "--data", fixtures.appendingPathComponent("pc.jsonl").path,
                             "--params", "lora", "--out", out.path])
        #expect(g.status != 0 && g.stderr.contains("no LoRA adapter") && !fm.fileExists(atPath: out.path + ".parts"), "\(g.stderr)")
    }
}

extension DecoderInputCLITests {
    /// A fully fine-tuned decoder is written as its family (a Qwen2 stays a Qwen2, which has no o_proj bias),
    /// with the base's special ids and generation settings, so that transformers generates as from the base.
    @Test func aFullRunKeepsItsFamilyAndSpecialIDs() throws {
        let dir = try CLI.tempDir("decoder-full")
        defer { try? fm.removeItem(at: dir) }
        let qwen = try model(dir, "qwen") { $0["model_type"] = "qwen2"; $0["architectures"] = ["Qwen2ForCausalLM"]; $0["bos_token_id"] = 2; $0["eos_token_id"] = [3, 4] }
        // A Qwen2 needs q/k/v biases: zero ones added to the copied weights (a safetensors file of its own).
        let shapes = [("q_proj", 48), ("k_proj", 24), ("v_proj", 24)]
        var header: [String: Any] = [:]
        var data = Data()
        for layer in 0..<2 {
            for (m, n) in shapes {
                header["model.layers.\(layer).self_attn.\(m).bias"] = ["dtype": "F32", "shape": [n], "data_offsets": [data.count, data.count + 4 * n]]
                data.append(Data(count: 4 * n))
            }
        }
        var h = try JSONSerialization.data(withJSONObject: header)
        while h.count % 8 != 0 { h.append(0x20) }
        var file = Data((0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) })
        file.append(h); file.append(data)
        try file.write(to: qwen.appendingPathComponent("biases.safetensors"))
        let main = try Data(contentsOf: qwen.appendingPathComponent("model.safetensors"))
        let n = main.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let names = try #require(try JSONSerialization.jsonObject(with: main.subdata(in: 8..<(8 + n))) as? [String: Any]).keys.filter { $0 != "__metadata__" }
        var map: [String: String] = [:]
        for k in names { map[k] = "model.safetensors" }
        for k in header.keys { map[k] = "biases.safetensors" }
        try fm.moveItem(at: qwen.appendingPathComponent("model.safetensors"), to: qwen.appendingPathComponent("main.safetensors"))
        for (k, v) in map where v == "model.safetensors" { map[k] = "main.safetensors" }
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: qwen.appendingPathComponent("model.safetensors.index.json"))
        try "{\"max_new_tokens\": 7}".write(to: qwen.appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let t = try CLI.run(["train", "--init", qwen.path, "--data", fixtures.appendingPathComponent("text.jsonl").path, "--epochs", "1",
                             "--batch-size", "3", "--max-length", "32", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(cfg["model_type"] as? String == "qwen2" && cfg["architectures"] as? [String] == ["Qwen2ForCausalLM"] && cfg["attention_bias"] == nil)
        #expect(cfg["bos_token_id"] as? Int == 2 && cfg["eos_token_id"] as? [Int] == [3, 4], "\(cfg)")
        #expect(fm.fileExists(atPath: run.appendingPathComponent("generation_config.json").path))
        // The run scores as a model of the same family.
        #expect(try loss(run, dir.appendingPathComponent("s.csv")).status == 0)
    }

    /// peft writes "all-linear" as full module paths and matches names by their last components: such an
    /// adapter scores as the same one with bare names; variants of LoRA it does not implement are named.
    @Test func adapterTargetPathsAreReadAndLoRAVariantsRefused() throws {
        let dir = try CLI.tempDir("decoder-targets")
        defer { try? fm.removeItem(at: dir) }
        let pc = fixtures.appendingPathComponent("pc.jsonl").path
        let run = dir.appendingPathComponent("lora")
        #expect(try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", pc, "--lora-rank", "2", "--epochs", "1",
                             "--max-length", "64", "--lora-targets", "q_proj,down_proj", "--out", run.path]).status == 0)
        // The run's own adapter and each checkpoint's.
        let cfgURLs = try fm.subpathsOfDirectory(atPath: run.path).filter { $0.hasSuffix("adapter_config.json") }.map { run.appendingPathComponent($0) }
        #expect(cfgURLs.count >= 2)
        let original = try Data(contentsOf: run.appendingPathComponent("adapter_config.json"))
        func withConfig(_ edit: (inout [String: Any]) -> Void) throws {
            var c = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
            edit(&c)
            for u in cfgURLs { try JSONSerialization.data(withJSONObject: c).write(to: u) }
        }
        let a = dir.appendingPathComponent("a.csv"), b = dir.appendingPathComponent("b.csv")
        #expect(try CLI.run(["score", "loss", "--run", run.path, "--data", pc, "--checkpoints", "last", "--out", a.path]).status == 0)
        try withConfig { $0["target_modules"] = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj", "mlp.down_proj"] }
        let r = try CLI.run(["score", "loss", "--run", run.path, "--data", pc, "--checkpoints", "last", "--out", b.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: a) == Data(contentsOf: b))
        for (key, value, message) in [("alora_invocation_tokens", [3] as Any, "aLoRA"), ("exclude_modules", ["q_proj"] as Any, "excluding modules"),
                                      ("target_modules", "all-linear" as Any, "is a pattern")] {
            try withConfig { $0[key] = value }
            let bad = try CLI.run(["score", "loss", "--run", run.path, "--data", pc, "--out", dir.appendingPathComponent("x.csv").path])
            #expect(bad.status == 1 && bad.stderr.contains(key) && bad.stderr.contains(message), "\(key): \(bad.stderr)")
        }
    }

    /// U+FEFF written raw inside a JSON string is text, as transformers encodes it: the same ids as its
    /// escaped form, wherever it stands; a byte-order mark before a file's first object is not.
    @Test func aRawByteOrderMarkInsideTextIsKept() throws {
        let dir = try CLI.tempDir("decoder-bom")
        defer { try? fm.removeItem(at: dir) }
        let raw = dir.appendingPathComponent("raw.jsonl"), escaped = dir.appendingPathComponent("escaped.jsonl")
        let bom = "\u{FEFF}"
        try (bom + "{\"text\": \"\(bom)Hello\"}\n{\"text\": \"a\\n\(bom)b\"}\n").write(to: raw, atomically: true, encoding: .utf8)
        try "{\"text\": \"\\ufeffHello\"}\n{\"text\": \"a\\n\\ufeffb\"}\n".write(to: escaped, atomically: true, encoding: .utf8)
        var ids: [[String]] = []
        for f in [raw, escaped] {
            let out = dir.appendingPathComponent(f.lastPathComponent + ".ids")
            let r = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", f.path, "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            ids.append(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { String($0.split(separator: "input_ids").last ?? "") })
        }
        #expect(ids[0] == ids[1] && ids[0].count == 2, "\(ids)")
        let plain = dir.appendingPathComponent("plain.jsonl")
        try "{\"text\": \"Hello\"}\n".write(to: plain, atomically: true, encoding: .utf8)
        let p = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", plain.path, "--out", dir.appendingPathComponent("p").path])
        let plainIDs = try String(contentsOf: dir.appendingPathComponent("p"), encoding: .utf8).split(separator: "input_ids").last.map(String.init)
        #expect(p.status == 0 && plainIDs != ids[0][0], "U+FEFF was dropped")
        // A mark before a later line's object is not a byte-order mark: that line is not JSON.
        let late = dir.appendingPathComponent("late.jsonl")
        try ("{\"text\": \"Hello\"}\n" + bom + "{\"text\": \"Hi\"}\n").write(to: late, atomically: true, encoding: .utf8)
        let l = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", late.path, "--out", dir.appendingPathComponent("l").path])
        #expect(l.status == 1 && l.stderr.contains("late.jsonl:2"), "\(l.stderr)")
        // Ids holding U+FEFF are read alike by score and prune.
        let withIDs = dir.appendingPathComponent("ids.jsonl")
        try "{\"text\": \"Hello there\", \"id\": \"\(bom)a\"}\n{\"text\": \"Good day\", \"id\": \"\(bom)b\"}\n".write(to: withIDs, atomically: true, encoding: .utf8)
        let s = dir.appendingPathComponent("s.csv")
        #expect(try loss(fixtures.appendingPathComponent("tied"), s, data: withIDs.path).status == 0)
        let pr = try CLI.run(["prune", "--scores", s.path, "--data", withIDs.path, "--keep", "0.5", "--out", dir.appendingPathComponent("k.jsonl").path])
        #expect(pr.status == 0, "\(pr.stderr)")
    }

    /// Plain text and instruction examples in one file: the line that changes kind is named, either way round.
    @Test func aFileMixingTextAndPromptsNamesTheLine() throws {
        let dir = try CLI.tempDir("decoder-mix")
        defer { try? fm.removeItem(at: dir) }
        let text = try String(contentsOf: fixtures.appendingPathComponent("text.jsonl"), encoding: .utf8).split(separator: "\n")
        let pc = try String(contentsOf: fixtures.appendingPathComponent("pc.jsonl"), encoding: .utf8).split(separator: "\n")
        for (lines, message) in [([text[0], pc[0]], "holds a prompt but the file's first example is plain text"),
                                 ([pc[0], text[0]], "holds plain text but the file's first example is a prompt")] {
            let data = dir.appendingPathComponent("mix.jsonl")
            try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
            let r = try loss(fixtures.appendingPathComponent("tied"), dir.appendingPathComponent("o.csv"), data: data.path)
            #expect(r.status == 1 && r.stderr.contains("mix.jsonl:2") && r.stderr.contains(message), "\(r.stderr)")
        }
    }

    /// A causal adapter relabelled SEQ_CLS has no classes anywhere: the adapter's file is named, not the base.
    @Test func aClassificationAdapterWithoutClassesIsNamed() throws {
        let dir = try CLI.tempDir("decoder-seqcls")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("lora")
        let t = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", fixtures.appendingPathComponent("pc.jsonl").path,
                             "--lora-rank", "2", "--epochs", "1", "--max-length", "64", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let cfgURL = run.appendingPathComponent("adapter_config.json")
        var cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any])
        cfg["task_type"] = "SEQ_CLS"
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        let data = dir.appendingPathComponent("d.jsonl")
        try "{\"text\": \"a good film\", \"label\": \"pos\"}\n".write(to: data, atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", "--run", run.path, "--data", data.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 1 && p.stderr.contains("adapter_config.json") && p.stderr.contains("SEQ_CLS"), "\(p.stderr)")
    }
}

private extension FileManager {
    func exists(_ u: URL) -> Bool { fileExists(atPath: u.path) }
}

/// What the decoder flows refuse or now do right: resuming on other data or fields, an adapter given as
/// --init, outputs into an adapter's base model, chat templates that are not ChatML (and the one in
/// chat_template.jinja), options a causal LM ignores, bad adapter_config values.
@Suite(.serialized) struct DecoderRefusalCLITests {
    let fm = FileManager.default
    let fixtures = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")

    /// A bad example late in the file (a chat without an assistant turn) fails before the first part is
    /// scored: no parts folder, no output (before, found when its part came, with earlier parts left behind).
    @Test func aBadExampleLateInTheFileFailsBeforeAnyPart() throws {
        let dir = try CLI.tempDir("decoder-late")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("chat.jsonl")
        let good = try String(contentsOf: fixtures.appendingPathComponent("chat.jsonl"), encoding: .utf8)
        try Data((good + "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n").utf8).write(to: data)
        let bad = good.split(separator: "\n").count + 1
        let out = dir.appendingPathComponent("s.csv")
        let r = try CLI.run(["score", "loss", "--run", fixtures.appendingPathComponent("tied").path, "--data", data.path, "--part-size", "2", "--out", out.path])
        #expect(r.status == 1 && r.stderr.contains("chat.jsonl:\(bad):"), "\(r.stderr)")
        #expect(!fm.fileExists(atPath: out.path) && !fm.fileExists(atPath: out.path + ".parts"), "\(String(describing: try? fm.contentsOfDirectory(atPath: dir.path)))")
    }

    /// A classifier given prompt/completion data names the format, not the labels the model lacks.
    @Test func aClassifierGivenPromptsNamesTheFormat() throws {
        let dir = try CLI.tempDir("classifier-prompts")
        defer { try? fm.removeItem(at: dir) }
        for run in [CLI.tiny.appendingPathComponent("run")] {
            let r = try CLI.run(["score", "el2n", "--run", run.path, "--data", fixtures.appendingPathComponent("pc.jsonl").path,
                                 "--out", dir.appendingPathComponent("s.csv").path])
            #expect(r.status == 1 && r.stderr.contains("pc.jsonl:1:") && r.stderr.contains("a classifier needs a text field"), "\(run.lastPathComponent): \(r.stderr)")
        }
    }

    /// A run whose checkpoints hold no tokenizer (a transformers.Trainer run may save it at the root only) is scored
    /// with the root's tokenizer.
    @Test func aRunWithTheTokenizerAtItsRootOnlyIsScored() throws {
        let dir = try CLI.tempDir("decoder-root-tokenizer")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let t = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", fixtures.appendingPathComponent("text.jsonl").path,
                             "--epochs", "2", "--batch-size", "4", "--checkpoints", "2", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let cks = try fm.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("checkpoint-") }
        #expect(cks.count == 2)
        for ck in cks {
            for f in try fm.contentsOfDirectory(atPath: run.appendingPathComponent(ck).path) where f.hasPrefix("tokenizer") {
                try fm.removeItem(at: run.appendingPathComponent(ck).appendingPathComponent(f))
            }
        }
        let r = try CLI.run(["score", "loss", "--run", run.path, "--data", fixtures.appendingPathComponent("text.jsonl").path,
                             "--out", dir.appendingPathComponent("s.csv").path])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// A tokenizer larger than the model's embedding table (another model's, beside a tiny Llama) gives ids the
    /// table has no row for: every reader refuses the first one, naming file and line, before any output
    /// (before, reads past the table: NaN scores, or losses that changed with the batch size).
    @Test func idsOutsideTheModelsVocabularyAreRefused() throws {
        let dir = try CLI.tempDir("decoder-vocab")
        defer { try? fm.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("hfbad")
        try fm.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/llama/hf"), to: bad)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try? fm.removeItem(at: bad.appendingPathComponent(f))
            try fm.copyItem(at: fixtures.appendingPathComponent("tied/\(f)"), to: bad.appendingPathComponent(f))
        }
        let ids = dir.appendingPathComponent("ids.jsonl")
        try Data("{\"input_ids\": [1, 5, 7, 9, 300]}\n".utf8).write(to: ids)
        let text = fixtures.appendingPathComponent("text.jsonl").path
        let out = dir.appendingPathComponent("o")
        for (args, file) in [(["score", "grand", "--run", bad.path, "--data", text, "--out", out.path + ".csv"], "text.jsonl:1"),
                             (["score", "loss", "--run", bad.path, "--data", ids.path, "--out", out.path + ".csv"], "ids.jsonl:1"),
                             (["train", "--init", bad.path, "--data", text, "--epochs", "1", "--out", out.path], "text.jsonl:1"),
                             (["pretrain", "--init", bad.path, "--corpus", fixtures.appendingPathComponent("corpus.txt").path, "--steps", "1",
                               "--seq-len", "32", "--out", out.path], "corpus.txt:1")] {
            let r = try CLI.run(args)
            #expect(r.status == 1 && r.stderr.contains(file) && r.stderr.contains("outside the model's vocabulary of 101"), "\(args[0]): \(r.stderr)")
            #expect(!fm.fileExists(atPath: out.path) && !fm.fileExists(atPath: out.path + ".csv"), "\(args[0]) left output")
        }
        // The same for a BERT run given a larger vocab.txt (MiniLM's beside the tiny run's 85 rows).
        let tb = dir.appendingPathComponent("tb")
        try fm.copyItem(at: CLI.tiny.appendingPathComponent("run"), to: tb)
        let wide = (0..<300).map { "[unused\($0)]" }.joined(separator: "\n")
        let vocab = try String(contentsOf: tb.appendingPathComponent("vocab.txt"), encoding: .utf8)
        for folder in [tb] + (try fm.contentsOfDirectory(at: tb, includingPropertiesForKeys: nil)).filter({ $0.lastPathComponent.hasPrefix("checkpoint-") }) {
            try Data((wide + "\n" + vocab).utf8).write(to: folder.appendingPathComponent("vocab.txt"))
        }
        let e = try CLI.run(["score", "el2n", "--run", tb.path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--out", out.path + ".csv"])
        #expect(e.status == 1 && e.stderr.contains("train.jsonl:1") && e.stderr.contains("outside the model's vocabulary of 85"), "\(e.stderr)")
        #expect(!fm.fileExists(atPath: out.path + ".csv"))
    }

    @Test func resumingADecoderRunNeedsTheSameDataAndFields() throws {
        let dir = try CLI.tempDir("decoder-resume")
        defer { try? fm.removeItem(at: dir) }
        let tied = fixtures.appendingPathComponent("tied").path
        // Every line holds a text and a prompt/completion: the fields decide which is read.
        let both = dir.appendingPathComponent("both.jsonl"), other = dir.appendingPathComponent("other.jsonl")
        let lines = (0..<6).map { "{\"text\": \"the film \($0) was good\", \"prompt\": \"Review \($0):\", \"completion\": \" good\"}" }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: both)
        try Data((lines.reversed().joined(separator: "\n") + "\n").utf8).write(to: other)
        let run = dir.appendingPathComponent("run")
        func train(_ data: URL, _ extra: [String] = []) throws -> CLIResult {
            try CLI.run(["train", "--init", tied, "--data", data.path, "--epochs", "2", "--batch-size", "3", "--lora-rank", "2", "--max-length", "32",
                         "--checkpoints", "2", "--out", run.path, "--resume"] + extra)
        }
        #expect(try train(both).status == 0)
        try fm.removeItem(at: run.appendingPathComponent("checkpoint-4"))
        let moved = try train(other)
        #expect(moved.status == 1 && moved.stderr.contains("another data_fnv1a64"), "\(moved.stderr)")
        let fields = try train(both, ["--text-field", "text"])
        #expect(fields.status == 1 && fields.stderr.contains("another fields"), "\(fields.stderr)")
        let same = try train(both)
        #expect(same.status == 0 && same.stderr.contains("resuming from"), "\(same.stderr)")
    }

    /// GraNd and self-influence of a tied-embedding decoder on an example longer than hidden x vocab allows in
    /// the old scratch: finite (before, a heap overflow in the tied cross term, signal 11 or 6).
    @Test func tiedEmbeddingNormsOfALongExample() throws {
        let dir = try CLI.tempDir("decoder-tied-long")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("long.jsonl")
        try Data(("{\"text\": \"" + String(repeating: "It is a truth universally acknowledged. ", count: 30) + "\"}\n").utf8).write(to: data)
        var values: [String: Double] = [:]
        for method in ["grand", "tracin"] {
            let out = dir.appendingPathComponent("\(method).csv")
            let r = try CLI.run(["score", method, "--run", fixtures.appendingPathComponent("tied").path, "--data", data.path, "--max-length", "256", "--out", out.path])
            #expect(r.status == 0, "\(method): \(r.stderr)")
            let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            let c = try #require(lines.first?.firstIndex(of: "score"))
            values[method] = Double(lines[1][c])
        }
        let grand = try #require(values["grand"]), si = try #require(values["tracin"])
        #expect(grand.isFinite && grand > 0 && si.isFinite && si > 0, "\(values)")
        // Self-influence is the squared gradient norm GraNd takes the root of.
        #expect(abs(grand * grand - si) <= 1e-3 * si, "\(values)")
    }

    /// A completion that already ends with the EOS token gets no second one (TRL appends EOS only when missing).
    @Test func aCompletionEndingInEOSGetsNoSecond() throws {
        let dir = try CLI.tempDir("decoder-eos")
        defer { try? fm.removeItem(at: dir) }
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("tied/tokenizer_config.json"))) as? [String: Any])
        let eos = try #require(config["eos_token"] as? String)
        let data = dir.appendingPathComponent("pc.jsonl"), out = dir.appendingPathComponent("ids.jsonl")
        let lines = ["{\"prompt\": \"Translate to French: cat\", \"completion\": \" chat\"}",
                     "{\"prompt\": \"Translate to French: cat\", \"completion\": \" chat\(eos)\"}"]
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: data)
        let r = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", data.path, "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(rows.count == 2 && rows[0]["input_ids"] as? [Int] == rows[1]["input_ids"] as? [Int] && rows[0]["scored"] as? [Int] == rows[1]["scored"] as? [Int], "\(rows)")
    }

    /// A language-model run trained on a named text field is scored on that field (before, detection read
    /// `text` beside it, and every row scored the same decoy).
    @Test func aDecoderRunIsScoredOnTheFieldItWasTrainedOn() throws {
        let dir = try CLI.tempDir("decoder-field")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("body.jsonl"), run = dir.appendingPathComponent("run"), out = dir.appendingPathComponent("loss.csv")
        let bodies = ["the film was good", "a dull and long plot", "what a lovely score", "she said hello there"]
        try Data((bodies.map { "{\"body\": \"\($0)\", \"text\": \"IGNORE ME\"}" }.joined(separator: "\n") + "\n").utf8).write(to: data)
        let t = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", data.path, "--text-field", "body",
                             "--lora-rank", "2", "--epochs", "1", "--max-length", "32", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        let s = try CLI.run(["score", "loss", "--run", run.path, "--data", data.path, "--out", out.path])
        #expect(s.status == 0 && s.stderr.contains("--text-field body, the field"), "\(s.stderr)")
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let c = try #require(lines.first?.firstIndex(of: "score"))
        #expect(Set(lines.dropFirst().map { $0[c] }).count == bodies.count, "\(lines)")
        // Labelled texts trained as a language model: the labels are said to be unread.
        let labelled = dir.appendingPathComponent("labelled.jsonl")
        try Data((bodies.map { "{\"text\": \"\($0)\", \"label\": \"pos\"}" }.joined(separator: "\n") + "\n").utf8).write(to: labelled)
        let lm = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", labelled.path, "--lora-rank", "2", "--epochs", "1",
                              "--max-length", "32", "--out", dir.appendingPathComponent("lm").path])
        #expect(lm.status == 0 && lm.stderr.contains("'label' field is not read: --task lm trains the model on the text alone"), "\(lm.stderr)")
    }

    @Test func anAdapterAsInitTrainsItsAdapterOn() throws {
        let dir = try CLI.tempDir("decoder-adapter-init")
        defer { try? fm.removeItem(at: dir) }
        // A copy of the tied base and its adapter, side by side as the fixture's relative base path expects.
        for name in ["tied", "lora"] { try fm.copyItem(at: fixtures.appendingPathComponent(name), to: dir.appendingPathComponent(name)) }
        let adapter = dir.appendingPathComponent("lora"), run = dir.appendingPathComponent("run")
        let pc = fixtures.appendingPathComponent("pc.jsonl").path
        let t = try CLI.run(["train", "--init", adapter.path, "--data", pc, "--epochs", "1", "--max-length", "64", "--out", run.path])
        #expect(t.status == 0 && t.stderr.contains("the adapter of --init") && t.stderr.contains("lr 0.0002") && t.stdout.contains("adapter written"), "\(t.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect((config?["base_model_name_or_path"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } == "tied", "\(String(describing: config))")
        let s = try CLI.run(["score", "loss", "--run", run.path, "--data", pc, "--out", dir.appendingPathComponent("loss.csv").path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Data(contentsOf: run.appendingPathComponent("adapter_model.safetensors")) != Data(contentsOf: adapter.appendingPathComponent("adapter_model.safetensors")))
        let twice = try CLI.run(["train", "--init", adapter.path, "--data", pc, "--lora-rank", "2", "--out", dir.appendingPathComponent("r2").path])
        #expect(twice.status == 2 && twice.stderr.contains("is a LoRA adapter"), "\(twice.stderr)")
        // Outputs into the adapter's base model (named by adapter_config.json only) are refused.
        let base = dir.appendingPathComponent("tied/model.safetensors")
        let weights = try Data(contentsOf: base)
        let into = try CLI.run(["score", "loss", "--run", run.path, "--data", pc, "--out", base.path])
        #expect(into.status == 2 && into.stderr.contains("inside the folder"), "\(into.stderr)")
        #expect(try Data(contentsOf: base) == weights)
    }

    /// Found by a decoder review: a folder of two GGUF files, a stray vocab.txt beside a BPE tokenizer.json,
    /// LoRA targets with spaces and a negative rank.
    @Test func folderAndOptionMistakesOfADecoder() throws {
        let dir = try CLI.tempDir("decoder-folders")
        defer { try? fm.removeItem(at: dir) }
        let gguf = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf")
        let two = dir.appendingPathComponent("two")
        try fm.createDirectory(at: two, withIntermediateDirectories: true)
        for name in ["a.Q4_1.gguf", "b.Q8_0.gguf"] { try fm.copyItem(at: gguf, to: two.appendingPathComponent(name)) }
        let text = fixtures.appendingPathComponent("text.jsonl").path
        let t = try CLI.run(["score", "loss", "--run", two.path, "--data", text, "--out", dir.appendingPathComponent("t.csv").path])
        #expect(t.status == 1 && t.stderr.contains("holds 2 .gguf files (a.Q4_1.gguf, b.Q8_0.gguf)"), "\(t.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("t.csv").path))
        // A stray vocab.txt beside a BPE tokenizer.json: the BPE tokenizer is read, the same ids.
        let stray = dir.appendingPathComponent("stray")
        try fm.copyItem(at: fixtures.appendingPathComponent("tied"), to: stray)
        try Data("[PAD]\n[UNK]\nhello\n".utf8).write(to: stray.appendingPathComponent("vocab.txt"))
        let a = dir.appendingPathComponent("a.jsonl"), b = dir.appendingPathComponent("b.jsonl")
        #expect(try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", text, "--out", a.path]).status == 0)
        let s = try CLI.run(["tokenize", "--model", stray.path, "--data", text, "--out", b.path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Data(contentsOf: a) == Data(contentsOf: b))
        // Examples cut at --max-length are counted in a note, as train counts them.
        let cut = try CLI.run(["score", "loss", "--run", fixtures.appendingPathComponent("tied").path, "--data", text, "--max-length", "6",
                               "--out", dir.appendingPathComponent("cut.csv").path])
        #expect(cut.status == 0 && cut.stderr.contains("examples reach the limit of 6 tokens"), "\(cut.stderr)")
        // LoRA targets with a space after the comma are read; a negative rank reaches its own check.
        let pc = fixtures.appendingPathComponent("pc.jsonl").path
        let spaced = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", pc, "--lora-rank", "2",
                                  "--lora-targets", "q_proj, v_proj", "--epochs", "1", "--out", dir.appendingPathComponent("l").path])
        #expect(spaced.status == 0, "\(spaced.stderr)")
        let negative = try CLI.run(["train", "--init", fixtures.appendingPathComponent("tied").path, "--data", pc, "--lora-rank", "-1",
                                    "--out", dir.appendingPathComponent("n").path])
        #expect(negative.status == 2 && negative.stderr.contains("--lora-rank") && !negative.stderr.contains("Missing value"), "\(negative.stderr)")
    }

    /// Chat templates that are not ChatML are rendered as transformers renders them (ChatTemplateTests check the
    /// ids against apply_chat_template on real templates); here, from the CLI: SmolLM2's template in a form Winnow does
    /// not read as ChatML gives the same scores through the renderer as through the ChatML path; a Qwen2.5-style default
    /// system turn is written; a template that raises or that Winnow cannot read is refused with one line and no output.
    @Test func chatTemplatesAreRenderedAndAJinjaFileIsRead() throws {
        let dir = try CLI.tempDir("decoder-templates")
        defer { try? fm.removeItem(at: dir) }
        let chat = fixtures.appendingPathComponent("chat.jsonl").path
        func copy(_ name: String, edit: (inout [String: Any]) -> String?) throws -> URL {
            let m = dir.appendingPathComponent(name)
            try fm.copyItem(at: fixtures.appendingPathComponent("tied"), to: m)
            let u = m.appendingPathComponent("tokenizer_config.json")
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            if let jinja = edit(&c) { try Data(jinja.utf8).write(to: m.appendingPathComponent("chat_template.jinja")) }
            try JSONSerialization.data(withJSONObject: c).write(to: u)
            return m
        }
        func score(_ m: URL, _ name: String) throws -> (CLIResult, URL) {
            let out = dir.appendingPathComponent(name + ".csv")
            return (try CLI.run(["score", "loss", "--run", m.path, "--data", chat, "--out", out.path]), out)
        }
        let (reference, ref) = try score(fixtures.appendingPathComponent("tied"), "ref")
        #expect(reference.status == 0, "\(reference.stderr)")
        let original = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("tied/tokenizer_config.json"))) as? [String: Any])
        let smol = try #require(original["chat_template"] as? String)
        // SmolLM2's template with an expression that writes nothing: not read as ChatML, rendered; the same scores.
        let rendered = try copy("rendered") { c in c["chat_template"] = "{{ '' }}" + smol; return nil }
        let (r, rOut) = try score(rendered, "rendered")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: rOut) == Data(contentsOf: ref))
        // The template moved to chat_template.jinja (as recent transformers saves it): read, the same scores.
        let jinja = try copy("jinja") { c in
            let template = c["chat_template"] as? String
            c.removeValue(forKey: "chat_template")
            return template
        }
        let (j, jOut) = try score(jinja, "j")
        #expect(j.status == 0, "\(j.stderr)")
        #expect(try Data(contentsOf: jOut) == Data(contentsOf: ref))
        // The default system condition in double quotes and attribute access: the same default turn, the same scores.
        let dotted = try copy("dotted") { c in
            c["chat_template"] = (c["chat_template"] as! String).replacingOccurrences(of: "messages[0]['role'] != 'system'", with: "messages[0].role != \"system\"")
            return nil
        }
        let (d, dOut) = try score(dotted, "d")
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try Data(contentsOf: dOut) == Data(contentsOf: ref))
        // A default system turn in Qwen2.5's form (if == 'system' ... else): written, so the ids differ from SmolLM2's default.
        let qwen = try copy("qwen") { c in
            c["chat_template"] = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
                + "{%- else %}{{- '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}{%- endif %}"
                + "{% for message in messages %}{% if not (message.role == 'system' and loop.first) %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endif %}{% endfor %}"
            return nil
        }
        let qIDs = dir.appendingPathComponent("q-ids.jsonl"), refIDs = dir.appendingPathComponent("ref-ids.jsonl")
        let qt = try CLI.run(["tokenize", "--model", qwen.path, "--data", chat, "--out", qIDs.path])
        let rt = try CLI.run(["tokenize", "--model", fixtures.appendingPathComponent("tied").path, "--data", chat, "--out", refIDs.path])
        #expect(qt.status == 0 && rt.status == 0, "\(qt.stderr)\(rt.stderr)")
        #expect(try String(contentsOf: qIDs, encoding: .utf8) != String(contentsOf: refIDs, encoding: .utf8))
        let (q, _) = try score(qwen, "q")
        #expect(q.status == 0, "\(q.stderr)")
        // A template that raises for these messages, and one using Jinja Winnow does not implement: one line each, no output.
        for (name, template, why) in [("raises", "{{ raise_exception('Only user and assistant roles are supported!') }}",
                                       "holds messages the model's chat template does not render (chat template line 1: the template raised an exception: Only user and assistant roles are supported!)"),
                                      ("unread", "{% for m in messages %}{% call upper() %}{{ m.content }}{% endcall %}{% endfor %}",
                                       "the model's chat template cannot be read (chat template line 1: 'call' is not a statement"),
                                      // A message with line breaks stays one line.
                                      ("lines", "{{ raise_exception('first line\nsecond line') }}", "raised an exception: first line\\nsecond line)")] {
            let m = try copy(name) { c in c["chat_template"] = template; return nil }
            let (res, out) = try score(m, name)
            #expect(res.status == 1 && res.stderr.contains("chat.jsonl:1: ") && res.stderr.contains(why) && !fm.fileExists(atPath: out.path), "\(name): \(res.stderr)")
            #expect(res.stderr.split(separator: "\n").filter { $0.hasPrefix("winnow: error:") }.count == 1 && !res.stderr.contains("\nsecond line"), "\(name): \(res.stderr)")
        }
    }

    @Test func optionsACausalLMIgnoresAndBadAdapterConfigs() throws {
        let dir = try CLI.tempDir("decoder-ignored")
        defer { try? fm.removeItem(at: dir) }
        let tied = fixtures.appendingPathComponent("tied").path, pc = fixtures.appendingPathComponent("pc.jsonl").path
        let out = dir.appendingPathComponent("o").path
        for (extra, flag) in [(["--no-dynamics"], "--no-dynamics"), (["--label-field", "label"], "--label-field")] {
            let r = try CLI.run(["train", "--init", tied, "--data", pc, "--out", out] + extra)
            #expect(r.status == 2 && r.stderr.contains(flag), "\(extra): \(r.stderr)")
        }
        let cls = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/cls").path
        let c = try CLI.run(["train", "--init", cls, "--task", "classify", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--out", out])
        #expect(c.status == 2 && c.stderr.contains("decoder sequence classifier"), "\(c.stderr)")
        // Examples cut at the token limit are counted.
        let cut = try CLI.run(["train", "--init", tied, "--data", fixtures.appendingPathComponent("text.jsonl").path, "--max-length", "8", "--epochs", "1",
                               "--lora-rank", "2", "--out", dir.appendingPathComponent("cut").path])
        #expect(cut.status == 0 && cut.stderr.contains("8 of 9 examples reach the limit of 8 tokens"), "\(cut.stderr)")
        // An empty text leaves nothing to train on: counted too.
        let blank = dir.appendingPathComponent("blank.jsonl")
        try Data("{\"text\": \"\"}\n{\"text\": \"Hi you\"}\n".utf8).write(to: blank)
        let noScored = try CLI.run(["train", "--init", tied, "--data", blank.path, "--epochs", "1",
                                    "--lora-rank", "2", "--out", dir.appendingPathComponent("unscored").path])
        #expect(noScored.status == 0 && noScored.stderr.contains("1 of 2 examples have no token to train on"), "\(noScored.stderr)")
        let missing = try CLI.run(["score", "loss", "--run", tied, "--data", pc, "--text-field", "nosuch", "--out", out])
        #expect(missing.status == 1 && missing.stderr.contains("missing text field 'nosuch'"), "\(missing.stderr)")
        for (key, value, message) in [("lora_alpha", -8 as Any, "lora_alpha"), ("task_type", "SEQ_2_SEQ_LM" as Any, "task_type"), ("lora_dropout", 1.5 as Any, "lora_dropout")] {
            let a = dir.appendingPathComponent("a-\(key)")
            try fm.copyItem(at: fixtures.appendingPathComponent("lora"), to: a)
            let u = a.appendingPathComponent("adapter_config.json")
            var cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            cfg[key] = value
            cfg["base_model_name_or_path"] = tied
            try JSONSerialization.data(withJSONObject: cfg).write(to: u)
            let r = try CLI.run(["score", "loss", "--run", a.path, "--data", pc, "--out", out])
            #expect(r.status == 1 && r.stderr.contains("adapter_config.json") && r.stderr.contains("key '\(message)'"), "\(key): \(r.stderr)")
        }
        #expect(!fm.fileExists(atPath: out))
    }
}
