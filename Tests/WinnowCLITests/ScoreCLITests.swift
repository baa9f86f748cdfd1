import Foundation
import Testing

@Suite(.serialized) struct ScoreCLITests {
    let run = CLI.tiny.appendingPathComponent("run").path
    let train = CLI.tiny.appendingPathComponent("train.jsonl").path
    let test = CLI.tiny.appendingPathComponent("test.jsonl").path

    func rows(_ url: URL) throws -> [[Substring]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    }

    @Test(arguments: ["el2n", "vog", "grand", "loss", "margin", "tracin"])
    func gradientAndOutputScoresWriteOneRowPerExample(method: String) throws {
        let dir = try CLI.tempDir("score-\(method)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("s.csv")
        let r = try CLI.run(["score", method, "--run", run, "--data", train, "--max-length", "32", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("memory estimate"))
        let t = try rows(out)
        #expect(t[0].prefix(5) == ["index", "line", "id", "label", "score"])
        #expect(t.count == 151)
        #expect(t.dropFirst().allSatisfy { Double($0[4]) != nil && Double($0[4])!.isFinite })
        #expect(t[1][1] == "1" && t[1][2] == "train-000")
    }

    @Test func formatsJSONLAndNpy() throws {
        let dir = try CLI.tempDir("score-fmt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let j = dir.appendingPathComponent("s.jsonl"), n = dir.appendingPathComponent("s.npy")
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--format", "jsonl", "--out", j.path]).status == 0)
        let first = try String(contentsOf: j, encoding: .utf8).split(separator: "\n").first!
        let obj = try JSONSerialization.jsonObject(with: Data(first.utf8)) as! [String: Any]
        #expect(obj["index"] as? Int == 0 && obj["score"] is Double && obj["label"] as? String != nil)
        #expect(try CLI.run(["score", "el2n", "--run", run, "--data", train, "--format", "npy", "--out", n.path]).status == 0)
        let d = try Data(contentsOf: n)
        #expect(d.prefix(6) == Data([0x93]) + Data("NUMPY".utf8))
        #expect(d.count == 128 + 150 * 8)
    }

    @Test func tracinTrainToTestWritesProponentsOpponentsAndTheMatrix() throws {
        let dir = try CLI.tempDir("score-t2t")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("t.csv"), m = dir.appendingPathComponent("m.npy")
        let r = try CLI.run(["score", "tracin", "--run", run, "--data", train, "--test", test, "--top", "3", "--matrix", m.path,
                             "--params", "classifier", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let t = try rows(out)
        #expect(t.count == 1 + 40 * 6)
        #expect(t[1][3] == "proponent" && t[4][3] == "opponent")
        #expect(Double(t[1][8])! >= Double(t[2][8])!)
        #expect(try Data(contentsOf: m).count == 128 + 40 * 150 * 8)
    }

    @Test func dynamicsScoresOnAWinnowRunAndAClearErrorOnATrainerRun() throws {
        let dir = try CLI.tempDir("score-dyn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let wrun = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(wrun).status == 0)
        for method in ["forgetting", "cartography", "aum"] {
            let out = dir.appendingPathComponent("\(method).csv")
            let r = try CLI.run(["score", method, "--run", wrun.path, "--data", train, "--max-length", "32", "--out", out.path])
            #expect(r.status == 0, "\(method): \(r.stderr)")
            #expect(try rows(out).count == 151)
        }
        let bad = try CLI.run(["score", "forgetting", "--run", run, "--data", train, "--out", dir.appendingPathComponent("x.csv").path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("no training dynamics"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.csv").path))
    }

    @Test func pviWithANullRun() throws {
        let dir = try CLI.tempDir("score-pvi")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.csv")
        let r = try CLI.run(["score", "pvi", "--run", run, "--null-run", CLI.tiny.appendingPathComponent("null-run").path,
                             "--data", train, "--max-length", "32", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let t = try rows(out)
        #expect(t[0] == ["index", "line", "id", "label", "score", "pvi", "log2p", "log2p_null"])
        #expect(t.count == 151)
    }

    @Test func badScoreInvocations() throws {
        #expect(try CLI.run(["score", "pvi", "--run", run, "--data", train, "--out", "/tmp/x.csv"]).status == 2)
        #expect(try CLI.run(["score", "bogus", "--run", run, "--data", train, "--out", "/tmp/x.csv"]).status == 2)
        let r = try CLI.run(["score", "vog", "--run", run, "--data", train, "--checkpoints", "99999", "--out", "/tmp/x.csv"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no checkpoint-99999"))
        let p = try CLI.run(["score", "grand", "--run", run, "--data", train, "--params", "nonsense.", "--out", "/tmp/x.csv"])
        #expect(p.status == 1)
        #expect(p.stderr.contains("--params"))
    }
}
