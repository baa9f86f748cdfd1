import Foundation
import Testing

/// One test per row of docs/reliability.md: bad input gets exit status 1, one line on stderr naming the
/// file (and line or tensor) and what is wrong, and no output file.
@Suite(.serialized) struct BadInputCLITests {
    static let data = CLI.tiny.appendingPathComponent("train.jsonl").path
    static let vocab = CLI.tiny.appendingPathComponent("vocab.txt").path

    /// A trained tiny run shared by the checkpoint cases (copied before it is damaged).
    static let run: URL = {
        let dir = try! CLI.tempDir("bad-run-base")
        let run = dir.appendingPathComponent("run")
        _ = try! CLI.trainTiny(run)
        return run
    }()

    static func train(_ data: String, _ dir: URL, _ extra: [String] = []) -> [String] {
        ["train", "--data", data, "--vocab", vocab, "--out", dir.appendingPathComponent("out").path, "--layers", "1", "--hidden", "16",
         "--heads", "2", "--epochs", "1", "--max-length", "16"] + extra
    }

    /// Rewrites a safetensors file's JSON header (and optionally its declared length or its bytes).
    static func damage(_ url: URL, declaredLength: UInt64? = nil, truncateBy: Int = 0, _ edit: (inout [String: Any]) -> Void = { _ in }) throws {
        let d = try Data(contentsOf: url)
        let n = Int(d.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        edit(&header)
        let h = try JSONSerialization.data(withJSONObject: header)
        var len = declaredLength ?? UInt64(h.count)
        var out = Data(bytes: &len, count: 8) + h + d.subdata(in: (8 + n)..<d.count)
        if truncateBy > 0 { out = out.dropLast(truncateBy) }
        try out.write(to: url)
    }

    static func tensorNames(_ h: [String: Any]) -> [String] { h.keys.filter { $0 != "__metadata__" }.sorted() }

    /// Builds the case in `dir`; returns the command and what stderr must contain.
    static func setup(_ name: String, _ dir: URL) throws -> ([String], [String]) {
        let fm = FileManager.default
        func file(_ n: String, _ bytes: [UInt8]) throws -> String {
            let u = dir.appendingPathComponent(n)
            try Data(bytes).write(to: u)
            return u.path
        }
        func text(_ n: String, _ s: String) throws -> String { try file(n, Array(s.utf8)) }
        func damagedRun() throws -> URL {
            let r = dir.appendingPathComponent("run")
            try fm.copyItem(at: run, to: r)
            return r
        }
        func predict(_ r: URL) -> [String] {
            ["predict", "--run", r.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path, "--max-length", "32",
             "--out", dir.appendingPathComponent("out").path]
        }
        let weights = "model.safetensors"
        switch name {
        case "missing data file": return (train(dir.appendingPathComponent("nope.jsonl").path, dir), ["nope.jsonl", "no such data file"])
        case "empty file": return (train(try text("empty.jsonl", ""), dir), ["empty.jsonl", "holds no examples"])
        case "malformed JSON": return (train(try text("bad.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \n"), dir), ["bad.jsonl:2", "not a JSON object"])
        case "missing field": return (train(try text("m.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"label\": \"neg\"}\n"), dir), ["m.jsonl:2", "missing text field"])
        case "mistyped field": return (train(try text("t.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": 5, \"label\": \"neg\"}\n"), dir), ["t.jsonl:2", "not a string"])
        case "mistyped label": return (train(try text("l.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": [1]}\n"), dir), ["l.jsonl:2", "label"])
        case "unknown label":
            let f = try text("u.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"maybe\"}\n")
            return (["eval", "--run", run.path, "--data", f], ["u.jsonl:2", "'maybe' is not one of the model's labels"])
        case "invalid UTF-8": return (train(try file("u8.jsonl", Array("{\"text\": \"a".utf8) + [0xFF, 0xFE] + Array("\", \"label\": \"pos\"}\n".utf8)), dir), ["u8.jsonl:1", "not valid UTF-8"])
        case "NaN in CSV": return (["train", "--data", try text("nan.csv", "label,a,b\npos,1,2\nneg,nan,3\n"), "--out", dir.appendingPathComponent("out").path], ["nan.csv:3", "not finite"])
        case "Inf in CSV": return (["train", "--data", try text("inf.csv", "label,a,b\npos,1,2\nneg,-inf,3\n"), "--out", dir.appendingPathComponent("out").path], ["inf.csv:3", "not finite"])
        case "empty vocab.txt":
            return (["train", "--data", data, "--vocab", try text("vocab.txt", ""), "--out", dir.appendingPathComponent("out").path], ["vocab.txt", "empty"])
        case "vocab.txt without special tokens":
            return (["train", "--data", data, "--vocab", try text("vocab.txt", "a\nb\n"), "--out", dir.appendingPathComponent("out").path], ["vocab.txt", "lacks"])
        case "roberta config.json":
            let r = try damagedRun()
            let u = r.appendingPathComponent("config.json")
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            c["model_type"] = "roberta"
            try JSONSerialization.data(withJSONObject: c).write(to: u)
            return (predict(r), ["config.json", "'roberta' is not read"])
        case "multimodal gemma3 config.json":
            let r = try damagedRun()
            let u = r.appendingPathComponent("config.json")
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            c["model_type"] = "gemma3"
            try JSONSerialization.data(withJSONObject: c).write(to: u)
            return (predict(r), ["config.json", "'gemma3' is not a model Winnow reads", "multimodal Gemma 3", "gemma3_text"])
        case "malformed config.json":
            let r = try damagedRun()
            try Data("{bad".utf8).write(to: r.appendingPathComponent("config.json"))
            return (predict(r), ["config.json", "not a JSON object"])
        case "malformed trainer_state.json":
            let r = try damagedRun()
            try Data("{\"global_step\": \"x\"}".utf8).write(to: r.appendingPathComponent("trainer_state.json"))
            return (["score", "tracin", "--run", r.path, "--data", data, "--out", dir.appendingPathComponent("out").path], ["trainer_state.json", "global_step"])
        case "safetensors header length beyond the file":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights), declaredLength: 1 << 40)
            return (predict(r), [weights, "runs past the end of the file"])
        case "truncated safetensors data":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights), truncateBy: 100)
            return (predict(r), [weights, "outside the data section"])
        case "overlapping offsets":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights)) { h in
                let k = tensorNames(h), a = h[k[0]] as! [String: Any]
                var b = h[k[1]] as! [String: Any]
                let ao = a["data_offsets"] as! [Int], bo = b["data_offsets"] as! [Int]
                b["data_offsets"] = [ao[0], ao[0] + bo[1] - bo[0]]
                h[k[1]] = b
            }
            return (predict(r), [weights, "overlaps"])
        case "out-of-range offsets":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights)) { h in
                let k = tensorNames(h)[0]
                var e = h[k] as! [String: Any]
                let o = e["data_offsets"] as! [Int]
                e["data_offsets"] = [o[0] + 1_000_000, o[1] + 1_000_000]
                h[k] = e
            }
            return (predict(r), [weights, "outside the data section"])
        case "unknown dtype":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights)) { h in
                let k = tensorNames(h)[0]
                var e = h[k] as! [String: Any]
                e["dtype"] = "Q7"
                h[k] = e
            }
            return (predict(r), [weights, "unknown dtype 'Q7'"])
        case "shape disagreeing with config.json":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights)) { h in
                var e = h["bert.encoder.layer.0.attention.self.query.weight"] as! [String: Any]
                e["shape"] = [8, 32]
                h["bert.encoder.layer.0.attention.self.query.weight"] = e
            }
            return (predict(r), ["bert.encoder.layer.0.attention.self.query.weight", "disagrees with config.json"])
        case "missing tensor":
            let r = try damagedRun()
            try damage(r.appendingPathComponent(weights)) { h in h["bert.encoder.layer.0.output.dense.bias"] = nil }
            return (predict(r), ["bert.encoder.layer.0.output.dense.bias", "missing from the checkpoint"])
        case "missing checkpoint":
            return (["score", "el2n", "--run", run.path, "--data", data, "--checkpoints", "999", "--out", dir.appendingPathComponent("out").path], ["checkpoint-999"])
        case "pickled pytorch_model.bin":
            let r = dir.appendingPathComponent("pickled")
            try fm.createDirectory(at: r, withIntermediateDirectories: true)
            try fm.copyItem(at: run.appendingPathComponent("config.json"), to: r.appendingPathComponent("config.json"))
            try fm.copyItem(at: run.appendingPathComponent("vocab.txt"), to: r.appendingPathComponent("vocab.txt"))
            try Data([0x80, 0x02]).write(to: r.appendingPathComponent("pytorch_model.bin"))
            return (predict(r), ["pytorch_model.bin", "refused", "weights_only=True"])
        case "run folder that does not exist":
            return (predict(dir.appendingPathComponent("no-run")), ["no-run"])
        case "corpus with invalid UTF-8":
            return (["pretrain", "--corpus", try file("c.txt", Array("fine line\nbad ".utf8) + [0xC3, 0x28] + [0x0A]), "--vocab", vocab,
                     "--out", dir.appendingPathComponent("out").path], ["c.txt:2", "not valid UTF-8"])
        case "NaN loss in training":
            return (train(data, dir, ["--lr", "1e30", "--optimizer", "sgd", "--max-grad-norm", "0", "--epochs", "3", "--checkpoints", "6"]),
                    ["training stopped at step", "nan"])
        default: fatalError("no case \(name)")
        }
    }

    static let cases = ["missing data file", "empty file", "malformed JSON", "missing field", "mistyped field", "mistyped label",
                        "unknown label", "invalid UTF-8", "NaN in CSV", "Inf in CSV", "empty vocab.txt", "vocab.txt without special tokens",
                        "malformed config.json", "roberta config.json", "multimodal gemma3 config.json", "malformed trainer_state.json", "safetensors header length beyond the file",
                        "truncated safetensors data", "overlapping offsets", "out-of-range offsets", "unknown dtype",
                        "shape disagreeing with config.json", "missing tensor", "missing checkpoint", "pickled pytorch_model.bin",
                        "run folder that does not exist", "corpus with invalid UTF-8", "NaN loss in training"]

    @Test(arguments: cases)
    func badInputIsOneClearLineAndNoOutput(_ name: String) throws {
        let dir = try CLI.tempDir("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (args, needles) = try Self.setup(name, dir)
        let r = try CLI.run(args)
        #expect(r.status == 1, "\(name): exit \(r.status), stderr: \(r.stderr)")
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("winnow: error:") }
        #expect(errorLines.count == 1, "\(name): expected one error line, got: \(r.stderr)")
        for n in needles { #expect(errorLines.first?.lowercased().contains(n.lowercased()) == true, "\(name): error lacks '\(n)': \(r.stderr)") }
        let out = dir.appendingPathComponent("out")
        if name != "NaN loss in training" {
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(name): an output was left behind")
        } else {
            // The run folder holds what was written before the fault and no final model.
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        }
    }

    @Test func aSingle100MBLineIsReadInBoundedTimeAndMemory() throws {
        let dir = try CLI.tempDir("bigline")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("big.jsonl")
        var line = Data("{\"text\": \"".utf8)
        let word = Data("word, ".utf8)
        var body = Data(capacity: 100 << 20)
        while body.count < 100 << 20 { body.append(word) }
        line.append(body)
        line.append(Data("\", \"label\": \"pos\"}\n{\"text\": \"short\", \"label\": \"neg\"}\n".utf8))
        try line.write(to: f)
        // Reading is linear and tokenization stops once max-length tokens are known (about 8 s and
        // 0.5 GB in a debug build; the line used to take minutes and 1.1 GB).
        let r = try CLI.run(Self.train(f.path, dir))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("train: 2 examples"))
    }
}
