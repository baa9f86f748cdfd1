import Foundation
import Testing
import Winnow

/// `--shard I/N` on score and predict, and `winnow merge`: the merged file equals an unsharded run's.
@Suite(.serialized) struct ShardCLITests {
    /// Rows equal field by field; numeric fields within 1e-6 relative (1e-9 absolute).
    static func expectSameScores(_ a: URL, _ b: URL, format: String, _ what: String) throws {
        func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-6 * max(abs(x), abs(y)) + 1e-9 }
        if format == "npy" {
            let x = try Data(contentsOf: a), y = try Data(contentsOf: b)
            let h = 10 + (Int(x[8]) | Int(x[9]) << 8)
            #expect(x.count == y.count && x.prefix(h) == y.prefix(h), "\(what): .npy headers differ")
            let vx = Data(x.dropFirst(h)).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let vy = Data(y.dropFirst(h)).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            #expect(vx.count == 150, "\(what): \(vx.count) values")
            #expect(vx.count == vy.count && zip(vx, vy).allSatisfy { close($0, $1) }, "\(what): values differ")
            return
        }
        let ra = try String(contentsOf: a, encoding: .utf8).split(separator: "\n"), rb = try String(contentsOf: b, encoding: .utf8).split(separator: "\n")
        #expect(ra.count == rb.count, "\(what): \(ra.count) rows vs \(rb.count)")
        let sep: Character = ","
        for (x, y) in zip(ra, rb) where x != y {
            let fx = x.split(separator: sep, omittingEmptySubsequences: false), fy = y.split(separator: sep, omittingEmptySubsequences: false)
            #expect(fx.count == fy.count, "\(what): \(x) vs \(y)")
            for (u, v) in zip(fx, fy) where u != v {
                let nu = Double(u.split(separator: ":").last.map(String.init)?.trimmingCharacters(in: CharacterSet(charactersIn: "}")) ?? "")
                let nv = Double(v.split(separator: ":").last.map(String.init)?.trimmingCharacters(in: CharacterSet(charactersIn: "}")) ?? "")
                #expect(nu != nil && nv != nil && close(nu!, nv!), "\(what): field \(u) vs \(v)")
            }
        }
    }

    @Test func shardedScoresAndPredictionsMergeIntoTheUnshardedFile() throws {
        let dir = try CLI.tempDir("shard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let data = CLI.tiny.appendingPathComponent("train.jsonl").path
        for (method, format) in [("el2n", "csv"), ("grand", "jsonl"), ("vog", "npy")] {
            let whole = dir.appendingPathComponent("\(method)-whole.\(format)")
            let base = ["score", method, "--run", run.path, "--data", data, "--max-length", "32", "--format", format, "--part-size", "7"]
            #expect(try CLI.run(base + ["--out", whole.path]).status == 0)
            var shards: [String] = []
            for i in 0..<3 {
                let out = dir.appendingPathComponent("\(method)-\(i)of3.\(format)").path
                let r = try CLI.run(base + ["--shard", "\(i)/3", "--out", out])
                #expect(r.status == 0, "\(r.stderr)")
                shards.append(out)
            }
            let merged = dir.appendingPathComponent("\(method)-merged.\(format)")
            // Shards in any order for CSV/JSONL (rows are ordered by index); in order for .npy.
            let order = format == "npy" ? shards : shards.reversed()
            let m = try CLI.run(["merge"] + order + ["--out", merged.path])
            #expect(m.status == 0, "\(m.stderr)")
            // Same rows in the same order; values equal up to float summation order (batches group differently).
            try Self.expectSameScores(merged, whole, format: format, method)
        }
        // The checkpoints named as `all` in one shard and as their steps in another are one scoring.
        let steps = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("checkpoint-") }
            .compactMap { Int($0.dropFirst("checkpoint-".count)) }.sorted().map(String.init).joined(separator: ",")
        var mixed: [String] = []
        for (i, spec) in ["all", steps].enumerated() {
            let out = dir.appendingPathComponent("mixed-\(i).csv").path
            let r = try CLI.run(["score", "el2n", "--run", run.path, "--data", data, "--max-length", "32", "--checkpoints", spec, "--shard", "\(i)/2", "--out", out])
            #expect(r.status == 0, "\(r.stderr)")
            mixed.append(out)
        }
        let mm = try CLI.run(["merge"] + mixed + ["--out", dir.appendingPathComponent("mixed.csv").path])
        #expect(mm.status == 0, "\(mm.stderr)")
        // predict
        let whole = dir.appendingPathComponent("pred-whole.csv")
        #expect(try CLI.run(["predict", "--run", run.path, "--data", data, "--max-length", "32", "--out", whole.path]).status == 0)
        var parts: [String] = []
        for i in 0..<4 {
            let out = dir.appendingPathComponent("pred-\(i).csv").path
            #expect(try CLI.run(["predict", "--run", run.path, "--data", data, "--max-length", "32", "--shard", "\(i)/4", "--out", out]).status == 0)
            parts.append(out)
        }
        let merged = dir.appendingPathComponent("pred-merged.csv")
        #expect(try CLI.run(["merge"] + parts + ["--out", merged.path]).status == 0)
        try Self.expectSameScores(merged, whole, format: "csv", "predict")
        // A missing shard is an error, and nothing is written.
        let bad = dir.appendingPathComponent("bad.csv")
        let r = try CLI.run(["merge", parts[0], parts[2], parts[3], "--out", bad.path])
        #expect(r.status == 1 && r.stderr.contains("shard(s) 1/4 missing"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bad.path))
        // The last shards missing too: each output's manifest (OUT.shard.json) says there were 4.
        let tail = try CLI.run(["merge", parts[0], parts[1], "--out", bad.path])
        #expect(tail.status == 1 && tail.stderr.contains("shard(s) 2/4, 3/4 missing"), "\(tail.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bad.path))
        let alone = try CLI.run(["merge", parts[0], "--out", bad.path])
        #expect(alone.status == 1 && alone.stderr.contains("missing"), "\(alone.stderr)")
        // A shard output cut short (its last score loses digits, its row count still matches) is refused, as is a
        // row without its score.
        let el2n = (0..<3).map { dir.appendingPathComponent("el2n-\($0)of3.csv") }
        let cut = dir.appendingPathComponent("cut.csv")
        let text = try String(contentsOf: el2n[2], encoding: .utf8)
        try String(text.dropLast(3)).write(to: cut, atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: el2n[2].path + ".shard.json", toPath: cut.path + ".shard.json")
        let c = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(c.status == 1 && c.stderr.contains("cut.csv: ends without a line break: the shard output was cut short"), "\(c.stderr)")
        var rows = text.split(separator: "\n").map(String.init)
        rows[rows.count - 1] = rows[rows.count - 1].split(separator: ",").dropLast().joined(separator: ",")
        try (rows.joined(separator: "\n") + "\n").write(to: cut, atomically: true, encoding: .utf8)
        let f = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(f.status == 1 && f.stderr.contains("cut.csv:\(rows.count): has 4 fields where the header has 5"), "\(f.stderr)")
        rows[rows.count - 1] += ",x"
        try (rows.joined(separator: "\n") + "\n").write(to: cut, atomically: true, encoding: .utf8)
        let x = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(x.status == 1 && x.stderr.contains("cut.csv:\(rows.count): the score 'x' is not a number"), "\(x.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bad.path))
        // Invalid UTF-8 in a shard is named with its line (not replaced); a byte-order mark is not a header difference.
        var bytes = Data(text.utf8)
        let third = bytes.indices.filter { bytes[$0] == 0x0A }[2]   // the end of line 3
        bytes.replaceSubrange((third - 1)..<third, with: [0xFF, 0xFE])
        try bytes.write(to: cut)
        let u8 = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(u8.status == 1 && u8.stderr.contains("cut.csv:3: not valid UTF-8"), "\(u8.stderr)")
        try (Data([0xEF, 0xBB, 0xBF]) + Data(text.utf8)).write(to: cut)
        let bom = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(bom.status == 0, "\(bom.stderr)")
        try Self.expectSameScores(bad, dir.appendingPathComponent("el2n-whole.csv"), format: "csv", "el2n with a BOM")
        try FileManager.default.removeItem(at: bad)
        // A shard that lost rows, its file still well formed, is named (with its manifest's count).
        try (rows.dropLast(3).joined(separator: "\n") + "\n").write(to: cut, atomically: true, encoding: .utf8)
        let short = try CLI.run(["merge", el2n[0].path, el2n[1].path, cut.path, "--out", bad.path])
        #expect(short.status == 1 && short.stderr.contains("cut.csv: holds \(rows.count - 4) row(s), but it is shard 2/3"), "\(short.stderr)")
        // The merged file's name must not say another format than the shards'.
        for name in ["m.jsonl", "m.npy"] {
            let r = try CLI.run(["merge", el2n[0].path, el2n[1].path, el2n[2].path, "--out", dir.appendingPathComponent(name).path])
            #expect(r.status == 1 && r.stderr.contains("\(name) names a .") && r.stderr.contains("name the merged file .csv"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path))
        }
        // A .npy shard cut short by whole values (or not) is named against its header's shape.
        let vog2 = dir.appendingPathComponent("vog-2of3.npy")
        let npyBytes = try Data(contentsOf: vog2)
        let cutNpy = dir.appendingPathComponent("cut.npy")
        try FileManager.default.copyItem(atPath: vog2.path + ".shard.json", toPath: cutNpy.path + ".shard.json")
        for drop in [8, 3] {
            try npyBytes.dropLast(drop).write(to: cutNpy)
            let r = try CLI.run(["merge", dir.appendingPathComponent("vog-0of3.npy").path, dir.appendingPathComponent("vog-1of3.npy").path, cutNpy.path,
                                 "--out", dir.appendingPathComponent("cut-merged.npy").path])
            #expect(r.status == 1 && r.stderr.contains("cut.npy: its header's shape is") && r.stderr.contains("cut short"), "\(drop): \(r.stderr)")
        }
        // .npy shards out of order are refused (they carry no index).
        let npy = (0..<3).map { dir.appendingPathComponent("vog-\($0)of3.npy").path }
        let swapped = try CLI.run(["merge", npy[1], npy[0], npy[2], "--out", dir.appendingPathComponent("bad.npy").path])
        #expect(swapped.status == 1 && swapped.stderr.contains("shard order"), "\(swapped.stderr)")
        // An unsharded output written over a shard's path drops the manifest.
        #expect(try CLI.run(["predict", "--run", run.path, "--data", data, "--max-length", "32", "--out", parts[0]]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: parts[0] + ".shard.json"))
        let u = try CLI.run(["score", "el2n", "--run", run.path, "--data", data, "--shard", "3/3", "--out", bad.path])
        // An impossible shard is a bad option value: a usage error (exit 2) before any file is read.
        #expect(u.status == 2 && u.stderr.contains("--shard"), "\(u.stderr)")
        #expect(u.stderr.contains("0 <= I < N, got 3/3"), "the reason is kept: \(u.stderr)")
    }

    /// A causal language model's scores in resumable parts and in shards (labelled prompt/completion
    /// pairs, unlabelled text): the whole file's rows, values equal up to float summation order (a batch
    /// groups other examples), labels named as the whole file names them.
    @Test func decoderScoresInPartsAndShardsEqualTheWholeRun() throws {
        let dir = try CLI.tempDir("shard-decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtures = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder")
        let model = fixtures.appendingPathComponent("tied").path
        let pairs = dir.appendingPathComponent("pairs.jsonl")
        try String(repeating: try String(contentsOf: fixtures.appendingPathComponent("pc.jsonl"), encoding: .utf8), count: 4)
            .write(to: pairs, atomically: true, encoding: .utf8)
        for (data, method) in [(pairs.path, "tracin"), (fixtures.appendingPathComponent("text.jsonl").path, "loss")] {
            func score(_ extra: [String], _ out: String) throws -> String {
                let path = dir.appendingPathComponent(out).path
                let r = try CLI.run(["score", method, "--run", model, "--data", data, "--batch-size", "2", "--out", path] + extra)
                #expect(r.status == 0, "\(extra): \(r.stderr)")
                return path
            }
            let whole = try score([], "\(method)-whole.csv")
            let parts = try score(["--part-size", "5"], "\(method)-parts.csv")
            let shards = try (0..<3).map { try score(["--shard", "\($0)/3"], "\(method)-\($0).csv") }
            let merged = dir.appendingPathComponent("\(method)-merged.csv").path
            let m = try CLI.run(["merge"] + shards + ["--out", merged])
            #expect(m.status == 0, "\(m.stderr)")
            try Self.expectSameScores(URL(fileURLWithPath: parts), URL(fileURLWithPath: whole), format: "csv", "\(method): parts")
            try Self.expectSameScores(URL(fileURLWithPath: merged), URL(fileURLWithPath: whole), format: "csv", "\(method): merged shards")
            let rows = try String(contentsOf: URL(fileURLWithPath: whole), encoding: .utf8).split(separator: "\n")
            #expect(rows.count == (method == "tracin" ? 25 : 10), "\(method): \(rows.count) lines")
            // The last shard's first pair is labelled as in the whole file (labels are read from all of it).
            if method == "tracin" {
                let last = try String(contentsOf: URL(fileURLWithPath: shards[2]), encoding: .utf8).split(separator: "\n")
                #expect(last.dropFirst().first.map { rows.contains($0) } == true, "shard 2/3's first row is not the whole run's")
            }
        }
    }

    /// Score files whose rows run in index order within each file (as shards write them) are joined file after
    /// file; files whose rows are out of order within themselves are sorted row by row: both give the rows in
    /// index order, the header once, and gaps or repeats are refused.
    @Test func mergeJoinsRunsAndSortsRowsOutOfOrder() throws {
        let dir = try CLI.tempDir("merge-order")
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ rows: [Int]) throws -> String {
            let u = dir.appendingPathComponent(name)
            try ("index,line,id,label,score\n" + rows.map { "\($0),\($0 + 1),e\($0),pos,\(Double($0) / 4)\n" }.joined()).write(to: u, atomically: true, encoding: .utf8)
            return u.path
        }
        let want = "index,line,id,label,score\n" + (0..<7).map { "\($0),\($0 + 1),e\($0),pos,\(Double($0) / 4)\n" }.joined()
        for (name, parts) in [("runs", [[4, 5, 6], [0, 1, 2, 3]]), ("shuffled", [[5, 0, 3], [6, 1, 4, 2]])] {
            let files = try parts.enumerated().map { try file("\(name)-\($0.offset).csv", $0.element) }
            let out = dir.appendingPathComponent("\(name)-merged.csv")
            let r = try CLI.run(["merge"] + files + ["--no-manifests", "--out", out.path])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(try String(contentsOf: out, encoding: .utf8) == want, "\(name)")
        }
        for (name, parts, why) in [("gap", [[0, 1], [3, 4]], "indices are not 0..<4 exactly once (found 3 at position 2)"),
                                   ("repeat", [[0, 1, 2], [2, 3]], "indices are not 0..<5 exactly once (found 2 at position 3)")] {
            let files = try parts.enumerated().map { try file("\(name)-\($0.offset).csv", $0.element) }
            let out = dir.appendingPathComponent("\(name)-merged.csv")
            let r = try CLI.run(["merge"] + files + ["--no-manifests", "--out", out.path])
            #expect(r.status == 1 && r.stderr.contains(why) && !FileManager.default.fileExists(atPath: out.path), "\(name): \(r.stderr)")
        }
    }

    /// Shards are joined by what they read, not by the paths they were given: a data file edited between shards is
    /// refused (naming the item that differs), one file reached through a symbolic link is joined; files without
    /// manifests are joined with a note; resumable parts made before a checkpoint changed are not reused.
    @Test func shardsAndPartsFollowTheFilesContents() throws {
        let fm = FileManager.default
        let dir = try CLI.tempDir("shard-content")
        defer { try? fm.removeItem(at: dir) }
        let run = CLI.tiny.appendingPathComponent("run").path
        let data = dir.appendingPathComponent("t.jsonl"), link = dir.appendingPathComponent("link.jsonl")
        let original = try Data(contentsOf: CLI.tiny.appendingPathComponent("train.jsonl"))
        try original.write(to: data)
        try fm.createSymbolicLink(at: link, withDestinationURL: data)
        func shard(_ i: Int, _ path: URL, _ out: String) throws {
            let r = try CLI.run(["score", "el2n", "--run", run, "--data", path.path, "--max-length", "32", "--shard", "\(i)/2",
                                 "--out", dir.appendingPathComponent(out).path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try shard(0, data, "a0.csv"); try shard(1, link, "a1.csv")
        let joined = try CLI.run(["merge", dir.appendingPathComponent("a0.csv").path, dir.appendingPathComponent("a1.csv").path,
                                  "--out", dir.appendingPathComponent("a.csv").path])
        #expect(joined.status == 0 && !joined.stderr.contains("note:"), "\(joined.stderr)")
        // The file reversed, then shard 1 again: refused, naming the data item.
        let lines = String(decoding: original, as: UTF8.self).split(separator: "\n")
        try Data((lines.reversed().joined(separator: "\n") + "\n").utf8).write(to: data)
        try shard(1, data, "b1.csv")
        let edited = try CLI.run(["merge", dir.appendingPathComponent("a0.csv").path, dir.appendingPathComponent("b1.csv").path,
                                  "--out", dir.appendingPathComponent("b.csv").path])
        #expect(edited.status == 1 && edited.stderr.contains("fnv1a64") && !edited.stderr.contains("score el2n against"), "\(edited.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("b.csv").path))
        // Shards written as JSONL under another extension (--format jsonl --out s0.txt) are joined as JSONL.
        for i in 0..<2 {
            let r = try CLI.run(["score", "el2n", "--run", run, "--data", CLI.tiny.appendingPathComponent("train.jsonl").path, "--max-length", "32",
                                 "--shard", "\(i)/2", "--format", "jsonl", "--out", dir.appendingPathComponent("s\(i).txt").path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let txt = try CLI.run(["merge", dir.appendingPathComponent("s0.txt").path, dir.appendingPathComponent("s1.txt").path,
                               "--out", dir.appendingPathComponent("s.txt").path])
        #expect(txt.status == 0, "\(txt.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("s.txt"), encoding: .utf8).split(separator: "\n").count == 150)
        // Without manifests the join cannot tell a missing shard: refused unless --no-manifests, then said.
        for f in ["a0.csv", "a1.csv"] { try fm.removeItem(at: dir.appendingPathComponent(f + ".shard.json")) }
        let refused = try CLI.run(["merge", dir.appendingPathComponent("a0.csv").path, "--out", dir.appendingPathComponent("c.csv").path])
        #expect(refused.status == 1 && refused.stderr.contains("a0.csv: has no shard manifest") && refused.stderr.contains("--no-manifests"), "\(refused.stderr)")
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("c.csv").path))
        let bare = try CLI.run(["merge", dir.appendingPathComponent("a0.csv").path, "--no-manifests", "--out", dir.appendingPathComponent("c.csv").path])
        #expect(bare.status == 0 && bare.stderr.contains("carry no shard manifests"), "\(bare.stderr)")
        // Parts saved (as a killed `winnow score` leaves them), then a checkpoint replaced: --resume refuses them.
        try original.write(to: data)
        let copy = dir.appendingPathComponent("run")
        try fm.copyItem(at: URL(fileURLWithPath: run), to: copy)
        let out = dir.appendingPathComponent("p.csv")
        var o = ScoreOptions()
        o.maxLength = 32
        _ = try ScoreParts.score(.el2n, run: copy, data: data, options: o, parts: URL(fileURLWithPath: out.path + ".parts"), resume: false, partSize: 50)
        let ck = try #require(try fm.contentsOfDirectory(atPath: copy.path).first { $0.hasPrefix("checkpoint-") })
        let weights = copy.appendingPathComponent(ck).appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try fm.removeItem(at: weights)
        Thread.sleep(forTimeInterval: 0.01)
        try bytes.write(to: weights)   // the same bytes in a new file: its modification time changes
        let args = ["score", "el2n", "--run", copy.path, "--data", data.path, "--max-length", "32", "--part-size", "50", "--out", out.path, "--resume"]
        let changed = try CLI.run(args)
        #expect(changed.status == 1 && changed.stderr.contains("parts of another scoring (the model files it read changed since"), "\(changed.stderr)")
        // Parts of the other checkpoints alone resume after that one changed.
        let others = try fm.contentsOfDirectory(atPath: copy.path).filter { $0.hasPrefix("checkpoint-") && $0 != ck }
            .compactMap { Int($0.dropFirst("checkpoint-".count)) }.sorted().map(String.init).joined(separator: ",")
        let chosen = ["score", "el2n", "--run", copy.path, "--checkpoints", others, "--data", data.path, "--max-length", "32", "--part-size", "50",
                      "--out", dir.appendingPathComponent("c.csv").path]
        var oc = o
        oc.checkpoints = try #require(CheckpointSelection(parsing: others))
        _ = try ScoreParts.score(.el2n, run: copy, data: data, options: oc, parts: URL(fileURLWithPath: dir.appendingPathComponent("c.csv").path + ".parts"),
                                 resume: false, partSize: 50)
        try bytes.write(to: weights)   // the chosen checkpoints are untouched
        let kept = try CLI.run(chosen + ["--resume"])
        #expect(kept.status == 0 && kept.stderr.contains("resuming"), "\(kept.stderr)")
    }
}
