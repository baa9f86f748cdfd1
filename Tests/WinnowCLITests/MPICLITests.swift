import Foundation
import Testing

/// `mpirun -np 2 winnow-mpi ...` (built by `make test` with `swift build --traits MPI --scratch-path .build/mpi`)
/// equals one process: scores up to float summation order, training within float tolerance.
@Suite(.serialized) struct MPICLITests {
    static let binary = CLI.repo.appendingPathComponent(".build/mpi/debug/winnow-mpi")

    static func mpirun(_ args: [String]) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", binary.path] + args
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func floats(_ url: URL) throws -> [String: [Float]] {
        // Minimal safetensors reader for F32 tensors (the format winnow writes).
        let d = try Data(contentsOf: url)
        let n = d.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        var out: [String: [Float]] = [:]
        for (k, v) in header where k != "__metadata__" {
            let e = v as! [String: Any], off = e["data_offsets"] as! [Int]
            out[k] = d.subdata(in: (8 + n + off[0])..<(8 + n + off[1])).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return out
    }

    @Test func twoRanksScorePredictAndTrainLikeOneProcess() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                "winnow-mpi is not built; `make test` builds it (swift build --traits MPI --scratch-path .build/mpi --product winnow-mpi)")
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else { return }
        let dir = try CLI.tempDir("mpi")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = CLI.tiny.appendingPathComponent("train.jsonl").path
        let run = dir.appendingPathComponent("run")
        #expect(try CLI.trainTiny(run).status == 0)
        for method in ["el2n", "grand", "vog"] {
            let one = dir.appendingPathComponent("\(method)-one.csv"), two = dir.appendingPathComponent("\(method)-mpi.csv")
            #expect(try CLI.run(["score", method, "--run", run.path, "--data", data, "--max-length", "32", "--out", one.path]).status == 0)
            let r = try Self.mpirun(["score", method, "--run", run.path, "--data", data, "--max-length", "32", "--out", two.path])
            #expect(r.status == 0, "mpirun score failed: \(r.stderr)")
            try ShardCLITests.expectSameScores(two, one, format: "csv", "mpi \(method)")
        }
        // The ranks' shards and parts (beside --out) are gone once the merged file is written.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "left beside the output: \(left)")
        // The real --out is checked before any rank scores: the data file is not replaced.
        let copy = dir.appendingPathComponent("data.jsonl")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: data), to: copy)
        let before = try Data(contentsOf: copy)
        let over = try Self.mpirun(["score", "el2n", "--run", run.path, "--data", copy.path, "--max-length", "32", "--out", copy.path])
        #expect(over.status != 0 && over.stderr.contains("is the input file"), "\(over.stderr)")
        #expect(try Data(contentsOf: copy) == before, "the data file was replaced")
        // --out twice (the data file first), dynamics scores and tracin --test: usage errors said once, nothing written.
        for (extra, message) in [(["el2n", "--out=\(copy.path)", "--out", dir.appendingPathComponent("x.csv").path], "--out is given 2 times"),
                                 (["forgetting", "--out", dir.appendingPathComponent("x.csv").path], "forgetting is not split across ranks")] {
            let r = try Self.mpirun(["score"] + [extra[0], "--run", run.path, "--data", copy.path] + extra.dropFirst())
            #expect(r.status == 2 && r.stderr.components(separatedBy: message).count == 2, "\(extra): \(r.stderr)")
            #expect(try Data(contentsOf: copy) == before && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.csv").path))
        }
        // A command's --help is printed once, by rank 0 (before, score asked for --out and train printed it per rank).
        for command in ["score", "predict", "train"] {
            let h = try Self.mpirun([command, "--help"])
            #expect(h.status == 0 && h.stdout.components(separatedBy: "USAGE: winnow \(command)").count == 2, "\(command): \(h.stdout)\(h.stderr)")
        }
        let v = try Self.mpirun(["--version"]), one = try CLI.run(["--version"])
        #expect(v.status == 0 && v.stdout == one.stdout, "winnow-mpi --version: \(v.stdout)\(v.stderr)")
        // --format names the shards' format whatever --out's name.
        let txt = dir.appendingPathComponent("s.txt")
        let f = try Self.mpirun(["score", "el2n", "--run", run.path, "--data", data, "--max-length", "32", "--format", "jsonl", "--out", txt.path])
        #expect(f.status == 0, "\(f.stderr)")
        #expect((try? String(contentsOf: txt, encoding: .utf8))?.split(separator: "\n").count == 150)
        let p1 = dir.appendingPathComponent("pred-one.csv"), p2 = dir.appendingPathComponent("pred-mpi.csv")
        #expect(try CLI.run(["predict", "--run", run.path, "--data", data, "--max-length", "32", "--out", p1.path]).status == 0)
        #expect(try Self.mpirun(["predict", "--run", run.path, "--data", data, "--max-length", "32", "--out", p2.path]).status == 0)
        try ShardCLITests.expectSameScores(p2, p1, format: "csv", "mpi predict")

        // Data-parallel training (dropout off: masks are drawn per rank slice) equals one process.
        let t1 = dir.appendingPathComponent("t1"), t2 = dir.appendingPathComponent("t2")
        let targs = ["--dropout", "0"]
        #expect(try CLI.trainTiny(t1, extra: targs).status == 0)
        let t = try Self.mpirun(["train", "--data", data, "--vocab", CLI.tiny.appendingPathComponent("vocab.txt").path, "--out", t2.path,
                                 "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "2", "--batch-size", "16", "--lr", "1e-3",
                                 "--max-length", "32", "--checkpoints", "3", "--seed", "5"] + targs)
        #expect(t.status == 0, "mpirun train failed: \(t.stderr)")
        let a = try Self.floats(t1.appendingPathComponent("model.safetensors")), b = try Self.floats(t2.appendingPathComponent("model.safetensors"))
        #expect(a.keys.sorted() == b.keys.sorted())
        for (k, va) in a {
            let vb = b[k]!
            let scale = max(va.map(abs).max() ?? 0, 1e-3)
            let diff = zip(va, vb).map { abs($0 - $1) }.max() ?? 0
            #expect(diff <= 1e-4 * scale, "\(k): max difference \(diff) (scale \(scale))")
        }
        let da = try Self.floats(t1.appendingPathComponent("dynamics.safetensors")), db = try Self.floats(t2.appendingPathComponent("dynamics.safetensors"))
        #expect(da["index"]! == db["index"]! && da["step"]! == db["step"]!, "dynamics rows differ")
    }
}
