import Foundation
import Testing

/// Mistakes a user makes with files and options that once went through silently: each is refused in
/// one line (or noted) and leaves no output behind.
@Suite(.serialized) struct UserErrorCLITests {
    let run = CLI.tiny.appendingPathComponent("run").path
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path
    let test = CLI.tiny.appendingPathComponent("test.jsonl").path
    let fm = FileManager.default

    @Test func aMaxLengthBeyondThePositionTableIsClampedForPredictAndEval() throws {
        let dir = try CLI.tempDir("clamp")
        defer { try? fm.removeItem(at: dir) }
        // The tiny run has 64 positions; 8 texts of 200 words each need more.
        let long = dir.appendingPathComponent("long.jsonl")
        let line = "{\"text\": \"" + Array(repeating: "good", count: 200).joined(separator: " ") + "\", \"label\": \"pos\"}\n"
        try String(repeating: line, count: 8).write(to: long, atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", "--run", run, "--data", long.path, "--max-length", "1000", "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0 && p.stderr.contains("exceeds the model's max_position_embeddings; using 64"), "\(p.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("p.csv"), encoding: .utf8).split(separator: "\n").count == 9)
        let e = try CLI.run(["eval", "--run", run, "--data", long.path, "--max-length", "1000"])
        #expect(e.status == 0 && e.stderr.contains("using 64"), "\(e.stderr)")
        // Train-to-test reads its target file at the clamped limit too (before, a precondition failure).
        let t = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", long.path, "--max-length", "1000", "--aggregate", "mean",
                             "--params", "classifier", "--out", dir.appendingPathComponent("t.csv").path])
        #expect(t.status == 0 && t.stderr.contains("using 64"), "\(t.stderr)")
    }

    /// Found by following README as a newcomer: each once went through silently or with a misleading message.
    @Test func aNewcomersMistakesGetOneClearLine() throws {
        let dir = try CLI.tempDir("newcomer")
        defer { try? fm.removeItem(at: dir) }
        // A folder of other things is not a run's: training into it is refused, nothing written.
        let grid = dir.appendingPathComponent("grid")
        try fm.createDirectory(at: grid.appendingPathComponent("scores"), withIntermediateDirectories: true)
        try Data("row,keep\n".utf8).write(to: grid.appendingPathComponent("results.csv"))
        let t = try CLI.run(["train", "--data", train, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                             "--heads", "2", "--epochs", "1", "--out", grid.path])
        #expect(t.status != 0 && t.stderr.contains("holds files that are not a run's ('results.csv' and 1 more)"), "\(t.stderr)")
        #expect(try fm.contentsOfDirectory(atPath: grid.path).sorted() == ["results.csv", "scores"])
        // A file whose every label is "-": nothing to score, exit 1, no output.
        let dashes = dir.appendingPathComponent("dashes.jsonl"), out = dir.appendingPathComponent("s.csv")
        try Data("{\"text\": \"a b\", \"label\": \"-\"}\n{\"text\": \"c\", \"label\": \"-\"}\n".utf8).write(to: dashes)
        let z = try CLI.run(["score", "el2n", "--run", run, "--data", dashes.path, "--max-length", "32", "--out", out.path])
        #expect(z.status == 1 && z.stderr.contains("dashes.jsonl") && z.stderr.contains("no example with a gold label"), "\(z.stderr)")
        #expect(!fm.fileExists(atPath: out.path))
        // JSONL scores under another name (--format jsonl) are read as JSONL by prune.
        let txt = dir.appendingPathComponent("s.txt")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--format", "jsonl", "--out", txt.path]).status == 0)
        let fromTxt = try CLI.run(["prune", "--scores", txt.path, "--data", train, "--keep", "0.5", "--dry-run"])
        #expect(fromTxt.status == 0 && fromTxt.stdout.contains("kept 75 of 150"), "\(fromTxt.stdout)\(fromTxt.stderr)")
        // Options that --select random ignores, and a file breaking its own ties: usage errors.
        // The defaults' values too (--normalize none, --then-select hard, --then-column score): given, they would change nothing.
        for extra in [["--select", "random", "--sampling", "softmax"], ["--select", "random", "--normalize", "class"], ["--select", "random", "--normalize", "none"],
                      ["--select", "random", "--column", "score2"], ["--then-by", txt.path], ["--then-select", "hard"], ["--then-column", "score"]] {
            let r = try CLI.run(["prune", "--scores", txt.path, "--data", train, "--keep", "0.5", "--dry-run"] + extra)
            #expect(r.status == 2 && (r.stderr.contains("ignores the scores") || r.stderr.contains("cannot break its own ties") || r.stderr.contains("needs --then-by")),
                    "\(extra): \(r.stderr)")
        }
        // A negative value reaches the option's own check (before: "Missing value for '--keep <keep>'").
        let negative = try CLI.run(["prune", "--scores", txt.path, "--data", train, "--keep", "-0.1", "--dry-run"])
        #expect(negative.status == 2 && negative.stderr.contains("--keep must be in (0, 1]"), "\(negative.stderr)")
        let tau = try CLI.run(PretrainCLITests.pretrainArgs(["--reweight", "presence", "--tau1", "-1", "--tau2", "-1",
                                                              "--out", dir.appendingPathComponent("pre").path]))
        #expect(tau.status == 0, "\(tau.stderr)")
        // A run trained with --no-dynamics: the message says so.
        let nodyn = dir.appendingPathComponent("nodyn")
        #expect(try CLI.run(["train", "--data", train, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                             "--heads", "2", "--epochs", "1", "--max-length", "32", "--no-dynamics", "--out", nodyn.path]).status == 0)
        let f = try CLI.run(["score", "forgetting", "--run", nodyn.path, "--data", train, "--out", out.path])
        #expect(f.status != 0 && f.stderr.contains("--no-dynamics"), "\(f.stderr)")
        // tokenize writes JSONL: a CSV name is refused; a JSONL corpus given to pretrain is noted.
        let tok = try CLI.run(["tokenize", "--model", run, "--data", train, "--out", dir.appendingPathComponent("ids.csv").path])
        #expect(tok.status == 2 && tok.stderr.contains("tokenize writes JSONL"), "\(tok.stderr)")
        #expect(tau.stderr.contains("looks like JSONL"), "\(tau.stderr)")
        // A mistyped --init or --vocab is named as a missing path (before: a vocab.txt inside it could not be read, or "not named vocab.txt").
        for (extra, why) in [(["--init", "models/minlm"], "models/minlm: no such file or folder (--init)"),
                             (["--vocab", "models/minilm/vocab.tx"], "models/minilm/vocab.tx: no such file or folder (--vocab)")] {
            let r = try CLI.run(["train", "--data", train, "--epochs", "1", "--out", dir.appendingPathComponent("typo").path] + extra)
            #expect(r.status == 1 && r.stderr.contains(why) && !fm.fileExists(atPath: dir.appendingPathComponent("typo").path), "\(r.stderr)")
        }
    }

    @Test func trainingIntoAFolderThatHoldsARunIsRefusedUnlessResumed() throws {
        let dir = try CLI.tempDir("retrain")
        defer { try? fm.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(out).status == 0)
        let before = try fm.contentsOfDirectory(atPath: out.path).sorted()
        let again = try CLI.trainTiny(out, extra: ["--epochs", "1"])
        // A usage error, found before the data or model is read (nothing printed of them).
        #expect(again.status == 2 && again.stderr.contains("already holds a run") && again.stderr.contains("--resume")
                && !again.stderr.contains("examples, labels"), "\(again.stderr)")
        #expect(try fm.contentsOfDirectory(atPath: out.path).sorted() == before, "the refused run changed the folder")
        // --resume with other options names what differs.
        let other = try CLI.trainTiny(out, extra: ["--epochs", "3", "--resume"])
        #expect(other.status != 0 && other.stderr.contains("epochs: 2 there, 3 now"), "\(other.stderr)")
        // More checkpoints than steps (150 examples in batches of 16, 1 epoch: 10 steps): said, one a step.
        let many = try CLI.trainTiny(dir.appendingPathComponent("many"), extra: ["--epochs", "1", "--checkpoints", "100"])
        #expect(many.status == 0 && many.stderr.contains("100 checkpoints were asked for and the run has 10 steps"), "\(many.stderr)")
        #expect(try fm.contentsOfDirectory(atPath: dir.appendingPathComponent("many").path).filter { $0.hasPrefix("checkpoint-") }.count == 10)
        // A file where the run folder should go is named.
        let file = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        let onFile = try CLI.trainTiny(file)
        #expect(onFile.status == 2 && onFile.stderr.contains("is a file") && !onFile.stderr.contains("examples, labels"), "\(onFile.stderr)")
        // A run folder under a file cannot be made: named.
        let under = try CLI.trainTiny(file.appendingPathComponent("run"))
        #expect(under.status == 1 && under.stderr.contains("cannot make the run folder \(file.appendingPathComponent("run").path)"), "\(under.stderr)")
        let pretrainOnFile = try CLI.run(["pretrain", "--corpus", train, "--steps", "1", "--out", file.path])
        #expect(pretrainOnFile.status == 2 && pretrainOnFile.stderr.contains("is a file; a run is a folder"), "\(pretrainOnFile.stderr)")
    }

    /// Integer labels -1/0/1 (a common sentiment scheme): -1 is Hugging Face's "no label", so a third of the
    /// file would vanish with a plain note; train warns naming the count and the way out ("-1" as a string).
    @Test func aClassLabelledMinusOneIsWarnedAbout() throws {
        let dir = try CLI.tempDir("minus-one")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        try (0..<30).map { "{\"text\": \"t\($0)\", \"label\": \($0 % 3 - 1)}" }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--data", data.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                             "--heads", "2", "--epochs", "1", "--max-length", "16", "--out", dir.appendingPathComponent("run").path])
        #expect(r.status == 0 && r.stderr.contains("warning: 10 of the 30 examples") && r.stderr.contains("(\"-1\")"), "\(r.stderr)")
        // Scoring and eval of the same file say it too.
        let run = dir.appendingPathComponent("run").path
        for cmd in [["score", "el2n", "--run", run, "--data", data.path, "--out", dir.appendingPathComponent("e.csv").path], ["eval", "--run", run, "--data", data.path]] {
            let c = try CLI.run(cmd)
            #expect(c.status == 0 && c.stderr.contains("warning: 10 of the 30 examples"), "\(cmd[0]): \(c.stderr)")
        }
        // The experiment says it as it reads the training file (whatever becomes of the run after).
        let e = try CLI.run(["experiment", "--train", data.path, "--test", data.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1", "--max-length", "16", "--score-checkpoints", "1",
                             "--keep", "0.5", "--seeds", "1", "--force", "--no-report", "--out", dir.appendingPathComponent("exp").path])
        #expect(e.stderr.contains("warning: 10 of the 30 examples"), "\(e.stderr)")
    }

    /// An output in a folder the user cannot write is refused before the work (before, predict ran to 100 %
    /// and then failed to rename). Run as an unprivileged user (root may write anywhere): as root, through setpriv.
    @Test func anOutputFolderThatCannotBeWrittenIsRefusedFirst() throws {
        let dir = try CLI.tempDir("read-only")
        defer { try? fm.removeItem(at: dir) }
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let binary = dir.appendingPathComponent("winnow"), vocab = dir.appendingPathComponent("vocab.txt"), data = dir.appendingPathComponent("d.jsonl")
        try fm.copyItem(at: CLI.binary, to: binary)
        try fm.copyItem(at: CLI.tiny.appendingPathComponent("vocab.txt"), to: vocab)
        try fm.copyItem(at: URL(fileURLWithPath: train), to: data)
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.run(["train", "--data", data.path, "--vocab", vocab.path, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1",
                             "--max-length", "16", "--out", run.path]).status == 0)
        let ro = dir.appendingPathComponent("ro")
        try fm.createDirectory(at: ro, withIntermediateDirectories: false)
        try fm.setAttributes([.posixPermissions: 0o555], ofItemAtPath: ro.path)
        let args = ["predict", "--run", run.path, "--data", data.path, "--out", ro.appendingPathComponent("p.csv").path]
        let r = getuid() == 0
            ? try CLI.run(["--reuid=65534", "--regid=65534", "--clear-groups", binary.path] + args, executable: URL(fileURLWithPath: "/usr/bin/setpriv"))
            : try CLI.run(args)
        #expect(r.status == 2 && r.stderr.contains("cannot write in \(ro.path)") && !r.stderr.contains("100%"), "\(r.stderr)")
        // --out /dev/stdout with stdout sent to a file in a writable folder: written there (the link is followed).
        let w = dir.appendingPathComponent("w")
        try fm.createDirectory(at: w, withIntermediateDirectories: false)
        try fm.setAttributes([.posixPermissions: 0o777], ofItemAtPath: w.path)
        let sink = w.appendingPathComponent("p.csv")
        fm.createFile(atPath: sink.path, contents: nil, attributes: [.posixPermissions: 0o666])
        let p = Process()
        p.executableURL = getuid() == 0 ? URL(fileURLWithPath: "/usr/bin/setpriv") : binary
        p.arguments = (getuid() == 0 ? ["--reuid=65534", "--regid=65534", "--clear-groups", binary.path] : [])
            + ["predict", "--run", run.path, "--data", data.path, "--out", "/dev/stdout"]
        p.standardOutput = try FileHandle(forWritingTo: sink)
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let written = try String(contentsOf: sink, encoding: .utf8)
        #expect(p.terminationStatus == 0 && written.hasPrefix("index,line,id,label,predicted"), "\(written.prefix(200))")
    }

    /// A .npy scores file under another name, and text in a CSV, are named for what they are.
    @Test func npyScoresAndTextCSVAreNamed() throws {
        let dir = try CLI.tempDir("npy-csv")
        defer { try? fm.removeItem(at: dir) }
        let npy = dir.appendingPathComponent("scores.txt")
        try Data([0x93] + Array("NUMPY".utf8) + [1, 0, 0x76, 0] + Array("{'descr': '<f8'}".utf8)).write(to: npy)
        let p = try CLI.run(["prune", "--scores", npy.path, "--data", train, "--keep", "0.5", "--dry-run"])
        #expect(p.status == 1 && p.stderr.contains("scores.txt: is a .npy file") && p.stderr.contains("--format csv"), "\(p.stderr)")
        let csv = dir.appendingPathComponent("t.csv")
        try "text,label\ngood film,pos\nbad film,neg\n".write(to: csv, atomically: true, encoding: .utf8)
        let t = try CLI.run(["train", "--data", csv.path, "--out", dir.appendingPathComponent("run").path])
        #expect(t.status == 1 && t.stderr.contains("'good film' is not a number") && t.stderr.contains("text data goes in JSONL"), "\(t.stderr)")
    }

    /// An output named as a file of another model or run folder (its weights, config, tokenizer, log) is refused:
    /// before, `tokenize --out` and `pretrain --si-log` replaced another run's model.safetensors with text.
    @Test func anOutputNeverReplacesAnotherRunsModelFiles() throws {
        let dir = try CLI.tempDir("other-run")
        defer { try? fm.removeItem(at: dir) }
        let other = dir.appendingPathComponent("other")
        #expect(try CLI.trainTiny(other).status == 0)
        let weights = try Data(contentsOf: other.appendingPathComponent("model.safetensors"))
        for (cmd, name) in [(["tokenize", "--model", run, "--data", train, "--out"], "model.safetensors"),
                            (PretrainCLITests.pretrainArgs(["--out", dir.appendingPathComponent("pre").path, "--si-log"]), "model.safetensors"),
                            (["prune", "--scores", dir.appendingPathComponent("none.csv").path, "--data", train, "--keep", "0.5", "--out"], "vocab.txt")] {
            let r = try CLI.run(cmd + [other.appendingPathComponent(name).path])
            #expect(r.status == 2 && r.stderr.contains("is a file of the model or run folder"), "\(cmd[0]): \(r.stderr)")
        }
        #expect(try Data(contentsOf: other.appendingPathComponent("model.safetensors")) == weights)
    }

    /// A run killed before its end (winnow.json and checkpoints, no final model) is read with a note, and
    /// its dynamics scores name the checkpoint to read; score's epochE says which checkpoint it reads, as eval's does.
    @Test func anUnfinishedRunIsNamedAsSuch() throws {
        let dir = try CLI.tempDir("unfinished")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)   // 2 epochs of 10 steps, checkpoints at 7, 13 and 20: none ends epoch 1
        let epochNote = try CLI.run(["score", "el2n", "--run", run.path, "--data", train, "--checkpoints", "epoch1", "--out", dir.appendingPathComponent("e1.csv").path])
        #expect(epochNote.status == 0 && epochNote.stderr.contains("note: epoch1 reads checkpoint-"), "\(epochNote.stderr)")
        for f in ["model.safetensors", "trainer_state.json", "dynamics.safetensors"] { try fm.removeItem(at: run.appendingPathComponent(f)) }
        let last = try fm.contentsOfDirectory(atPath: run.path).compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst(11)) : nil }.max()!
        let s = try CLI.run(["score", "el2n", "--run", run.path, "--data", train, "--out", dir.appendingPathComponent("e.csv").path])
        #expect(s.status == 0 && s.stderr.contains("is an unfinished run") && s.stderr.contains("step \(last)"), "\(s.stderr)")
        let p = try CLI.run(["predict", "--run", run.path, "--data", train, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0 && p.stderr.contains("is an unfinished run"), "\(p.stderr)")
        let f = try CLI.run(["score", "forgetting", "--run", run.path, "--data", train, "--out", dir.appendingPathComponent("f.csv").path])
        #expect(f.status == 1 && f.stderr.contains("is an unfinished run") && f.stderr.contains("checkpoint-\(last)") && !f.stderr.contains("--no-dynamics"), "\(f.stderr)")
        // Its checkpoints damaged (the last one's tensor data cut short, the one before's header): --resume names each
        // and the way on; without them, the run resumes from the first.
        let steps = try fm.contentsOfDirectory(atPath: run.path).compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst(11)) : nil }.sorted()
        let weights = run.appendingPathComponent("checkpoint-\(last)/model.safetensors")
        for (step, cut) in [(last, { (d: Data) in d.prefix(d.count - 1000) }), (steps[steps.count - 2], { (d: Data) in d.prefix(100) })] {
            let w = run.appendingPathComponent("checkpoint-\(step)/model.safetensors")
            try Data(cut(try Data(contentsOf: w))).write(to: w)
            let damaged = try CLI.trainTiny(run, extra: ["--resume"])
            #expect(damaged.status == 1 && damaged.stderr.contains("delete \(run.appendingPathComponent("checkpoint-\(step)").path) to resume from the checkpoint before it"),
                    "\(step): \(damaged.stderr)")
            try fm.removeItem(at: run.appendingPathComponent("checkpoint-\(step)"))
        }
        let resumed = try CLI.trainTiny(run, extra: ["--resume"])
        #expect(resumed.status == 0 && resumed.stderr.contains("resuming from") && fm.fileExists(atPath: weights.path), "\(resumed.stderr)")
    }

    /// Two jobs writing one run folder (or one scores file) at once: the second is refused while the first
    /// runs (before, both exited 0 and the folder mixed their checkpoints).
    @Test func aSecondWriterOfARunIsRefusedWhileTheFirstRuns() throws {
        let dir = try CLI.tempDir("two-writers")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["train", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                       "--out", run.path, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1000", "--batch-size", "16",
                       "--max-length", "32", "--checkpoints", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        let lock = dir.appendingPathComponent(".run.lock")
        let deadline = Date().addingTimeInterval(60)
        while !fm.fileExists(atPath: lock.path) && p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        try #require(p.isRunning && fm.fileExists(atPath: lock.path), "the first run ended before a second could start")
        let second = try CLI.trainTiny(run)
        #expect(second.status == 1 && second.stderr.contains("another winnow process is writing \(run.standardizedFileURL.path)"), "\(second.stderr)")
    }

    @Test func pruneRefusesScoresOfAnotherFileAndNotesUnscoredLines() throws {
        let dir = try CLI.tempDir("prune-other")
        defer { try? fm.removeItem(at: dir) }
        let scores = dir.appendingPathComponent("el2n.csv")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--out", scores.path]).status == 0)
        // Another file of the same length: the test examples repeated to 150 lines (other ids and labels).
        let testLines = try String(contentsOf: URL(fileURLWithPath: test), encoding: .utf8).split(separator: "\n")
        let other = dir.appendingPathComponent("other.jsonl")
        try ((0..<150).map { String(testLines[$0 % testLines.count]) }.joined(separator: "\n") + "\n").write(to: other, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("kept.jsonl")
        let r = try CLI.run(["prune", "--scores", scores.path, "--data", other.path, "--keep", "0.5", "--out", out.path])
        #expect(r.status == 1 && r.stderr.contains("el2n.csv:") && r.stderr.contains("were the scores made on another file?"), "\(r.stderr)")
        #expect(!fm.fileExists(atPath: out.path))
        // Scores made with another label field of the same lines are not taken for another file's.
        let twoFields = dir.appendingPathComponent("two.jsonl")
        let trainLines = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n")
        try (trainLines.enumerated().map { i, l in
            String(l.dropLast()) + ", \"label_b\": \"" + (i % 3 == 0 ? "pos" : "neg") + "\"}"
        }.joined(separator: "\n") + "\n").write(to: twoFields, atomically: true, encoding: .utf8)
        let b = dir.appendingPathComponent("b.csv")
        let sb = try CLI.run(["score", "el2n", "--run", run, "--data", twoFields.path, "--label-field", "label_b", "--max-length", "32", "--out", b.path])
        #expect(sb.status == 0, "\(sb.stderr)")
        let pb = try CLI.run(["prune", "--scores", b.path, "--data", twoFields.path, "--keep", "0.5", "--dry-run"])
        #expect(pb.status == 0, "\(pb.stderr)")
        // Scores of the first 100 examples only: the other 50 lines are named in a note.
        let rows = try String(contentsOf: scores, encoding: .utf8).split(separator: "\n")
        let part = dir.appendingPathComponent("part.csv")
        try (rows.prefix(101).joined(separator: "\n") + "\n").write(to: part, atomically: true, encoding: .utf8)
        let p = try CLI.run(["prune", "--scores", part.path, "--data", train, "--keep", "0.5", "--dry-run"])
        #expect(p.status == 0 && p.stderr.contains("50 of the 150 lines") && p.stderr.contains("have no score"), "\(p.stderr)")
    }

    @Test func anOutputThatNamesAnInputIsRefused() throws {
        let dir = try CLI.tempDir("same")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        try fm.copyItem(at: URL(fileURLWithPath: train), to: data)
        let original = try Data(contentsOf: data)
        for args in [["score", "el2n", "--run", run, "--data", data.path, "--out", data.path],
                     ["predict", "--run", run, "--data", data.path, "--out", data.path],
                     ["tokenize", "--model", run, "--data", data.path, "--out", data.path],
                     ["prune", "--scores", data.path, "--data", data.path, "--keep", "0.5", "--out", data.path]] {
            let r = try CLI.run(args)
            #expect(r.status == 2 && r.stderr.contains("is the input file"), "\(args[0]): \(r.stderr)")
        }
        #expect(try Data(contentsOf: data) == original)
    }

    @Test func anOutputNeverReplacesTheModelItReads() throws {
        let dir = try CLI.tempDir("into-model")
        defer { try? fm.removeItem(at: dir) }
        let r = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(r).status == 0)
        let ck = try #require(try fm.contentsOfDirectory(atPath: r.path).first { $0.hasPrefix("checkpoint-") })
        func snapshot() throws -> [String: Data] {
            var all: [String: Data] = [:]
            for f in fm.enumerator(atPath: r.path)!.compactMap({ $0 as? String }) where !f.hasSuffix(".csv") {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: r.appendingPathComponent(f).path, isDirectory: &isDir), !isDir.boolValue { all[f] = try Data(contentsOf: r.appendingPathComponent(f)) }
            }
            return all
        }
        var before = try snapshot()
        for args in [["score", "el2n", "--run", r.path, "--data", train, "--out", r.appendingPathComponent("\(ck)/model.safetensors").path],
                     ["score", "el2n", "--run", r.path, "--data", train, "--out", r.appendingPathComponent("notes.txt").path],
                     ["score", "pvi", "--run", run, "--null-run", r.path, "--data", train, "--out", r.appendingPathComponent("config.json").path],
                     ["predict", "--run", r.path, "--data", test, "--out", r.appendingPathComponent("config.json").path],
                     ["tokenize", "--model", r.path, "--data", test, "--out", r.appendingPathComponent("vocab.txt").path]] {
            let res = try CLI.run(args)
            #expect(res.status == 2 && res.stderr.contains("is inside the folder") && res.stderr.contains("only .csv, .jsonl or .npy"), "\(args): \(res.stderr)")
        }
        #expect(try snapshot() == before)
        before.removeValue(forKey: "model.safetensors")
        // Given one of its checkpoints, the run's own files are guarded too, and so is a folder reached through a link.
        let res = try CLI.run(["predict", "--run", r.appendingPathComponent(ck).path, "--data", test, "--out", r.appendingPathComponent("model.safetensors").path])
        #expect(res.status == 2 && res.stderr.contains("(or its run)"), "\(res.stderr)")
        let link = dir.appendingPathComponent("link")
        try fm.createSymbolicLink(at: link, withDestinationURL: r)
        try fm.removeItem(at: r.appendingPathComponent("model.safetensors"))
        let viaLink = try CLI.run(["predict", "--run", r.path, "--checkpoint", "last", "--data", test, "--out", link.appendingPathComponent("model.safetensors").path])
        #expect(viaLink.status == 2 && viaLink.stderr.contains("is inside the folder"), "\(viaLink.stderr)")
        #expect(!fm.fileExists(atPath: r.appendingPathComponent("model.safetensors").path))
        // Scores and predictions may be kept beside the run.
        let ok = try CLI.run(["score", "el2n", "--run", r.path, "--data", train, "--out", r.appendingPathComponent("el2n.csv").path])
        #expect(ok.status == 0, "\(ok.stderr)")
        // A GGUF model file given as the run is not written over either.
        let gguf = dir.appendingPathComponent("m.gguf")
        try fm.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/gguf/types.gguf"), to: gguf)
        let g = try CLI.run(["tokenize", "--model", gguf.path, "--data", test, "--out", gguf.path])
        #expect(g.status == 2 && g.stderr.contains("is the model"), "\(g.stderr)")
    }

    @Test func aRunIsReadAtTheTokenLimitItWasTrainedWith() throws {
        let dir = try CLI.tempDir("run-limit")
        defer { try? fm.removeItem(at: dir) }
        let r = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(r, extra: ["--max-length", "8"]).status == 0)
        let own = dir.appendingPathComponent("own.csv"), given = dir.appendingPathComponent("given.csv"), other = dir.appendingPathComponent("other.csv")
        let a = try CLI.run(["score", "el2n", "--run", r.path, "--data", train, "--out", own.path])
        #expect(a.status == 0 && a.stderr.contains("note: --max-length 8, the limit \(r.path) was trained with"), "\(a.stderr)")
        #expect(try CLI.run(["score", "el2n", "--run", r.path, "--data", train, "--max-length", "8", "--out", given.path]).status == 0)
        #expect(try Data(contentsOf: own) == Data(contentsOf: given))
        let b = try CLI.run(["score", "el2n", "--run", r.path, "--data", train, "--max-length", "32", "--out", other.path])
        let otherScores = try Data(contentsOf: other), ownScores = try Data(contentsOf: own)
        #expect(b.status == 0 && !b.stderr.contains("the limit") && otherScores != ownScores, "\(b.stderr)")
        let e = try CLI.run(["eval", "--run", r.path, "--data", test, "--json"])
        let eg = try CLI.run(["eval", "--run", r.path, "--data", test, "--json", "--max-length", "8"])
        #expect(e.status == 0 && e.stderr.contains("note: --max-length 8") && e.stdout == eg.stdout, "\(e.stderr)")
        // One of its checkpoints is read at the run's limit too.
        let ck = try #require(try fm.contentsOfDirectory(atPath: r.path).first { $0.hasPrefix("checkpoint-") })
        let c = try CLI.run(["eval", "--run", r.appendingPathComponent(ck).path, "--data", test, "--json"])
        let cg = try CLI.run(["eval", "--run", r.appendingPathComponent(ck).path, "--data", test, "--json", "--max-length", "8"])
        #expect(c.status == 0 && c.stderr.contains("note: --max-length 8") && c.stdout == cg.stdout, "\(c.stderr)")
        // A dynamics score reads no tokens and says nothing of a limit.
        let f = try CLI.run(["score", "forgetting", "--run", r.path, "--data", train, "--out", dir.appendingPathComponent("f.csv").path])
        #expect(f.status == 0 && !f.stderr.contains("--max-length"), "\(f.stderr)")
    }

    @Test func optionsThatDoNotApplyAreRefused() throws {
        for (extra, message) in [(["el2n", "--test", test], "--test applies to tracin"), (["el2n", "--null-run", run], "--null-run applies to pvi"),
                                 (["vog", "--space", "last-hidden"], "--space applies to the gradient scores"),
                                 (["tracin", "--test", test, "--resume"], "--resume applies to per-example"),
                                 (["forgetting", "--resume"], "--resume applies to per-example"),
                                 (["el2n", "--params", "classifier"], "--params applies to the gradient scores"),
                                 (["grand", "--space", "last-hidden", "--params", "all"], "--params applies to the gradient scores"),
                                 (["forgetting", "--checkpoints", "first"], "--checkpoints does not apply to forgetting"),
                                 (["el2n", "--target", "predicted"], "--target applies to vog"),
                                 (["grand", "--lr", "1"], "--lr applies to tracin"),
                                 (["tracin", "--seed", "5"], "--seed is the seed of --project"),
                                 (["tracin", "--top", "3"], "--top applies to tracin --test"),
                                 (["tracin", "--test", test, "--format", "npy"], "writes proponents and opponents as CSV"),
                                 (["grand", "--memory-limit", "1"], "--memory-limit is in MiB and at least 16"),
                                 (["grand", "--part-size", "0"], "--part-size must be at least 1"),
                                 (["tracin", "--matrix", "/tmp/winnow-never-written.npy"], "--matrix writes the train-to-test matrix"),
                                 (["grand", "--memory-limit", "64"], "--memory-limit applies to tracin --test on a classifier"),
                                 (["tracin", "--test", test, "--part-size", "10"], "--part-size applies to scores in resumable parts"),
                                 (["pvi", "--null-run", run, "--checkpoints", "last"], "--checkpoints does not apply to pvi"),
                                 (["forgetting", "--max-length", "128"], "--max-length does not apply to forgetting")] {
            let r = try CLI.run(["score"] + extra + ["--run", run, "--data", train, "--out", "/tmp/winnow-never-written.csv"])
            #expect(r.status == 2 && r.stderr.contains(message), "\(extra): \(r.stderr)")
        }
        // --base names an adapter's base; a run that is no adapter has none.
        for args in [["score", "el2n", "--run", run, "--base", run, "--data", train, "--out", "/tmp/winnow-never-written.csv"],
                     ["eval", "--run", run, "--base", run, "--data", test]] {
            let r = try CLI.run(args)
            #expect(r.status == 1 && r.stderr.contains("--base") && r.stderr.contains("not an adapter"), "\(args[0]): \(r.stderr)")
        }
        let dir = try CLI.tempDir("header-only")
        defer { try? fm.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("s.csv")
        try "index,line,id,label,score\n".write(to: empty, atomically: true, encoding: .utf8)
        let p = try CLI.run(["prune", "--scores", empty.path, "--data", train, "--keep", "0.5", "--out", dir.appendingPathComponent("k.jsonl").path])
        #expect(p.status == 1 && p.stderr.contains("holds no scores"), "\(p.stderr)")
        let zero = try CLI.run(["prune", "--scores", empty.path, "--data", train, "--keep", "0", "--dry-run"])
        #expect(zero.status == 2 && zero.stderr.contains("--keep must be in (0, 1]"), "\(zero.stderr)")
    }

    @Test func evalAndPredictNameACausalLanguageModel() throws {
        let lm = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path
        for cmd in [["eval", "--run", lm, "--data", train], ["predict", "--run", lm, "--data", train, "--out", "/tmp/winnow-never-written.csv"]] {
            let r = try CLI.run(cmd)
            #expect(r.status == 1 && r.stderr.contains("is a causal language model, not a classifier"), "\(cmd[0]): \(r.stderr)")
        }
    }

    @Test func decoderExamplesWithoutAScoredTokenAreCounted() throws {
        let dir = try CLI.tempDir("no-target")
        defer { try? fm.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let data = dir.appendingPathComponent("d.jsonl")
        let text = try String(contentsOf: fx.appendingPathComponent("text.jsonl"), encoding: .utf8)
        try ("{\"text\": \"a\"}\n" + text).write(to: data, atomically: true, encoding: .utf8)
        let r = try CLI.run(["score", "loss", "--run", fx.appendingPathComponent("tied").path, "--data", data.path, "--max-length", "160",
                             "--out", dir.appendingPathComponent("l.csv").path])
        #expect(r.status == 0 && r.stderr.contains("1 example(s) have no scored token"), "\(r.stderr)")
        // prune never keeps it (its score 0 would rank it the easiest of all), at any --select, and says so.
        let lines = text.split(separator: "\n").count
        for select in ["easy", "hard"] {
            let kept = dir.appendingPathComponent("kept-\(select).jsonl")
            let p = try CLI.run(["prune", "--scores", dir.appendingPathComponent("l.csv").path, "--data", data.path, "--keep", "1.0",
                                 "--select", select, "--out", kept.path])
            #expect(p.status == 0 && p.stderr.contains("1 example(s) of") && p.stderr.contains("have no scored token") && !p.stderr.contains("have no score and"), "\(p.stderr)")
            let out = try String(contentsOf: kept, encoding: .utf8)
            #expect(!out.contains("{\"text\": \"a\"}") && out.split(separator: "\n").count == lines, "\(select): \(out.prefix(200))")
        }
        // A file of empty examples alone has nothing to rank.
        let empty = dir.appendingPathComponent("empty.csv")
        try "index,line,id,label,score,tokens\n0,1,,,0,0\n".write(to: empty, atomically: true, encoding: .utf8)
        let e = try CLI.run(["prune", "--scores", empty.path, "--data", data.path, "--keep", "0.5", "--out", dir.appendingPathComponent("none.jsonl").path])
        #expect(e.status == 1 && e.stderr.contains("empty.csv") && e.stderr.contains("no row has a scored token"), "\(e.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("none.jsonl").path))
    }

    @Test func anAdapterOnABaseOfTheOtherFamilyIsNamed() throws {
        let r = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("lora").path, "--base",
                             CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path, "--data", train, "--out", "/tmp/winnow-never-written.csv"])
        #expect(r.status == 1 && r.stderr.contains("a BERT module, but the base") && r.stderr.contains("Llama-family decoder"), "\(r.stderr)")
        // The same PEFT adapter folder (no checkpoints) on its own base scores as one model.
        let dir = try CLI.tempDir("adapter-alone")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ok = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("lora").path, "--base", CLI.tiny.appendingPathComponent("run").path,
                              "--data", train, "--max-length", "32", "--out", dir.appendingPathComponent("e.csv").path])
        #expect(ok.status == 0 && ok.stderr.contains("wrote 150 el2n scores"), "\(ok.stderr)")
    }

    @Test func scoresThatAreAllEqualAreFlagged() throws {
        let dir = try CLI.tempDir("constant")
        defer { try? fm.removeItem(at: dir) }
        // Twenty copies of one example: every score is the same.
        let same = dir.appendingPathComponent("same.jsonl")
        try String(repeating: "{\"text\": \"a fine film\", \"label\": \"pos\"}\n", count: 20).write(to: same, atomically: true, encoding: .utf8)
        let r = try CLI.run(["score", "tracin", "--run", run, "--data", same.path, "--max-length", "32", "--out", dir.appendingPathComponent("t.csv").path])
        #expect(r.status == 0 && r.stderr.contains("WARNING: every one of the 20 scores is") && r.stderr.contains("they rank nothing"), "\(r.stderr)")
        // --lr 0 would make every score 0: refused as a usage error.
        let zero = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--max-length", "32", "--lr", "0", "--out", dir.appendingPathComponent("z.csv").path])
        #expect(zero.status == 2 && zero.stderr.contains("--lr must be positive"), "\(zero.stderr)")
        let ok = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--max-length", "32", "--out", dir.appendingPathComponent("u.csv").path])
        #expect(ok.status == 0 && !ok.stderr.contains("rank nothing"), "\(ok.stderr)")
    }

    @Test func trainingOptionsOutsideTheirRangeAndOneLabelAreRefused() throws {
        let dir = try CLI.tempDir("train-opts")
        defer { try? fm.removeItem(at: dir) }
        for (extra, message) in [(["--dropout", "1.5"], "--dropout must be in [0, 1)"), (["--warmup-ratio", "2"], "--warmup-ratio must be in [0, 1]")] {
            let r = try CLI.trainTiny(dir.appendingPathComponent("x"), extra: extra)
            #expect(r.status == 2 && r.stderr.contains(message), "\(extra): \(r.stderr)")
        }
        let one = dir.appendingPathComponent("one.jsonl")
        let pos = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n").filter { $0.contains("\"pos\"") }
        try (pos.joined(separator: "\n") + "\n").write(to: one, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--data", one.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                             "--heads", "2", "--epochs", "1", "--max-length", "32", "--out", dir.appendingPathComponent("r1").path])
        #expect(r.status == 1 && r.stderr.contains("one.jsonl: has one label ('pos'); a classifier needs two or more"), "\(r.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("r1").path))
        let e = try CLI.run(["experiment", "--train", train, "--test", test, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--seed", "7", "--out", dir.appendingPathComponent("exp").path])
        #expect(e.status == 2 && e.stderr.contains("Unknown option '--seed'"), "\(e.stderr)")
    }

    @Test func aMissingHeldOutCorpusFailsBeforePretraining() throws {
        let dir = try CLI.tempDir("heldout")
        defer { try? fm.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run")
        let r = try PretrainCLITests.pretrain(out, ["--heldout", dir.appendingPathComponent("missing.txt").path])
        #expect(r.status == 1 && r.stderr.contains("missing.txt"), "\(r.stderr)")
        #expect(!fm.fileExists(atPath: out.path), "a run was written before the held-out file was read")
    }

    @Test func tokenizeEncodesDecoderDataAsScoringDoes() throws {
        let dir = try CLI.tempDir("tokenize-decoder")
        defer { try? fm.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let out = dir.appendingPathComponent("ids.jsonl")
        let r = try CLI.run(["tokenize", "--model", fx.appendingPathComponent("tied").path, "--data", fx.appendingPathComponent("pc.jsonl").path,
                             "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        // The golden file's ids and scored tokens (PyTorch reference) for the same lines.
        struct Row: Decodable { let ids: [Int32]; let scored: [Bool] }
        struct Model: Decodable { let pc: [Row] }
        let golden = try JSONDecoder().decode([String: Model].self, from: Data(contentsOf: fx.appendingPathComponent("golden.json")))["tied"]!.pc
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == golden.count)
        for (l, g) in zip(lines, golden) {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            #expect((o["input_ids"] as! [Int]).map(Int32.init) == g.ids)
            #expect((o["scored"] as! [Int]).map { $0 == 1 } == g.scored)
        }
        let wordPiece = try CLI.run(["tokenize", "--model", run, "--data", fx.appendingPathComponent("pc.jsonl").path,
                                     "--out", dir.appendingPathComponent("wp.jsonl").path])
        #expect(wordPiece.status == 1 && wordPiece.stderr.contains("pc.jsonl:1:") && wordPiece.stderr.contains("only a decoder's tokenizer"),
                "\(wordPiece.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("wp.jsonl").path))
    }
}

/// Experiment, report, pretrain and train options that once failed late, silently or destructively.
@Suite(.serialized) struct ExperimentUserErrorCLITests {
    let fm = FileManager.default
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path
    let test = CLI.tiny.appendingPathComponent("test.jsonl").path

    /// A small experiment: forgetting only, keep 1.0 and 0.5, one seed.
    func quick(_ out: URL, train: String? = nil, test: String? = nil, extra: [String] = []) throws -> CLIResult {
        var args = ExperimentCLITests.tinyArgs
        args[2] = train ?? self.train
        args[4] = test ?? self.test
        return try CLI.run(args + ["--methods", "forgetting", "--keep", "1.0,0.5", "--seeds", "1", "--out", out.path] + extra)
    }

    @Test func badPlansAreRefusedBeforeAnythingIsTrained() throws {
        let dir = try CLI.tempDir("exp-plans")
        defer { try? fm.removeItem(at: dir) }
        for (extra, message) in [(["--keep", "1.0,0.5,0.5"], "0.5 is given twice"), (["--max-length", "3"], "at least 4"),
                                 (["--keep", "1.0,0.95", "--sampling", "stratified"], "0.95 is more than stratified sampling keeps"),
                                 (["--methods", "el2n,el2n"], "el2n is given twice"),
                                 (["--methods", "el2n", "--sampling", "softmax", "--temperature", "1e-7"], "at least 1e-6"),
                                 (["--methods", "el2n", "--settings", "el2n:hard:top:dataset,el2n:hard:top:class"], "select the same examples"),
                                 (["--methods", "forgetting", "--settings", "forgetting::easy"], "a part is empty"),
                                 (["--methods", "forgetting,el2n", "--settings", "forgetting:easy,,el2n:hard"], "an empty entry"),
                                 (["--methods", "forgetting", "--settings", "forgetting:easy+forgetting:hard"], "cannot break its own ties"),
                                 (["--methods", "vog", "--score-checkpoints", "1"], "VoG is a variance over checkpoints")] {
            var args = ExperimentCLITests.tinyArgs + ["--seeds", "1", "--out", dir.appendingPathComponent("x").path]
            args += extra
            if !extra.contains("--methods") { args += ["--methods", "forgetting"] }
            if !extra.contains("--keep") { args += ["--keep", "0.5"] }
            let r = try CLI.run(args)
            #expect(r.status == 2 && r.stderr.contains(message), "\(extra): \(r.stderr)")
            #expect(!fm.fileExists(atPath: dir.appendingPathComponent("x").path))
        }
        // A scoring run too short for two checkpoints (150 examples, one batch of 256, one epoch) cannot give VoG.
        var short = ExperimentCLITests.tinyArgs
        short[short.firstIndex(of: "--epochs")! + 1] = "1"
        short[short.firstIndex(of: "--batch-size")! + 1] = "256"
        let one = try CLI.run(short + ["--methods", "vog", "--keep", "0.5", "--seeds", "1", "--out", dir.appendingPathComponent("one").path])
        #expect(one.status == 1 && one.stderr.contains("150 examples saves only 1"), "\(one.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("one").path), "a refused start left files behind")
        // Other scores go on, and the checkpoint count said is the one saved (the run may then learn nothing: not checked here).
        let few = try CLI.run(short + ["--methods", "forgetting", "--keep", "0.5", "--seeds", "1", "--out", dir.appendingPathComponent("few").path])
        #expect(few.stderr.contains("has 1 step, so it saves 1 of the 3 checkpoints asked for")
                && few.stderr.contains("full run (seed 0, 1 checkpoint,"), "\(few.stderr)")
        // --params is resolved against the model before the scoring run trains.
        let p = try CLI.run(ExperimentCLITests.tinyArgs + ["--methods", "grand", "--params", "nonsense.", "--keep", "0.5", "--seeds", "1",
                                                          "--out", dir.appendingPathComponent("p").path])
        #expect(p.status == 1 && p.stderr.contains("selects no tensors"), "\(p.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("p").path), "a refused start left files behind")
    }

    @Test func aFailedStartLeavesNothingAndTheCorrectedCommandRuns() throws {
        let dir = try CLI.tempDir("exp-start")
        defer { try? fm.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e")
        let bad = try quick(out, test: dir.appendingPathComponent("missing.jsonl").path)
        #expect(bad.status == 1 && bad.stderr.contains("missing.jsonl"), "\(bad.stderr)")
        #expect(!fm.fileExists(atPath: out.path), "a failed start left \(String(describing: try? fm.contentsOfDirectory(atPath: out.path)))")
        let good = try quick(out)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(fm.fileExists(atPath: out.appendingPathComponent("data.json").path))
    }

    @Test func resumingOnChangedDataIsRefusedAndTheReportKeepsTheExperimentsFiles() throws {
        let dir = try CLI.tempDir("exp-data")
        defer { try? fm.removeItem(at: dir) }
        let mine = dir.appendingPathComponent("train.jsonl")
        try fm.copyItem(at: URL(fileURLWithPath: train), to: mine)
        let out = dir.appendingPathComponent("e")
        #expect(try quick(out, train: mine.path).status == 0)
        // A report written over the experiment's own files is refused; report.html or a file elsewhere is fine.
        for f in ["plan.json", "results.csv", "scores/forgetting.csv"] {
            let r = try CLI.run(["report", "--experiment", out.path, "--out", out.appendingPathComponent(f).path])
            #expect(r.status == 2 && r.stderr.contains("is a file of the experiment folder"), "\(f): \(r.stderr)")
        }
        #expect(try CLI.run(["report", "--experiment", out.path, "--out", dir.appendingPathComponent("r.html").path]).status == 0)
        for _ in 0..<2 {   // a page of its own inside the folder, written again
            let r = try CLI.run(["report", "--experiment", out.path, "--out", out.appendingPathComponent("summary.html").path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        // One label flipped in the training file: the rerun refuses to resume.
        let text = try String(contentsOf: mine, encoding: .utf8)
        let flipped = text.replacingOccurrences(of: "\"label\": \"pos\"}", with: "\"label\": \"neg\"}", options: [], range: text.range(of: "\"label\": \"pos\"}"))
        try flipped.write(to: mine, atomically: true, encoding: .utf8)
        let again = try quick(out, train: mine.path)
        #expect(again.status == 1 && again.stderr.contains("changed since"), "\(again.stderr)")
        // The report still renders, leaving out what it would read from the changed, then the moved, file.
        let page = dir.appendingPathComponent("after.html")
        for (why, change) in [("changed since the experiment ran", {}), ("is gone", { try self.fm.moveItem(at: mine, to: dir.appendingPathComponent("moved.jsonl")) })] {
            try change()
            let r = try CLI.run(["report", "--experiment", out.path, "--out", page.path])
            #expect(r.status == 0, "\(why): \(r.stderr)")
            let html = try String(contentsOf: page, encoding: .utf8)
            #expect(html.contains(why) && html.contains("Rank correlations") && html.contains("left out of this report"), "\(why)")
        }
        // Resuming once the file has moved names it.
        let gone = try quick(out, train: mine.path)
        #expect(gone.status == 1 && gone.stderr.contains("train.jsonl") && gone.stderr.contains("is gone"), "\(gone.stderr)")
    }

    @Test func optionsThatDoNotApplyToTrainOrPretrainAreRefused() throws {
        let dir = try CLI.tempDir("train-apply")
        defer { try? fm.removeItem(at: dir) }
        let fx = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let tied = fx.appendingPathComponent("tied").path
        let cases: [([String], String)] = [
            (["train", "--init", tied, "--data", fx.appendingPathComponent("pc.jsonl").path, "--lora-alpha", "16"], "need --lora-rank"),
            (["train", "--init", tied, "--data", fx.appendingPathComponent("pc.jsonl").path, "--head", "paper"], "--head applies to BERT"),
            (["train", "--init", CLI.tiny.appendingPathComponent("run").path, "--data", train, "--head", "paper"], "holds a trained classifier head"),
            (PretrainCLITests.pretrainArgs(["--tau1", "2"]), "apply to --reweight presence"),
            (PretrainCLITests.pretrainArgs(["--reweight", "presence", "--microbatch-size", "8"]), "would be plain training"),
            (PretrainCLITests.pretrainArgs(["--reweight", "presence", "--switch-step", "40"]), "leaves --tau2 unused"),
            (PretrainCLITests.pretrainArgs(["--reweight", "presence", "--switch-step", "1", "--tau1", "2"]), "leaves --tau1 unused"),
            (PretrainCLITests.pretrainArgs(["--microbatch-size", "2"]), "shape PRESENCE's self-influence"),
            (PretrainCLITests.pretrainArgs(["--base", tied]), "--base is the base model of an adapter"),
            (["pretrain", "--init", CLI.repo.appendingPathComponent("Tests/Fixtures/lm/mlm").path, "--corpus", train, "--layers", "5"],
             "--layers shapes a fresh BERT"),
            (ExperimentCLITests.tinyArgs + ["--temperature", "2"], "--temperature applies to softmax sampling"),
            (ExperimentCLITests.tinyArgs + ["--noise-seed", "3"], "--noise-seed is the seed of --noise"),
            (ExperimentCLITests.tinyArgs + ["--params", "classifier"], "--params applies to the gradient scores"),
            (ExperimentCLITests.tinyArgs + ["--settings", "el2n:easy", "--select", "hard"], "give one or the other"),
            (ExperimentCLITests.tinyArgs + ["--methods", "el2n", "--select", "moderate,easy", "--sampling", "stratified,top"], "is no setting"),
            (["experiment", "--train", train, "--test", test, "--init", CLI.tiny.appendingPathComponent("run").path, "--layers", "6"],
             "--layers shapes a fresh model"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(args + ["--out", dir.appendingPathComponent("o").path])
            #expect(r.status == 2 && r.stderr.contains(message), "\(args.suffix(3)): \(r.stderr)")
        }
        // The sizes of a fresh model do not apply to a pretrained --init, which has its own: refused, not ignored.
        let sized = try CLI.run(["train", "--init", CLI.tiny.appendingPathComponent("run").path, "--data", train, "--hidden", "999", "--epochs", "1",
                                 "--max-length", "32", "--out", dir.appendingPathComponent("sized").path])
        #expect(sized.status == 2 && sized.stderr.contains("--hidden shapes a fresh model"), "\(sized.stderr)")
        let si = try CLI.run(PretrainCLITests.pretrainArgs(["--reweight", "presence", "--microbatch-size", "2", "--si-params", "lora"])
                             + ["--out", dir.appendingPathComponent("o").path])
        #expect(si.status == 1 && si.stderr.contains("--si-params") && !si.stderr.contains("pretrain: "), "\(si.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("o").path))
        let inspect = try CLI.run(["inspect", CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/lora").path])
        #expect(inspect.status == 0 && inspect.stdout.contains("adapter_model.safetensors") && inspect.stdout.contains("lora_A"), "\(inspect.stderr)")
    }

    /// `inspect` finds what the loaders find in a folder: shards of an index, a .GGUF in capitals, the first
    /// of several .gguf files (with a note); a folder without weights is one line.
    @Test func inspectReadsTheFoldersTheLoadersRead() throws {
        let dir = try CLI.tempDir("inspect-folders")
        defer { try? fm.removeItem(at: dir) }
        let sharded = dir.appendingPathComponent("sharded")
        try fm.createDirectory(at: sharded, withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/llama/hf/model.safetensors"), to: sharded.appendingPathComponent("model-00001-of-00001.safetensors"))
        try Data(#"{"metadata": {}, "weight_map": {"model.norm.weight": "model-00001-of-00001.safetensors"}}"#.utf8)
            .write(to: sharded.appendingPathComponent("model.safetensors.index.json"))
        let s = try CLI.run(["inspect", sharded.path])
        #expect(s.status == 0 && s.stdout.contains("model-00001-of-00001.safetensors") && s.stdout.contains("model.norm.weight"), "\(s.stderr)")
        let caps = dir.appendingPathComponent("caps")
        try fm.createDirectory(at: caps, withIntermediateDirectories: true)
        for name in ["B.GGUF", "a.gguf"] { try fm.copyItem(at: CLI.repo.appendingPathComponent("Tests/Fixtures/llama/tiny.gguf"), to: caps.appendingPathComponent(name)) }
        let g = try CLI.run(["inspect", caps.path])
        #expect(g.status == 0 && g.stdout.contains("B.GGUF: GGUF v") && g.stderr.contains("holds 2 .gguf files"), "\(g.stdout)\(g.stderr)")
        let none = try CLI.run(["inspect", dir.path])
        #expect(none.status == 1 && none.stderr.contains("no model.safetensors"), "\(none.stderr)")
    }

    /// A run stopped by a non-finite loss before its first checkpoint holds no model: the message says
    /// so, and rerunning into the same folder with other options starts over.
    @Test func aRunStoppedBeforeItsFirstCheckpointCanBeRerun() throws {
        let dir = try CLI.tempDir("nan-rerun")
        defer { try? fm.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run")
        let bad = try CLI.trainTiny(out, extra: ["--lr", "1e30", "--optimizer", "sgd", "--max-grad-norm", "0", "--checkpoints", "1"])
        #expect(bad.status != 0 && bad.stderr.contains("holds no model; rerun with a lower --lr"), "\(bad.stderr)")
        let good = try CLI.trainTiny(out)
        #expect(good.status == 0, "\(good.stderr)")
        // --momentum means SGD's; with AdamW it would change nothing.
        let m = try CLI.trainTiny(dir.appendingPathComponent("m"), extra: ["--momentum", "0.5"])
        #expect(m.status == 2 && m.stderr.contains("--momentum applies to --optimizer sgd"), "\(m.stderr)")
    }

    /// A negative number is the value of a numeric option, not taken for a flag: the option's own reason (before,
    /// "Missing value for '--seeds <seeds>'").
    @Test func negativeNumbersAreValuesOfNumericOptions() throws {
        let data = CLI.tiny.appendingPathComponent("train.jsonl").path
        for (args, flag) in [(["experiment", "--train", data, "--test", data, "--seeds", "-1", "--out", "/tmp/never"], "--seeds"),
                             (["predict", "--run", CLI.tiny.appendingPathComponent("run").path, "--data", data, "--max-length", "-1", "--out", "/tmp/never.csv"], "--max-length"),
                             (["train", "--data", data, "--epochs", "-2", "--out", "/tmp/never"], "--epochs")] {
            let r = try CLI.run(args)
            #expect(r.status == 2 && r.stderr.contains(flag) && !r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
        }
    }

    /// A pretrained BERT language model continued with windows longer than its positions: one line, before training.
    @Test func pretrainingWindowsLongerThanTheModelAreRefused() throws {
        let dir = try CLI.tempDir("pretrain-long")
        defer { try? fm.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("long.txt")
        try (Array(repeating: "the movie was good", count: 30).joined(separator: " ") + "\n").write(to: corpus, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("q")
        let r = try CLI.run(["pretrain", "--init", CLI.repo.appendingPathComponent("Tests/Fixtures/lm/mlm").path, "--corpus", corpus.path,
                             "--steps", "1", "--batch-size", "2", "--seq-len", "100", "--out", out.path])
        #expect(r.status == 1 && r.stderr.contains("--seq-len") && r.stderr.contains("positions") && !fm.fileExists(atPath: out.path), "\(r.stderr)")
    }

    /// The MLP of numeric features (a CSV file) has its training dynamics' scores; the others name what it lacks.
    @Test func theMLPHasItsDynamicsScores() throws {
        let dir = try CLI.tempDir("mlp-scores")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("f.csv")
        try "label,a,b\npos,1,2\nneg,3,1\npos,2,2\nneg,5,0\npos,1,3\nneg,4,1\n".write(to: data, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("mlp")
        #expect(try CLI.run(["train", "--data", data.path, "--out", run.path, "--epochs", "3", "--batch-size", "2", "--checkpoints", "3"]).status == 0)
        for m in ["forgetting", "aum", "cartography"] {
            let out = dir.appendingPathComponent("\(m).csv")
            let r = try CLI.run(["score", m, "--run", run.path, "--data", data.path, "--out", out.path])
            #expect(r.status == 0, "\(m): \(r.stderr)")
            #expect(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").count == 7, "\(m)")
        }
        let e = try CLI.run(["score", "el2n", "--run", run.path, "--data", data.path, "--out", dir.appendingPathComponent("e.csv").path])
        #expect(e.status == 1 && e.stderr.contains("MLP of numeric features") && e.stderr.contains("'el2n'"), "\(e.stderr)")
    }
}
