import Foundation
import Testing

/// `winnow experiment` and `winnow report` end to end on the tiny fixture.
@Suite(.serialized) struct ExperimentCLITests {
    /// A tiny experiment whose scoring run learns (77 % on the test file): a run that learned nothing is refused.
    static func experimentArgs(_ out: URL, seeds: Int = 2, extra: [String] = []) -> [String] {
        ["experiment", "--train", CLI.tiny.appendingPathComponent("train.jsonl").path, "--test", CLI.tiny.appendingPathComponent("test.jsonl").path,
         "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
         "--epochs", "6", "--batch-size", "16", "--lr", "1e-2", "--max-length", "32", "--score-checkpoints", "3",
         "--methods", "vog,el2n,forgetting,pvi", "--keep", "1.0,0.6", "--select", "hard,easy", "--seeds", String(seeds),
         "--keep-runs", "--out", out.path] + extra
    }

    /// The tiny encoder and training of the experiments below (scores from 3 checkpoints), before their own options.
    static let tinyArgs = ["experiment", "--train", CLI.tiny.appendingPathComponent("train.jsonl").path, "--test", CLI.tiny.appendingPathComponent("test.jsonl").path,
                           "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
                           "--epochs", "6", "--batch-size", "16", "--lr", "1e-2", "--max-length", "32", "--score-checkpoints", "3"]

    static func rows(_ dir: URL) throws -> [[String]] {
        try csv(dir.appendingPathComponent("results.csv"))
    }

    static func csv(_ url: URL) throws -> [[String]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Two score files hold the same rows and scores: every column equal but `score`, which is equal to within
    /// 1e-6 of its size. Byte-equal with Winnow's GEMM; with OpenBLAS's (WINNOW_ISA=avx2) a row's sums depend on
    /// its place in the batch (docs/contracts.md §6b), and the experiment scores in batches of its own size.
    static func sameScores(_ a: URL, _ b: URL) throws -> Bool {
        let x = try csv(a), y = try csv(b)
        guard x.count == y.count, x.count > 1, let s = x[0].firstIndex(of: "score"), x[0] == y[0] else { return false }
        for (r, q) in zip(x.dropFirst(), y.dropFirst()) {
            guard r.count == q.count, r.indices.allSatisfy({ $0 == s || r[$0] == q[$0] }),
                  let u = Double(r[s]), let v = Double(q[s]), abs(u - v) <= 1e-6 * max(abs(u), abs(v)) else { return false }
        }
        return true
    }

    /// `--score-epochs`: the scoring run trains that many epochs (its trainer state says so), the retrainings keep
    /// --epochs, and the full-data row of seed 0 is then a retraining of its own (not the scoring run).
    @Test func theScoringRunTrainsItsOwnEpochs() throws {
        let dir = try CLI.tempDir("experiment-score-epochs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e")
        let r = try CLI.run(Self.tinyArgs + ["--score-epochs", "9", "--keep", "1.0,0.6", "--seeds", "1", "--keep-runs", "--out", out.path])
        #expect(r.status == 0 && r.stderr.contains("full run (seed 0, 9 epochs,"), "\(r.stderr)")
        func epochs(_ run: URL) throws -> Double? {
            let state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("trainer_state.json"))) as? [String: Any])
            return (state["num_train_epochs"] as? NSNumber)?.doubleValue
        }
        #expect(try epochs(out.appendingPathComponent("full")) == 9)
        let runs = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("runs").path)
        let full = try #require(runs.first { $0.hasPrefix("full") }, "no full-data retraining in \(runs)")
        #expect(try epochs(out.appendingPathComponent("runs/\(full)")) == 6)
        let plan = try String(contentsOf: out.appendingPathComponent("plan.json"), encoding: .utf8)
        #expect(plan.contains("\"scoreEpochs\":9") || plan.contains("\"scoreEpochs\" : 9"), "\(plan)")
        let bad = try CLI.run(Self.tinyArgs + ["--score-epochs", "0", "--out", dir.appendingPathComponent("bad").path])
        #expect(bad.status == 2 && bad.stderr.contains("--score-epochs"), "\(bad.stderr)")
    }

    /// By default the scoring run trains --epochs and is the full-data row of seed 0 (not retrained); naming the same
    /// epochs with --score-epochs resumes that folder, other epochs are refused with the --score-epochs that resumes it.
    @Test func theScoringRunTrainsTheRetrainingsEpochsByDefault() throws {
        let dir = try CLI.tempDir("experiment-score-epochs-default")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e")
        let args = Self.tinyArgs + ["--keep", "1.0", "--seeds", "1", "--keep-runs", "--out", out.path]
        let r = try CLI.run(args)
        #expect(r.status == 0 && r.stderr.contains("full run (seed 0, 3 checkpoints"), "\(r.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("plan.json"))) as? [String: Any])
        #expect(plan["scoreEpochs"] == nil, "\(plan)")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("runs").path)) ?? []
        #expect(!runs.contains { $0.hasPrefix("full") }, "the scoring run is the full-data row of seed 0, not retrained: \(runs)")
        let same = try CLI.run(args + ["--score-epochs", "6"])
        #expect(same.status == 0 && same.stderr.contains("resuming"), "\(same.stderr)")
        let other = try CLI.run(args + ["--score-epochs", "8"])
        #expect(other.status == 1 && other.stderr.contains("scoreEpochs: 6 there, 8 now; --score-epochs 6 resumes it"), "\(other.stderr)")
    }

    @Test func experimentWritesResultsResumesAndRetrainsIdentically() throws {
        let base = try CLI.tempDir("experiment")
        defer { try? FileManager.default.removeItem(at: base) }
        let a = base.appendingPathComponent("a"), b = base.appendingPathComponent("b")
        let r = try CLI.run(Self.experimentArgs(a))
        #expect(r.status == 0, "experiment failed: \(r.stderr)")
        let rows = try Self.rows(a)
        #expect(rows.first == ["method", "normalize", "select", "sampling", "keep", "seed", "accuracy", "macro_f1", "train_examples"])
        // Per seed: full + random + 4 methods x 2 preferences at keep 0.6.
        #expect(rows.count == 1 + 2 * (1 + 1 + 4 * 2), "rows: \(rows.count)")
        for row in rows.dropFirst() {
            #expect(row.count == 9)
            let acc = Double(row[6])!, f1 = Double(row[7])!
            #expect(acc >= 0 && acc <= 1 && f1 >= 0 && f1 <= 1)
            #expect(Int(row[8]) == (row[0] == "full" ? 150 : 90), "\(row)")     // round(0.6 * 150)
        }
        #expect(Set(rows.dropFirst().map { $0[0] }) == ["full", "random", "vog", "el2n", "forgetting", "pvi"])
        #expect(r.stdout.contains("±") && r.stdout.contains("report:"))
        let fm = FileManager.default
        for f in ["plan.json", "init/model.safetensors", "full/dynamics.safetensors", "null/model.safetensors",
                  "scores/vog.csv", "scores/pvi.csv", "report.html"] {
            #expect(fm.fileExists(atPath: a.appendingPathComponent(f).path), "missing \(f)")
        }

        // A subset equals what `winnow prune` writes from the same scores.
        let subset = a.appendingPathComponent("subsets/vog-dataset-hard-top-k0.6-s0.jsonl")
        let pruned = base.appendingPathComponent("pruned.jsonl")
        let p = try CLI.run(["prune", "--scores", a.appendingPathComponent("scores/vog.csv").path, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path,
                             "--keep", "0.6", "--select", "hard", "--sampling", "top", "--normalize", "dataset", "--per-label", "--out", pruned.path])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(try Data(contentsOf: subset) == Data(contentsOf: pruned))

        // Rerunning resumes: nothing retrained, same results.
        let before = try Data(contentsOf: a.appendingPathComponent("results.csv"))
        let again = try CLI.run(Self.experimentArgs(a))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("resuming") && !again.stderr.contains("[1/"))
        #expect(try Data(contentsOf: a.appendingPathComponent("results.csv")) == before)

        // Rows lost (as after a kill) are recomputed to the same values.
        let lines = String(decoding: before, as: UTF8.self).split(separator: "\n")
        try (lines.dropLast(5).joined(separator: "\n") + "\n").write(to: a.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
        let resumed = try CLI.run(Self.experimentArgs(a))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("[16/20]") && !resumed.stderr.contains("[15/20]"))
        #expect(try Data(contentsOf: a.appendingPathComponent("results.csv")) == before)

        // A second experiment with the same seeds retrains identically: same results, same weights.
        let r2 = try CLI.run(Self.experimentArgs(b))
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try Data(contentsOf: b.appendingPathComponent("results.csv")) == before)
        for name in ["el2n-dataset-easy-top-k0.6-s1", "random-k0.6-s0", "full-s1"] {
            let wa = a.appendingPathComponent("runs/\(name)/model.safetensors"), wb = b.appendingPathComponent("runs/\(name)/model.safetensors")
            #expect(fm.fileExists(atPath: wa.path), "missing run \(name)")
            #expect(try Data(contentsOf: wa) == Data(contentsOf: wb), "\(name) differs between identical experiments")
        }

        // Other options in the same folder are refused.
        let other = try CLI.run(Self.experimentArgs(a, seeds: 3))
        #expect(other.status == 1 && other.stderr.contains("other options (plan.json: seeds: 2 there, 3 now)"), "\(other.stderr)")

        // A score file that lost rows is refused on resuming, not used for subsets of another size.
        let vog = a.appendingPathComponent("scores/vog.csv")
        let vogText = try String(contentsOf: vog, encoding: .utf8)
        let vogLines = vogText.split(separator: "\n")
        try (vogLines.prefix(76).joined(separator: "\n") + "\n").write(to: vog, atomically: true, encoding: .utf8)
        try (lines.dropLast(5).joined(separator: "\n") + "\n").write(to: a.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
        let cut = try CLI.run(Self.experimentArgs(a))
        #expect(cut.status == 1 && cut.stderr.contains("scores/vog.csv: scores 75 example(s), not the 150 of the training file"), "\(cut.stderr)")
        #expect(try Self.rows(a).count == lines.count - 5, "rows were added from the cut scores")

        // A setting and seed measured twice (results joined by hand) is named, not counted as a third seed.
        try vogText.write(to: vog, atomically: true, encoding: .utf8)
        try (String(decoding: before, as: UTF8.self) + String(lines[1]) + "\n").write(to: a.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
        let twice = try CLI.run(["report", "--experiment", a.path, "--out", base.appendingPathComponent("twice.html").path])
        #expect(twice.status == 1 && twice.stderr.contains("results.csv:\(lines.count + 1): repeats the setting and seed of line 2"), "\(twice.stderr)")
        #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent("twice.html").path))
        // An accuracy that is not a fraction (nan, 1.5: an edited file) is named, not charted.
        var fields = String(lines[1]).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for bad in ["nan", "1.5", "-0.1"] {
            fields[6] = bad
            try ([String(lines[0]), fields.joined(separator: ",")].joined(separator: "\n") + "\n").write(to: a.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
            let r = try CLI.run(["report", "--experiment", a.path, "--out", base.appendingPathComponent("bad.html").path])
            #expect(r.status == 1 && r.stderr.contains("results.csv:2: accuracy must be a fraction in [0, 1], not \(bad)"), "\(bad): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent("bad.html").path))
    }

    @Test func anExperimentIsWrittenOnlyIntoItsOwnFolder() throws {
        let fm = FileManager.default
        let base = try CLI.tempDir("experiment-out")
        defer { try? FileManager.default.removeItem(at: base) }
        // A folder holding something else (here a run) is not taken over.
        let run = base.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let before = try FileManager.default.contentsOfDirectory(atPath: run.path).sorted()
        let r = try CLI.run(Self.experimentArgs(run))
        #expect(r.status == 1 && r.stderr.contains("holds files that are not an experiment's") && r.stderr.contains("no plan.json"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run.path).sorted() == before)
        // A folder with only hidden files is empty enough; what a stopped start left (init/, here of another model) is made anew.
        let stopped = base.appendingPathComponent("stopped")
        try fm.createDirectory(at: stopped.appendingPathComponent("init"), withIntermediateDirectories: true)
        try "x".write(to: stopped.appendingPathComponent(".DS_Store"), atomically: true, encoding: .utf8)
        let other = CLI.tiny.appendingPathComponent("run")     // hidden 32, 2 layers; the experiment's model is hidden 16, 1 layer
        for f in ["model.safetensors", "config.json", "vocab.txt"] {
            try fm.copyItem(at: other.appendingPathComponent(f), to: stopped.appendingPathComponent("init/\(f)"))
        }
        let s = try CLI.run(Self.experimentArgs(stopped, seeds: 1))
        #expect(s.status == 0, "\(s.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: stopped.appendingPathComponent("full/config.json"))) as! [String: Any]
        #expect(config["hidden_size"] as? Int == 16, "\(config)")
        // The same setting twice is refused, not a crash.
        let twice = try CLI.run(Self.tinyArgs + ["--settings", "el2n:hard,el2n:hard", "--out", base.appendingPathComponent("twice").path])
        #expect(twice.status == 2 && twice.stderr.contains("el2n:hard:top:dataset is given twice"), "\(twice.stderr)")
        // A file is named as such.
        let file = base.appendingPathComponent("f.jsonl")
        try "x\n".write(to: file, atomically: true, encoding: .utf8)
        let f = try CLI.run(Self.experimentArgs(file))
        #expect(f.status == 1 && f.stderr.contains("f.jsonl is a file; an experiment is written into a folder"), "\(f.stderr)")
        #expect(try String(contentsOf: file, encoding: .utf8) == "x\n")
    }

    @Test func labelNoiseReportsTheSimilarityIndex() throws {
        let dir = try CLI.tempDir("noise")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["experiment", "--train", CLI.tiny.appendingPathComponent("train.jsonl").path,
                             "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "10", "--batch-size", "16", "--lr", "1e-2",
                             "--max-length", "32", "--methods", "el2n,forgetting", "--keep", "1.0,0.8", "--seeds", "1",
                             "--noise", "0.2", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        // 30 of 150 labels flipped, each to the other label; every other line verbatim.
        let flips = try String(contentsOf: dir.appendingPathComponent("flips.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(flips.count == 30)
        let original = try String(contentsOf: CLI.tiny.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n")
        let noisy = try String(contentsOf: dir.appendingPathComponent("train-noisy.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(noisy.count == original.count)
        let flipped = Set(flips.map { Int($0.prefix { $0 != "," })! })
        for (i, (o, n)) in zip(original, noisy).enumerated() {
            if flipped.contains(i + 1) {
                let lo = try JSONSerialization.jsonObject(with: Data(o.utf8)) as! [String: Any]
                let ln = try JSONSerialization.jsonObject(with: Data(n.utf8)) as! [String: Any]
                #expect(lo["label"] as! String != ln["label"] as! String)
                #expect(lo["text"] as! String == ln["text"] as! String)
            } else {
                #expect(o == n)
            }
        }
        let noise = try String(contentsOf: dir.appendingPathComponent("noise.csv"), encoding: .utf8).split(separator: "\n")
        #expect(noise.first == "method,flipped,top_k,overlap,similarity")
        #expect(noise.count == 3)
        for row in noise.dropFirst() {
            let f = row.split(separator: ",")
            let overlap = Int(f[3])!, sim = Double(f[4])!
            #expect(Int(f[1]) == 30 && overlap >= 0 && overlap <= 30 && abs(sim - Double(overlap) / 30) < 1e-6)
        }
        #expect(r.stdout.contains("similarity"))
    }

    @Test func reportLoadsInHeadlessChromiumWithItsCharts() throws {
        let dir = try CLI.tempDir("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The training file with SNLI-style annotator labels on every other line (every third of them disputed).
        let train = dir.appendingPathComponent("train-votes.jsonl")
        var withVotes = ""
        for (i, line) in try String(contentsOf: CLI.tiny.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n").enumerated() {
            var o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let gold = o["label"] as! String, other = gold == "pos" ? "neg" : "pos"
            if i % 2 == 0 { o["annotator_labels"] = i % 3 == 0 ? [gold, other, gold, other, gold] : [gold, gold, gold, gold, other] }
            withVotes += String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        try withVotes.write(to: train, atomically: true, encoding: .utf8)
        let r = try CLI.run(["experiment", "--train", train.path,
                             "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "6", "--batch-size", "16", "--lr", "1e-2",
                             "--max-length", "32", "--methods", "vog,el2n", "--keep", "1.0,0.7,0.5", "--seeds", "2", "--no-report", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let html = dir.appendingPathComponent("custom.html")
        let rep = try CLI.run(["report", "--experiment", dir.path, "--out", html.path])
        #expect(rep.status == 0, "\(rep.stderr)")
        let text = try String(contentsOf: html, encoding: .utf8)
        // Self-contained: no external references.
        #expect(!text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        #expect(!text.contains("https://") && !text.contains("<link") && !text.contains("src="))
        for needle in ["Accuracy against keep fraction", "Rank correlations", "Scores against annotator agreement", "Score distributions per class",
                       "hardest", "easiest", "Training curves"] {
            #expect(text.contains(needle), "report lacks \(needle)")
        }
        // Both scores over the 75 voted lines, 25 of them (i % 6 == 0) disputed.
        #expect(text.contains("<tr><td>vog</td><td>75</td>") && text.contains("<tr><td>el2n</td><td>75</td>"), "agreement rows")
        #expect(text.contains("<td>0.333</td></tr>"))
        // One accuracy chart (hard, dataset, top) + a histogram per score + the training curves.
        let svgCount = text.components(separatedBy: "<svg class=\"chart\"").count - 1
        #expect(svgCount == 4, "charts: \(svgCount)")
        // Headless Chromium: loads without console messages, its script counts the charts, PNG written.
        let png = dir.appendingPathComponent("report.png")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [CLI.repo.appendingPathComponent("scripts/render-report.sh").path, html.path, png.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let so = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let se = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "render-report failed: \(se)")
        #expect(so.contains("4 charts, no console messages"), "\(so)")
        let bytes = try Data(contentsOf: png)
        #expect(bytes.count > 10_000 && bytes.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
    }

    @Test func explicitSettingsRetrainTheirOwnRowsInOneChart() throws {
        let dir = try CLI.tempDir("settings")
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["experiment", "--train", CLI.tiny.appendingPathComponent("train.jsonl").path,
                    "--test", CLI.tiny.appendingPathComponent("test.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                    "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "6", "--batch-size", "16", "--lr", "1e-2",
                    "--max-length", "32", "--score-checkpoints", "3", "--settings", "forgetting:easy,vog:hard:softmax,el2n:easy:top:class",
                    "--keep", "1.0,0.6", "--seeds", "1", "--out", dir.path]
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let configs = Set(try Self.rows(dir).dropFirst().map { $0[0...3].joined(separator: ",") })
        #expect(configs == ["full,-,-,-", "random,-,random,-", "forgetting,dataset,easy,top", "vog,dataset,hard,softmax", "el2n,class,easy,top"], "\(configs)")
        // Only the settings' scores are computed.
        let scores = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("scores").path).filter { $0.hasSuffix(".csv") }
        #expect(Set(scores) == ["forgetting.csv", "vog.csv", "el2n.csv"], "\(scores)")
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("Test accuracy (%): each setting against random") && html.contains("vog hard softmax") && html.contains("el2n easy top (class)"))
        #expect(html.components(separatedBy: "aria-label=\"Test accuracy (%):").count - 1 == 1, "one accuracy chart")
        let bad = try CLI.run(Array(args.dropLast(2)) + ["--settings", "forgetting:sideways", "--out", dir.appendingPathComponent("x").path])
        #expect(bad.status != 0 && bad.stderr.contains("'sideways' is not hard, easy or moderate"), "\(bad.stderr)")
    }

    /// Without --methods or --settings the experiment runs the recommended setting: forgetting, its ties broken
    /// by the highest cartography variability, per label; its subset is what `winnow score cartography` and
    /// `winnow prune --then-by --then-column variability --per-label` give.
    @Test func theDefaultSettingBreaksForgettingTiesByVariability() throws {
        let dir = try CLI.tempDir("recommended")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = CLI.tiny.appendingPathComponent("train.jsonl")
        let args = Self.tinyArgs + ["--keep", "1.0,0.5", "--seeds", "1", "--no-report", "--out", dir.path]
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let configs = Set(try Self.rows(dir).dropFirst().map { $0[0...3].joined(separator: ",") })
        #expect(configs == ["full,-,-,-", "random,-,random,-", "forgetting+cartography.variability-hard,dataset,easy,top"], "\(configs)")
        #expect(r.stdout.contains("forgetting+cartography.variability-hard dataset"), "\(r.stdout)")
        let cartography = dir.appendingPathComponent("cartography.csv")
        let s = try CLI.run(["score", "cartography", "--run", dir.appendingPathComponent("full").path, "--data", train.path, "--out", cartography.path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Data(contentsOf: cartography) == Data(contentsOf: dir.appendingPathComponent("scores/cartography.csv")))
        let pruned = dir.appendingPathComponent("pruned.jsonl")
        let p = try CLI.run(["prune", "--scores", dir.appendingPathComponent("scores/forgetting.csv").path, "--then-by", cartography.path,
                             "--then-column", "variability", "--data", train.path, "--keep", "0.5", "--per-label", "--out", pruned.path])
        #expect(p.status == 0, "\(p.stderr)")
        let subset = dir.appendingPathComponent("subsets/forgetting+cartography.variability-hard-dataset-easy-top-k0.5-s0.jsonl")
        #expect(try Data(contentsOf: subset) == Data(contentsOf: pruned))
        // The tie-break changes the subset: ties broken by input order keep other examples.
        let byOrder = dir.appendingPathComponent("by-order.jsonl")
        #expect(try CLI.run(["prune", "--scores", dir.appendingPathComponent("scores/forgetting.csv").path, "--data", train.path,
                             "--keep", "0.5", "--per-label", "--out", byOrder.path]).status == 0)
        #expect(try Data(contentsOf: subset) != Data(contentsOf: byOrder))
        // Rerun under other settings: refused, naming both as the command line writes them.
        let other = try CLI.run(Array(args.dropLast(2)) + ["--settings", "forgetting:easy+el2n-epoch1:hard", "--out", dir.path])
        #expect(other.status != 0 && other.stderr.contains("settings: forgetting:easy:top:dataset+cartography.variability:hard there, "
                                                             + "forgetting:easy:top:dataset+el2n-epoch1:hard now"), "\(other.stderr)")
        #expect(!other.stderr.contains("\"thenBy\""), "\(other.stderr)")
        // Tie-breaks that cannot be read as asked are refused with the setting named.
        for (setting, message) in [("forgetting:easy+vog-epoch1:hard", "only el2n, loss, margin, grand and tracin"),
                                   ("forgetting:easy:softmax+el2n:hard", "takes top-k"), ("forgetting:easy+el2n:up", "'up' is not hard or easy"),
                                   ("forgetting:easy+el2n:moderate", "'moderate' is not hard or easy"),
                                   ("forgetting:moderate+el2n:hard", "a tie-break goes with hard or easy"),
                                   ("forgetting:easy+aum-last:hard", "aum-last: only el2n, loss, margin, grand and tracin"),
                                   ("forgetting:easy+cartography.ambiguity:hard", "cartography's score file has no column 'ambiguity'"),
                                   ("el2n:moderate:stratified", "moderate takes top, softmax or linear")] {
            let bad = try CLI.run(Array(args.dropLast(2)) + ["--settings", setting, "--out", dir.appendingPathComponent("x").path])
            #expect(bad.status == 64 || bad.status == 2, "\(setting)")
            #expect(bad.stderr.contains(message), "\(setting): \(bad.stderr)")
        }
    }

    /// The earlier default, the hardest EL2N at the end of the first epoch breaking forgetting's ties, is one
    /// `--settings` away; its subset is what `winnow score el2n --checkpoints` and `winnow prune --then-by` give.
    @Test func anEpochOneEL2NTieBreakReadsTheCheckpointNearestTheFirstEpoch() throws {
        let dir = try CLI.tempDir("tie-epoch1")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = CLI.tiny.appendingPathComponent("train.jsonl")
        let r = try CLI.run(Self.tinyArgs + ["--settings", "forgetting:easy+el2n-epoch1:hard", "--keep", "1.0,0.5", "--seeds", "1", "--no-report", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let configs = Set(try Self.rows(dir).dropFirst().map { $0[0...3].joined(separator: ",") })
        #expect(configs == ["full,-,-,-", "random,-,random,-", "forgetting+el2n-epoch1-hard,dataset,easy,top"], "\(configs)")
        // 150 examples in batches of 16: 10 steps an epoch, checkpoints at 20, 40, 60; the first epoch ends nearest 20,
        // which is epoch 2, and the experiment says so.
        #expect(r.stderr.contains("el2n-epoch1 reads checkpoint-20, epoch 2.00"), "\(r.stderr)")
        let el2n = dir.appendingPathComponent("el2n-20.csv")
        let s = try CLI.run(["score", "el2n", "--run", dir.appendingPathComponent("full").path, "--data", train.path, "--checkpoints", "20",
                             "--max-length", "32", "--out", el2n.path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Self.sameScores(el2n, dir.appendingPathComponent("scores/el2n-epoch1.csv")))
        let pruned = dir.appendingPathComponent("pruned.jsonl")
        let p = try CLI.run(["prune", "--scores", dir.appendingPathComponent("scores/forgetting.csv").path, "--then-by", el2n.path,
                             "--data", train.path, "--keep", "0.5", "--per-label", "--out", pruned.path])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("subsets/forgetting+el2n-epoch1-hard-dataset-easy-top-k0.5-s0.jsonl")) == Data(contentsOf: pruned))
    }

    /// A tie-break read at the scoring run's last checkpoint (`-last`) is `winnow score --checkpoints last`.
    @Test func aTieBreakReadsTheLastCheckpoint() throws {
        let dir = try CLI.tempDir("tie-last")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = CLI.tiny.appendingPathComponent("train.jsonl")
        let r = try CLI.run(Self.tinyArgs + ["--settings", "forgetting:easy+el2n-last:hard", "--keep", "1.0,0.5", "--seeds", "1", "--no-report", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let configs = Set(try Self.rows(dir).dropFirst().map { $0[0...3].joined(separator: ",") })
        #expect(configs.contains("forgetting+el2n-last-hard,dataset,easy,top"), "\(configs)")
        let el2n = dir.appendingPathComponent("el2n-last.csv")
        #expect(try CLI.run(["score", "el2n", "--run", dir.appendingPathComponent("full").path, "--data", train.path, "--checkpoints", "last",
                             "--max-length", "32", "--out", el2n.path]).status == 0)
        #expect(try Self.sameScores(el2n, dir.appendingPathComponent("scores/el2n-last.csv")))
    }

    /// Below keep 0.5 the default is the recommended setting alone (it beat random at keep 0.3 too), and no note
    /// is printed; explicit settings are left as given.
    @Test func aKeepBelowOneHalfRunsTheRecommendedSetting() throws {
        let dir = try CLI.tempDir("below-half")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(Self.tinyArgs + ["--keep", "1.0,0.3", "--seeds", "1", "--no-report", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("forgetting alone"), "\(r.stderr)")
        let configs = Set(try Self.rows(dir).dropFirst().map { $0[0...3].joined(separator: ",") })
        #expect(configs == ["full,-,-,-", "random,-,random,-", "forgetting+cartography.variability-hard,dataset,easy,top"], "\(configs)")
        let own = try CLI.run(Self.tinyArgs + ["--keep", "0.3", "--seeds", "1", "--no-report", "--settings", "forgetting:easy+el2n-epoch1:hard,forgetting:easy",
                                               "--out", dir.appendingPathComponent("own").path])
        #expect(own.status == 0, "\(own.stderr)")
        #expect(Set(try Self.rows(dir.appendingPathComponent("own")).dropFirst().map { $0[0] }) == ["random", "forgetting+el2n-epoch1-hard", "forgetting"])
    }

    /// --per-label: every subset, random included, keeps the training set's class mix (within one example
    /// per label), and the report says how the subsets were chosen.
    @Test func perLabelSubsetsKeepTheClassMix() throws {
        let dir = try CLI.tempDir("per-label")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = CLI.tiny.appendingPathComponent("train.jsonl")
        let args = Self.tinyArgs + ["--settings", "el2n:hard:top,el2n:easy:softmax", "--keep", "1.0,0.35", "--seeds", "1", "--per-label", "--out", dir.path]
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        func labelCounts(_ url: URL) throws -> [String: Int] {
            var c: [String: Int] = [:]
            for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                c[o["label"] as! String, default: 0] += 1
            }
            return c
        }
        let all = try labelCounts(train)
        let subsets = try FileManager.default.contentsOfDirectory(at: dir.appendingPathComponent("subsets"), includingPropertiesForKeys: nil)
        #expect(subsets.count == 3, "random and two settings: \(subsets.map(\.lastPathComponent))")
        for url in subsets {
            let kept = try labelCounts(url)
            for (label, n) in all {
                #expect(abs(Double(kept[label] ?? 0) - 0.35 * Double(n)) < 1, "\(url.lastPathComponent): \(label) \(kept[label] ?? 0) of \(n)")
            }
        }
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("every subset selected per label"))
        // The plan records the option: resuming without it is a different plan.
        let other = try CLI.run(Array(args.map { $0 == "--per-label" ? "--no-per-label" : $0 }))
        #expect(other.status != 0 && other.stderr.contains("holds an experiment with other options"), "\(other.stderr)")
        // Resuming with it is the same plan.
        let again = try CLI.run(args)
        #expect(again.status == 0 && (again.stdout + again.stderr).contains("resuming"), "\(again.stderr)")
    }

    /// A scoring run that learned nothing stops the experiment unless --force; with it, the table and the
    /// report say so. (lr 1e-9: the model stays at its initialisation.)
    @Test func aScoringRunThatLearnedNothingIsRefusedUnlessForced() throws {
        let dir = try CLI.tempDir("experiment-nothing")
        defer { try? FileManager.default.removeItem(at: dir) }
        func args(_ out: URL) -> [String] {
            ["experiment", "--train", CLI.tiny.appendingPathComponent("train.jsonl").path, "--test", CLI.tiny.appendingPathComponent("test.jsonl").path,
             "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--layers", "1", "--hidden", "16", "--heads", "2",
             "--epochs", "1", "--batch-size", "16", "--lr", "1e-9", "--max-length", "32", "--score-checkpoints", "2",
             "--methods", "el2n", "--keep", "1.0,0.6", "--seeds", "1", "--out", out.path]
        }
        let refused = try CLI.run(args(dir.appendingPathComponent("a")))
        #expect(refused.status == 1 && refused.stderr.contains("learned nothing") && refused.stderr.contains("--force"), "\(refused.stderr)")
        // The advice names what the run used, not a default it already had.
        #expect(refused.stderr.contains("it ran at --lr 1e-09 for 1 epoch"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/results.csv").path))
        // Its report says why it stopped, and that the rerun goes into another --out.
        #expect(refused.stderr.contains("another --out"), "\(refused.stderr)")
        let stoppedReport = dir.appendingPathComponent("a-report.html")
        #expect(try CLI.run(["report", "--experiment", dir.appendingPathComponent("a").path, "--out", stoppedReport.path]).status == 0)
        let stopped = try String(contentsOf: stoppedReport, encoding: .utf8)
        #expect(stopped.contains("The experiment stopped before pruning"))
        // Nothing retrained: said once, without an empty table under it.
        #expect(stopped.contains("No results yet.") && !stopped.contains("<th>method</th><th>normalize</th>"))
        let forced = try CLI.run(args(dir.appendingPathComponent("b")) + ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        // Rerun without --force, a forced experiment goes on (its retrainings already read those scores); the
        // report does not say it stopped before pruning.
        let rerun = try CLI.run(args(dir.appendingPathComponent("b")))
        #expect(rerun.status == 0 && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("b/stopped.txt").path), "\(rerun.stderr)")
        #expect(rerun.stderr.contains("an earlier run of this experiment was forced on") && !rerun.stderr.contains("(--force)"), "\(rerun.stderr)")
        #expect(forced.stdout.contains("WARNING: the scoring run itself learned nothing") && forced.stdout.contains("learned nothing"))
        let report = try String(contentsOf: dir.appendingPathComponent("b/report.html"), encoding: .utf8)
        #expect(report.contains("The scoring run learned nothing"))
        // Every point of the chart averages in retrainings that learned nothing: drawn as hollow rings with a legend key,
        // and the full-data point (each line's keep 1) named under the chart as well.
        #expect(report.contains("r=\"5\" fill=\"#fff\"") && report.contains("learned nothing in a run"))
        #expect(report.contains("full data (every line&#39;s keep-1 point) at keep 1 (1 of 1)"), "\(report)")
        // Its scores say so too.
        let score = try CLI.run(["score", "el2n", "--run", dir.appendingPathComponent("b/full").path, "--data",
                                 CLI.tiny.appendingPathComponent("train.jsonl").path, "--max-length", "32", "--out", dir.appendingPathComponent("s.csv").path])
        #expect(score.status == 0 && score.stderr.contains("WARNING: the run's final model learned nothing"), "\(score.stderr)")
        // A run that learned its data gives no warning.
        let good = try CLI.run(["score", "el2n", "--run", CLI.tiny.appendingPathComponent("run").path, "--data",
                                CLI.tiny.appendingPathComponent("train.jsonl").path, "--max-length", "32", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(good.status == 0 && !good.stderr.contains("learned nothing"), "\(good.stderr)")
        // eval says it too: a warning on stderr and learned_nothing in its JSON; the good run gets neither.
        func eval(_ run: URL) throws -> (CLIResult, [String: Any]) {
            let e = try CLI.run(["eval", "--run", run.path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path, "--max-length", "32", "--json"])
            return (e, (try? JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]) ?? [:])
        }
        let (bad, badJSON) = try eval(dir.appendingPathComponent("b/full"))
        #expect(bad.status == 0 && bad.stderr.contains("WARNING: this model learned nothing"), "\(bad.stderr)")
        let p = try CLI.run(["predict", "--run", dir.appendingPathComponent("b/full").path, "--data", CLI.tiny.appendingPathComponent("test.jsonl").path,
                             "--max-length", "32", "--out", dir.appendingPathComponent("p.csv").path])
        #expect(p.status == 0 && p.stderr.contains("WARNING: this model learned nothing"), "\(p.stderr)")
        #expect(badJSON["learned_nothing"] as? Bool == true, "\(bad.stdout)")
        let (fine, fineJSON) = try eval(CLI.tiny.appendingPathComponent("run"))
        #expect(fine.status == 0 && !fine.stderr.contains("learned nothing"), "\(fine.stderr)")
        #expect(fineJSON["learned_nothing"] as? Bool == false && (fineJSON["largest_predicted_share"] as? Double ?? 1) < 0.95, "\(fine.stdout)")
    }

    /// What an experiment refuses before writing anything, and what it says when its test file cannot tell.
    @Test func refusalsBeforeAnythingIsWrittenAndACheckThatCannotTell() throws {
        let dir = try CLI.tempDir("experiment-refusals")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let myvocab = dir.appendingPathComponent("myvocab.txt")
        try fm.copyItem(at: CLI.tiny.appendingPathComponent("vocab.txt"), to: myvocab)
        let cases: [([String], Int32, String)] = [
            (["--methods", "el2n", "--keep", "0.5,0.50001"], 2, "0.5 is given twice"),
            (["--methods", "el2n", "--keep", "0.001"], 1, "keeps none"),
            (["--settings", "forgetting:easy+grand:hard", "--params", "nosuchprefix"], 1, "--params"),
            (["--methods", "el2n", "--noise", "0.001"], 1, "flips no label"),
            (["--settings", "el2n:hard:stratified,el2n:easy:stratified"], 2, "select the same examples"),
            (["--methods", "el2n", "--keep", "0.7,,0.5"], 2, "has an empty entry"),
            (["--methods", "el2n", "--full-seeds", "2"], 2, "must be from 1 to --seeds (1), not 2"),
        ]
        for (i, (extra, status, message)) in cases.enumerated() {
            let out = dir.appendingPathComponent("x\(i)")
            let r = try CLI.run(Self.tinyArgs + ["--seeds", "1", "--out", out.path] + extra)
            #expect(r.status == status && r.stderr.contains(message), "\(extra): \(r.stderr)")
            #expect(!fm.fileExists(atPath: out.appendingPathComponent("plan.json").path), "\(extra) wrote plan.json")
        }
        var named = Self.tinyArgs
        named[named.firstIndex(of: "--vocab")! + 1] = myvocab.path
        let v = try CLI.run(named + ["--methods", "el2n", "--out", dir.appendingPathComponent("v").path])
        #expect(v.status == 2 && v.stderr.contains("not named vocab.txt"), "\(v.stderr)")
        // A cross product keeps one of the settings that select alike (easy and hard stratified: one row).
        let cross = dir.appendingPathComponent("cross")
        let c = try CLI.run(Self.tinyArgs + ["--methods", "el2n", "--select", "hard,easy", "--sampling", "stratified", "--keep", "0.5", "--seeds", "1", "--out", cross.path])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try Self.rows(cross).filter { $0[0] == "el2n" }.count == 1)
        // A test file of one label: the learning check cannot tell, and the experiment and report say so.
        let lines = try String(contentsOf: CLI.tiny.appendingPathComponent("test.jsonl"), encoding: .utf8).split(separator: "\n").filter { $0.contains("\"neg\"") }
        let skew = dir.appendingPathComponent("skew.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: skew)
        var skewed = Self.tinyArgs
        skewed[skewed.firstIndex(of: "--test")! + 1] = skew.path
        let s = try CLI.run(skewed + ["--methods", "el2n", "--keep", "0.5", "--seeds", "1", "--out", dir.appendingPathComponent("s").path])
        #expect(s.status == 0 && (s.stdout + s.stderr).contains("cannot tell whether the scoring run learned"), "\(s.stdout)\(s.stderr)")
        let report = try String(contentsOf: dir.appendingPathComponent("s/report.html"), encoding: .utf8)
        #expect(report.contains("The learning check cannot tell"))
        // report --out never replaces an input file.
        let copy = dir.appendingPathComponent("test-copy.jsonl")
        try fm.copyItem(at: skew, to: copy)
        let r = try CLI.run(["report", "--experiment", dir.appendingPathComponent("s").path, "--out", copy.path])
        #expect(r.status == 2 && r.stderr.contains("not an HTML page"), "\(r.stderr)")
        #expect(try Data(contentsOf: copy) == Data(contentsOf: skew))
    }
}
