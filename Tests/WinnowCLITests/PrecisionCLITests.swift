import Foundation
import Testing
import Winnow

/// `--precision bf16` on `eval`, `predict` and the forward-only scores, against F32 on a tiny run.
@Suite(.serialized) struct PrecisionCLITests {
    static let bf16CPU = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512_bf16") ?? false
    /// bf16 runs on the AVX-512 path: `make test`'s second pass (WINNOW_ISA=avx2) has it refused.
    static let bf16Available = bf16CPU && ProcessInfo.processInfo.environment["WINNOW_ISA"] != "avx2"

    /// Column `name` of a CSV file Winnow wrote (no quoted commas in these columns).
    static func column(_ url: URL, _ name: String) throws -> [Double] {
        let rows = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let i = try #require(rows[0].firstIndex { $0 == Substring(name) })
        return rows.dropFirst().map { Double($0[i])! }
    }

    static func ranks(_ x: [Double]) -> [Double] {
        var r = [Double](repeating: 0, count: x.count)
        for (k, i) in x.indices.sorted(by: { x[$0] < x[$1] }).enumerated() { r[i] = Double(k) }
        return r
    }

    static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        let ra = ranks(a), rb = ranks(b), n = Double(a.count), m = (n - 1) / 2
        let cov = zip(ra, rb).reduce(0) { $0 + ($1.0 - m) * ($1.1 - m) }
        let va = ra.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return cov / va
    }

    @Test func bf16PredictionsAndScoresFollowF32() throws {
        let dir = try CLI.tempDir("precision")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        let data = CLI.tiny.appendingPathComponent("train.jsonl").path
        let grand = try CLI.run(["score", "grand", "--run", run.path, "--data", data, "--precision", "bf16", "--out", dir.appendingPathComponent("g.csv").path])
        #expect(grand.status == 2 && grand.stderr.contains("--precision"), "\(grand.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.csv").path))
        guard Self.bf16Available else {
            let r = try CLI.run(["eval", "--run", run.path, "--data", data, "--precision", "bf16"])
            #expect(r.status == 1 && r.stderr.contains(Self.bf16CPU ? "WINNOW_ISA=avx2" : "AVX512_BF16"), "\(r.stderr)")
            return
        }
        // Asked for the AVX2 path (OpenBLAS, no bf16 products), bf16 is refused, not run on the AVX-512 kernel anyway.
        let avx2 = try CLI.run(["eval", "--run", run.path, "--data", data, "--precision", "bf16"], environment: ["WINNOW_ISA": "avx2"])
        #expect(avx2.status == 1 && avx2.stderr.contains("WINNOW_ISA=avx2"), "\(avx2.stderr)")
        for p in ["f32", "bf16"] {
            #expect(try CLI.run(["predict", "--run", run.path, "--data", data, "--precision", p, "--out", dir.appendingPathComponent("p-\(p).csv").path]).status == 0)
            #expect(try CLI.run(["score", "el2n", "--run", run.path, "--data", data, "--precision", p, "--out", dir.appendingPathComponent("e-\(p).csv").path]).status == 0)
        }
        let f = try Self.column(dir.appendingPathComponent("p-f32.csv"), "p_pos"), b = try Self.column(dir.appendingPathComponent("p-bf16.csv"), "p_pos")
        let worst = zip(f, b).map { abs($0 - $1) }.max()!
        #expect(worst > 0 && worst < 0.02, "largest probability difference \(worst)")
        let ef = try Self.column(dir.appendingPathComponent("e-f32.csv"), "score"), eb = try Self.column(dir.appendingPathComponent("e-bf16.csv"), "score")
        #expect(Self.spearman(ef, eb) >= 0.99, "Spearman \(Self.spearman(ef, eb))")
        let e = try CLI.run(["eval", "--run", run.path, "--data", data, "--precision", "bf16", "--json"])
        #expect(e.status == 0 && e.stdout.contains("accuracy"))
        // Parts scored in F32 are not parts of a bf16 scoring: a resume at the other precision is refused.
        // (The parts of an F32 scoring as `winnow score` leaves them when killed, made through the library.)
        let out = dir.appendingPathComponent("parts.csv")
        var o = ScoreOptions()
        o.maxLength = try RunFolder(url: run).trainedMaxLength ?? o.maxLength
        _ = try ScoreParts.score(.el2n, run: run, data: URL(fileURLWithPath: data), options: o, parts: URL(fileURLWithPath: out.path + ".parts"),
                                 resume: false, partSize: 20)
        #expect(FileManager.default.fileExists(atPath: out.path + ".parts/part-0.json"))
        let other = try CLI.run(["score", "el2n", "--run", run.path, "--data", data, "--part-size", "20", "--out", out.path, "--precision", "bf16", "--resume"])
        #expect(other.status == 1 && other.stderr.contains("parts of another scoring") && other.stderr.contains("precision"), "\(other.stderr)")
    }
}
