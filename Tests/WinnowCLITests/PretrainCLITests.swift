import Foundation
import Testing

/// `winnow pretrain` end to end on a tiny corpus, and fine-tuning its encoder with `train --init`.
@Suite(.serialized) struct PretrainCLITests {
    /// The tiny pre-training run's arguments, without --out.
    static func pretrainArgs(_ extra: [String]) -> [String] {
        ["pretrain", "--corpus", CLI.tiny.appendingPathComponent("train.jsonl").path,
         "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
         "--seq-len", "16", "--batch-size", "8", "--steps", "12", "--checkpoints", "2"] + extra
    }

    static func pretrain(_ out: URL, _ extra: [String]) throws -> CLIResult {
        try CLI.run(pretrainArgs(["--out", out.path] + extra))
    }

    @Test(arguments: ["mlm", "causal"])
    func pretrainWritesAHuggingFaceRunTheSILogAndAHeldOutLoss(_ objective: String) throws {
        let dir = try CLI.tempDir("pretrain")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run"), log = dir.appendingPathComponent("si.csv")
        let r = try Self.pretrain(run, ["--objective", objective, "--reweight", "presence", "--microbatch-size", "2", "--switch-step", "7",
                                        "--si-log", log.path, "--heldout", CLI.tiny.appendingPathComponent("test.jsonl").path])
        #expect(r.status == 0, "pretrain failed: \(r.stderr)")
        #expect(r.stdout.contains("pre-trained 12 steps") && r.stdout.contains("held-out \(objective) loss"))
        // The BERT schedule: tau1 before the switch step, tau2 from it on.
        #expect(r.stderr.contains("tau 1.0 before step 7, -1.0 from it on;"), "\(r.stderr)")
        let fm = FileManager.default
        for f in ["config.json", "model.safetensors", "vocab.txt", "trainer_state.json", "winnow.json", "heldout.json",
                  "checkpoint-6/model.safetensors", "checkpoint-12/trainer_state.json"] {
            #expect(fm.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as! [String: Any]
        #expect((cfg["architectures"] as? [String]) == [objective == "mlm" ? "BertForMaskedLM" : "BertLMHeadModel"])
        #expect(cfg["is_decoder"] as? Bool == (objective == "causal"))
        let rows = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 1 + 12 * 8)
        let lines = Set(rows.dropFirst().map { Int($0.split(separator: ",")[1])! })
        #expect(lines.allSatisfy { $0 >= 1 && $0 <= 150 })
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("trainer_state.json"))) as! [String: Any]
        let last = (state["log_history"] as! [[String: Any]]).last!
        for k in ["loss", "weight_entropy", "si_mean", "si_std", "tau"] { #expect(last[k] != nil, "log_history lacks \(k)") }
        #expect(last["tau"] as? Double == -1)

        // The pre-trained encoder fine-tunes as a classifier (fresh pooler and head).
        let ft = dir.appendingPathComponent("ft")
        let t = try CLI.run(["train", "--init", run.path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--out", ft.path,
                             "--epochs", "1", "--batch-size", "16", "--max-length", "16", "--lr", "1e-3"])
        #expect(t.status == 0, "fine-tuning failed: \(t.stderr)")
        #expect(fm.fileExists(atPath: ft.appendingPathComponent("model.safetensors").path))
    }

    @Test func badPretrainInvocations() throws {
        let dir = try CLI.tempDir("pretrain-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Self.pretrain(dir.appendingPathComponent("run"), ["--reweight", "presence", "--si-params", "all"])
        #expect(r.status == 1 && r.stderr.contains("--si-params"), "\(r.stderr)")
        let u = try Self.pretrain(dir.appendingPathComponent("run2"), ["--objective", "span"])
        #expect(u.status == 2)
        let m = try CLI.run(["pretrain", "--corpus", dir.appendingPathComponent("missing.txt").path, "--vocab",
                             CLI.tiny.appendingPathComponent("vocab.txt").path, "--out", dir.appendingPathComponent("r3").path])
        #expect(m.status == 1 && m.stderr.contains("missing.txt"), "\(m.stderr)")
    }
}

/// `winnow pretrain --init` on the tiny decoder: a LoRA adapter run with PRESENCE (a decoder's defaults:
/// inverse weighting throughout, SI over the last layer).
@Suite(.serialized) struct DecoderPretrainCLITests {
    static let decoder = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")

    @Test func continuedPretrainingOfADecoderWritesAnAdapterRunTheSILogAndAHeldOutLoss() throws {
        let dir = try CLI.tempDir("pretrain-decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run"), log = dir.appendingPathComponent("si.csv")
        let corpus = Self.decoder.appendingPathComponent("corpus.txt").path
        let r = try CLI.run(["pretrain", "--init", Self.decoder.appendingPathComponent("tied").path, "--corpus", corpus, "--seq-len", "12",
                             "--lora-rank", "2", "--lora-targets", "q_proj,v_proj,down_proj", "--reweight", "presence",
                             "--microbatch-size", "2", "--batch-size", "4", "--steps", "4", "--checkpoints", "2", "--si-log", log.path,
                             "--heldout", corpus, "--out", run.path])
        #expect(r.status == 0, "pretrain failed: \(r.stderr)")
        #expect(r.stdout.contains("pre-trained 4 steps") && r.stdout.contains("adapter written") && r.stdout.contains("held-out causal loss"))
        #expect(r.stderr.contains("LoRA r 2") && r.stderr.contains("lr 0.0002"), "\(r.stderr)")
        // A decoder's PRESENCE defaults: inverse weighting throughout, SI over the last layer.
        #expect(r.stderr.contains("tau -1.0 throughout;") && r.stderr.contains("SI over last-layer"), "\(r.stderr)")
        let fm = FileManager.default
        for f in ["adapter_config.json", "adapter_model.safetensors", "checkpoint-2/adapter_model.safetensors", "trainer_state.json", "heldout.json"] {
            #expect(fm.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        #expect(!fm.fileExists(atPath: run.appendingPathComponent("model.safetensors").path), "an adapter run holds no full model")
        #expect(try String(contentsOf: log, encoding: .utf8).split(separator: "\n").count == 1 + 4 * 4)
        // The adapter scores like any other (its base from adapter_config.json).
        let s = try CLI.run(["score", "loss", "--run", run.path, "--data", Self.decoder.appendingPathComponent("text.jsonl").path,
                             "--out", dir.appendingPathComponent("loss.csv").path])
        #expect(s.status == 0, "\(s.stderr)")
        // A decoder is causal; MLM and a second adapter are refused in one line.
        let m = try CLI.run(["pretrain", "--init", Self.decoder.appendingPathComponent("tied").path, "--corpus", corpus, "--objective", "mlm",
                             "--out", dir.appendingPathComponent("m").path])
        #expect(m.status == 1 && m.stderr.contains("--objective"), "\(m.stderr)")
        let a = try CLI.run(["pretrain", "--init", run.path, "--corpus", corpus, "--lora-rank", "2", "--out", dir.appendingPathComponent("a").path])
        #expect(a.status == 1 && a.stderr.contains("adapter already"), "\(a.stderr)")
        let v = try CLI.run(["pretrain", "--init", run.path, "--corpus", corpus, "--vocab", "x", "--out", dir.appendingPathComponent("v").path])
        #expect(v.status == 2 && v.stderr.contains("--vocab"), "\(v.stderr)")
        // A corpus of one-token lines has no next token to predict: said so (before, "the corpus has no text").
        let oneToken = dir.appendingPathComponent("one.txt")
        try "a\nb\nc\n".write(to: oneToken, atomically: true, encoding: .utf8)
        let o = try CLI.run(["pretrain", "--init", Self.decoder.appendingPathComponent("tied").path, "--corpus", oneToken.path, "--out", dir.appendingPathComponent("o").path])
        #expect(o.status == 1 && o.stderr.contains("no line has two tokens or more"), "\(o.stderr)")
        // A bare BertModel (MiniLM's folder) has no language-model head to continue: named as such.
        let bare = try CLI.run(["pretrain", "--init", CLI.repo.appendingPathComponent("models/minilm").path, "--corpus", corpus,
                                "--out", dir.appendingPathComponent("bare").path])
        #expect(bare.status == 1 && bare.stderr.contains("is a bare BertModel") && bare.stderr.contains("--vocab"), "\(bare.stderr)")
    }
}

/// What `winnow pretrain` refuses before it writes anything: outputs over its inputs or model, a resume of a
/// run made of other data or settings, numbers that would trap, options that would change nothing.
@Suite(.serialized) struct PretrainRefusalCLITests {
    static let corpus = CLI.tiny.appendingPathComponent("train.jsonl")

    @Test func outputsNeverReplaceTheInputsOrTheModel() throws {
        let dir = try CLI.tempDir("pretrain-outputs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("c.txt")
        try FileManager.default.copyItem(at: Self.corpus, to: corpus)
        let before = try Data(contentsOf: corpus)
        let run = dir.appendingPathComponent("run")
        for log in [corpus.path, run.appendingPathComponent("model.safetensors").path, dir.path, run.path] {
            let r = try CLI.run(["pretrain", "--corpus", corpus.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1",
                                 "--hidden", "8", "--heads", "2", "--seq-len", "8", "--batch-size", "2", "--steps", "2", "--si-log", log, "--out", run.path])
            #expect(r.status == 2 && r.stderr.contains("--si-log"), "\(log): \(r.stderr)")
        }
        #expect(try Data(contentsOf: corpus) == before && !FileManager.default.fileExists(atPath: run.path))
        // --out the model being continued (or the folder holding it): refused, the model untouched.
        let mlm = dir.appendingPathComponent("mlm")
        try FileManager.default.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/lm/mlm"), to: mlm)
        let weights = try Data(contentsOf: mlm.appendingPathComponent("model.safetensors"))
        for extra in [[], ["--resume"]] {
            let r = try CLI.run(["pretrain", "--init", mlm.path, "--corpus", corpus.path, "--seq-len", "8", "--batch-size", "2", "--steps", "2",
                                 "--out", mlm.path] + extra)
            #expect(r.status == 2 && r.stderr.contains("--out") && r.stderr.contains("replace"), "\(extra): \(r.stderr)")
        }
        let gguf = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf")
        let held = try CLI.run(["pretrain", "--init", gguf.path, "--corpus", corpus.path, "--lora-rank", "2", "--out", gguf.deletingLastPathComponent().path])
        #expect(held.status == 2 && held.stderr.contains("holds the model"), "\(held.stderr)")
        #expect(try Data(contentsOf: mlm.appendingPathComponent("model.safetensors")) == weights)
        // `train` refuses the same.
        let t = try CLI.run(["train", "--init", mlm.path, "--data", Self.corpus.path, "--out", mlm.path, "--resume"])
        #expect(t.status == 2 && t.stderr.contains("--out"), "\(t.stderr)")
    }

    @Test func resumeRefusesAnotherCorpusOrSettings() throws {
        let dir = try CLI.tempDir("pretrain-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("c.txt"), shuffled = dir.appendingPathComponent("moved/c.txt")
        try FileManager.default.copyItem(at: Self.corpus, to: corpus)
        // The same lines in another order: as many windows, another corpus.
        try FileManager.default.createDirectory(at: shuffled.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(String(decoding: try Data(contentsOf: corpus), as: UTF8.self).split(separator: "\n").reversed().joined(separator: "\n").appending("\n").utf8).write(to: shuffled)
        let run = dir.appendingPathComponent("run")
        func pretrain(_ c: URL, _ extra: [String] = [], vocab: URL = CLI.tiny.appendingPathComponent("vocab.txt")) throws -> CLIResult {
            try CLI.run(["pretrain", "--corpus", c.path, "--vocab", vocab.path, "--layers", "1",
                         "--hidden", "8", "--heads", "2", "--seq-len", "8", "--batch-size", "4", "--steps", "4", "--checkpoints", "2",
                         "--out", run.path, "--resume"] + extra)
        }
        let first = try pretrain(corpus)
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoint-4"))
        for (c, extra, what) in [(shuffled, [String](), "corpus_fnv1a64"), (corpus, ["--objective", "causal"], "objective")] {
            let r = try pretrain(c, extra)
            #expect(r.status == 1 && r.stderr.contains("another \(what)"), "\(what): \(r.stderr)")
            // Refused before the banner of what would be trained.
            #expect(!r.stderr.contains("pretrain: "), "\(what): \(r.stderr)")
        }
        // A vocabulary of the same size in another order gives other ids: refused too (before, resumed silently).
        var words = try String(contentsOf: CLI.tiny.appendingPathComponent("vocab.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        words.swapAt(words.count - 1, words.count - 2)
        let reordered = dir.appendingPathComponent("v2/vocab.txt")
        try FileManager.default.createDirectory(at: reordered.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (words.joined(separator: "\n") + "\n").write(to: reordered, atomically: true, encoding: .utf8)
        let v = try pretrain(corpus, vocab: reordered)
        #expect(v.status == 1 && v.stderr.contains("another vocab_fnv1a64"), "\(v.stderr)")
        // The same corpus moved elsewhere resumes (its content is what counts); a finished run says so, without a loss.
        try FileManager.default.removeItem(at: shuffled)
        try FileManager.default.copyItem(at: corpus, to: shuffled)
        let moved = try pretrain(shuffled)
        #expect(moved.status == 0 && moved.stderr.contains("resuming from") && moved.stdout.contains("pre-trained 2 of 4 steps (resumed at step 2)"), "\(moved.stderr)")
        let again = try pretrain(corpus)
        #expect(again.status == 0 && again.stdout.contains("is complete (4 steps): nothing trained") && !again.stdout.contains("final loss"), "\(again.stdout)")
    }

    @Test func numbersAndOptionsThatWouldTrapOrChangeNothing() throws {
        let dir = try CLI.tempDir("pretrain-numbers")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fresh = ["pretrain", "--corpus", Self.corpus.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--out", dir.appendingPathComponent("r").path]
        for (extra, flag) in [(["--intermediate=-5"], "--intermediate"), (["--intermediate", "0"], "--intermediate"), (["--seq-len", "100000000000"], "--seq-len"),
                              (["--steps", "9223372036854775807"], "--steps"), (["--layers", "0"], "--layers"), (["--heads", "0"], "--heads"),
                              (["--checkpoints", "0"], "--checkpoints must be at least 1"),
                              (["--reweight", "presence", "--microbatch-size", "1", "--tau1", "nan"], "--tau1"),
                              (["--reweight", "presence", "--microbatch-size", "1", "--tau2", "inf"], "--tau2")] {
            let r = try CLI.run(fresh + extra)
            #expect(r.status == 2 && r.stderr.contains(flag), "\(extra): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r").path), "a refused run left a folder")
        // A folder as the corpus, a file as --init: one line naming it.
        let folder = try CLI.run(["pretrain", "--corpus", dir.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--out", dir.appendingPathComponent("f").path])
        #expect(folder.status == 1 && folder.stderr.contains("is a folder"), "\(folder.stderr)")
        let file = try CLI.run(["pretrain", "--init", Self.corpus.path, "--corpus", Self.corpus.path, "--out", dir.appendingPathComponent("g").path])
        #expect(file.status == 1 && file.stderr.contains("--init takes a model folder"), "\(file.stderr)")
        // A decoder classifier has no language-model head: named as such (not read as a BERT folder).
        let cls = CLI.repo.appendingPathComponent("Tests/Fixtures/llama/cls").path
        let c = try CLI.run(["pretrain", "--init", cls, "--corpus", Self.corpus.path, "--out", dir.appendingPathComponent("c").path])
        #expect(c.status == 1 && c.stderr.contains("is a decoder sequence classifier"), "\(c.stderr)")
        // --base for a model that is not an adapter; --switch-step between the decoder's equal default temperatures.
        let tied = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path
        let base = try CLI.run(["pretrain", "--init", tied, "--base", tied, "--corpus", Self.corpus.path, "--lora-rank", "2", "--out", dir.appendingPathComponent("b").path])
        #expect(base.status == 1 && base.stderr.contains("--base"), "\(base.stderr)")
        let sw = try CLI.run(["pretrain", "--init", tied, "--corpus", Self.corpus.path, "--lora-rank", "2", "--reweight", "presence", "--microbatch-size", "2",
                              "--batch-size", "4", "--steps", "4", "--switch-step", "2", "--out", dir.appendingPathComponent("s").path])
        #expect(sw.status == 1 && sw.stderr.contains("--switch-step") && sw.stderr.contains("changes nothing"), "\(sw.stderr)")
    }

    /// Scoring a language model as a classifier says what to do: fine-tune one from it first.
    @Test func scoringALanguageModelNamesTheFineTuningStep() throws {
        let dir = try CLI.tempDir("score-lm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let mlm = CLI.repo.appendingPathComponent("Tests/Fixtures/lm/mlm").path
        let r = try CLI.run(["score", "el2n", "--run", mlm, "--data", Self.corpus.path, "--out", dir.appendingPathComponent("s.csv").path])
        #expect(r.status == 1 && r.stderr.contains("no classifier head") && r.stderr.contains("winnow train --init"), "\(r.stderr)")
    }

    /// `--init` a BERT folder whose tokenizer keeps case: the corpus is read cased, and the run keeps the setting.
    @Test func continuingABertFolderKeepsItsTokenizerSettings() throws {
        let dir = try CLI.tempDir("pretrain-cased")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cased = dir.appendingPathComponent("cased")
        try FileManager.default.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/lm/mlm"), to: cased)
        try Data(#"{"do_lower_case": false}"#.utf8).write(to: cased.appendingPathComponent("tokenizer_config.json"))
        let up = dir.appendingPathComponent("up.txt")
        try Data("MOVIES PLOTS\n".utf8).write(to: up)
        let tok = try CLI.run(["tokenize", "--model", cased.path, "--data", { let u = dir.appendingPathComponent("up.jsonl"); try? Data(#"{"text": "MOVIES PLOTS"}"#.utf8).write(to: u); return u.path }(),
                               "--out", dir.appendingPathComponent("ids.jsonl").path])
        #expect(tok.status == 0)
        let ids = try String(contentsOf: dir.appendingPathComponent("ids.jsonl"), encoding: .utf8)
        let tokens = ids.components(separatedBy: "[").last!.split(separator: ",").count - 2   // without [CLS] and [SEP]
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(["pretrain", "--init", cased.path, "--corpus", up.path, "--seq-len", "3", "--batch-size", "1", "--steps", "1", "--out", run.path])
        #expect(r.status == 0 && r.stderr.contains("pretrain: \(tokens) windows"), "cased: \(tokens) tokens; \(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("tokenizer_config.json").path))
    }
}
