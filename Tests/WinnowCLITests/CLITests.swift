import Foundation
import Testing

@Suite(.serialized) struct CLITests {
    @Test func helpListsEverySubcommand() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        for cmd in ["train", "eval", "predict", "score", "prune", "experiment", "pretrain", "report", "inspect", "bench"] { #expect(r.stdout.contains(cmd), "help lacks \(cmd)") }
        // --version prints the version the runs record.
        let v = try CLI.run(["--version"])
        #expect(v.status == 0 && v.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(v.stdout)\(v.stderr)")
    }

    @Test func trainWritesATrainerLayoutRunThatEvalAndPredictRead() throws {
        let dir = try CLI.tempDir("train")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let t = try CLI.trainTiny(run)
        #expect(t.status == 0, "train failed: \(t.stderr)")
        #expect(t.stdout.contains("trained"))
        // Progress on stderr: plain lines with rate and ETA when not on a terminal, ending at 100 %.
        let progress = t.stderr.split(separator: "\n").filter { $0.hasPrefix("train: ") && $0.contains("step/s") && $0.contains("ETA") }
        #expect(progress.last?.hasPrefix("train: 100% ") == true, "no training progress: \(t.stderr)")
        let fm = FileManager.default
        for f in ["config.json", "vocab.txt", "winnow.json", "model.safetensors", "trainer_state.json", "dynamics.safetensors"] {
            #expect(fm.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        // The run records the version that made it, the one `winnow --version` prints.
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("winnow.json"))) as? [String: Any]
        let version = try CLI.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(info?["winnow_version"] as? String == version && !version.isEmpty, "\(String(describing: info?["winnow_version"])) vs \(version)")
        let cks = try fm.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("checkpoint-") }.sorted()
        #expect(cks.count == 3, "checkpoints: \(cks)")
        for ck in cks {
            for f in ["model.safetensors", "config.json", "trainer_state.json", "vocab.txt"] {
                #expect(fm.fileExists(atPath: run.appendingPathComponent(ck).appendingPathComponent(f).path), "\(ck) lacks \(f)")
            }
        }
        // trainer_state.json in the Hugging Face layout, with learning rates in log_history.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("trainer_state.json"))) as! [String: Any]
        #expect(state["global_step"] as? Int == 20)   // 150 examples in batches of 16: 10 steps x 2 epochs
        let hist = state["log_history"] as! [[String: Any]]
        #expect(hist.contains { $0["learning_rate"] != nil && $0["loss"] != nil })

        let e = try CLI.run(["eval", "--run", run.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path, "--max-length", "32", "--json"])
        #expect(e.status == 0, "eval failed: \(e.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        #expect(m["examples"] as? Int == 40)
        let acc = m["accuracy"] as! Double
        #expect(acc >= 0 && acc <= 1)
        let conf = m["confusion"] as! [[Int]]
        #expect(conf.joined().reduce(0, +) == 40)

        let out = dir.appendingPathComponent("pred.csv")
        let p = try CLI.run(["predict", "--run", run.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path, "--out", out.path])
        #expect(p.status == 0, "predict failed: \(p.stderr)")
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "index,line,id,label,predicted,p_neg,p_pos")
        #expect(lines.count == 41)
        let row = lines[1].split(separator: ",", omittingEmptySubsequences: false)
        #expect(row.count == 7)
        let probSum = Double(row[5])! + Double(row[6])!
        #expect(abs(probSum - 1) < 1e-4)
    }

    @Test func trainingIsDeterministicFromTheSeed() throws {
        let dir = try CLI.tempDir("det")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        #expect(try CLI.trainTiny(a).status == 0)
        #expect(try CLI.trainTiny(b).status == 0)
        for f in ["model.safetensors", "dynamics.safetensors"] {
            let da = try Data(contentsOf: a.appendingPathComponent(f)), db = try Data(contentsOf: b.appendingPathComponent(f))
            #expect(da == db, "\(f) differs between two runs with the same seed")
        }
    }

    @Test func nullRunAndPretrainedInitTrain() throws {
        let dir = try CLI.tempDir("null")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = try CLI.trainTiny(dir.appendingPathComponent("null"), extra: ["--null"])
        #expect(n.status == 0, "\(n.stderr)")
        // Fine-tune from a transformers.Trainer run folder's checkpoint (encoder and head reused).
        let ck = CLI.tiny.appendingPathComponent("run/checkpoint-100").path
        let r = try CLI.run(["train", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--init", ck,
                             "--out", dir.appendingPathComponent("ft").path, "--epochs", "1", "--batch-size", "32", "--max-length", "32"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func inspectListsTensors() throws {
        let r = try CLI.run(["inspect", CLI.tiny.appendingPathComponent("run/model.safetensors").path])
        #expect(r.status == 0)
        #expect(r.stdout.contains("bert.embeddings.word_embeddings.weight"))
        #expect(r.stdout.contains("classifier.weight"))
        #expect(r.stdout.contains("F32"))
        // Long type names and shapes are printed whole (the columns widen).
        let dir = try CLI.tempDir("inspect-wide")
        defer { try? FileManager.default.removeItem(at: dir) }
        let header = #"{"deep":{"dtype":"F32","shape":[1,1,1,1,1,1,1,2],"data_offsets":[0,8]},"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[8,10]}}"#
        var file = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: header.utf8)
        file.append(Data(count: 10))
        let wide = dir.appendingPathComponent("wide.safetensors")
        try file.write(to: wide)
        let w = try CLI.run(["inspect", wide.path])
        #expect(w.status == 0 && w.stdout.contains("F8_E4M3") && w.stdout.contains("[1, 1, 1, 1, 1, 1, 1, 2]"), "\(w.stdout)\(w.stderr)")
        // A pipe is refused at once (it blocked before), a loop of links and a folder named as a file are named as such.
        let fifo = dir.appendingPathComponent("pipe.safetensors")
        try #require(mkfifo(fifo.path, 0o600) == 0)
        let p = try CLI.run(["inspect", fifo.path])
        #expect(p.status == 1 && p.stderr.contains("is not a regular file"), "\(p.stderr)")
        let a = dir.appendingPathComponent("a.gguf"), b = dir.appendingPathComponent("b.gguf")
        try FileManager.default.createSymbolicLink(atPath: a.path, withDestinationPath: b.path)
        try FileManager.default.createSymbolicLink(atPath: b.path, withDestinationPath: a.path)
        let loop = try CLI.run(["inspect", a.path])
        #expect(loop.status == 1 && loop.stderr.contains("a symbolic link whose target cannot be reached"), "\(loop.stderr)")
        let folder = dir.appendingPathComponent("m/model.safetensors")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let f = try CLI.run(["inspect", folder.deletingLastPathComponent().path])
        #expect(f.status == 1 && f.stderr.contains("is a folder, not a .safetensors or .gguf file"), "\(f.stderr)")
        let empty = dir.appendingPathComponent("empty.gguf")
        try Data().write(to: empty)
        let e = try CLI.run(["inspect", empty.path])
        #expect(e.status == 1 && e.stderr.contains("is empty (0 bytes)"), "\(e.stderr)")
        // A tokenizer model that is not there is named as missing (not as a folder without a tokenizer).
        let t = try CLI.run(["tokenize", "--model", dir.appendingPathComponent("nowhere").path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path,
                             "--out", dir.appendingPathComponent("t.jsonl").path])
        #expect(t.status == 1 && t.stderr.contains("nowhere: no such file or folder"), "\(t.stderr)")
        // `bench --model smollm2` names the checkout's models/smollm2: outside the checkout's root it says so.
        let outside = try CLI.run(["bench", "--model", "smollm2"], directory: dir)
        #expect(outside.status == 1 && outside.stderr.contains("smollm2 is models/smollm2 of a Winnow checkout"), "\(outside.stderr)")
    }

    @Test func inspectListsGGUFTensorsAndMetadata() throws {
        let gguf = CLI.tiny.deletingLastPathComponent().appendingPathComponent("gguf/types.gguf")
        let r = try CLI.run(["inspect", gguf.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("GGUF v3, 7 tensors"))
        #expect(r.stdout.contains("metadata general.architecture = \"llama\""))
        #expect(r.stdout.contains("metadata test.strings = [\"a\", \"Ġb\", \"c d\"]"))
        for row in ["t_q4_1", "Q4_1", "t_q8_0", "Q8_0", "t_bf16", "BF16", "[2, 64]"] { #expect(r.stdout.contains(row), "no \(row)") }
        let bad = try CLI.tempDir("inspect-bad").appendingPathComponent("bad.gguf")
        defer { try? FileManager.default.removeItem(at: bad.deletingLastPathComponent()) }
        try Data(contentsOf: gguf).prefix(100).write(to: bad)
        let b = try CLI.run(["inspect", bad.path])
        #expect(b.status == 1 && b.stderr.contains(bad.path) && b.stdout.isEmpty, "\(b.stderr)")
    }

    @Test func tokenizeWritesTheTokenizersIDsForEveryLine() throws {
        let dir = try CLI.tempDir("tokenize")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl"), out = dir.appendingPathComponent("ids.jsonl")
        try "{\"text\": \"Hello world\", \"label\": \"-\"}\n{\"text\": \"<|im_start|>user\\nHello!<|im_end|>\\n\"}\n".write(to: data, atomically: true, encoding: .utf8)
        let smollm2 = CLI.repo.appendingPathComponent("models/smollm2")
        let r = try CLI.run(["tokenize", "--model", smollm2.path, "--data", data.path, "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        // The ids transformers gives (Tests/Fixtures/tokenizer/smollm2.jsonl); a "no gold label" line is kept.
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["{\"index\": 0, \"line\": 1, \"input_ids\": [19556, 905]}",
                          "{\"index\": 1, \"line\": 2, \"input_ids\": [1, 4093, 198, 19556, 17, 2, 198]}"])
        // WordPiece from a BERT folder through the same command.
        let w = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", data.path, "--out", out.path])
        #expect(w.status == 0, "\(w.stderr)")
        // A BERT pair keeps its segments: scores of the ids file equal those of the text, byte for byte.
        let pairs = dir.appendingPathComponent("pairs.jsonl"), pairIDs = dir.appendingPathComponent("pair-ids.jsonl")
        try (try String(contentsOf: CLI.tiny.appendingPathComponent("pairs.jsonl"), encoding: .utf8))   // the run's labels
            .replacingOccurrences(of: "\"entailment\"", with: "\"pos\"").replacingOccurrences(of: "\"neutral\"", with: "\"neg\"")
            .replacingOccurrences(of: "\"contradiction\"", with: "\"neg\"").write(to: pairs, atomically: true, encoding: .utf8)
        let p = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", pairs.path, "--out", pairIDs.path])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(try String(contentsOf: pairIDs, encoding: .utf8).contains("\"token_type_ids\": [0, "))
        let fromText = dir.appendingPathComponent("t.csv"), fromIDs = dir.appendingPathComponent("i.csv")
        for (data, out) in [(pairs, fromText), (pairIDs, fromIDs)] {
            let r = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", data.path, "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try Data(contentsOf: fromText) == Data(contentsOf: fromIDs))
        // --max-length 3: too short for a BERT pair, any length for a decoder's byte-level BPE.
        let bert3 = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", data.path, "--max-length", "3", "--out", out.path])
        #expect(bert3.status == 2 && bert3.stderr.contains("at least 4 for a BERT tokenizer"), "\(bert3.stderr)")
        let decoder3 = try CLI.run(["tokenize", "--model", CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path, "--data", data.path,
                                    "--max-length", "3", "--out", dir.appendingPathComponent("d3.jsonl").path])
        #expect(decoder3.status == 0, "\(decoder3.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("d3.jsonl"), encoding: .utf8).split(separator: "\n").allSatisfy { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["input_ids"] as? [Int])?.count ?? 99 <= 3 })
        let bad = try CLI.run(["tokenize", "--model", CLI.tiny.deletingLastPathComponent().appendingPathComponent("gguf/types.gguf").path,
                               "--data", data.path, "--out", dir.appendingPathComponent("no.jsonl").path])
        #expect(bad.status == 1 && bad.stderr.contains("tokenizer.ggml.model"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("no.jsonl").path))
    }

    /// A command stopped by SIGTERM while it writes leaves no hidden temporary file of its output (before,
    /// `.OUT.tmp-PID-N` stayed until a later writer of OUT removed it an hour on).
    @Test func aTerminatedWriterLeavesNoTemporaryFile() throws {
        let dir = try CLI.tempDir("sigterm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("ids.jsonl")
        // Spawned with SIGTERM at its default and unblocked, whatever the test runner's threads inherit (Foundation's
        // Process passes its signal mask on), and with its standard input a pipe the test holds open.
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), term = sigset_t()
        sigemptyset(&none)
        sigemptyset(&term)
        sigaddset(&term, SIGTERM)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &term)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let args = [CLI.binary.path, "tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", "/dev/stdin", "--out", out.path]
        let argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid = pid_t()
        try #require(posix_spawn(&pid, CLI.binary.path, &actions, &attr, argv, environ) == 0)
        close(fds[0])
        var status: Int32 = 0
        func reap(within seconds: Double) -> Bool {   // waits for the child, at most `seconds`
            let end = Date().addingTimeInterval(seconds)
            while Date() < end { if waitpid(pid, &status, WNOHANG) == pid { return true }; Thread.sleep(forTimeInterval: 0.02) }
            return false
        }
        var reaped = false
        defer {
            close(fds[1])
            if !reaped { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
        }
        // Lines that fit the pipe's buffer, the pipe left open: tokenize has read them and waits for more with its
        // output's temporary file open.
        let lines = Array(String(repeating: "{\"text\": \"a good film\"}\n", count: 1500).utf8)
        try #require(lines.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) } == lines.count)
        func temporary() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains(".tmp-") } }
        let deadline = Date().addingTimeInterval(30)
        while temporary().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        try #require(!temporary().isEmpty, "no temporary file appeared")
        kill(pid, SIGTERM)
        reaped = reap(within: 30)
        try #require(reaped, "tokenize did not end on SIGTERM")
        #expect(status & 0x7f == SIGTERM, "status \(status)")
        #expect(temporary().isEmpty && !FileManager.default.fileExists(atPath: out.path), "\(temporary())")
    }

    /// An adapter folder tokenizes with its base model's tokenizer (as `score` reads it); ids outside the
    /// vocabulary and one field in two roles are refused, nothing written.
    @Test func tokenizeReadsAdaptersAndRefusesWhatNoModelReads() throws {
        let dir = try CLI.tempDir("tokenize-adapter")
        defer { try? FileManager.default.removeItem(at: dir) }
        let decoder = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let data = decoder.appendingPathComponent("text.jsonl").path
        let viaAdapter = dir.appendingPathComponent("a.jsonl"), viaBase = dir.appendingPathComponent("b.jsonl")
        let a = try CLI.run(["tokenize", "--model", decoder.appendingPathComponent("lora").path, "--data", data, "--out", viaAdapter.path])
        let b = try CLI.run(["tokenize", "--model", decoder.appendingPathComponent("tied").path, "--data", data, "--out", viaBase.path])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        #expect(try Data(contentsOf: viaAdapter) == Data(contentsOf: viaBase))
        let base = try CLI.run(["tokenize", "--model", decoder.appendingPathComponent("tied").path, "--base", decoder.appendingPathComponent("tied").path,
                                "--data", data, "--out", dir.appendingPathComponent("c.jsonl").path])
        #expect(base.status == 1 && base.stderr.contains("--base"), "\(base.stderr)")
        let ids = dir.appendingPathComponent("ids.jsonl"), out = dir.appendingPathComponent("no.jsonl")
        try Data("{\"input_ids\": [2, 5, 3]}\n{\"input_ids\": [2, 99999, -5, 3]}\n".utf8).write(to: ids)
        let bad = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", ids.path, "--out", out.path])
        #expect(bad.status == 1 && bad.stderr.contains("ids.jsonl:2") && bad.stderr.contains("input id 99999"), "\(bad.stderr)")
        let twice = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", ids.path, "--text-field", "text",
                                 "--pair-field", "text", "--out", out.path])
        #expect(twice.status == 2 && twice.stderr.contains("one field has one role"), "\(twice.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // The detected label named as the text: the model would read its answer; refused by every reader that reads labels.
        let train = CLI.tiny.appendingPathComponent("train.jsonl").path
        let leak = try CLI.run(["train", "--data", train, "--text-field", "label", "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                                "--layers", "1", "--hidden", "16", "--heads", "2", "--out", dir.appendingPathComponent("leak").path])
        #expect(leak.status == 1 && leak.stderr.contains("train.jsonl:1") && leak.stderr.contains("both the label and the text"), "\(leak.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("leak").path))
        let leakScore = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", train, "--pair-field", "label",
                                     "--max-length", "32", "--out", out.path])
        #expect(leakScore.status == 1 && leakScore.stderr.contains("both the label and the second text"), "\(leakScore.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Tokenize needs no label: a field named label given as --text-field is the text (it has no --label-field to say otherwise).
        let asText = try CLI.run(["tokenize", "--model", CLI.tiny.appendingPathComponent("run").path, "--data", train, "--text-field", "label",
                                  "--out", out.path])
        #expect(asText.status == 0, "\(asText.stderr)")
    }

    /// A BERT folder with tokenizer.json and no vocab.txt (as transformers 5 saves one) starts a run, and its
    /// tokenizer.json is copied into the run (before, a missing vocab.txt after the banner, an empty run folder).
    @Test func aFolderWithTokenizerJSONOnlyStartsARun() throws {
        let dir = try CLI.tempDir("init-tokenizer-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            let src = CLI.tiny.appendingPathComponent("run/\(f)")
            if FileManager.default.fileExists(atPath: src.path) { try FileManager.default.copyItem(at: src, to: model.appendingPathComponent(f)) }
        }
        let run = dir.appendingPathComponent("run")
        let t = try CLI.run(["train", "--init", model.path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--epochs", "1",
                             "--max-length", "32", "--out", run.path])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("tokenizer.json").path))
        let e = try CLI.run(["eval", "--run", run.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path])
        #expect(e.status == 0, "\(e.stderr)")
        let x = try CLI.run(["experiment", "--init", model.path, "--train", CLI.tiny.appendingPathComponent("train.jsonl").path,
                             "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--epochs", "1", "--max-length", "32",
                             "--keep", "1.0,0.6", "--seeds", "1", "--force", "--no-report", "--out", dir.appendingPathComponent("x").path])
        #expect(x.status == 0, "\(x.stderr)")
    }

    /// A regression or multi-label head, or an id2label naming one class twice: refused by key (before, a
    /// one-output regression head loaded as a one-class classifier, 100 % accurate).
    @Test func headsWinnowDoesNotReadAreRefused() throws {
        let dir = try CLI.tempDir("problem-type")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, edit, want) in [("regression", { (c: inout [String: Any]) in c["problem_type"] = "regression" }, "field 'problem_type': 'regression' is not read"),
                                   ("multi", { (c: inout [String: Any]) in c["problem_type"] = "multi_label_classification" }, "'multi_label_classification' is not read"),
                                   ("twice", { (c: inout [String: Any]) in c["id2label"] = ["0": "fresh", "1": "fresh"] }, "the class name 'fresh' is given twice")] {
            let m = dir.appendingPathComponent(name)
            try FileManager.default.copyItem(at: CLI.tiny.appendingPathComponent("run"), to: m)
            let u = m.appendingPathComponent("config.json")
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: u)) as? [String: Any])
            edit(&c)
            try JSONSerialization.data(withJSONObject: c).write(to: u)
            let r = try CLI.run(["eval", "--run", m.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path])
            #expect(r.status == 1 && r.stderr.contains(want), "\(name): \(r.stderr)")
        }
    }

    /// A second text under a field name detection does not know (QNLI's question and sentence) is named as
    /// unread when training reads single texts; files whose other fields are short stay quiet.
    @Test func anUnreadTextFieldIsNamed() throws {
        let dir = try CLI.tempDir("unread-text")
        defer { try? FileManager.default.removeItem(at: dir) }
        let qnli = dir.appendingPathComponent("qnli.jsonl")
        try ((0..<8).map { "{\"question\": \"what is the plot of film \($0) ?\", \"sentence\": \"a good actor and this plot is charming\", \"label\": \"\($0 % 2 == 0 ? "pos" : "neg")\"}" }
            .joined(separator: "\n") + "\n").write(to: qnli, atomically: true, encoding: .utf8)
        let base = ["train", "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
                    "--epochs", "1", "--max-length", "32"]
        let r = try CLI.run(base + ["--data", qnli.path, "--out", dir.appendingPathComponent("a").path])
        #expect(r.status == 0 && r.stderr.contains("holds text in 'question', which is not read (the text is 'sentence'); give --pair-field"), "\(r.stderr)")
        let paired = try CLI.run(base + ["--data", qnli.path, "--pair-field", "question", "--out", dir.appendingPathComponent("b").path])
        #expect(paired.status == 0 && !paired.stderr.contains("not read"), "\(paired.stderr)")
        let plain = try CLI.run(base + ["--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--out", dir.appendingPathComponent("c").path])
        #expect(plain.status == 0 && !plain.stderr.contains("not read"), "\(plain.stderr)")
    }

    @Test func theDefaultLearningRateFitsTheModel() throws {
        let dir = try CLI.tempDir("default-lr")
        defer { try? FileManager.default.removeItem(at: dir) }
        func lr(_ extra: [String], _ name: String) throws -> Double? {
            let out = dir.appendingPathComponent(name)
            let r = try CLI.run(["train", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--out", out.path,
                                 "--epochs", "1", "--max-length", "32", "--batch-size", "32"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let info = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("winnow.json"))) as? [String: Any]
            return ((info?["options"] as? [String: Any])?["learningRate"] as? NSNumber)?.doubleValue
        }
        // From scratch 1e-3; fine-tuning a pretrained folder (the fixture run) 5e-5; --lr wins over both.
        let scratch = try lr(["--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2"], "scratch")
        #expect(scratch.map { abs($0 - 1e-3) < 1e-9 } == true, "\(String(describing: scratch))")
        let tuned = try lr(["--init", CLI.tiny.appendingPathComponent("run").path], "tuned")
        #expect(tuned.map { abs($0 - 5e-5) < 1e-10 } == true, "\(String(describing: tuned))")
        let given = try lr(["--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2", "--lr", "2e-3"], "given")
        #expect(given.map { abs($0 - 2e-3) < 1e-9 } == true)
    }

    // MARK: - Errors: one line on stderr naming the file, exit 1; usage errors exit 2.

    @Test func missingDataFileIsAUserError() throws {
        let r = try CLI.run(["eval", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", "/nonexistent/x.jsonl"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/x.jsonl"))
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func unknownLabelNamesFileAndLine() throws {
        let dir = try CLI.tempDir("label")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("bad.jsonl")
        try "{\"text\": \"good movie\", \"label\": \"pos\"}\n{\"text\": \"meh\", \"label\": \"maybe\"}\n".write(to: f, atomically: true, encoding: .utf8)
        let r = try CLI.run(["eval", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", f.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.jsonl:2"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("maybe"))
    }

    @Test func malformedJSONNamesTheLine() throws {
        let dir = try CLI.tempDir("json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("bad.jsonl")
        try "{\"text\": \"ok\", \"label\": \"pos\"}\n{\"text\": oops}\n".write(to: f, atomically: true, encoding: .utf8)
        let r = try CLI.run(["eval", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", f.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.jsonl:2"), "stderr: \(r.stderr)")
    }

    @Test func pickledCheckpointIsRefusedWithConversionAdvice() throws {
        let dir = try CLI.tempDir("pickle")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: CLI.tiny.appendingPathComponent("run/config.json"), to: dir.appendingPathComponent("config.json"))
        try Data([0x80, 0x02]).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        let r = try CLI.run(["eval", "--run", dir.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("pytorch_model.bin"))
        #expect(r.stderr.contains("weights_only=True") && r.stderr.contains("save_file"))
    }

    @Test func missingRunFolderIsAUserError() throws {
        let r = try CLI.run(["eval", "--run", "/nonexistent/run", "--data", CLI.tiny.appendingPathComponent("test.jsonl").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/run"))
    }

    @Test func usageErrorsExitTwo() throws {
        let r = try CLI.run(["train", "--data", "x.jsonl"])
        #expect(r.status == 2)
        let r2 = try CLI.run(["train", "--data", "x.jsonl", "--out", "y", "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--epochs", "0"])
        #expect(r2.status == 2)
    }
}

@Suite struct CLIMLPTests {
    @Test func csvTrainsAnMLPThatEvalAndPredictRead() throws {
        let dir = try CLI.tempDir("mlp")
        defer { try? FileManager.default.removeItem(at: dir) }
        var s = "f0,f1,label\n"
        for i in 0..<64 { s += "\(Double(i % 2) * 2 - 1 + Double(i % 7) * 0.05),\(Double(i % 5) * 0.1),\(i % 2 == 0 ? "a" : "b")\n" }
        let csv = dir.appendingPathComponent("x.csv")
        try s.write(to: csv, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let t = try CLI.run(["train", "--data", csv.path, "--out", run.path, "--hidden", "8", "--layers", "1",
                             "--epochs", "30", "--batch-size", "16", "--lr", "0.01"])
        #expect(t.status == 0, "\(t.stderr)")
        let e = try CLI.run(["eval", "--run", run.path, "--data", csv.path, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        #expect((m["accuracy"] as! Double) > 0.9)
        let p = try CLI.run(["predict", "--run", run.path, "--data", csv.path, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0, "\(p.stderr)")
        // Text and transformer options change nothing for numeric features: usage errors.
        for extra in [["--heads", "1"], ["--max-length", "16"], ["--text-field", "f0"], ["--dropout", "0.2"]] {
            let r = try CLI.run(["train", "--data", csv.path, "--out", dir.appendingPathComponent("r2").path] + extra)
            #expect(r.status == 2 && r.stderr.contains("\(extra[0]) does not apply to a CSV of numeric features"), "\(extra): \(r.stderr)")
        }
        // eval and predict refuse them too, rather than ignore them.
        for (cmd, extra) in [("eval", ["--text-field", "f0"]), ("predict", ["--max-length", "16"]), ("eval", ["--pair-field", "f1"])] {
            let out = cmd == "predict" ? ["--out", dir.appendingPathComponent("q.csv").path] : []
            let r = try CLI.run([cmd, "--run", run.path, "--data", csv.path] + extra + out)
            #expect(r.status == 2 && r.stderr.contains("\(extra[0]) does not apply to a CSV"), "\(cmd) \(extra): \(r.stderr)")
        }
    }
}

/// eval and predict refuse what they would otherwise get silently wrong.
@Suite struct PredictionRefusalCLITests {
    @Test func evalAndPredictRefuseWhatTheyWouldGetWrong() throws {
        let dir = try CLI.tempDir("predict-refusals")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = CLI.tiny.appendingPathComponent("run").path, test = CLI.tiny.appendingPathComponent("test.jsonl").path
        func file(_ name: String, _ text: String) throws -> String {
            let u = dir.appendingPathComponent(name); try Data(text.utf8).write(to: u); return u.path
        }
        // No gold label anywhere: nothing to evaluate (not 0 % accuracy).
        let unlabelled = try file("none.jsonl", "{\"text\": \"a film\", \"label\": null}\n{\"text\": \"a plot\", \"label\": \"-\"}\n")
        let e = try CLI.run(["eval", "--run", run, "--data", unlabelled, "--json"])
        #expect(e.status == 1 && e.stderr.contains("no example has a gold label") && e.stdout.isEmpty, "\(e.stdout)\(e.stderr)")
        // ... said before the model is read: a run whose weights are damaged gets the same line.
        let damaged = dir.appendingPathComponent("damaged")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: run), to: damaged)
        try Data("not weights".utf8).write(to: damaged.appendingPathComponent("model.safetensors"))
        let d = try CLI.run(["eval", "--run", damaged.path, "--data", unlabelled])
        #expect(d.status == 1 && d.stderr.contains("no example has a gold label"), "\(d.stderr)")
        // A file of one label: the learning check cannot tell, and says so instead of flagging the model.
        let one = try file("one.jsonl", (0..<10).map { _ in "{\"text\": \"what a good actor and this plot is very charming\", \"label\": \"pos\"}\n" }.joined())
        let o = try CLI.run(["eval", "--run", run, "--data", one, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any]
        #expect(o.status == 0 && obj?["learned_nothing"] as? Bool == false && obj?["learning_check_can_tell"] as? Bool == false && !o.stderr.contains("WARNING"), "\(o.stdout)\(o.stderr)")
        // Several checkpoints where one is read.
        for (cmd, c) in [("eval", "25,50"), ("predict", "all")] {
            let out = cmd == "predict" ? ["--out", dir.appendingPathComponent("p.csv").path] : []
            let r = try CLI.run([cmd, "--run", run, "--data", test, "--checkpoint", c] + out)
            #expect(r.status == 2 && r.stderr.contains("names several checkpoints"), "\(cmd) \(c): \(r.stderr)")
        }
        // epochE reads the checkpoint nearest the end of epoch E, and says which when none ends it (100 steps, 10 epochs,
        // checkpoints 25, 50, 75, 100: epoch 3 ends at step 30).
        let e3 = try CLI.run(["eval", "--run", run, "--data", test, "--checkpoint", "epoch3"])
        #expect(e3.status == 0 && e3.stderr.contains("epoch3 reads checkpoint-25, the checkpoint nearest the end of epoch 3 (step 30)"), "\(e3.stderr)")
        let e5 = try CLI.run(["eval", "--run", run, "--data", test, "--checkpoint", "epoch5"])
        #expect(e5.status == 0 && !e5.stderr.contains("nearest the end"), "\(e5.stderr)")
        // A misspelt label field, an id that is an object, a folder as --out.
        let p = dir.appendingPathComponent("p.csv").path
        let typo = try CLI.run(["predict", "--run", run, "--data", test, "--label-field", "lable", "--out", p])
        #expect(typo.status == 1 && typo.stderr.contains("no line has the label field 'lable'"), "\(typo.stderr)")
        let ids = try file("ids.jsonl", "{\"id\": \"a\", \"text\": \"a film\"}\n{\"id\": {\"x\": 1}, \"text\": \"a plot\"}\n")
        let obj2 = try CLI.run(["predict", "--run", run, "--data", ids, "--out", p])
        #expect(obj2.status == 1 && obj2.stderr.contains("ids.jsonl:2") && obj2.stderr.contains("field 'id'"), "\(obj2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p))
        let folder = try CLI.run(["predict", "--run", run, "--data", test, "--out", dir.path])
        #expect(folder.status == 2 && folder.stderr.contains("is a folder"), "\(folder.stderr)")
        let named = try CLI.run(["predict", "--run", run, "--data", test, "--out", dir.appendingPathComponent("p.jsonl").path])
        #expect(named.status == 2 && named.stderr.contains("predict writes CSV"), "\(named.stderr)")
        // merge into one of its own inputs.
        let a = try file("a.csv", "index,line,id,label,score\n0,1,,pos,0.5\n"), b = try file("b.csv", "index,line,id,label,score\n1,2,,neg,0.2\n")
        let m = try CLI.run(["merge", a, b, "--no-manifests", "--out", a])
        #expect(m.status == 2 && m.stderr.contains("is the input file"), "\(m.stderr)")
        #expect(try String(contentsOfFile: a, encoding: .utf8) == "index,line,id,label,score\n0,1,,pos,0.5\n")
        // experiment does not take a decoder (it retrains BERT classifiers).
        let x = try CLI.run(["experiment", "--init", CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf").path, "--train", test,
                             "--test", test, "--out", dir.appendingPathComponent("x").path])
        #expect(x.status == 2 && x.stderr.contains("is a decoder"), "\(x.stderr)")
    }
}
