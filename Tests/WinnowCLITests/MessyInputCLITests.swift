import Foundation
import Testing

/// Messy real-world inputs and misused options: CSV feature files whose columns or labels differ from
/// the run's, labels that are booleans or fractions, a label field first met after line 1, examples
/// without tokens, one field in two roles, piped data, null runs that are not, single-checkpoint VoG,
/// and an interrupted training's temporary files.
@Suite(.serialized) struct MessyInputCLITests {
    let fm = FileManager.default
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path
    let vocab = CLI.tiny.appendingPathComponent("vocab.txt").path

    func write(_ dir: URL, _ name: String, _ text: String) throws -> String {
        let u = dir.appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u.path
    }

    /// An MLP run on a CSV of features a, b (labels p / n; row 5 with an empty label).
    func mlpRun(_ dir: URL) throws -> (run: String, csv: String) {
        var s = "id,label,a,b\n"
        for i in 0..<40 { s += "r\(i),\(i == 3 ? "" : i % 2 == 0 ? "p" : "n"),\(Double(i % 2) * 2 - 1 + Double(i % 7) * 0.05),\(Double(i % 5) * 0.1)\n" }
        let csv = try write(dir, "f.csv", s)
        let run = dir.appendingPathComponent("mlp").path
        let t = try CLI.run(["train", "--data", csv, "--out", run, "--hidden", "8", "--layers", "1", "--epochs", "3", "--batch-size", "8", "--lr", "0.01"])
        #expect(t.status == 0 && t.stderr.contains("skipped 1 row(s) without a label"), "\(t.stderr)")
        return (run, csv)
    }

    @Test func csvFeatureFilesAreCheckedAndPrunedWithTheirHeader() throws {
        let dir = try CLI.tempDir("messy-csv")
        defer { try? fm.removeItem(at: dir) }
        let (run, csv) = try mlpRun(dir)
        // Columns read by position: another set or order is refused by name, not predicted (or crashed on).
        for (name, header) in [("extra.csv", "id,label,a,b,c"), ("swapped.csv", "id,label,b,a")] {
            let cols = header.split(separator: ",").count
            let f = try write(dir, name, header + "\n" + "x,p" + String(repeating: ",0.5", count: cols - 2) + "\n")
            let p = try CLI.run(["predict", "--run", run, "--data", f, "--out", dir.appendingPathComponent("p-\(name)").path])
            #expect(p.status == 1 && p.stderr.contains("\(name):1") && p.stderr.contains("the model's [a, b]"), "\(p.stderr)")
            #expect(!fm.fileExists(atPath: dir.appendingPathComponent("p-\(name)").path))
        }
        // The unlabelled row is neither scored nor kept; the pruned file keeps the header and trains again.
        let scores = dir.appendingPathComponent("s.csv")
        let s = try CLI.run(["score", "forgetting", "--run", run, "--data", csv, "--out", scores.path])
        #expect(s.status == 0, "\(s.stderr)")
        let rows = try String(contentsOf: scores, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 40 && !rows.contains { $0.contains(",r3,") }, "\(rows.prefix(6))")
        let pruned = dir.appendingPathComponent("pruned.csv")
        let p = try CLI.run(["prune", "--scores", scores.path, "--data", csv, "--keep", "0.5", "--per-label", "--out", pruned.path])
        #expect(p.status == 0, "\(p.stderr)")
        let kept = try String(contentsOf: pruned, encoding: .utf8).split(separator: "\n")
        #expect(kept.first == "id,label,a,b" && kept.count == 21 && !kept.contains { $0.hasPrefix("r3,") }, "\(kept.prefix(3))")
        let again = try CLI.run(["train", "--data", pruned.path, "--out", dir.appendingPathComponent("mlp2").path, "--hidden", "8", "--layers", "1",
                                 "--epochs", "1", "--lr", "0.01"])
        #expect(again.status == 0, "\(again.stderr)")
        // A label the model lacks: predicted with an empty gold label and a note; labels with commas quoted as one field.
        let unknown = try write(dir, "unknown.csv", "id,label,a,b\nu1,maybe,0.1,0.2\nu2,p,0.3,0.4\n")
        let out = dir.appendingPathComponent("pu.csv")
        let pu = try CLI.run(["predict", "--run", run, "--data", unknown, "--out", out.path])
        #expect(pu.status == 0 && pu.stderr.contains("label(s) maybe of"), "\(pu.stderr)")
        let pr = try String(contentsOf: out, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(pr.count == 4 && pr[1].hasPrefix("0,2,u1,,"), "\(pr)")
        let ev = try CLI.run(["eval", "--run", run, "--data", unknown])
        #expect(ev.status == 1 && ev.stderr.contains("unknown.csv:2"), "\(ev.stderr)")
    }

    @Test func filesOfTheWrongKindAreNamed() throws {
        let dir = try CLI.tempDir("messy-kind")
        defer { try? fm.removeItem(at: dir) }
        let (mlp, csv) = try mlpRun(dir)
        let bert = dir.appendingPathComponent("bert")
        #expect(try CLI.trainTiny(bert).status == 0)
        let cases: [([String], [String])] = [
            (["inspect", train], ["is neither a safetensors file", "nor a GGUF file"]),
            (["predict", "--run", mlp, "--data", train, "--out", dir.appendingPathComponent("a.csv").path], ["is not a .csv file", "is an MLP of numeric features"]),
            (["score", "forgetting", "--run", mlp, "--data", train, "--out", dir.appendingPathComponent("b.csv").path], ["is not a .csv file"]),
            (["score", "tracin", "--run", mlp, "--data", csv, "--test", csv, "--out", dir.appendingPathComponent("b2.csv").path],
             ["is an MLP of numeric features, which has the training-dynamics scores"]),
            (["predict", "--run", bert.path, "--data", csv, "--out", dir.appendingPathComponent("c.csv").path], ["is a CSV file", "JSONL"]),
            (["score", "el2n", "--run", bert.path, "--data", csv, "--out", dir.appendingPathComponent("d.csv").path], ["is a CSV file"]),
            (["score", "loss", "--run", CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path, "--data",
              try write(dir, "p.jsonl", "{\"prompt\": \"Hi\"}\n"), "--out", dir.appendingPathComponent("e.csv").path], ["p.jsonl:1", "has a prompt but no completion"]),
        ]
        for (args, says) in cases {
            let r = try CLI.run(args)
            #expect(r.status == 1 && says.allSatisfy { r.stderr.contains($0) }, "\(args): \(r.stderr)")
        }
        // A line holding a text field and a prompt with its completion is read as the prompt and completion, as TRL
        // reads it; --text-field text reads the text instead.
        let tied = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path
        let both = try write(dir, "both.jsonl", "{\"text\": \"a b\", \"prompt\": \"Hi\", \"completion\": \" there\"}\n")
        let pc = try write(dir, "pc.jsonl", "{\"prompt\": \"Hi\", \"completion\": \" there\"}\n")
        let text = try write(dir, "text.jsonl", "{\"text\": \"a b\"}\n")
        func loss(_ data: String, _ extra: [String] = []) throws -> String {
            let out = dir.appendingPathComponent("loss-\(UUID().uuidString.prefix(6)).csv")
            let r = try CLI.run(["score", "loss", "--run", tied, "--data", data, "--out", out.path] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return try String(contentsOf: out, encoding: .utf8)
        }
        #expect(try loss(both) == loss(pc))
        #expect(try loss(both, ["--text-field", "text"]) == loss(text, ["--text-field", "text"]))
        let field = try CLI.run(["score", "forgetting", "--run", mlp, "--data", csv, "--text-field", "a", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(field.status == 2 && field.stderr.contains("--text-field") && field.stderr.contains("does not apply"), "\(field.stderr)")
        // Invalid UTF-8 in a CSV names its line.
        let latin = dir.appendingPathComponent("latin1.csv")
        try Data("label,a\npos,1\nn".utf8 + [0xE9] + Data("g,2\n".utf8)).write(to: latin)
        let r = try CLI.run(["train", "--data", latin.path, "--out", dir.appendingPathComponent("r").path])
        #expect(r.status == 1 && r.stderr.contains("latin1.csv:3: not valid UTF-8"), "\(r.stderr)")
    }

    @Test func predictQuotesLabelsInItsHeader() throws {
        let dir = try CLI.tempDir("messy-quote")
        defer { try? fm.removeItem(at: dir) }
        var s = "a,label\n"
        for i in 0..<20 { s += "\(i % 2 == 0 ? 1.0 : -1.0),\(i % 2 == 0 ? "\"good, really\"" : "bad") \n" }
        let csv = try write(dir, "q.csv", s.replacingOccurrences(of: " \n", with: "\n"))
        let run = dir.appendingPathComponent("run").path
        #expect(try CLI.run(["train", "--data", csv, "--out", run, "--hidden", "4", "--layers", "1", "--epochs", "1"]).status == 0)
        let out = dir.appendingPathComponent("p.csv")
        let p = try CLI.run(["predict", "--run", run, "--data", csv, "--out", out.path])
        #expect(p.status == 0, "\(p.stderr)")
        let header = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")[0]
        #expect(header == "index,line,id,label,predicted,p_bad,\"p_good, really\"", "\(header)")
    }

    @Test func jsonLabelsAreStringsOrIntegersAndMayStartAfterLineOne() throws {
        let dir = try CLI.tempDir("messy-labels")
        defer { try? fm.removeItem(at: dir) }
        let lines = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n").map(String.init)
        func trainOn(_ name: String, _ text: String) throws -> CLIResult {
            try CLI.run(["train", "--data", try write(dir, name, text), "--vocab", vocab, "--layers", "1", "--hidden", "16", "--heads", "2",
                         "--epochs", "1", "--max-length", "32", "--out", dir.appendingPathComponent("r-\(name)").path])
        }
        for (name, value) in [("bool.jsonl", "true"), ("frac.jsonl", "1.5")] {
            let text = lines.prefix(10).map { $0.replacingOccurrences(of: "\"label\": \"pos\"", with: "\"label\": \(value)")
                .replacingOccurrences(of: "\"label\": \"neg\"", with: "\"label\": 0") }.joined(separator: "\n")
            let r = try trainOn(name, text + "\n")
            #expect(r.status == 1 && r.stderr.contains("label \(value) is not a string or an integer"), "\(name): \(r.stderr)")
        }
        let ints = lines.prefix(10).map { $0.replacingOccurrences(of: "\"label\": \"pos\"", with: "\"label\": 1.0")
            .replacingOccurrences(of: "\"label\": \"neg\"", with: "\"label\": 0") }.joined(separator: "\n")
        let ok = try trainOn("ints.jsonl", ints + "\n")
        #expect(ok.status == 0 && ok.stderr.contains("labels [0, 1]"), "\(ok.stderr)")
        // The first line has no label field: the later lines' labels are read, not dropped.
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let late = try write(dir, "late.jsonl", "{\"text\": \"no label here\"}\n" + lines.prefix(5).joined(separator: "\n") + "\n")
        let out = dir.appendingPathComponent("p.csv")
        let p = try CLI.run(["predict", "--run", run.path, "--data", late, "--max-length", "32", "--out", out.path])
        #expect(p.status == 0, "\(p.stderr)")
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Line 2 is the fixture's first example, train-000, labelled pos: the label column holds it.
        #expect(rows[1].hasPrefix("0,1,,,") && rows[2].split(separator: ",").map(String.init)[2...3] == ["train-000", "pos"], "\(rows.prefix(3))")
        // A later field whose values are no labels (objects) is metadata: predict reads the file as unlabelled.
        let meta = try write(dir, "meta.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\", \"label\": {\"annotator\": \"x\"}}\n")
        let m = try CLI.run(["predict", "--run", run.path, "--data", meta, "--max-length", "32", "--out", dir.appendingPathComponent("m.csv").path])
        #expect(m.status == 0, "\(m.stderr)")
    }

    @Test func examplesWithoutTokensAndFieldsInTwoRolesAreRefused() throws {
        let dir = try CLI.tempDir("messy-tokens")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let empty = try write(dir, "ids.jsonl", "{\"input_ids\": [2, 5, 3], \"label\": \"pos\"}\n{\"input_ids\": [], \"label\": \"neg\"}\n")
        let p = try CLI.run(["predict", "--run", run.path, "--data", empty, "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 1 && p.stderr.contains("ids.jsonl:2") && p.stderr.contains("has no tokens"), "\(p.stderr)")
        for (a, b) in [("--text-field", "--label-field"), ("--pair-field", "--text-field")] {
            let r = try CLI.run(["predict", "--run", run.path, "--data", train, a, "text", b, "text", "--out", dir.appendingPathComponent("q.csv").path])
            #expect(r.status == 2 && r.stderr.contains("both name the field 'text'"), "\(r.stderr)")
        }
    }

    @Test func scoringRefusesPipesNonNullRunsAndOneCheckpointVoG() throws {
        let dir = try CLI.tempDir("messy-score")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        // A pipe is read once; scoring counts, then scores.
        let sh = try CLI.run(["-c", "cat '\(train)' | '\(CLI.binary.path)' score el2n --run '\(run.path)' --data /dev/stdin --max-length 32 --out '\(dir.path)/e.csv'"],
                             executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(sh.status == 1 && sh.stderr.contains("is not a regular file"), "\(sh.stderr)")
        let pvi = try CLI.run(["score", "pvi", "--run", run.path, "--null-run", run.path, "--data", train, "--max-length", "32",
                               "--out", dir.appendingPathComponent("p.csv").path])
        #expect(pvi.status == 1 && pvi.stderr.contains("was trained on the inputs"), "\(pvi.stderr)")
        // The null run given as --run: named, before any data is read.
        let nullRun = dir.appendingPathComponent("null")
        #expect(try CLI.run(["train", "--data", train, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16",
                             "--heads", "2", "--epochs", "1", "--max-length", "32", "--null", "--out", nullRun.path]).status == 0)
        let swapped = try CLI.run(["score", "pvi", "--run", nullRun.path, "--null-run", nullRun.path, "--data", train, "--max-length", "32",
                                   "--out", dir.appendingPathComponent("p.csv").path])
        #expect(swapped.status == 1 && swapped.stderr.contains("is a null run"), "\(swapped.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("p.csv").path))
        let vog = try CLI.run(["score", "vog", "--run", run.path, "--checkpoints", "last", "--data", train, "--max-length", "32",
                               "--out", dir.appendingPathComponent("v.csv").path])
        // A selection of one checkpoint is known to be one before any file is read: a usage error.
        #expect(vog.status == 2 && vog.stderr.contains("needs at least two") && vog.stderr.contains("--checkpoints last selects one"), "\(vog.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("v.csv").path) && !fm.fileExists(atPath: dir.appendingPathComponent("v.csv.parts").path))
    }

    @Test func dynamicsScoresReadOnlyTheFileTheRunWasTrainedOn() throws {
        let dir = try CLI.tempDir("messy-dynamics")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let lines = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n")
        let reversed = try write(dir, "reversed.jsonl", lines.reversed().joined(separator: "\n") + "\n")
        for method in ["forgetting", "cartography", "aum"] {
            let r = try CLI.run(["score", method, "--run", run.path, "--data", reversed, "--out", dir.appendingPathComponent("\(method).csv").path])
            #expect(r.status == 1 && r.stderr.contains("is not the file") && r.stderr.contains("data_fnv1a64"), "\(method): \(r.stderr)")
        }
        let copy = try write(dir, "copy.jsonl", lines.joined(separator: "\n") + "\n")
        let ok = try CLI.run(["score", "forgetting", "--run", run.path, "--data", copy, "--out", dir.appendingPathComponent("f.csv").path])
        #expect(ok.status == 0, "a byte-identical copy is the same file: \(ok.stderr)")
        // A checkpoint folder as --run: the run's fingerprint still applies, and a note says the dynamics end at the checkpoint.
        let first = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("checkpoint-") }
            .sorted { Int($0.dropFirst(11))! < Int($1.dropFirst(11))! }.first!
        let ck = run.appendingPathComponent(first)
        let other = try CLI.run(["score", "forgetting", "--run", ck.path, "--data", reversed, "--out", dir.appendingPathComponent("ck-r.csv").path])
        #expect(other.status == 1 && other.stderr.contains("is not the file"), "\(other.stderr)")
        let partial = try CLI.run(["score", "forgetting", "--run", ck.path, "--data", copy, "--out", dir.appendingPathComponent("ck.csv").path])
        #expect(partial.status == 0 && partial.stderr.contains("note: \(first) is a checkpoint of") && partial.stderr.contains("give --run"), "\(partial.stderr)")
    }

    @Test func aDecoderTargetExampleWithoutTokensIsNamed() throws {
        let dir = try CLI.tempDir("messy-target")
        defer { try? fm.removeItem(at: dir) }
        let model = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path
        let data = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/text.jsonl").path
        let test = try write(dir, "t.jsonl", "{\"text\": \"The dog ran.\", \"task\": \"b\"}\n{\"text\": \"\", \"task\": \"a\"}\n")
        let out = dir.appendingPathComponent("i.csv")
        let r = try CLI.run(["score", "tracin", "--run", model, "--data", data, "--test", test, "--params", "last-layer", "--aggregate", "mean",
                             "--group-field", "task", "--max-length", "32", "--out", out.path])
        #expect(r.status == 1 && r.stderr.contains("t.jsonl:2") && r.stderr.contains("has no scored token"), "\(r.stderr)")
        #expect(!fm.fileExists(atPath: out.path))
        // A pair field for prompt/completion examples would be ignored: refused by line.
        let pc = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/pc.jsonl").path
        let p = try CLI.run(["score", "loss", "--run", model, "--data", pc, "--pair-field", "foo", "--out", dir.appendingPathComponent("l.csv").path])
        #expect(p.status == 1 && p.stderr.contains("pc.jsonl:1") && p.stderr.contains("the pair field 'foo' applies to plain text"), "\(p.stderr)")
    }

    @Test func aRunTrainedOnPairsRefusesSingleTexts() throws {
        let dir = try CLI.tempDir("messy-pairs")
        defer { try? fm.removeItem(at: dir) }
        let pairs = CLI.tiny.appendingPathComponent("pairs.jsonl").path
        let run = dir.appendingPathComponent("run").path
        let t = try CLI.run(["train", "--data", pairs, "--vocab", vocab, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1",
                             "--max-length", "32", "--out", run])
        #expect(t.status == 0, "\(t.stderr)")
        // The same examples without their hypothesis.
        let lines = try String(contentsOf: URL(fileURLWithPath: pairs), encoding: .utf8).split(separator: "\n").map { line -> String in
            var o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            o["hypothesis"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
        let single = try write(dir, "single.jsonl", lines.joined(separator: "\n") + "\n")
        for args in [["score", "el2n", "--run", run, "--data", single, "--max-length", "32", "--out", dir.appendingPathComponent("e.csv").path],
                     ["predict", "--run", run, "--data", single, "--max-length", "32", "--out", dir.appendingPathComponent("p.csv").path]] {
            let r = try CLI.run(args)
            #expect(r.status == 1 && r.stderr.contains("single.jsonl:1") && r.stderr.contains("was trained on text pairs"), "\(args[0]): \(r.stderr)")
        }
        let t2t = try CLI.run(["score", "tracin", "--run", run, "--data", pairs, "--test", single, "--max-length", "32",
                               "--out", dir.appendingPathComponent("t.csv").path])
        #expect(t2t.status == 1 && t2t.stderr.contains("single.jsonl:1") && t2t.stderr.contains("was trained on text pairs"), "\(t2t.stderr)")
        let ok = try CLI.run(["score", "el2n", "--run", run, "--data", pairs, "--max-length", "32", "--out", dir.appendingPathComponent("ok.csv").path])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func anExperimentOnOneLabelStopsBeforeWritingAnything() throws {
        let dir = try CLI.tempDir("messy-experiment")
        defer { try? fm.removeItem(at: dir) }
        let pos = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n").filter { $0.contains("\"pos\"") }
        let one = try write(dir, "one.jsonl", pos.joined(separator: "\n") + "\n")
        let out = dir.appendingPathComponent("exp")
        let e = try CLI.run(["experiment", "--train", one, "--test", one, "--vocab", vocab, "--layers", "1", "--hidden", "16", "--heads", "2",
                             "--max-length", "32", "--out", out.path])
        #expect(e.status == 1 && e.stderr.contains("one.jsonl: has one label ('pos')"), "\(e.stderr)")
        #expect(!fm.fileExists(atPath: out.path))
    }

    @Test func resumingATrainingRemovesTheTemporaryFilesOfTheInterruptedOne() throws {
        let dir = try CLI.tempDir("messy-tmp")
        defer { try? fm.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        // What a kill between a temporary file's write and its rename leaves behind.
        let ck = try #require(try fm.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("checkpoint-") }.sorted().last)
        let stray = [run.appendingPathComponent(".model.safetensors.tmp-1-2"), run.appendingPathComponent(ck).appendingPathComponent(".optimizer.safetensors.tmp-3-4")]
        for u in stray { try Data([1, 2, 3]).write(to: u) }
        let r = try CLI.trainTiny(run, extra: ["--resume"])
        #expect(r.status == 0, "\(r.stderr)")
        for u in stray { #expect(!fm.fileExists(atPath: u.path), "\(u.lastPathComponent) left behind") }
    }

    @Test func aSignalIgnoredByTheParentStaysIgnored() throws {
        // A background job of a non-interactive shell inherits SIGINT ignored: winnow keeps it so.
        let script = "trap '' INT; '\(CLI.binary.path)' bench --gemm-only --repeats 2 >/dev/null 2>&1 & p=$!; sleep 0.3; kill -INT $p; wait $p; echo $?"
        let r = try CLI.run(["-c", script], executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "exit \(r.stdout) \(r.stderr)")
    }

    @Test func benchRefusesValuesThatMeasureNothing() throws {
        for (args, says) in [(["--repeats", "0"], "--repeats must be at least 1"),
                             (["--reference-coretype", "Bogus"], "is not an OpenBLAS core type"),
                             (["--gemm-only", "--only", "forward"], "--only does not apply to --gemm-only"),
                             (["--profile", "--json"], "--profile prints a table")] {
            let r = try CLI.run(["bench"] + args)
            #expect(r.status == 2 && r.stderr.contains(says), "\(args): \(r.stderr)")
        }
        let help = try CLI.run(["prune", "--help"])
        #expect(help.stdout.contains("--then-select <then-select>") && help.stdout.contains("hard (its highest; the default) or") && !help.stdout.contains("moderate, random;"), "\(help.stdout)")
    }
}
