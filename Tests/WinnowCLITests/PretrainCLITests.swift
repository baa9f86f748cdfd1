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
        #expect(r.stderr.contains("tau -1.0 before") && r.stderr.contains("SI over last-layer"), "\(r.stderr)")
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
    }
}
