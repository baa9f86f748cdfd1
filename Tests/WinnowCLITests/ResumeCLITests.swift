import Foundation
import Testing
import Winnow

/// Kill commands with SIGKILL at a random moment, rerun with --resume (or just rerun, for
/// `experiment`), and compare with an uninterrupted run.
@Suite(.serialized) struct ResumeCLITests {
    static func trainArgs(_ out: URL) -> [String] {
        ["train", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
         "--out", out.path, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "12", "--batch-size", "16",
         "--lr", "1e-3", "--max-length", "32", "--checkpoints", "12", "--seed", "3"]
    }

    @Test func trainResumesAfterSIGKILLToTheSameRun() throws {
        let dir = try CLI.tempDir("resume-train")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = dir.appendingPathComponent("reference")
        let t0 = Date()
        let r = try CLI.run(Self.trainArgs(reference))
        let elapsed = Date().timeIntervalSince(t0)
        #expect(r.status == 0, "\(r.stderr)")
        var rng = SystemRandomNumberGenerator()
        var killedOnce = false
        for attempt in 0..<3 {
            let run = dir.appendingPathComponent("killed-\(attempt)")
            // Somewhere in the run, as long as the reference took (a fixed delay outlived it on a fast day).
            let delay = Double.random(in: 0.1...0.8, using: &rng) * elapsed
            killedOnce = try CLI.runKilled(Self.trainArgs(run), after: delay) || killedOnce
            let again = try CLI.run(Self.trainArgs(run) + ["--resume"])
            #expect(again.status == 0, "resume after \(delay) s failed: \(again.stderr)")
            for f in ["model.safetensors", "dynamics.safetensors", "trainer_state.json", "checkpoint-60/model.safetensors"] {
                let a = try Data(contentsOf: reference.appendingPathComponent(f)), b = try Data(contentsOf: run.appendingPathComponent(f))
                #expect(a == b, "\(f) differs after a kill at \(delay) s and --resume")
            }
        }
        #expect(killedOnce, "no attempt was killed mid-run; the test proved nothing")
    }

    /// --resume into a new or empty folder trains from the start and says that nothing was resumed.
    @Test func resumeWithNothingToResumeSaysSo() throws {
        let dir = try CLI.tempDir("resume-nothing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(Self.trainArgs(run) + ["--resume"])
        #expect(r.status == 0 && r.stderr.contains("train: --resume: \(run.path) holds no checkpoint to resume from; training from step 0"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("model.safetensors").path))
        let again = try CLI.run(Self.trainArgs(run) + ["--resume"])
        #expect(again.status == 0 && !again.stderr.contains("holds no checkpoint"), "\(again.stderr)")
    }

    @Test func resumeRefusesOtherOptions() throws {
        let dir = try CLI.tempDir("resume-other")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.run(Self.trainArgs(run)).status == 0)
        let r = try CLI.run(Self.trainArgs(run).map { $0 == "1e-3" ? "2e-3" : $0 } + ["--resume"])
        #expect(r.status == 1 && r.stderr.contains("other options"), "\(r.stderr)")
    }

    @Test func experimentResumesAfterSIGKILLToTheSameResults() throws {
        let dir = try CLI.tempDir("resume-experiment")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = dir.appendingPathComponent("reference")
        let t0 = Date()
        let r = try CLI.run(ExperimentCLITests.experimentArgs(reference, seeds: 1))
        let elapsed = Date().timeIntervalSince(t0)
        #expect(r.status == 0, "\(r.stderr)")
        // Kill somewhere in the run as long as the reference; machine load changes a run's length, so up
        // to three attempts, each compared with the reference.
        var rng = SystemRandomNumberGenerator()
        var killedOnce = false
        for attempt in 0..<3 where !killedOnce {
            let killed = dir.appendingPathComponent("killed-\(attempt)")
            let delay = Double.random(in: 0.15...0.6, using: &rng) * elapsed
            killedOnce = try CLI.runKilled(ExperimentCLITests.experimentArgs(killed, seeds: 1), after: delay)
            let again = try CLI.run(ExperimentCLITests.experimentArgs(killed, seeds: 1))
            #expect(again.status == 0, "rerun after a kill at \(delay) s failed: \(again.stderr)")
            for f in ["results.csv", "scores/vog.csv", "scores/pvi.csv", "full/model.safetensors"] {
                let a = try Data(contentsOf: reference.appendingPathComponent(f)), b = try Data(contentsOf: killed.appendingPathComponent(f))
                #expect(a == b, "\(f) differs after a kill at \(delay) s")
            }
        }
        #expect(killedOnce, "the experiment finished before the kill in every attempt")
    }
}

@Suite(.serialized) struct ScoreResumeCLITests {
    @Test(arguments: ["vog", "grand", "pvi"])
    func scoreResumesAfterSIGKILLToTheSameFile(_ method: String) throws {
        let dir = try CLI.tempDir("resume-score")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run"), null = dir.appendingPathComponent("null")
        #expect(try CLI.trainTiny(run).status == 0)
        #expect(try CLI.trainTiny(null, extra: ["--null"]).status == 0)
        func args(_ out: URL) -> [String] {
            ["score", method, "--run", run.path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--max-length", "32",
             "--part-size", "10", "--batch-size", "4", "--out", out.path] + (method == "pvi" ? ["--null-run", null.path] : [])
        }
        let reference = dir.appendingPathComponent("reference.csv")
        let started = Date()
        let r = try CLI.run(args(reference))
        let took = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: reference.path + ".parts"), "parts folder left behind")
        var rng = SystemRandomNumberGenerator()
        // Somewhere in the middle of a run as long as the reference (PVI streams 15 parts in well under
        // a second since its parts stopped re-reading the file, so fixed delays could miss it); machine
        // load changes a run's length, so up to five attempts, each checked, the delay halved after a run
        // that finished before its kill (a machine whose load fell since the reference ran).
        var killedOnce = false
        var scale = 1.0
        for attempt in 0..<5 where !killedOnce {
            let killed = dir.appendingPathComponent("killed-\(attempt).csv")
            let delay = scale * Double.random(in: (0.3 * took)...(0.7 * took), using: &rng)
            killedOnce = try CLI.runKilled(args(killed), after: delay)
            guard killedOnce else { scale *= 0.5; continue }
            // A kill that lands after the final rename but before the process exits leaves the whole
            // file: never a partial one. Such an attempt proves nothing about resuming; try again.
            if FileManager.default.fileExists(atPath: killed.path) {
                #expect(try Data(contentsOf: killed) == Data(contentsOf: reference), "a killed run left a partial output file")
                killedOnce = false
                continue
            }
            // A saved part damaged since (cut short) is scored again, not found broken at the end.
            // (A part is saved once its table, written last, is there: a values file alone is an unsaved part.)
            let part0 = URL(fileURLWithPath: killed.path + ".parts").appendingPathComponent("part-0.f64")
            let damaged = FileManager.default.fileExists(atPath: part0.path)
                && FileManager.default.fileExists(atPath: URL(fileURLWithPath: killed.path + ".parts").appendingPathComponent("part-0.json").path)
            if damaged { try Data("cut".utf8).write(to: part0) }
            let again = try CLI.run(args(killed) + ["--resume"])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(!damaged || again.stderr.contains("part 0 in") && again.stderr.contains("it is scored again"), "\(again.stderr)")
            #expect(try Data(contentsOf: killed) == Data(contentsOf: reference), "\(method) differs after a kill at \(delay) s and --resume")
        }
        #expect(killedOnce, "scoring finished before the kill in every attempt; the test proved nothing")
    }

    /// A causal language model's scoring killed part-way resumes to the same file.
    @Test func decoderScoreResumesAfterSIGKILLToTheSameFile() throws {
        let dir = try CLI.tempDir("resume-decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtures = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let data = dir.appendingPathComponent("pairs.jsonl")
        try String(repeating: try String(contentsOf: fixtures.appendingPathComponent("pc.jsonl"), encoding: .utf8), count: 50)
            .write(to: data, atomically: true, encoding: .utf8)
        func args(_ out: URL) -> [String] {
            ["score", "grand", "--run", fixtures.appendingPathComponent("tied").path, "--data", data.path, "--part-size", "10",
             "--batch-size", "2", "--out", out.path]
        }
        let reference = dir.appendingPathComponent("reference.csv")
        let started = Date()
        let r = try CLI.run(args(reference))
        let took = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stderr)")
        var killedOnce = false
        for attempt in 0..<3 where !killedOnce {
            let killed = dir.appendingPathComponent("killed-\(attempt).csv")
            killedOnce = try CLI.runKilled(args(killed), after: Double.random(in: (0.3 * took)...(0.7 * took)))
            guard killedOnce else { continue }
            if FileManager.default.fileExists(atPath: killed.path) { killedOnce = false; continue }   // killed after the rename
            // Parts of plain GraNd are not parts of length-neutral GraNd (when the kill left parts: a very early
            // one may not have).
            if FileManager.default.fileExists(atPath: killed.path + ".parts/manifest.json") {
                let other = try CLI.run(args(killed) + ["--resume", "--length-neutral"])
                #expect(other.status == 1 && other.stderr.contains("parts of another scoring (lengthNeutral: none there, true now)")
                        && !FileManager.default.fileExists(atPath: killed.path),
                        "\(other.stderr)")
            }
            let again = try CLI.run(args(killed) + ["--resume"])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try Data(contentsOf: killed) == Data(contentsOf: reference), "decoder grand differs after a kill and --resume")
        }
        #expect(killedOnce, "scoring finished before the kill in every attempt; the test proved nothing")
        // Deterministically: the parts of plain GraNd (as a killed `winnow score` leaves them, made through the
        // library) are not parts of length-neutral GraNd.
        let folder = dir.appendingPathComponent("parts.csv")
        var o = ScoreOptions()
        o.batchSize = 2
        _ = try ScoreParts.score(.grand, run: fixtures.appendingPathComponent("tied"), data: data, options: o,
                                 parts: URL(fileURLWithPath: folder.path + ".parts"), resume: false, partSize: 10)
        #expect(FileManager.default.fileExists(atPath: folder.path + ".parts/manifest.json"))
        let other = try CLI.run(args(folder) + ["--resume", "--length-neutral"])
        #expect(other.status == 1 && other.stderr.contains("parts of another scoring") && other.stderr.contains("lengthNeutral"), "\(other.stderr)")
        // The same options resume them to the reference file.
        let same = try CLI.run(args(folder) + ["--resume"])
        #expect(same.status == 0 && (try? Data(contentsOf: folder)) == (try? Data(contentsOf: reference)), "\(same.stderr)")
    }
}

/// `train --resume` continues only its own run: another model shape, dropout, vocabulary or start, an MLP's other
/// label column, or a folder another tool wrote are refused; a start over removes the old run's adapter.
@Suite(.serialized) struct TrainResumeRefusalCLITests {
    let fm = FileManager.default

    @Test func resumeRefusesAnotherModelOrALabelColumnAndNeverAForeignRun() throws {
        let dir = try CLI.tempDir("train-resume-refusals")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("small.jsonl")
        try Data((try String(contentsOf: CLI.tiny.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n").prefix(40)
                  .joined(separator: "\n") + "\n").utf8).write(to: data)
        let run = dir.appendingPathComponent("r")
        let base = ["train", "--data", data.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                    "--epochs", "2", "--batch-size", "8", "--max-length", "32", "--checkpoints", "2", "--out", run.path, "--resume"]
        #expect(try CLI.run(base + ["--heads", "2"]).status == 0)
        try fm.removeItem(at: run.appendingPathComponent("checkpoint-10"))
        // winnow.json records the checkpoints that decide (not one per epoch as well); a run recorded by an
        // earlier winnow with checkpointPerEpoch true beside --checkpoints resumes all the same (below).
        let infoURL = run.appendingPathComponent("winnow.json")
        var info = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: infoURL)) as? [String: Any])
        var opts = try #require(info["options"] as? [String: Any])
        #expect(opts["checkpointPerEpoch"] as? Bool == false && opts["checkpoints"] as? Int == 2, "\(opts)")
        opts["checkpointPerEpoch"] = true
        info["options"] = opts
        try JSONSerialization.data(withJSONObject: info).write(to: infoURL)
        for extra in [["--heads", "4"], ["--heads", "2", "--dropout", "0.5"]] {
            let r = try CLI.run(base + extra)
            #expect(r.status == 1 && r.stderr.contains("another model"), "\(extra): \(r.stderr)")
        }
        #expect(try CLI.run(base + ["--heads", "2"]).status == 0)
        // An MLP resumed with another label column.
        let csv = dir.appendingPathComponent("g.csv")
        try Data(("x1,label,y\n" + (0..<32).map { "\(Double($0) / 10),\($0 % 2),\(($0 / 2) % 2)" }.joined(separator: "\n") + "\n").utf8).write(to: csv)
        let mlp = dir.appendingPathComponent("m")
        let margs = ["train", "--data", csv.path, "--layers", "1", "--hidden", "8", "--epochs", "2", "--batch-size", "16", "--checkpoints", "2", "--out", mlp.path, "--resume"]
        #expect(try CLI.run(margs).status == 0)
        try fm.removeItem(at: mlp.appendingPathComponent("checkpoint-4"))
        let y = try CLI.run(margs + ["--label-field", "y"])
        #expect(y.status == 1 && y.stderr.contains("another label_field"), "\(y.stderr)")
        // A run transformers wrote (no winnow.json) is neither resumed nor removed.
        let foreign = dir.appendingPathComponent("hf")
        try fm.copyItem(at: CLI.tiny.appendingPathComponent("run"), to: foreign)
        let f = try CLI.run(["train", "--data", data.path, "--init", CLI.tiny.appendingPathComponent("run").path, "--max-length", "32", "--epochs", "1",
                             "--out", foreign.path, "--resume"])
        #expect(f.status == 2 && f.stderr.contains("no winnow.json"), "\(f.stderr)")
        #expect(fm.fileExists(atPath: foreign.appendingPathComponent("checkpoint-100").path))
        // A vocabulary larger than the model's embeddings, with --init: one line, nothing written.
        let big = dir.appendingPathComponent("big/vocab.txt")
        try fm.createDirectory(at: big.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((try String(contentsOf: CLI.tiny.appendingPathComponent("vocab.txt"), encoding: .utf8) + (0..<100).map { "tok\($0)\n" }.joined()).utf8).write(to: big)
        let v = try CLI.run(["train", "--data", data.path, "--init", CLI.tiny.appendingPathComponent("run").path, "--vocab", big.path, "--max-length", "32",
                             "--epochs", "1", "--out", dir.appendingPathComponent("iv").path])
        #expect(v.status == 1 && v.stderr.contains("vocab_size") && !fm.fileExists(atPath: dir.appendingPathComponent("iv").path), "\(v.stderr)")
        // A smaller vocabulary (another tokenizer) with --init: refused the same way.
        let small = dir.appendingPathComponent("small/vocab.txt")
        try fm.createDirectory(at: small.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((try String(contentsOf: CLI.tiny.appendingPathComponent("vocab.txt"), encoding: .utf8)).split(separator: "\n").dropLast(5).map { $0 + "\n" }.joined().utf8).write(to: small)
        let sv = try CLI.run(["train", "--data", data.path, "--init", CLI.tiny.appendingPathComponent("run").path, "--vocab", small.path, "--max-length", "32",
                              "--epochs", "1", "--out", dir.appendingPathComponent("sv").path])
        #expect(sv.status == 1 && sv.stderr.contains("not the") && sv.stderr.contains("vocab_size") && !fm.fileExists(atPath: dir.appendingPathComponent("sv").path), "\(sv.stderr)")
        // LoRA targets named twice or empty, a non-finite alpha: usage errors.
        for extra in [["--lora-targets", "query,query"], ["--lora-targets", ""], ["--lora-alpha", "inf"]] {
            let r = try CLI.run(["train", "--data", data.path, "--init", CLI.tiny.appendingPathComponent("run").path, "--lora-rank", "2",
                                 "--out", dir.appendingPathComponent("lt").path] + extra)
            #expect(r.status == 2 && r.stderr.contains(extra[0]), "\(extra): \(r.stderr)")
        }
        // A fresh model's pad_token_id is its vocabulary's [PAD] (here the fifth token).
        let moved = dir.appendingPathComponent("moved/vocab.txt")
        try fm.createDirectory(at: moved.deletingLastPathComponent(), withIntermediateDirectories: true)
        var tokens = try String(contentsOf: CLI.tiny.appendingPathComponent("vocab.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        tokens.swapAt(0, 4)
        try Data((tokens.joined(separator: "\n") + "\n").utf8).write(to: moved)
        let p = dir.appendingPathComponent("pad")
        #expect(try CLI.run(["train", "--data", data.path, "--vocab", moved.path, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1",
                             "--max-length", "32", "--out", p.path]).status == 0)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: p.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(config?["pad_token_id"] as? Int == 4, "\(String(describing: config?["pad_token_id"]))")
    }

    @Test func aStartOverRemovesTheOldRunsAdapter() throws {
        let dir = try CLI.tempDir("train-start-over")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("lora")
        let train = CLI.tiny.appendingPathComponent("train.jsonl").path, initRun = CLI.tiny.appendingPathComponent("run").path
        #expect(try CLI.run(["train", "--data", train, "--init", initRun, "--lora-rank", "2", "--max-length", "32", "--epochs", "1", "--out", run.path]).status == 0)
        for ck in try fm.contentsOfDirectory(atPath: run.path) where ck.hasPrefix("checkpoint-") { try fm.removeItem(at: run.appendingPathComponent(ck)) }
        let full = try CLI.run(["train", "--data", train, "--init", initRun, "--max-length", "32", "--epochs", "1", "--out", run.path, "--resume"])
        #expect(full.status == 0, "\(full.stderr)")
        #expect(!fm.fileExists(atPath: run.appendingPathComponent("adapter_config.json").path) && fm.fileExists(atPath: run.appendingPathComponent("model.safetensors").path))
    }
}
