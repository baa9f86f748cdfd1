import Foundation
import Testing

/// What a user's own data and score files meet: pair fields missing from the first line, score files
/// without labels or in another row order, ids holding line breaks, unlabelled lines to predict,
/// transformers' default label names, shards of different scorings, proponents by sign.
@Suite(.serialized) struct DataAndSelectionCLITests {
    let fm = FileManager.default
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path

    /// A trained tiny run and its EL2N scores, in a fresh folder.
    func runAndScores(_ name: String) throws -> (dir: URL, run: String, scores: URL) {
        let dir = try CLI.tempDir(name)
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let scores = dir.appendingPathComponent("el2n.csv")
        let s = try CLI.run(["score", "el2n", "--run", run.path, "--data", train, "--max-length", "32", "--out", scores.path])
        #expect(s.status == 0, "\(s.stderr)")
        return (dir, run.path, scores)
    }

    func rows(_ url: URL) throws -> [String] { try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init) }

    @Test func aPairFieldMissingFromTheFirstLineIsNamedNotDropped() throws {
        let dir = try CLI.tempDir("pair-first")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("pairs.jsonl")
        var lines = try String(contentsOf: CLI.tiny.appendingPathComponent("pairs.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        var first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let pairKey = try #require(["text_pair", "sentence2", "hypothesis"].first { first[$0] != nil })
        first[pairKey] = nil
        lines[0] = String(decoding: try JSONSerialization.data(withJSONObject: first, options: [.sortedKeys]), as: UTF8.self)
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        let r = try CLI.run(["train", "--data", data.path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--out", out.path,
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "1", "--max-length", "32"])
        #expect(r.status == 1 && r.stderr.contains("pairs.jsonl:2") && r.stderr.contains("pair field '\(pairKey)'"), "\(r.stderr)")
    }

    @Test func pruneReadsScoreFilesInAnyRowOrderAndNeedsLabelsToSelectPerLabel() throws {
        let (dir, _, scores) = try runAndScores("prune-order")
        defer { try? fm.removeItem(at: dir) }
        let all = try rows(scores)
        // The same rows shuffled (header kept): top-k keeps the same lines, ties broken in data order.
        var body = Array(all.dropFirst())
        var rng = SystemRandomNumberGenerator()
        body.shuffle(using: &rng)
        let shuffled = dir.appendingPathComponent("shuffled.csv")
        try ([all[0]] + body).joined(separator: "\n").appending("\n").write(to: shuffled, atomically: true, encoding: .utf8)
        for select in ["easy", "hard"] {
            let a = dir.appendingPathComponent("a.jsonl"), b = dir.appendingPathComponent("b.jsonl")
            #expect(try CLI.run(["prune", "--scores", scores.path, "--data", train, "--keep", "0.4", "--select", select, "--out", a.path]).status == 0)
            #expect(try CLI.run(["prune", "--scores", shuffled.path, "--data", train, "--keep", "0.4", "--select", select, "--out", b.path]).status == 0)
            #expect(try Data(contentsOf: a) == Data(contentsOf: b), "\(select): the row order of the score file changed the selection")
        }
        // Without a label column, per-label selection and class z-scores are refused, not done on one group.
        let header = all[0].split(separator: ",").map(String.init)
        let li = try #require(header.firstIndex(of: "line")), si = try #require(header.firstIndex(of: "score"))
        let bare = dir.appendingPathComponent("bare.csv")
        try (["line,score"] + all.dropFirst().map { r in let f = r.split(separator: ","); return "\(f[li]),\(f[si])" })
            .joined(separator: "\n").appending("\n").write(to: bare, atomically: true, encoding: .utf8)
        for extra in [["--per-label"], ["--normalize", "class"]] {
            let r = try CLI.run(["prune", "--scores", bare.path, "--data", train, "--keep", "0.4", "--out", dir.appendingPathComponent("k.jsonl").path] + extra)
            #expect(r.status == 1 && r.stderr.contains("names no label"), "\(extra): \(r.stderr)")
        }
        // Stratified sampling drops the hardest beta whatever --select says.
        let e = dir.appendingPathComponent("e.jsonl"), h = dir.appendingPathComponent("h.jsonl")
        #expect(try CLI.run(["prune", "--scores", scores.path, "--data", train, "--keep", "0.5", "--sampling", "stratified", "--out", e.path]).status == 0)
        #expect(try CLI.run(["prune", "--scores", scores.path, "--data", train, "--keep", "0.5", "--sampling", "stratified", "--select", "hard",
                             "--out", h.path]).status == 0)
        #expect(try Data(contentsOf: e) == Data(contentsOf: h))
        // Options of another sampling, and a keep that rounds to nothing, are refused.
        for (extra, message) in [(["--temperature", "5"], "--temperature applies"), (["--beta", "0.3"], "--beta applies"),
                                 (["--seed", "3"], "draws nothing"),
                                 (["--keep", "0.001"], "rounds to none")] {
            var args = ["prune", "--scores", scores.path, "--data", train, "--keep", "0.4", "--out", dir.appendingPathComponent("x.jsonl").path]
            if extra[0] == "--keep" { args[6] = extra[1] } else { args += extra }
            let r = try CLI.run(args)
            #expect(r.status != 0 && r.stderr.contains(message) && !fm.fileExists(atPath: dir.appendingPathComponent("x.jsonl").path), "\(extra): \(r.stderr)")
        }
    }

    @Test func idsWithLineBreaksSurviveScoringPruningAndMerging() throws {
        let (dir, run, _) = try runAndScores("id-newline")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        let src = try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n").prefix(30)
        let edited = try src.enumerated().map { i, l -> String in
            var o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
            o["id"] = "id \(i)\(i % 2 == 0 ? "\n" : "\r\n")second, \"line\""
            return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        }
        try (edited.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let whole = dir.appendingPathComponent("whole.csv")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", data.path, "--max-length", "32", "--out", whole.path]).status == 0)
        let kept = dir.appendingPathComponent("kept.jsonl")
        let p = try CLI.run(["prune", "--scores", whole.path, "--data", data.path, "--keep", "0.5", "--out", kept.path])
        let keptCount = try rows(kept).count
        #expect(p.status == 0 && keptCount == 15, "\(p.stderr)")
        let shards = try (0..<2).map { i -> String in
            let out = dir.appendingPathComponent("s\(i).csv").path
            let r = try CLI.run(["score", "el2n", "--run", run, "--data", data.path, "--max-length", "32", "--shard", "\(i)/2", "--out", out])
            #expect(r.status == 0, "\(r.stderr)")
            return out
        }
        let merged = dir.appendingPathComponent("merged.csv")
        let m = try CLI.run(["merge"] + shards + ["--out", merged.path])
        #expect(m.status == 0, "\(m.stderr)")
        #expect(try Data(contentsOf: merged) == Data(contentsOf: whole))
        // A quote inside an unquoted field is a literal (as other CSV writers leave it), not an opening quote.
        let external = dir.appendingPathComponent("external.csv")
        try "line,score,note\n1,0.5,ab\"c\n2,0.25,plain\n3,0.75,x\n".write(to: external, atomically: true, encoding: .utf8)
        let e = try CLI.run(["prune", "--scores", external.path, "--data", data.path, "--keep", "0.5", "--out", dir.appendingPathComponent("e.jsonl").path])
        #expect(e.status == 0, "\(e.stderr)")
    }

    @Test func mergeRefusesShardsOfAnotherScoring() throws {
        let (dir, run, _) = try runAndScores("merge-job")
        defer { try? fm.removeItem(at: dir) }
        func shard(_ method: String, _ i: Int) throws -> String {
            let out = dir.appendingPathComponent("\(method)-\(i).csv").path
            #expect(try CLI.run(["score", method, "--run", run, "--data", train, "--max-length", "32", "--shard", "\(i)/3", "--out", out]).status == 0)
            return out
        }
        let files = [try shard("el2n", 0), try shard("grand", 1), try shard("el2n", 2)]
        let out = dir.appendingPathComponent("m.csv")
        let r = try CLI.run(["merge"] + files + ["--out", out.path])
        #expect(r.status == 1 && r.stderr.contains("another job") && !fm.fileExists(atPath: out.path), "\(r.stderr)")
        // The same run retrained (another seed) between two shards: the weights differ, so the shards are refused.
        let a = try shard("el2n", 0)
        let c1 = dir.appendingPathComponent("c1.csv").path
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--shard", "1/3", "--out", c1]).status == 0)
        try fm.removeItem(at: URL(fileURLWithPath: run))
        #expect(try CLI.run(["train", "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path,
                             "--out", run, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "2", "--batch-size", "16",
                             "--lr", "1e-3", "--max-length", "32", "--checkpoints", "3", "--seed", "6"]).status == 0)
        let b = dir.appendingPathComponent("retrained-2.csv").path
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--max-length", "32", "--shard", "2/3", "--out", b]).status == 0)
        let retrained = try CLI.run(["merge", a, c1, b, "--out", out.path])
        #expect(retrained.status == 1 && retrained.stderr.contains("another job") && retrained.stderr.contains("models"), "\(retrained.stderr)")
        #expect(!fm.fileExists(atPath: out.path))
    }

    @Test func predictCoversEveryLine() throws {
        let (dir, run, _) = try runAndScores("predict-all")
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        let src = try String(contentsOf: CLI.tiny.appendingPathComponent("test.jsonl"), encoding: .utf8).split(separator: "\n").prefix(6)
        let labels: [Any] = ["-", NSNull(), "meh", -1, "pos", "neg"]
        let edited = try zip(src, labels).map { l, y -> String in
            var o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
            o["label"] = y
            return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        }
        try (edited.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("p.csv")
        let r = try CLI.run(["predict", "--run", run, "--data", data.path, "--max-length", "32", "--out", out.path])
        #expect(r.status == 0 && r.stderr.contains("meh") && r.stderr.contains("empty gold label"), "\(r.stderr)")
        let rows = try rows(out).dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.count == 6 && rows.map { $0[3] } == ["", "", "", "", "pos", "neg"], "\(rows)")
    }

    @Test func proponentsAndOpponentsFollowTheSign() throws {
        let (dir, run, _) = try runAndScores("proponents")
        defer { try? fm.removeItem(at: dir) }
        let small = dir.appendingPathComponent("small.jsonl")
        try (try String(contentsOf: URL(fileURLWithPath: train), encoding: .utf8).split(separator: "\n").prefix(8).joined(separator: "\n") + "\n")
            .write(to: small, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("t.csv")
        let r = try CLI.run(["score", "tracin", "--run", run, "--data", small.path, "--test", small.path, "--max-length", "32", "--top", "10",
                             "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        var perTest: [String: Int] = [:]
        for row in try rows(out).dropFirst() {
            let f = row.split(separator: ",", omittingEmptySubsequences: false)
            let kind = String(f[3]), value = try #require(Double(f[f.count - 1]))
            #expect(kind == "proponent" ? value > 0 : value < 0, "\(row)")
            perTest[String(f[0]), default: 0] += 1
        }
        #expect(perTest.count == 8 && perTest.values.allSatisfy { $0 <= 8 }, "a training example listed on both sides: \(perTest)")
    }
}
