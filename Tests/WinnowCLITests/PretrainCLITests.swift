import Foundation
import Testing

/// `winnow pretrain` end to end on a tiny corpus, and fine-tuning its encoder with `train --init`.
@Suite(.serialized) struct PretrainCLITests {
    static func pretrain(_ out: URL, _ extra: [String]) throws -> CLIResult {
        try CLI.run(["pretrain", "--corpus", CLI.tiny.appendingPathComponent("train.jsonl").path,
                     "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
                     "--seq-len", "16", "--batch-size", "8", "--steps", "12", "--checkpoints", "2", "--out", out.path] + extra)
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
