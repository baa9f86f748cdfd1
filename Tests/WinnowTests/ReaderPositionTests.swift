import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// A reader reopened at a kept position reads exactly what the original reader read next (resumable
/// scoring parts start there instead of re-parsing the file), and scoring in parts equals one pass.
@Suite struct ReaderPositionTests {
    @Test(arguments: [1, 7, 64])
    func reopenedReaderContinuesExactly(at k: Int) throws {
        let url = Paths.tinyBert.appendingPathComponent("train.jsonl")
        var first = try JSONLReader(url: url)
        _ = try first.next(upTo: k)
        let p = first.position
        let rest = try first.next(upTo: 1000) ?? []
        var second = try JSONLReader(url: url, resumingAt: p)
        let again = try second.next(upTo: 1000) ?? []
        #expect(again.map(\.line) == rest.map(\.line))
        #expect(again.map(\.text) == rest.map(\.text))
        #expect(again.map(\.label) == rest.map(\.label))
        #expect(second.bytesRead == first.bytesRead)
    }

    @Test func partsEqualOnePass() throws {
        let run = Paths.tinyBert.appendingPathComponent("run")
        let data = Paths.tinyBert.appendingPathComponent("train.jsonl")
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16
        let whole = try Scorer.score(.el2n, run: run, data: data, options: o)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-parts-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: dir, resume: false, partSize: 37)
        // Parts of 37 examples batch differently from one pass (batches of 16 padded to other lengths),
        // so the values agree to float rounding, and the rows exactly.
        #expect(parts.table.lines == whole.table.lines)
        #expect(parts.scores.count == whole.scores.count)
        let worst = zip(parts.scores, whole.scores).map { abs($0 - $1) / max(1e-12, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-5, "largest relative difference \(worst)")
        // Parts of a multiple of the batch size batch identically: equal bit for bit.
        let dir2 = dir.appendingPathExtension("b")
        defer { try? FileManager.default.removeItem(at: dir2) }
        let aligned = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: dir2, resume: false, partSize: 32)
        #expect(aligned.scores == whole.scores)
    }

    /// Parts of a data file that was rewritten since (same path, same number of examples) are not reused.
    @Test func resumeRefusesPartsOfADataFileSinceRewritten() throws {
        let run = Paths.tinyBert.appendingPathComponent("run")
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("winnow-rewritten-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let data = dir.appendingPathComponent("train.jsonl"), parts = dir.appendingPathComponent("s.csv.parts")
        try fm.copyItem(at: Paths.tinyBert.appendingPathComponent("train.jsonl"), to: data)
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16
        _ = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: false, partSize: 37)
        // The same file again resumes; the file rewritten with its lines reversed does not.
        _ = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: true, partSize: 37)
        // Another token limit is named in the refusal, with both values.
        var longer = o
        longer.maxLength = 64
        #expect { try ScoreParts.score(.el2n, run: run, data: data, options: longer, parts: parts, resume: true, partSize: 37) } throws: {
            "\($0)".contains("holds parts of another scoring (maxLength: 32 there, 64 now)")
        }
        let lines = try String(contentsOf: data, encoding: .utf8).split(separator: "\n")
        try (lines.reversed().joined(separator: "\n") + "\n\n").write(to: data, atomically: true, encoding: .utf8)
        #expect(throws: WinnowError.self) { try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: true, partSize: 37) }
    }

    /// Parts saved by a winnow that did not record the model files are refused with that reason; a parts
    /// folder whose manifest differs but which holds no part starts afresh under --resume.
    @Test func resumeNamesAnOlderManifestAndRestartsAnEmptyOne() throws {
        let run = Paths.tinyBert.appendingPathComponent("run")
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("winnow-oldmanifest-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let data = Paths.tinyBert.appendingPathComponent("train.jsonl"), parts = dir.appendingPathComponent("s.csv.parts")
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16
        let whole = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: false, partSize: 37)
        let manifest = parts.appendingPathComponent("manifest.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as! [String: Any]
        #expect(json["modelFiles"] != nil)
        json["modelFiles"] = nil
        try JSONSerialization.data(withJSONObject: json).write(to: manifest)
        #expect { try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: true, partSize: 37) } throws: {
            "\($0)".contains("saved by an earlier winnow, which did not record the model files it read")
        }
        // The parts removed, the old manifest alone is no reason to refuse: the scoring starts afresh and equals the first.
        for f in try fm.contentsOfDirectory(atPath: parts.path) where f.hasPrefix("part-") {
            try fm.removeItem(at: parts.appendingPathComponent(f))
        }
        let again = try ScoreParts.score(.el2n, run: run, data: data, options: o, parts: parts, resume: true, partSize: 37)
        #expect(again.scores == whole.scores)
        let rewritten = try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as! [String: Any]
        #expect(rewritten["modelFiles"] != nil)
    }

    /// `winnow score` writes part by part from the parts folder (one part in memory at a time): the
    /// file equals the merged result written whole, byte for byte, in every format, a shard included
    /// (rows numbered globally), with margin's component column.
    @Test(arguments: ScoreWriter.Format.allCases)
    func streamedFileEqualsTheMergedResultWritten(format: ScoreWriter.Format) throws {
        let run = Paths.tinyBert.appendingPathComponent("run")
        let data = Paths.tinyBert.appendingPathComponent("train.jsonl")
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-stream-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        for shard in [nil, try Shard(index: 1, count: 3)] {
            let merged = try ScoreParts.score(.margin, run: run, data: data, options: o, parts: dir.appendingPathComponent("a"),
                                              resume: false, partSize: 37, shard: shard)
            #expect(merged.components.map(\.0) == ScoreMethod.margin.columns)
            let whole = dir.appendingPathComponent("whole"), streamed = dir.appendingPathComponent("streamed")
            try ScoreWriter.write(merged, format: format, to: whole)
            let (n, notes, _) = try ScoreParts.scoreToFile(.margin, run: run, data: data, options: o, parts: dir.appendingPathComponent("b"),
                                                       resume: false, partSize: 37, shard: shard, format: format, to: streamed)
            #expect(n == merged.scores.count && notes == merged.notes)
            #expect(try Data(contentsOf: streamed) == Data(contentsOf: whole), "\(format) shard \(String(describing: shard))")
        }
    }

    /// PVI in parts keeps its two scoring runs (and final models) across parts, so each part continues
    /// where the previous stopped; the merged scores equal one pass bit for bit.
    @Test func pviPartsEqualOnePass() throws {
        let run = Paths.tinyBert.appendingPathComponent("run"), nullRun = Paths.tinyBert.appendingPathComponent("null-run")
        let data = Paths.tinyBert.appendingPathComponent("train.jsonl")
        var o = ScoreOptions()
        o.maxLength = 32; o.batchSize = 16
        let whole = try PVI.score(run: run, nullRun: nullRun, data: data, options: o)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-pvi-parts-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = try ScoreParts.score(.pvi, run: run, data: data, options: o, nullRun: nullRun, parts: dir, resume: false, partSize: 32)
        #expect(parts.table.lines == whole.table.lines)
        #expect(parts.scores == whole.scores)
        #expect(parts.components.map(\.0) == whole.components.map(\.0))
        #expect(whole.components.map(\.0) == ScoreMethod.pvi.columns)
        for (a, b) in zip(parts.components, whole.components) { #expect(a.1 == b.1, "\(a.0)") }
    }
}
