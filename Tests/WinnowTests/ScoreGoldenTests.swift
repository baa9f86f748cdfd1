import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Scores against PyTorch autograd on the tiny transformers.Trainer run
/// (scripts/reference/make_score_golden.py; definitions in Tests/Fixtures/README.md).
@Suite(.serialized) struct ScoreGoldenTests {
    let golden: SafeTensorsFile
    let run: URL, nullRun: URL
    let train: JSONLDataset, test: JSONLDataset
    let options: ScoreOptions

    init() throws {
        golden = try SafeTensorsFile(url: Paths.tinyBert.appendingPathComponent("scores.safetensors"))
        run = Paths.tinyBert.appendingPathComponent(golden.metadata["run"] ?? "run")
        nullRun = Paths.tinyBert.appendingPathComponent(golden.metadata["null_run"] ?? "null-run")
        train = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        test = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("test.jsonl"))
        var o = ScoreOptions()
        o.maxLength = Int(golden.metadata["max_length"] ?? "32") ?? 32
        o.checkpoints = CheckpointSelection(parsing: try golden.integers("steps").map(String.init).joined(separator: ","))!
        o.batchSize = 16
        options = o
    }

    func expectMatches(_ got: [Double], _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let want = try golden.tensor(name).values.map(Double.init)
        #expect(got.count == want.count, "\(name): \(got.count) vs \(want.count)", sourceLocation: sourceLocation)
        let rho = Statistics.spearman(got, want)
        let mre = Statistics.medianRelativeError(got, want)
        #expect(rho >= 0.999, "\(name): Spearman \(rho)", sourceLocation: sourceLocation)
        #expect(mre <= 1e-3, "\(name): median relative error \(mre)", sourceLocation: sourceLocation)
    }

    @Test func vog() throws {
        try expectMatches(VoG.score(ScoringRun(run: run, data: train, options: options)).scores, "vog")
    }

    @Test func el2n() throws {
        try expectMatches(EL2N.score(ScoringRun(run: run, data: train, options: options)).el2n.scores, "el2n")
    }

    @Test func grandOverAllParameters() throws {
        try expectMatches(GraNd.score(ScoringRun(run: run, data: train, options: options)).scores, "grand")
    }

    @Test(arguments: ["all", "classifier"])
    func tracinSelfInfluence(params: String) throws {
        var o = options
        o.params = ParameterSelection.Spec(parsing: params)!
        try expectMatches(TracIn.selfInfluence(ScoringRun(run: run, data: train, options: o)).scores, "tracin_self_\(params)")
    }

    @Test func tracinTrainToTest() throws {
        let sr = try ScoringRun(run: run, data: train, options: options)
        let testEnc = try EncodedDataset(test, tokenizer: sr.tokenizer, labels: sr.labelNames, maxLength: options.maxLength)
        let (m, table) = try TracIn.trainToTest(sr, test: testEnc)
        #expect(table.count == 150)
        try expectMatches(m.flatMap { $0.map(Double.init) }, "tracin_test")
        // The entry point for every family opens the run and both files itself and gives the same matrix.
        let influence = try TargetInfluence.matrix(run: run, train: train.url, test: test.url, options: options)
        #expect(influence.matrix == m && influence.train.lines == table.lines && influence.test.count == testEnc.count)
        try expectMatches(influence.matrix.flatMap { $0.map(Double.init) }, "tracin_test")
        let toward = try TargetInfluence.scores(run: run, train: train.url, test: test.url, options: options, mode: .max)
        #expect(try toward.scores == TargetInfluence.aggregate(m, mode: .max) && toward.table.count == 150)
    }

    @Test func pvi() throws {
        let r = try PVI.score(run: run, nullRun: nullRun, data: train.url, options: options)
        let pvi = try #require(r.components.first { $0.0 == "pvi" }?.1)
        try expectMatches(pvi, "pvi")
        #expect(zip(r.scores, pvi).allSatisfy { $0 == -$1 })
    }
}

/// Properties of the scores that hold whatever the model.
@Suite(.serialized) struct ScorePropertyTests {
    let run = Paths.tinyBert.appendingPathComponent("run")
    let train: JSONLDataset

    init() throws { train = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl")) }

    func options(_ checkpoints: String = "all") -> ScoreOptions {
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16; o.checkpoints = CheckpointSelection(parsing: checkpoints)!
        return o
    }

    @Test func vogOverIdenticalCheckpointsIsZero() throws {
        // Three checkpoints holding the same model (copies of the last one under new steps).
        let fm = FileManager.default
        let copy = fm.temporaryDirectory.appendingPathComponent("vog-identical-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: copy) }
        try fm.copyItem(at: run, to: copy)
        let last = try RunFolder(url: copy).checkpoints.last!.step
        for s in [last + 1, last + 2] {
            try fm.copyItem(at: copy.appendingPathComponent("checkpoint-\(last)"), to: copy.appendingPathComponent("checkpoint-\(s)"))
        }
        let r = try VoG.score(ScoringRun(run: copy, data: train, options: options("\(last),\(last + 1),\(last + 2)")))
        #expect(r.scores.allSatisfy { $0 == 0 })
        // One checkpoint listed three times counts once: refused by name.
        #expect(throws: WinnowError.self) { try ScoringRun(run: run, data: train, options: options("\(last),\(last),\(last)")) }
    }

    @Test func tracinSelfInfluenceEqualsTheDiagonalOfTrainToTest() throws {
        let sr = try ScoringRun(run: run, data: train, options: options())
        let selfInf = try TracIn.selfInfluence(sr).scores
        let enc = try EncodedDataset(train, tokenizer: sr.tokenizer, labels: sr.labelNames, maxLength: 32)
        let m = try TracIn.trainToTest(sr, test: enc).matrix
        for i in selfInf.indices {
            #expect(abs(Double(m[i][i]) - selfInf[i]) <= 1e-4 * abs(selfInf[i]) + 1e-9, "example \(i): \(m[i][i]) vs \(selfInf[i])")
        }
        // Symmetry of the influence matrix.
        for i in stride(from: 0, to: m.count, by: 17) {
            for j in stride(from: 0, to: m.count, by: 13) {
                #expect(abs(m[i][j] - m[j][i]) <= 1e-4 * max(abs(m[i][j]), 1e-6))
            }
        }
    }

    @Test func pviOfARunAgainstItselfWithTheSameInputsIsZero() throws {
        let r = try PVI.score(run: run, nullRun: run, data: train.url, options: options(), nullInputs: false)
        #expect(r.scores.allSatisfy { abs($0) < 1e-12 })
    }

    @Test func lrOverrideScalesTracIn() throws {
        var o = options()
        o.learningRate = 1
        let unweighted = try TracIn.selfInfluence(ScoringRun(run: run, data: train, options: o)).scores
        o.learningRate = 2
        let doubled = try TracIn.selfInfluence(ScoringRun(run: run, data: train, options: o)).scores
        for (a, b) in zip(unweighted, doubled) { #expect(abs(2 * a - b) <= 1e-9 + 1e-6 * abs(b)) }
    }
}

/// TracIn --project D: exact when D covers every dimension, close in rank when it does not.
@Suite(.serialized) struct TracInProjectionTests {
    let run = Paths.tinyBert.appendingPathComponent("run")
    let train: JSONLDataset

    init() throws { train = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl")) }

    func selfInfluence(project: Int?, seed: UInt64 = 0) throws -> [Double] {
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16; o.projectDim = project; o.seed = seed
        return try TracIn.selfInfluence(ScoringRun(run: run, data: train, options: o)).scores
    }

    @Test func projectionWiderThanEveryLayerIsExact() throws {
        let exact = try selfInfluence(project: nil)
        let wide = try selfInfluence(project: 1 << 20)
        for (a, b) in zip(wide, exact) { #expect(abs(a - b) <= 1e-4 * abs(b) + 1e-9, "\(a) vs \(b)") }
    }

    @Test func narrowProjectionKeepsTheRanking() throws {
        let exact = try selfInfluence(project: nil)
        let p = try selfInfluence(project: 256)
        let rho = Statistics.spearman(p, exact)
        #expect(rho >= 0.9, "Spearman of projected vs exact self-influence: \(rho)")
        #expect(try selfInfluence(project: 256) == p, "the same seed gives the same projection")
        #expect(try selfInfluence(project: 256, seed: 1) != p, "another seed gives another projection")
    }

    @Test func projectedTrainToTestDiagonalEqualsProjectedSelfInfluence() throws {
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16; o.projectDim = 64
        let sr = try ScoringRun(run: run, data: train, options: o)
        let s = try TracIn.selfInfluence(sr).scores
        let enc = try EncodedDataset(train, tokenizer: sr.tokenizer, labels: sr.labelNames, maxLength: 32)
        let m = try TracIn.trainToTest(sr, test: enc).matrix
        for i in stride(from: 0, to: s.count, by: 7) { #expect(abs(Double(m[i][i]) - s[i]) <= 1e-4 * abs(s[i]) + 1e-9) }
    }
}

/// The data file is streamed in chunks; chunk boundaries must not change any score or row.
@Suite struct StreamingTests {
    @Test func chunkSizeDoesNotChangeScoresOrRows() throws {
        let train = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 8; o.checkpoints = CheckpointSelection(parsing: "first,last")!
        var sr = try ScoringRun(run: Paths.tinyBert.appendingPathComponent("run"), data: train, options: o)
        let whole = try EL2N.score(sr).el2n
        sr.chunkSize = 7
        let chunked = try EL2N.score(sr).el2n
        #expect(chunked.table == whole.table)
        #expect(whole.table.count == 150 && whole.table.lines.first == 1 && whole.table.ids.first == "train-000")
        for (a, b) in zip(chunked.scores, whole.scores) { #expect(abs(a - b) <= 1e-6 * abs(b)) }
    }
}
