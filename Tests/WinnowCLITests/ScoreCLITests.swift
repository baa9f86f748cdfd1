import Foundation
import Testing
import Winnow

@Suite(.serialized) struct ScoreCLITests {
    let run = CLI.tiny.appendingPathComponent("run").path
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path
    let test = CLI.tiny.appendingPathComponent("test.jsonl").path

    func rows(_ url: URL) throws -> [[Substring]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    }

    @Test(arguments: ["el2n", "vog", "grand", "loss", "margin", "tracin"])
    func gradientAndOutputScoresWriteOneRowPerExample(method: String) throws {
        let dir = try CLI.tempDir("score-\(method)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("s.csv")
        let r = try CLI.run(["score", method, "--run", run, "--data", train, "--max-length", "32", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("the models and one batch take about"))
        let t = try rows(out)
        #expect(t[0].prefix(5) == ["index", "line", "id", "label", "score"])
        #expect(t.count == 151)
        #expect(t.dropFirst().allSatisfy { Double($0[4]) != nil && Double($0[4])!.isFinite })
        #expect(t[1][1] == "1" && t[1][2] == "train-000")
    }

    /// Scores on one core (WINNOW_THREADS=1) equal those on every core: the work's splits never change a sum
    /// (OpenBLAS's may change last bits, hence the tolerance).
    @Test(arguments: ["grand", "vog"])
    func oneThreadGivesTheSameScores(method: String) throws {
        let dir = try CLI.tempDir("score-threads-\(method)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var values: [[Double]] = []
        for threads in [nil, "1"] as [String?] {
            let out = dir.appendingPathComponent("s\(threads ?? "").csv")
            let r = try CLI.run(["score", method, "--run", run, "--data", train, "--max-length", "32", "--out", out.path],
                                environment: ["WINNOW_THREADS": threads])
            #expect(r.status == 0, "\(r.stderr)")
            values.append(try rows(out).dropFirst().map { Double($0[4])! })
        }
        #expect(values[0].count == 150 && values[1].count == 150)
        for (a, b) in zip(values[0], values[1]) { #expect(abs(a - b) <= 1e-5 * max(1, abs(a)), "\(a) vs \(b)") }
    }

    /// Resumable parts share one progress bar over the job's examples (two passes for PVI), not a
    /// bar per part that restarts at 0 %.
    @Test(arguments: [("el2n", 150), ("pvi", 300)])
    func partsShowOneProgressBarForTheJob(method: String, total: Int) throws {
        let dir = try CLI.tempDir("score-progress-\(method)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = ["score", method, "--run", run, "--data", train, "--max-length", "32", "--part-size", "37",
                    "--out", dir.appendingPathComponent("s.csv").path]
        if method == "pvi" { args += ["--null-run", CLI.tiny.appendingPathComponent("null-run").path] }
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("\(method): ") }
        let done = lines.compactMap { line -> Int? in
            guard let f = line.split(separator: " ").first(where: { $0.contains("/\(total)") }) else { return nil }
            return Int(f.split(separator: "/")[0])
        }
        #expect(!done.isEmpty && done.count == lines.count, "\(lines)")
        #expect(done == done.sorted(), "the bar went backwards: \(done)")
        #expect(done.last == total)
    }

    @Test func formatsJSONLAndNpy() throws {
        let dir = try CLI.tempDir("score-fmt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let j = dir.appendingPathComponent("s.jsonl"), n = dir.appendingPathComponent("s.npy")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--format", "jsonl", "--out", j.path]).status == 0)
        let first = try String(contentsOf: j, encoding: .utf8).split(separator: "\n").first!
        let obj = try JSONSerialization.jsonObject(with: Data(first.utf8)) as! [String: Any]
        #expect(obj["index"] as? Int == 0 && obj["score"] is Double && obj["label"] as? String != nil)
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--format", "npy", "--out", n.path]).status == 0)
        let d = try Data(contentsOf: n)
        #expect(d.prefix(6) == Data([0x93]) + Data("NUMPY".utf8))
        #expect(d.count == 128 + 150 * 8)
    }

    @Test func tracinTrainToTestWritesProponentsOpponentsAndTheMatrix() throws {
        let dir = try CLI.tempDir("score-t2t")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("t.csv"), m = dir.appendingPathComponent("m.npy")
        let r = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--top", "3", "--matrix", m.path,
                             "--params", "classifier", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let t = try rows(out)
        #expect(t.count == 1 + 40 * 6)
        #expect(t[1][3] == "proponent" && t[4][3] == "opponent")
        #expect(Double(t[1][8])! >= Double(t[2][8])!)
        #expect(try Data(contentsOf: m).count == 128 + 40 * 150 * 8)
    }

    @Test func trainToTestAggregatesIntoAScoreFileThatPruneTakes() throws {
        let dir = try CLI.tempDir("score-agg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = dir.appendingPathComponent("m.npy")
        let matrixRun = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--matrix", m.path,
                                     "--params", "classifier", "--out", dir.appendingPathComponent("t.csv").path])
        #expect(matrixRun.status == 0, "\(matrixRun.stderr)")
        let raw = try Data(contentsOf: m).dropFirst(128)
        let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }      // [40 test, 150 train]
        for mode in ["mean", "max"] {
            let out = dir.appendingPathComponent("\(mode).csv")
            let r = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--aggregate", mode,
                                 "--params", "classifier", "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            let t = try rows(out)
            // The score, and the same values under toward_target, which marks the file as helpfulness for prune.
            #expect(t.count == 151 && t[0].suffix(2) == ["score", "toward_target"], "\(t[0])")
            for j in [0, 17, 149] {
                let column = (0..<40).map { values[$0 * 150 + j] }
                let want = mode == "mean" ? column.reduce(0, +) / 40 : column.max()!
                #expect(abs(Double(t[j + 1][t[0].count - 2])! - want) <= 1e-5 * max(1, abs(want)), "\(mode) train \(j)")
                #expect(t[j + 1][t[0].count - 2] == t[j + 1].last)
            }
            // By default prune keeps the most helpful half (and says so); --select easy keeps the other.
            let pruned = dir.appendingPathComponent("kept-\(mode).jsonl")
            let p = try CLI.run(["prune", "--scores", out.path, "--data", train, "--keep", "0.5", "--out", pruned.path])
            #expect(p.status == 0 && p.stdout.contains("select hard") && p.stderr.contains("influence toward a target set"), "\(p.stdout)\(p.stderr)")
            let keptLines = try String(contentsOf: pruned, encoding: .utf8).split(separator: "\n")
            #expect(keptLines.count == 75)
            let scoreOf = Dictionary(uniqueKeysWithValues: t.dropFirst().map { (Int($0[1])!, Double($0[t[0].count - 2])!) })
            let trainLines = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            let keptScores = keptLines.compactMap { k in trainLines.firstIndex(of: k).flatMap { scoreOf[$0 + 1] } }
            let median = scoreOf.values.sorted()[75]
            #expect(keptScores.count == 75 && keptScores.allSatisfy { $0 >= median - 1e-12 }, "the highest half")
            let easy = try CLI.run(["prune", "--scores", out.path, "--data", train, "--keep", "0.5", "--select", "easy", "--dry-run"])
            #expect(easy.status == 0 && easy.stdout.contains("select easy") && !easy.stderr.contains("influence toward"), "\(easy.stderr)")
        }
        let cosine = dir.appendingPathComponent("cos.csv")
        let c = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--aggregate", "max", "--similarity", "cosine",
                             "--params", "classifier", "--out", cosine.path])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try rows(cosine).dropFirst().allSatisfy { abs(Double($0.last!)!) <= 1.0001 })
        let bad = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--aggregate", "max", "--group-field", "nope",
                               "--out", dir.appendingPathComponent("g.csv").path])
        #expect(bad.status == 1 && bad.stderr.contains("no string or number field 'nope'"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.csv").path))
        let usage = try CLI.run(["score", "el2n", "--run", run, "--data", train, "--aggregate", "max", "--out", dir.appendingPathComponent("u.csv").path])
        #expect(usage.status == 64 || usage.status == 2, "\(usage.status) \(usage.stderr)")
    }

    @Test func decoderScoresFromTheCommandLine() throws {
        let dir = try CLI.tempDir("score-decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let model = fx.appendingPathComponent("tied").path
        for (method, extra) in [("loss", [String]()), ("el2n", []), ("grand", ["--params", "last-layer"]), ("tracin", ["--params", "first-layer"])] {
            let out = dir.appendingPathComponent("\(method).csv")
            let r = try CLI.run(["score", method, "--run", model, "--data", fx.appendingPathComponent("pc.jsonl").path, "--max-length", "160",
                                 "--out", out.path] + extra)
            #expect(r.status == 0, "\(method): \(r.stderr)")
            #expect(try rows(out).count == 7)
        }
        let agg = dir.appendingPathComponent("agg.csv")
        let r = try CLI.run(["score", "tracin", "--run", model, "--data", fx.appendingPathComponent("text.jsonl").path, "--test",
                             fx.appendingPathComponent("pc.jsonl").path, "--aggregate", "max", "--group-field", "label", "--similarity", "cosine",
                             "--max-length", "160", "--out", agg.path])
        #expect(r.status == 0 && r.stderr.contains("max over the means of 2 groups"), "\(r.stderr)")
        #expect(try rows(agg).count == 10)
        // --length-neutral: the tracin scores above times the tokens column.
        let plain = dir.appendingPathComponent("tracin.csv"), scaled = dir.appendingPathComponent("tracin-ln.csv")
        let ln = try CLI.run(["score", "tracin", "--run", model, "--data", fx.appendingPathComponent("pc.jsonl").path, "--max-length", "160",
                              "--params", "first-layer", "--length-neutral", "--out", scaled.path])
        #expect(ln.status == 0 && ln.stderr.contains("length-neutral"), "\(ln.stderr)")
        let (a, b) = (try rows(plain), try rows(scaled))
        #expect(a[0] == ["index", "line", "id", "label", "score", "tokens"] && a[0] == b[0] && a.count == 7 && b.count == 7)
        for (p, q) in zip(a, b).dropFirst() {
            let s = Double(p[4])!, n = Double(p[5])!, got = Double(q[4])!
            #expect(n >= 1 && abs(got - s * n) <= 1e-5 * abs(s * n), "\(got) vs \(s) x \(n)")
        }
        let notGradient = try CLI.run(["score", "loss", "--run", model, "--data", fx.appendingPathComponent("pc.jsonl").path, "--length-neutral",
                                       "--out", dir.appendingPathComponent("l.csv").path])
        #expect(notGradient.status == 2 && notGradient.stderr.contains("--length-neutral applies to grand and to tracin"), "\(notGradient.stderr)")
        let vog = try CLI.run(["score", "vog", "--run", model, "--data", fx.appendingPathComponent("pc.jsonl").path, "--out", dir.appendingPathComponent("v.csv").path])
        #expect(vog.status == 1 && vog.stderr.contains("VoG is a variance over checkpoints and needs at least two"), "\(vog.stderr)")
        let short = try CLI.run(["score", "loss", "--run", model, "--data", fx.appendingPathComponent("pc.jsonl").path, "--max-length", "8",
                                 "--out", dir.appendingPathComponent("s.csv").path])
        #expect(short.status == 1 && short.stderr.contains("pc.jsonl:1: the prompt is"), "\(short.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("s.csv").path))
    }

    @Test func decoderFineTuningWithLoRAAndInFull() throws {
        let dir = try CLI.tempDir("train-decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let data = fx.appendingPathComponent("pc.jsonl").path
        let lora = dir.appendingPathComponent("lora")
        let r = try CLI.run(["train", "--init", fx.appendingPathComponent("tied").path, "--data", data, "--lora-rank", "4",
                             "--lora-targets", "q_proj,v_proj,down_proj", "--epochs", "10", "--batch-size", "2", "--lr", "1e-2",
                             "--max-length", "160", "--checkpoints", "2", "--out", lora.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("LoRA r 4 alpha 8.0 on q_proj,v_proj,down_proj") && r.stdout.contains("adapter written to"), "\(r.stderr)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json", "checkpoint-15/adapter_model.safetensors",
                  "checkpoint-30/adapter_config.json"] {
            #expect(FileManager.default.fileExists(atPath: lora.appendingPathComponent(f).path), "\(f)")
        }
        // The adapted model fits the training data better than the base.
        func losses(_ run: URL) throws -> [Double] {
            let out = dir.appendingPathComponent(run.lastPathComponent + "-loss.csv")
            let s = try CLI.run(["score", "loss", "--run", run.path, "--data", data, "--max-length", "160", "--out", out.path])
            #expect(s.status == 0, "\(s.stderr)")
            return try rows(out).dropFirst().map { Double($0[4])! }
        }
        let base = try losses(fx.appendingPathComponent("tied")), adapted = try losses(lora)
        #expect(adapted.reduce(0, +) < base.reduce(0, +) - 1, "\(adapted) vs \(base)")
        let full = dir.appendingPathComponent("full")
        let f = try CLI.run(["train", "--init", fx.appendingPathComponent("tied").path, "--data", data, "--epochs", "2", "--batch-size", "3",
                             "--max-length", "160", "--out", full.path])
        #expect(f.status == 0 && f.stderr.contains("every parameter trained"), "\(f.stderr)")
        #expect(try losses(full).count == 6)
        let wrong = try CLI.run(["train", "--init", fx.appendingPathComponent("tied").path, "--data", data, "--lora-rank", "4",
                                 "--lora-targets", "query", "--out", dir.appendingPathComponent("x").path])
        #expect(wrong.status != 0 && wrong.stderr.contains("'query' is not a module of a Llama-family decoder"), "\(wrong.stderr)")
    }

    @Test func bertLoRAFineTuningWritesAPEFTAdapterThatScoresEvaluatesAndResumes() throws {
        let dir = try CLI.tempDir("train-bert-lora")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = CLI.tiny.appendingPathComponent("run").path, test = CLI.tiny.appendingPathComponent("test.jsonl").path
        func args(_ out: URL) -> [String] {
            ["train", "--init", base, "--data", train, "--lora-rank", "4", "--lora-targets", "query,value,dense", "--epochs", "2",
             "--batch-size", "16", "--max-length", "32", "--checkpoints", "2", "--seed", "3", "--out", out.path]
        }
        let run = dir.appendingPathComponent("lora")
        let r = try CLI.run(args(run))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("LoRA r 4 alpha 8.0 on query,value,dense and the head") && r.stderr.contains("lr 0.0005"), "\(r.stderr)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "config.json", "vocab.txt", "dynamics.safetensors",
                  "checkpoint-10/adapter_model.safetensors", "checkpoint-20/adapter_config.json"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), "\(f)")
        }
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("model.safetensors").path))
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        #expect(cfg["task_type"] as? String == "SEQ_CLS" && cfg["modules_to_save"] as? [String] == ["classifier"]
                && cfg["base_model_name_or_path"] as? String == base)
        let e = try CLI.run(["eval", "--run", run.path, "--data", test, "--max-length", "32", "--json"])
        #expect(e.status == 0 && e.stdout.contains("\"accuracy\""), "\(e.stderr)")
        // Scores over the adapter, the last layer and the dynamics of the run.
        for (method, params) in [("grand", "lora"), ("tracin", "last-layer"), ("el2n", "all"), ("forgetting", "all"), ("vog", "all")] {
            let out = dir.appendingPathComponent("\(method).csv")
            let s = try CLI.run(["score", method, "--run", run.path, "--data", train, "--out", out.path]
                                + (method == "forgetting" ? [] : ["--max-length", "32"]) + (["grand", "tracin"].contains(method) ? ["--params", params] : []))
            #expect(s.status == 0, "\(method): \(s.stderr)")
            let values = try rows(out).dropFirst().map { Double($0[4])! }
            #expect(values.count == 150 && values.allSatisfy(\.isFinite), "\(method)")
            if method != "forgetting" { #expect(Set(values).count > 10, "\(method) scores differ between examples") }
        }
        // Killed after its first checkpoint and resumed, the run ends with the same adapter.
        let resumed = dir.appendingPathComponent("resumed")
        _ = try CLI.run(args(resumed) + ["--epochs", "1"])      // a different plan: refused on resume below
        let refuse = try CLI.run(args(resumed) + ["--resume"])
        #expect(refuse.status != 0 && refuse.stderr.contains("other options"), "\(refuse.stderr)")
        try FileManager.default.removeItem(at: resumed)
        _ = try CLI.run(args(resumed))
        try FileManager.default.removeItem(at: resumed.appendingPathComponent("checkpoint-20"))
        for f in ["adapter_model.safetensors", "adapter_config.json"] { try FileManager.default.removeItem(at: resumed.appendingPathComponent(f)) }
        let again = try CLI.run(args(resumed) + ["--resume"])
        #expect(again.status == 0 && again.stderr.contains("resuming from"), "\(again.stderr)")
        let a = try Data(contentsOf: run.appendingPathComponent("adapter_model.safetensors"))
        let b = try Data(contentsOf: resumed.appendingPathComponent("adapter_model.safetensors"))
        #expect(a == b, "a resumed LoRA run ends with the same adapter")
        // Its checkpoints belong to alpha 8: resuming with another alpha is refused.
        let alpha = try CLI.run(args(resumed) + ["--lora-alpha", "16", "--resume"])
        #expect(alpha.status != 0 && alpha.stderr.contains("another lora"), "\(alpha.stderr)")
        // A run written before winnow.json recorded the adapter still resumes (the key is not compared); it is complete.
        let infoURL = resumed.appendingPathComponent("winnow.json")
        var info = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: infoURL)) as? [String: Any])
        info["lora"] = nil
        try JSONSerialization.data(withJSONObject: info).write(to: infoURL)
        let old = try CLI.run(args(resumed) + ["--resume"])
        #expect(old.status == 0 && old.stderr.contains("is complete"), "\(old.stderr)")
        // An adapter whose base is not a local path evaluates and predicts with --base.
        let moved = dir.appendingPathComponent("moved")
        try FileManager.default.copyItem(at: run, to: moved)
        let configs = try FileManager.default.subpathsOfDirectory(atPath: moved.path).filter { $0.hasSuffix("adapter_config.json") }
        for c in configs {
            let u = moved.appendingPathComponent(c)
            var o = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            o["base_model_name_or_path"] = "/nonexistent/base"
            try JSONSerialization.data(withJSONObject: o).write(to: u)
        }
        let noBase = try CLI.run(["eval", "--run", moved.path, "--data", test, "--max-length", "32"])
        #expect(noBase.status != 0 && noBase.stderr.contains("--base"), "\(noBase.stderr)")
        let withBase = try CLI.run(["eval", "--run", moved.path, "--base", base, "--data", test, "--max-length", "32", "--json"])
        #expect(withBase.status == 0 && withBase.stdout == e.stdout, "\(withBase.stderr)")
        #expect(!withBase.stderr.contains("is read instead of"), "a base that cannot be found is no override: \(withBase.stderr)")
        // --base over the local base the adapter names is read, and named in a note.
        let copy = dir.appendingPathComponent("base-copy")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: base), to: copy)
        let over = try CLI.run(["eval", "--run", run.path, "--base", copy.path, "--data", test, "--max-length", "32", "--json"])
        #expect(over.status == 0 && over.stdout == e.stdout && over.stderr.contains("note: --base \(copy.path) is read instead of"), "\(over.stderr)")
        let p = try CLI.run(["predict", "--run", moved.path, "--base", base, "--data", test, "--max-length", "32", "--out",
                             dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0, "\(p.stderr)")
        // Errors: no --init, decoder targets, LoRA dropout.
        for (extra, message) in [(["--lora-targets", "q_proj"], "'q_proj' is not a module of a BERT encoder"),
                                 (["--lora-dropout", "0.1"], "--lora-dropout is not available for BERT encoders")] {
            let bad = try CLI.run(args(dir.appendingPathComponent("bad")) + extra)
            #expect(bad.status != 0 && bad.stderr.contains(message), "\(bad.stderr)")
        }
        let scratch = try CLI.trainTiny(dir.appendingPathComponent("scratch"), extra: ["--lora-rank", "2"])
        #expect(scratch.status != 0 && scratch.stderr.contains("--lora-rank needs --init"), "\(scratch.stderr)")
    }

    @Test func aDecoderClassifierRecordsDynamicsForForgettingAndAUM() throws {
        let dir = try CLI.tempDir("train-decoder-classify")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let data = dir.appendingPathComponent("cls.jsonl")
        var lines = ""
        for line in try String(contentsOf: fx.appendingPathComponent("pc.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let row: [String: Any] = ["text": (o["prompt"] as! String) + (o["completion"] as! String), "label": o["label"]!]
            lines += String(decoding: try JSONSerialization.data(withJSONObject: row), as: UTF8.self) + "\n"
        }
        try lines.write(to: data, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(["train", "--init", fx.appendingPathComponent("tied").path, "--task", "classify", "--data", data.path,
                             "--epochs", "3", "--batch-size", "2", "--lr", "1e-3", "--max-length", "160", "--out", run.path])
        #expect(r.status == 0 && r.stderr.contains("LlamaForSequenceClassification"), "\(r.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as! [String: Any]
        #expect((config["architectures"] as? [String]) == ["LlamaForSequenceClassification"])
        for method in ["forgetting", "aum", "cartography"] {
            let out = dir.appendingPathComponent("\(method).csv")
            let s = try CLI.run(["score", method, "--run", run.path, "--data", data.path, "--out", out.path])
            #expect(s.status == 0, "\(method): \(s.stderr)")
            #expect(try rows(out).count == 7)
        }
        // Output and gradient scores of the decoder classifier.
        for (method, params) in [("el2n", "all"), ("loss", "all"), ("grand", "last-layer"), ("tracin", "classifier"), ("vog", "all")] {
            let out = dir.appendingPathComponent("\(method).csv")
            let s = try CLI.run(["score", method, "--run", run.path, "--data", data.path, "--max-length", "160", "--out", out.path]
                                + (["grand", "tracin"].contains(method) ? ["--params", params] : []))
            #expect(s.status == 0, "\(method): \(s.stderr)")
            let values = try rows(out).dropFirst().map { Double($0[4])! }
            #expect(values.count == 6 && values.allSatisfy { $0.isFinite && $0 >= 0 } && Set(values).count > 1, "\(method): \(values)")
        }
        let eval = try CLI.run(["eval", "--run", run.path, "--data", data.path, "--max-length", "160", "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let metrics = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        #expect(metrics["examples"] as? Int == 6 && (metrics["labels"] as? [String]) == ["other", "qa"], "\(eval.stdout)")
        // A LoRA adapter with the score head beside it: a PEFT SEQ_CLS folder that scores and evaluates.
        let adapter = dir.appendingPathComponent("lora")
        let lora = try CLI.run(["train", "--init", fx.appendingPathComponent("tied").path, "--task", "classify", "--lora-rank", "4",
                                "--lora-targets", "q_proj,v_proj,down_proj", "--lora-dropout", "0.1", "--epochs", "3", "--batch-size", "2",
                                "--max-length", "160", "--data", data.path, "--out", adapter.path])
        #expect(lora.status == 0 && lora.stderr.contains("LoRA r 4 alpha 8.0 on q_proj,v_proj,down_proj and the score head"), "\(lora.stderr)")
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: adapter.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        #expect(cfg["task_type"] as? String == "SEQ_CLS" && cfg["modules_to_save"] as? [String] == ["score"])
        #expect(!FileManager.default.fileExists(atPath: adapter.appendingPathComponent("model.safetensors").path))
        for (method, params) in [("grand", "lora"), ("el2n", "all"), ("forgetting", "all")] {
            let out = dir.appendingPathComponent("lora-\(method).csv")
            let s = try CLI.run(["score", method, "--run", adapter.path, "--data", data.path, "--out", out.path]
                                + (method == "forgetting" ? [] : ["--max-length", "160"]) + (["grand", "tracin"].contains(method) ? ["--params", params] : []))
            #expect(s.status == 0, "\(method): \(s.stderr)")
            #expect(try rows(out).count == 7)
        }
        let e = try CLI.run(["eval", "--run", adapter.path, "--data", data.path, "--max-length", "160", "--json"])
        #expect(e.status == 0 && e.stdout.contains("\"accuracy\""), "\(e.stderr)")
    }

    @Test func anInterruptedDecoderRunResumesToTheSameAdapter() throws {
        let dir = try CLI.tempDir("train-decoder-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        func args(_ out: URL) -> [String] {
            ["train", "--init", fx.appendingPathComponent("tied").path, "--data", fx.appendingPathComponent("pc.jsonl").path, "--lora-rank", "4",
             "--lora-dropout", "0.1", "--epochs", "4", "--batch-size", "2", "--lr", "1e-2", "--max-length", "160", "--checkpoints", "3",
             "--out", out.path]
        }
        let whole = dir.appendingPathComponent("whole"), cut = dir.appendingPathComponent("cut")
        #expect(try CLI.run(args(whole)).status == 0)
        // An interruption after the first checkpoint: the later checkpoints and the final files are gone.
        let fm = FileManager.default
        try fm.copyItem(at: whole, to: cut)
        for f in ["adapter_model.safetensors", "adapter_config.json", "trainer_state.json", "checkpoint-8", "checkpoint-12"] {
            try fm.removeItem(at: cut.appendingPathComponent(f))
        }
        let r = try CLI.run(args(cut) + ["--resume"])
        #expect(r.status == 0 && r.stderr.contains("resuming from") && r.stderr.contains("checkpoint-4"), "\(r.stderr)")
        for f in ["adapter_model.safetensors", "checkpoint-12/adapter_model.safetensors", "checkpoint-12/optimizer.safetensors"] {
            #expect(try Data(contentsOf: whole.appendingPathComponent(f)) == Data(contentsOf: cut.appendingPathComponent(f)), "\(f) differs after --resume")
        }
    }

    @Test func dynamicsScoresOnAWinnowRunAndAClearErrorOnATrainerRun() throws {
        let dir = try CLI.tempDir("score-dyn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let wrun = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(wrun).status == 0)
        for method in ["forgetting", "cartography", "aum"] {
            let out = dir.appendingPathComponent("\(method).csv")
            let r = try CLI.run(["score", method, "--run", wrun.path, "--data", train, "--out", out.path])
            #expect(r.status == 0, "\(method): \(r.stderr)")
            #expect(try rows(out).count == 151)
            // No model pass: batch, part and token options change nothing and are refused.
            for extra in [["--max-length", "32"], ["--batch-size", "4"], ["--part-size", "10"]] {
                let u = try CLI.run(["score", method, "--run", wrun.path, "--data", train, "--out", out.path] + extra)
                #expect(u.status == 2 && u.stderr.contains("\(extra[0]) does not apply to \(method)"), "\(extra): \(u.stderr)")
            }
        }
        let bad = try CLI.run(["score", "forgetting", "--run", run, "--data", train, "--out", dir.appendingPathComponent("x.csv").path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("no training dynamics"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.csv").path))
    }

    @Test func pviWithANullRun() throws {
        let dir = try CLI.tempDir("score-pvi")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.csv")
        let r = try CLI.run(["score", "pvi", "--run", run, "--null-run", CLI.tiny.appendingPathComponent("null-run").path,
                             "--data", train, "--max-length", "32", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let t = try rows(out)
        #expect(t[0] == ["index", "line", "id", "label", "score", "pvi", "log2p", "log2p_null"])
        #expect(t.count == 151)
    }

    @Test func badScoreInvocations() throws {
        #expect(try CLI.run(["score", "pvi", "--run", run, "--data", train, "--out", "/tmp/x.csv"]).status == 2)
        #expect(try CLI.run(["score", "bogus", "--run", run, "--data", train, "--out", "/tmp/x.csv"]).status == 2)
        let r = try CLI.run(["score", "el2n", "--run", run, "--data", train, "--checkpoints", "99999", "--out", "/tmp/x.csv"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no checkpoint-99999"))
        let p = try CLI.run(["score", "grand", "--run", run, "--data", train, "--params", "nonsense.", "--out", "/tmp/x.csv"])
        #expect(p.status == 1)
        #expect(p.stderr.contains("--params"))
        let ln = try CLI.run(["score", "grand", "--run", run, "--data", train, "--length-neutral", "--out", "/tmp/x.csv"])
        #expect(ln.status == 1 && ln.stderr.contains("is for causal language models"), "\(ln.stderr)")
    }
}

@Suite struct PruneCLITests {
    @Test func pruneKeepsLinesVerbatimInInputOrderAndDryRunWritesNothing() throws {
        let dir = try CLI.tempDir("prune")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = CLI.tiny.appendingPathComponent("train.jsonl")
        let scores = dir.appendingPathComponent("el2n.csv")
        #expect(try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", train.path,
                             "--max-length", "32", "--out", scores.path]).status == 0)
        let out = dir.appendingPathComponent("kept.jsonl")
        let r = try CLI.run(["prune", "--scores", scores.path, "--data", train.path, "--keep", "0.5", "--select", "hard",
                             "--normalize", "class", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("kept 75 of 150"))
        #expect(r.stdout.contains("before") && r.stdout.contains("pos") && r.stdout.contains("neg"))
        let original = try String(contentsOf: train, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let kept = try String(contentsOf: out, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        #expect(kept.count == 75)
        // Every kept line is an input line, byte for byte, and they come in input order.
        let positions = kept.map { k in original.firstIndex(of: k)! }
        #expect(positions == positions.sorted())
        let dry = dir.appendingPathComponent("dry.jsonl")
        let d = try CLI.run(["prune", "--scores", scores.path, "--data", train.path, "--keep", "0.3", "--sampling", "softmax", "--dry-run"])
        #expect(d.status == 0 && d.stdout.contains("kept 45 of 150"), "\(d.stdout)")
        // --out beside --dry-run would be dropped: refused instead.
        let both = try CLI.run(["prune", "--scores", scores.path, "--data", train.path, "--keep", "0.3", "--sampling", "softmax",
                                "--dry-run", "--out", dry.path])
        #expect(both.status == 2 && both.stderr.contains("--dry-run writes nothing"), "\(both.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dry.path))
    }

    @Test func aSubsetThatShiftsTheClassMixGetsANote() throws {
        let dir = try CLI.tempDir("prune-mix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), scores = dir.appendingPathComponent("s.csv")
        try (1...4).map { "{\"text\": \"t\($0)\", \"label\": \"\($0 <= 2 ? "pos" : "neg")\"}" }.joined(separator: "\n")
            .write(to: data, atomically: true, encoding: .utf8)
        try "index,line,id,label,score\n0,1,,pos,0.9\n1,2,,pos,0.8\n2,3,,neg,0.2\n3,4,,neg,0.1\n".write(to: scores, atomically: true, encoding: .utf8)
        // The hardest half is all 'pos': the note names both labels' shares.
        let skewed = try CLI.run(["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.5", "--select", "hard", "--dry-run"])
        #expect(skewed.status == 0 && skewed.stderr.contains("note: the kept examples shift the class mix (neg 50.0 % -> 0.0 %, pos 50.0 % -> 100.0 %)"), "\(skewed.stderr)")
        // Class z-scores keep one of each: no note.
        let even = try CLI.run(["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.5", "--select", "hard", "--normalize", "class", "--dry-run"])
        #expect(even.status == 0 && even.stdout.contains("kept 2 of 4") && !even.stdout.contains("class mix"), "\(even.stdout)")
        // --per-label keeps one of each whatever the normalisation, and writes lines 1 (pos, 0.9) and 3 (neg, 0.2).
        let out = dir.appendingPathComponent("kept.jsonl")
        let per = try CLI.run(["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.5", "--select", "hard", "--per-label", "--out", out.path])
        #expect(per.status == 0 && per.stdout.contains("normalize dataset, per label") && !per.stdout.contains("class mix"), "\(per.stdout)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t1\", \"label\": \"pos\"}\n{\"text\": \"t3\", \"label\": \"neg\"}\n")
        // Per label a class of three keeping one (its quota, rounded) is no skew: no note.
        let small = dir.appendingPathComponent("small.jsonl"), smallScores = dir.appendingPathComponent("small.csv")
        try ((1...3).map { "{\"text\": \"m\($0)\", \"label\": \"mixed\"}" } + (1...20).map { "{\"text\": \"t\($0)\", \"label\": \"\($0 % 2 == 0 ? "pos" : "neg")\"}" })
            .joined(separator: "\n").write(to: small, atomically: true, encoding: .utf8)
        try ("index,line,id,label,score\n" + (1...23).map { "\($0 - 1),\($0),,\($0 <= 3 ? "mixed" : ($0 - 3) % 2 == 0 ? "pos" : "neg"),\(Double($0) / 10)" }.joined(separator: "\n") + "\n")
            .write(to: smallScores, atomically: true, encoding: .utf8)
        let rounding = try CLI.run(["prune", "--scores", smallScores.path, "--data", small.path, "--keep", "0.5", "--per-label", "--dry-run"])
        #expect(rounding.status == 0 && !rounding.stderr.contains("class mix"), "\(rounding.stdout)\(rounding.stderr)")
    }

    @Test func thenByBreaksTheTiesOfTheFirstScoreFile() throws {
        let dir = try CLI.tempDir("prune-then-by")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), counts = dir.appendingPathComponent("f.csv"), el2n = dir.appendingPathComponent("e.csv")
        try (1...6).map { "{\"text\": \"t\($0)\", \"label\": \"\($0 % 2 == 0 ? "pos" : "neg")\"}" }.joined(separator: "\n")
            .write(to: data, atomically: true, encoding: .utf8)
        try "index,line,id,label,score\n0,1,,neg,0\n1,2,,pos,0\n2,3,,neg,0\n3,4,,pos,0\n4,5,,neg,3\n5,6,,pos,1\n".write(to: counts, atomically: true, encoding: .utf8)
        try "index,line,id,label,score\n0,1,,neg,0.2\n1,2,,pos,0.1\n2,3,,neg,0.8\n3,4,,pos,0.6\n4,5,,neg,0.9\n5,6,,pos,0.9\n".write(to: el2n, atomically: true, encoding: .utf8)
        // Alone, the four zeros tie and top-k takes lines 1 and 2 (input order); with --then-by the hardest of them, 3 and 4.
        let out = dir.appendingPathComponent("kept.jsonl")
        let r = try CLI.run(["prune", "--scores", counts.path, "--then-by", el2n.path, "--data", data.path, "--keep", "0.34", "--out", out.path])
        #expect(r.status == 0 && r.stdout.contains("ties by \(el2n.path) (hard)"), "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("lost to random at keep 0.3 when EL2N broke"), "keep 0.34 with a hard tie-break: \(r.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t3\", \"label\": \"neg\"}\n{\"text\": \"t4\", \"label\": \"pos\"}\n")
        let easy = try CLI.run(["prune", "--scores", counts.path, "--then-by", el2n.path, "--then-select", "easy", "--data", data.path, "--keep", "0.34", "--out", out.path])
        #expect(easy.status == 0 && !easy.stderr.contains("lost to random"), "the note is for the hard tie-break only")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t1\", \"label\": \"neg\"}\n{\"text\": \"t2\", \"label\": \"pos\"}\n")
        // Sampled selections and class z-scores do not read ranks: refused before anything is read.
        for extra in [["--sampling", "softmax"], ["--normalize", "class"], ["--select", "random"], ["--select", "moderate"]] {
            let bad = try CLI.run(["prune", "--scores", counts.path, "--then-by", el2n.path, "--data", data.path, "--keep", "0.5", "--dry-run"] + extra)
            #expect(bad.status == 2 && bad.stderr.contains("--then-by"), "\(extra): \(bad.stderr)")
        }
        // A second file without a line the first scores: one line naming it, nothing written.
        try "index,line,id,label,score\n0,1,,neg,0.2\n".write(to: el2n, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: out)
        let missing = try CLI.run(["prune", "--scores", counts.path, "--then-by", el2n.path, "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(missing.status == 1 && missing.stderr.contains("e.csv") && missing.stderr.contains("no score for data line 2"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // ... or with rows for lines the first does not score (a longer or other data file): refused too.
        let longer = dir.appendingPathComponent("longer.csv")
        try (try String(contentsOf: counts, encoding: .utf8) + "6,7,,neg,9\n").write(to: longer, atomically: true, encoding: .utf8)
        let extra = try CLI.run(["prune", "--scores", counts.path, "--then-by", longer.path, "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(extra.status == 1 && extra.stderr.contains("longer.csv") && extra.stderr.contains("scores data line 7, which"), "\(extra.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // A second file whose ids name other examples on the same lines (scored on a reordered copy): refused as --scores would be.
        let withIDs = dir.appendingPathComponent("ids.csv"), otherIDs = dir.appendingPathComponent("other.csv")
        try "index,line,id,label,score\n0,1,a,neg,0\n1,2,b,pos,0\n2,3,c,neg,0\n3,4,d,pos,0\n4,5,e,neg,3\n5,6,f,pos,1\n".write(to: withIDs, atomically: true, encoding: .utf8)
        try "index,line,id,label,score\n0,1,c,neg,0.2\n1,2,b,pos,0.1\n2,3,a,neg,0.8\n3,4,d,pos,0.6\n4,5,e,neg,0.9\n5,6,f,pos,0.9\n".write(to: otherIDs, atomically: true, encoding: .utf8)
        let moved = try CLI.run(["prune", "--scores", withIDs.path, "--then-by", otherIDs.path, "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(moved.status == 1 && moved.stderr.contains("other.csv") && moved.stderr.contains("has id 'c' here and 'a'"), "\(moved.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// A selection that keeps nothing (stratified sampling after dropping almost every example) writes nothing and
    /// fails; bins and temperatures that would exhaust memory or overflow the weights are refused.
    @Test func selectionsThatKeepNothingOrCannotBeComputedAreRefused() throws {
        let dir = try CLI.tempDir("prune-nothing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), scores = dir.appendingPathComponent("s.csv"), out = dir.appendingPathComponent("kept.jsonl")
        try (1...10).map { "{\"text\": \"t\($0)\", \"label\": \"x\"}" }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        try ("index,line,id,label,score\n" + (1...10).map { "\($0 - 1),\($0),,x,\(Double($0) / 10)" }.joined(separator: "\n") + "\n")
            .write(to: scores, atomically: true, encoding: .utf8)
        let base = ["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.5", "--out", out.path]
        // Stratified drops floor(0.99 x 10) = 9 of the 10 (Zheng et al.'s rule): the one left is kept.
        let one = try CLI.run(base + ["--sampling", "stratified", "--beta", "0.99"])
        #expect(one.status == 0 && one.stdout.contains("kept 1 of 10"), "\(one.stdout)\(one.stderr)")
        try FileManager.default.removeItem(at: out)
        for (extra, named) in [(["--sampling", "stratified", "--bins", "100000000000"], "bins"), (["--sampling", "softmax", "--temperature", "1e-320"], "temperature"),
                               (["--sampling", "softmax", "--temperature", "1e-30"], "--temperature: must be at least 1e-6")] {
            // Out-of-bounds numbers are usage errors (exit 2), before anything is read.
            let r = try CLI.run(base + extra)
            #expect(r.status == 2 && r.stderr.contains(named), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
        // JSONL score files: booleans and fractions are not line numbers, a boolean is not a score.
        let j = dir.appendingPathComponent("s.jsonl")
        for bad in ["{\"line\": true, \"score\": 1}", "{\"line\": 3.9, \"score\": 1}", "{\"line\": 3, \"score\": false}"] {
            try Data((bad + "\n").utf8).write(to: j)
            let r = try CLI.run(["prune", "--scores", j.path, "--data", data.path, "--keep", "0.5", "--out", out.path])
            #expect(r.status == 1 && r.stderr.contains("s.jsonl:1: expected an object with integer 'line'"), "\(bad): \(r.stderr)")
        }
    }

    /// --column selects by another column of the scores file (cartography's variability: the most ambiguous),
    /// --then-column breaks ties by another column of the --then-by file; an unknown column is one line, no output.
    @Test func columnSelectsByAnotherColumnOfTheScoresFile() throws {
        let dir = try CLI.tempDir("prune-column")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), carto = dir.appendingPathComponent("cartography.csv"), out = dir.appendingPathComponent("kept.jsonl")
        try (1...4).map { "{\"text\": \"t\($0)\", \"label\": \"x\"}" }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        try "index,line,id,label,score,confidence,variability,correctness\n0,1,,x,0.9,0.1,0.05,0\n1,2,,x,0.5,0.5,0.45,0.5\n2,3,,x,0.2,0.8,0.3,1\n3,4,,x,0.1,0.9,0.02,1\n"
            .write(to: carto, atomically: true, encoding: .utf8)
        let r = try CLI.run(["prune", "--scores", carto.path, "--column", "variability", "--select", "hard", "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(r.status == 0 && r.stdout.contains("by variability, select hard"), "\(r.stdout)\(r.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t2\", \"label\": \"x\"}\n{\"text\": \"t3\", \"label\": \"x\"}\n")
        let byScore = try CLI.run(["prune", "--scores", carto.path, "--select", "hard", "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(byScore.status == 0 && !byScore.stdout.contains("by score"))
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t1\", \"label\": \"x\"}\n{\"text\": \"t2\", \"label\": \"x\"}\n")
        // confidence is cartography's score reversed (higher is easier): by default the highest are kept, the easiest, with a note.
        let conf = try CLI.run(["prune", "--scores", carto.path, "--column", "confidence", "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(conf.status == 0 && conf.stdout.contains("select hard") && conf.stderr.contains("--column confidence is cartography's score reversed"), "\(conf.stdout)\(conf.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t3\", \"label\": \"x\"}\n{\"text\": \"t4\", \"label\": \"x\"}\n")
        // correctness (the fraction predicted right) is easier when higher too: the default keeps the most often right.
        let corr = try CLI.run(["prune", "--scores", carto.path, "--column", "correctness", "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(corr.status == 0 && corr.stdout.contains("select hard") && corr.stderr.contains("--column correctness is cartography's (a higher correctness is easier)"), "\(corr.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t3\", \"label\": \"x\"}\n{\"text\": \"t4\", \"label\": \"x\"}\n")
        let confEasy = try CLI.run(["prune", "--scores", carto.path, "--column", "confidence", "--select", "easy", "--data", data.path, "--keep", "0.5", "--dry-run"])
        #expect(confEasy.status == 0 && confEasy.stderr.contains("--select easy keeps the lowest confidence, the hardest by cartography"), "\(confEasy.stderr)")
        // Ties of equal counts broken by variability.
        let counts = dir.appendingPathComponent("f.csv")
        try "index,line,id,label,score\n0,1,,x,0\n1,2,,x,1\n2,3,,x,0\n3,4,,x,0\n".write(to: counts, atomically: true, encoding: .utf8)
        let tie = try CLI.run(["prune", "--scores", counts.path, "--then-by", carto.path, "--then-column", "variability", "--data", data.path, "--keep", "0.25", "--out", out.path])
        #expect(tie.status == 0 && tie.stdout.contains("ties by \(carto.path) variability (hard)"), "\(tie.stdout)\(tie.stderr)")
        #expect(!tie.stderr.contains("lost to random"), "the variability tie-break won at keep 0.3: no note \(tie.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "{\"text\": \"t3\", \"label\": \"x\"}\n")
        try FileManager.default.removeItem(at: out)
        let unknown = try CLI.run(["prune", "--scores", carto.path, "--column", "spread", "--data", data.path, "--keep", "0.5", "--out", out.path])
        #expect(unknown.status == 1 && unknown.stderr.contains("cartography.csv:1") && unknown.stderr.contains("'spread'"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        for bad in [["--column", "label"], ["--then-column", "variability"]] {
            let r = try CLI.run(["prune", "--scores", carto.path, "--data", data.path, "--keep", "0.5", "--dry-run"] + bad)
            #expect(r.status == 2 && r.stderr.contains(bad[0]), "\(bad): \(r.stderr)")
        }
    }

    /// --select moderate keeps the scores nearest the median (here of 0.1 ... 0.9: 0.5, then 0.4 and 0.6).
    @Test func moderateSelectionDropsBothEnds() throws {
        let dir = try CLI.tempDir("prune-moderate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), scores = dir.appendingPathComponent("s.csv"), out = dir.appendingPathComponent("kept.jsonl")
        try (1...9).map { "{\"text\": \"t\($0)\", \"label\": \"x\"}" }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        try ("index,line,id,label,score\n" + (1...9).map { "\($0 - 1),\($0),,x,0.\(10 - $0)\n" }.joined()).write(to: scores, atomically: true, encoding: .utf8)
        let r = try CLI.run(["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.34", "--select", "moderate", "--out", out.path])
        #expect(r.status == 0 && r.stdout.contains("select moderate"), "\(r.stdout)\(r.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == ["t4", "t5", "t6"].map { "{\"text\": \"\($0)\", \"label\": \"x\"}\n" }.joined())
        let bad = try CLI.run(["prune", "--scores", scores.path, "--data", data.path, "--keep", "0.5", "--select", "moderate", "--sampling", "stratified", "--dry-run"])
        #expect(bad.status == 2 && bad.stderr.contains("--select moderate takes --sampling top, softmax or linear"), "\(bad.stderr)")
    }

    @Test func scoresFromAnotherFileAreRefused() throws {
        let dir = try CLI.tempDir("prune-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let scores = dir.appendingPathComponent("s.csv")
        try "index,line,id,label,score\n0,1,a,pos,0.5\n1,999,b,neg,0.1\n".write(to: scores, atomically: true, encoding: .utf8)
        let r = try CLI.run(["prune", "--scores", scores.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path,
                             "--keep", "0.5", "--out", dir.appendingPathComponent("o.jsonl").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("line 999"))
        #expect(try CLI.run(["prune", "--scores", scores.path, "--data", "x", "--keep", "1.5", "--dry-run"]).status == 2)
        // Scores of another file of as many lines, whose labels the data never uses (no ids to tell): refused by the labels.
        let other = dir.appendingPathComponent("other.jsonl"), rows = dir.appendingPathComponent("rows.csv")
        try ((0..<4).map { "{\"text\": \"t\($0)\", \"label\": \"\($0 % 2 == 0 ? "entailment" : "neutral")\"}" }.joined(separator: "\n") + "\n")
            .write(to: other, atomically: true, encoding: .utf8)
        try ("index,line,id,label,score\n" + (0..<4).map { "\($0),\($0 + 1),,\($0 % 2 == 0 ? "fresh" : "rotten"),0.\($0)" }.joined(separator: "\n") + "\n")
            .write(to: rows, atomically: true, encoding: .utf8)
        let mixed = try CLI.run(["prune", "--scores", rows.path, "--data", other.path, "--keep", "0.5", "--out", dir.appendingPathComponent("m.jsonl").path])
        #expect(mixed.status == 1 && mixed.stderr.contains("has label 'fresh' for line 1, which is labelled 'entailment'"), "\(mixed.stderr)")
        // Integer labels scored as LABEL_k are the same labels.
        let ints = dir.appendingPathComponent("ints.jsonl"), k = dir.appendingPathComponent("k.csv")
        try ((0..<4).map { "{\"text\": \"t\($0)\", \"label\": \($0 % 2)}" }.joined(separator: "\n") + "\n").write(to: ints, atomically: true, encoding: .utf8)
        try ("index,line,id,label,score\n" + (0..<4).map { "\($0),\($0 + 1),,LABEL_\($0 % 2),0.\($0)" }.joined(separator: "\n") + "\n").write(to: k, atomically: true, encoding: .utf8)
        let same = try CLI.run(["prune", "--scores", k.path, "--data", ints.path, "--keep", "0.5", "--dry-run"])
        #expect(same.status == 0, "\(same.stderr)")
    }

    @Test func lossOnACausalLanguageModelEqualsTransformers() throws {
        let dir = try CLI.tempDir("lm-loss")
        defer { try? FileManager.default.removeItem(at: dir) }
        struct Case: Decodable { let text: String; let loss: Double }
        let cases = try String(contentsOf: CLI.repo.appendingPathComponent("Tests/Fixtures/llama/smollm2-losses.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
        let data = dir.appendingPathComponent("texts.jsonl"), out = dir.appendingPathComponent("loss.csv")
        let lines = try cases.map { c in String(decoding: try JSONSerialization.data(withJSONObject: ["text": c.text, "label": c.loss > 5 ? "odd" : "plain"]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let r = try CLI.run(["score", "loss", "--run", CLI.repo.appendingPathComponent("models/smollm2").path, "--data", data.path,
                             "--batch-size", "3", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "index,line,id,label,score,tokens")
        for (c, row) in zip(cases, rows.dropFirst()) {
            let f = row.split(separator: ",", omittingEmptySubsequences: false)
            let score = Double(f[4])!
            #expect(abs(score - c.loss) <= 1e-4 * c.loss, "\(c.text.prefix(30)): \(score) vs transformers \(c.loss)")
            #expect(f[3] == (c.loss > 5 ? "odd" : "plain"))
        }
        let bad = try CLI.run(["score", "margin", "--run", CLI.repo.appendingPathComponent("models/smollm2").path, "--data", data.path,
                               "--out", dir.appendingPathComponent("v.csv").path])
        #expect(bad.status == 1 && bad.stderr.contains("causal language models"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("v.csv").path))
    }
}

/// What `winnow score` on a classifier refuses or now gets right: PVI on an adapter's given base, the dynamics'
/// labels, listed checkpoints of one model, a format its file name contradicts, outputs under a file, numbers
/// that overflowed, one skipped-lines note, and parts of another batch size.
@Suite(.serialized) struct ScoreRefusalCLITests {
    let fm = FileManager.default
    let run = CLI.tiny.appendingPathComponent("run").path
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path

    @Test func pviReadsTheAdapterOnItsGivenBase() throws {
        let dir = try CLI.tempDir("pvi-base")
        defer { try? fm.removeItem(at: dir) }
        let lora = CLI.tiny.appendingPathComponent("lora").path, null = CLI.tiny.appendingPathComponent("null-run").path
        func pvi(_ extra: [String], _ name: String) throws -> [Double] {
            let out = dir.appendingPathComponent(name)
            let r = try CLI.run(["score", "pvi", "--run", lora, "--null-run", null, "--data", train, "--max-length", "32", "--out", out.path] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return try PrecisionCLITests.column(out, "score")
        }
        let own = try pvi([], "own.csv"), other = try pvi(["--base", CLI.tiny.appendingPathComponent("run/checkpoint-25").path], "other.csv")
        #expect(own.count == 150 && other.count == 150 && own != other, "--base changed nothing")
    }

    @Test func theDynamicsScoresWriteTheLabelsTrainingRead() throws {
        let dir = try CLI.tempDir("dynamics-labels")
        defer { try? fm.removeItem(at: dir) }
        // gold_label holds the labels, label a wrong copy; the run is trained on gold_label.
        let lines = try String(contentsOfFile: train, encoding: .utf8).split(separator: "\n")
        let twolab = dir.appendingPathComponent("twolab.jsonl")
        try Data(lines.enumerated().map { i, l -> String in
            var o = try! JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            o["gold_label"] = o["label"]; o["label"] = i % 3 == 0 ? "pos" : "neg"
            return String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }.joined(separator: "\n").appending("\n").utf8).write(to: twolab)
        let r = dir.appendingPathComponent("run")
        #expect(try CLI.run(["train", "--data", twolab.path, "--label-field", "gold_label", "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1", "--max-length", "32", "--out", r.path]).status == 0)
        let out = dir.appendingPathComponent("f.csv")
        let f = try CLI.run(["score", "forgetting", "--run", r.path, "--data", twolab.path, "--out", out.path])
        #expect(f.status == 0 && f.stderr.contains("--label-field gold_label, the field"), "\(f.stderr)")
        let gold = lines.map { (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["label"] as! String }
        let written = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[3]) }
        #expect(written == gold)
        let wrong = try CLI.run(["score", "forgetting", "--run", r.path, "--data", twolab.path, "--label-field", "label", "--out", dir.appendingPathComponent("w.csv").path])
        #expect(wrong.status == 1 && wrong.stderr.contains("trained on the label field 'gold_label'"), "\(wrong.stderr)")
        let text = try CLI.run(["score", "aum", "--run", r.path, "--data", twolab.path, "--text-field", "id", "--out", dir.appendingPathComponent("t.csv").path])
        #expect(text.status == 2 && text.stderr.contains("--text-field id does not apply to aum"), "\(text.stderr)")
    }

    @Test func optionsThatContradictOrOverflowAreRefused() throws {
        let dir = try CLI.tempDir("score-refusals")
        defer { try? fm.removeItem(at: dir) }
        let afile = dir.appendingPathComponent("afile")
        try Data("hi\n".utf8).write(to: afile)
        let cases: [([String], Int32, String)] = [
            (["el2n", "--run", CLI.tiny.appendingPathComponent("paperhead").path, "--checkpoints", "12345", "--out", dir.appendingPathComponent("p.csv").path], 1, "one model without checkpoints"),
            (["el2n", "--run", run, "--format", "jsonl", "--out", dir.appendingPathComponent("x.csv").path], 2, "name different formats"),
            (["tracin", "--run", run, "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--matrix", dir.appendingPathComponent("m.csv").path,
              "--out", dir.appendingPathComponent("t.csv").path], 2, "give it a .npy name"),
            (["el2n", "--run", run, "--out", afile.appendingPathComponent("x.csv").path], 2, "is a file, not a folder"),
            (["el2n", "--run", run, "--batch-size", "100000000000000", "--out", dir.appendingPathComponent("b.csv").path], 2, "--batch-size must be at most"),
            (["tracin", "--run", run, "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--memory-limit", "17592186044417",
              "--out", dir.appendingPathComponent("ml.csv").path], 2, "--memory-limit is in MiB and at most"),
        ]
        for (args, status, message) in cases {
            let r = try CLI.run(["score"] + args.prefix(1) + ["--data", train, "--max-length", "32"] + args.dropFirst())
            #expect(r.status == status && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        #expect(try fm.contentsOfDirectory(atPath: dir.path) == ["afile"], "a refused scoring left files")
        // The format follows the file name when --format is not given.
        let npy = dir.appendingPathComponent("e.npy")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--out", npy.path]).status == 0)
        #expect(try Data(contentsOf: npy).prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
    }

    /// VoG's predicted target comes from the latest checkpoint, whatever the list's order; a checkpoint folder
    /// scored alone weighs TracIn by the rate its step used (its trainer_state.json), not 1.
    @Test func checkpointOrderAndACheckpointFolderAlone() throws {
        let dir = try CLI.tempDir("checkpoint-order")
        defer { try? fm.removeItem(at: dir) }
        func vog(_ c: String) throws -> [Double] {
            let out = dir.appendingPathComponent("vog-\(c).csv")
            let r = try CLI.run(["score", "vog", "--run", run, "--data", train, "--max-length", "32", "--target", "predicted", "--checkpoints", c, "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            return try PrecisionCLITests.column(out, "score")
        }
        // The same targets: the same scores up to the order of the variance's sums.
        let (a, b) = (try vog("100,25"), try vog("25,100"))
        #expect(a.count == 150 && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(abs($0), 1e-12) }, "\(zip(a, b).filter { abs($0 - $1) > 1e-5 * max(abs($0), 1e-12) }.prefix(3))")
        let t = try CLI.run(["score", "tracin", "--run", CLI.tiny.appendingPathComponent("run/checkpoint-50").path, "--data", train, "--max-length", "32",
                             "--params", "classifier", "--out", dir.appendingPathComponent("t.csv").path])
        #expect(t.status == 0 && !t.stderr.contains("eta = 1;") && t.stderr.contains("eta = 0.00"), "\(t.stderr)")
    }

    /// A run trained on single texts, given text pairs: scored and predicted with a note that it never saw pairs.
    @Test func pairsForASingleTextRunAreNoted() throws {
        let dir = try CLI.tempDir("pairs-note")
        defer { try? fm.removeItem(at: dir) }
        let r = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(r).status == 0)
        let pairs = dir.appendingPathComponent("pairs.jsonl")
        let lines = try String(contentsOfFile: train, encoding: .utf8).split(separator: "\n").prefix(20).map { l -> String in
            var o = try! JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            o["text_pair"] = o["text"]
            return String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: pairs)
        let s = try CLI.run(["score", "el2n", "--run", r.path, "--data", pairs.path, "--out", dir.appendingPathComponent("e.csv").path])
        #expect(s.status == 0 && s.stderr.contains("holds text pairs (field 'text_pair'), but"), "\(s.stderr)")
        let p = try CLI.run(["predict", "--run", r.path, "--data", pairs.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0 && p.stderr.contains("trained on single texts"), "\(p.stderr)")
        let single = try CLI.run(["score", "el2n", "--run", r.path, "--data", train, "--out", dir.appendingPathComponent("s.csv").path])
        #expect(single.status == 0 && !single.stderr.contains("text pairs"), "\(single.stderr)")
    }

    /// A test line skipped for want of a gold label needs no group field: only the scored target lines are read.
    @Test func aGroupFieldIsReadOnTheScoredTargetLinesOnly() throws {
        let dir = try CLI.tempDir("group-skipped")
        defer { try? fm.removeItem(at: dir) }
        let target = dir.appendingPathComponent("t.jsonl")
        try Data("""
        {"text": "what a good film", "label": "pos", "task": "a"}
        {"text": "the plot is terrible", "label": "neg", "task": "b"}
        {"text": "no label here", "label": "-"}
        {"text": "the actors were amazing", "label": "pos", "task": "a"}

        """.utf8).write(to: target)
        let r = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", target.path, "--max-length", "32", "--params", "classifier",
                             "--aggregate", "max", "--group-field", "task", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(r.status == 0 && r.stderr.contains("skipped 1 example"), "\(r.stderr)")
        let missing = dir.appendingPathComponent("m.jsonl")
        try Data("{\"text\": \"what a good film\", \"label\": \"pos\"}\n".utf8).write(to: missing)
        let m = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", missing.path, "--max-length", "32", "--params", "classifier",
                             "--aggregate", "max", "--group-field", "task", "--out", dir.appendingPathComponent("m.csv").path])
        #expect(m.status == 1 && m.stderr.contains("m.jsonl:1") && m.stderr.contains("'task'"), "\(m.stderr)")
    }

    @Test func partsNoteTheSkippedLinesOnceAndKeepTheirBatchSize() throws {
        let dir = try CLI.tempDir("score-parts-notes")
        defer { try? fm.removeItem(at: dir) }
        let lines = try String(contentsOfFile: train, encoding: .utf8).split(separator: "\n").prefix(27)
        let data = dir.appendingPathComponent("unl.jsonl")
        try Data(lines.enumerated().map { i, l in i % 4 == 1 ? l.replacingOccurrences(of: "\"label\": \"pos\"", with: "\"label\": \"-\"")
                                                                .replacingOccurrences(of: "\"label\": \"neg\"", with: "\"label\": \"-\"") : String(l) }
                 .joined(separator: "\n").appending("\n").utf8).write(to: data)
        let r = try CLI.run(["score", "el2n", "--run", run, "--data", data.path, "--max-length", "32", "--part-size", "5", "--out", dir.appendingPathComponent("u.csv").path])
        #expect(r.status == 0 && r.stderr.components(separatedBy: "skipped 7 example(s)").count == 2 && !r.stderr.contains("skipped 2"), "\(r.stderr)")
        // Parts of batches of 32 (as a killed scoring leaves them) are not resumed with batches of 7.
        let out = dir.appendingPathComponent("p.csv")
        var o = ScoreOptions(); o.maxLength = 32
        _ = try ScoreParts.score(.el2n, run: URL(fileURLWithPath: run), data: URL(fileURLWithPath: train), options: o,
                                 parts: URL(fileURLWithPath: out.path + ".parts"), resume: false, partSize: 50)
        let other = try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--part-size", "50", "--batch-size", "7", "--out", out.path, "--resume"])
        #expect(other.status == 1 && other.stderr.contains("batchSize"), "\(other.stderr)")
    }
}
