import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Matches a `WinnowError.invalidOption` that names `name` (whatever its reason).
func namesOption(_ name: String) -> @Sendable (any Error) -> Bool {
    { e in if case let .invalidOption(n, _)? = e as? WinnowError { n == name } else { false } }
}

@Suite struct SelectionTests {
    static let scores: [Double] = (0..<100).map { Double(($0 * 37) % 100) / 10 }      // a permutation of 0.0 ... 9.9
    static let labels: [String] = (0..<100).map { $0 % 3 == 0 ? "a" : "b" }

    func options(_ keep: Double, _ p: SelectionOptions.Preference, _ s: SelectionOptions.Sampling, seed: UInt64 = 0) -> SelectionOptions {
        var o = SelectionOptions(keep: keep)
        o.preference = p; o.sampling = s; o.seed = seed; o.beta = 0.1; o.normalization = .none
        return o
    }

    @Test(arguments: [0.0, 0.3, 0.5, 0.505, 0.7, 1.0])
    func exactCounts(keep: Double) throws {
        let n = Selector.budget(100, keep: keep)
        #expect(n == Int((keep * 100).rounded(.toNearestOrAwayFromZero)))
        for p in SelectionOptions.Preference.allCases {
            for s in [SelectionOptions.Sampling.top, .softmax, .linear] {
                let k = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(keep, p, s))
                #expect(k.count == n, "\(p) \(s) keep \(keep)")
                #expect(k == k.sorted() && Set(k).count == k.count)
            }
        }
        let strat = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(keep, .hard, .stratified))
        #expect(strat.count == min(n, 90), "stratified keeps at most (1 - beta) N")
    }

    /// Bad values from a program that embeds the library throw, naming the property, instead of trapping.
    @Test func badOptionsThrowNamingTheProperty() throws {
        let s: [Double] = [0, 1, 2, 3], l = Array(repeating: "x", count: 4)
        let cases: [(String, (inout SelectionOptions) -> Void)] = [
            ("keep", { $0.keep = .nan }), ("keep", { $0.keep = .infinity }), ("keep", { $0.keep = 1.5 }),
            ("temperature", { $0.sampling = .softmax; $0.temperature = 0 }), ("beta", { $0.sampling = .stratified; $0.beta = .nan }),
            ("beta", { $0.beta = 1 }), ("bins", { $0.sampling = .stratified; $0.bins = 0 }), ("epsilon", { $0.epsilon = -1 }),
            ("sampling", { $0.preference = .moderate; $0.sampling = .stratified }),
        ]
        for (name, change) in cases {
            var o = SelectionOptions(keep: 0.5)
            change(&o)
            #expect(performing: { try o.validate() }, throws: namesOption(name))
            #expect(performing: { try Selector.choose(scores: s, labels: l, options: o) }, throws: namesOption(name))
        }
        #expect(performing: { try Selector.choose(scores: s, labels: ["x"], options: SelectionOptions(keep: 0.5)) }, throws: namesOption("labels"))
        #expect(performing: { try Selector.choose(scores: [0, .nan, 1, 2], labels: l, options: SelectionOptions(keep: 0.5)) }, throws: namesOption("scores"))
        #expect(performing: {
            try Pruning.prune(data: URL(fileURLWithPath: "/nonexistent"), lines: [1, 2], scores: s, labels: l, options: SelectionOptions(keep: 0.5), to: nil)
        }, throws: namesOption("lines"))
    }

    @Test func topPicksTheHighestOrLowestWithTiesByIndex() throws {
        let s: [Double] = [1, 5, 5, 2, 5, 0]
        let l = Array(repeating: "x", count: 6)
        #expect(try Selector.choose(scores: s, labels: l, options: options(0.5, .hard, .top)) == [1, 2, 4])
        var o = options(2.0 / 6, .hard, .top)
        #expect(try Selector.choose(scores: s, labels: l, options: o) == [1, 2])      // ties: lower index first
        o.preference = .easy
        #expect(try Selector.choose(scores: s, labels: l, options: o) == [0, 5])
    }

    @Test func moderateKeepsTheScoresNearestTheMedian() throws {
        // Median 4 (of 0 1 2 3 4 5 6 8 9 ... the 9 values below, odd count): nearest are 4, then 3 and 5 (tie: lower index).
        let s: [Double] = [9, 4, 0, 5, 8, 3, 1, 6, 2]
        let l = Array(repeating: "x", count: 9)
        #expect(Selector.median(s) == 4 && Selector.median([1, 2, 10, 20]) == 6 && Selector.median([]) == 0)
        #expect(try Selector.choose(scores: s, labels: l, options: options(3.0 / 9, .moderate, .top)) == [1, 3, 5])
        // Both ends go: the hardest (9, 8) and the easiest (0, 1) are the last kept.
        let five = try Selector.choose(scores: s, labels: l, options: options(5.0 / 9, .moderate, .top))
        #expect(Set(five.map { s[$0] }) == [2, 3, 4, 5, 6], "\(five)")
        // Per label: each label's own median. a = 0, 10, 20 (median 10), b = 100, 101, 150, 160 (median 125.5).
        let ps: [Double] = [0, 100, 10, 101, 20, 150, 160]
        let pl = ["a", "b", "a", "b", "a", "b", "b"]
        var o = options(3.0 / 7, .moderate, .top)
        o.perLabel = true
        #expect(try Selector.choose(scores: ps, labels: pl, options: o) == [2, 3, 5])
        // Sampled: the distance to the median is read as an easy preference reads the score, so a cold softmax
        // keeps what top-k keeps, and the draws are a permutation's prefix of every example.
        var cold = options(3.0 / 9, .moderate, .softmax)
        cold.temperature = 1e-3
        #expect(try Selector.choose(scores: s, labels: l, options: cold) == [1, 3, 5])
        let linear = try Selector.choose(scores: s, labels: l, options: options(4.0 / 9, .moderate, .linear, seed: 5))
        #expect(linear.count == 4 && Set(linear).count == 4)
    }

    /// An experiment plan with moderate selection: the cross product leaves out moderate x stratified, and
    /// explicit settings that pair moderate with stratified sampling or a tie-break are refused.
    @Test func experimentPlansTakeModerateWhereItHasAMeaning() throws {
        var p = ExperimentPlan(train: "t.jsonl", test: "s.jsonl")
        p.model.vocab = "vocab.txt"
        p.settings = nil
        p.methods = [.el2n]; p.selects = [.moderate, .hard]; p.samplings = [.top, .stratified]
        #expect(p.selectionSettings.map(\.description) == ["el2n:moderate:top:dataset", "el2n:hard:top:dataset", "el2n:hard:stratified:dataset"])
        try p.validate()
        p.settings = [ExperimentPlan.Setting(method: .el2n, select: .moderate, sampling: .softmax)]
        try p.validate()
        p.settings = [ExperimentPlan.Setting(method: .el2n, select: .moderate, sampling: .stratified)]
        #expect(throws: WinnowError.self) { try p.validate() }
        p.settings = [ExperimentPlan.Setting(method: .forgetting, select: .moderate, thenBy: .init(method: .el2n, epoch1: true, select: .hard))]
        p.methods = [.forgetting]
        #expect(throws: WinnowError.self) { try p.validate() }
        #expect(throws: WinnowError.self) { try ExperimentPlan.TieBreak(parsing: "el2n:moderate") }
        // -last reads the last checkpoint; a plan written before it existed decodes without it.
        let last = try ExperimentPlan.TieBreak(parsing: "el2n-last:hard")
        #expect(last.last && !last.epoch1 && last.scoreName == "el2n-last" && last.description == "el2n-last:hard")
        let old = try JSONDecoder().decode(ExperimentPlan.TieBreak.self, from: Data(#"{"method": "el2n", "epoch1": true, "select": "hard"}"#.utf8))
        #expect(old == ExperimentPlan.TieBreak(method: .el2n, epoch1: true, select: .hard))
        #expect(try JSONDecoder().decode(ExperimentPlan.TieBreak.self, from: JSONEncoder().encode(last)) == last)
        #expect(throws: WinnowError.self) { try ExperimentPlan.TieBreak(parsing: "forgetting-last:hard") }
        #expect(try ExperimentPlan.Setting(parsing: "el2n:moderate:softmax:class").select == .moderate)
        // A plan's default settings are the recommended one.
        #expect(ExperimentPlan(train: "t.jsonl", test: "s.jsonl").settings == [ExperimentPlan.recommended])
    }

    /// `fullSeeds`: the full-data rows of the first seeds only, every subset with every seed; more than `seeds` or
    /// fewer than 1 refused; a plan written before the option decodes without it (every seed).
    @Test func fullDataRowsTakeTheirOwnSeedCount() throws {
        var p = ExperimentPlan(train: "t.jsonl", test: "s.jsonl")
        p.model.vocab = "vocab.txt"
        p.keeps = [1, 0.5]; p.seeds = 3
        func full(_ p: ExperimentPlan) -> [Int] { p.cells.filter(\.isFull).map(\.seed) }
        #expect(full(p) == [0, 1, 2])
        p.fullSeeds = 1
        try p.validate()
        #expect(full(p) == [0] && p.cells.filter(\.isRandom).map(\.seed) == [0, 1, 2] && p.cells.count == 1 + 3 * 2)
        for bad in [0, 4] {
            p.fullSeeds = bad
            #expect(throws: WinnowError.self) { try p.validate() }
        }
        p.fullSeeds = nil
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(p)) as! [String: Any]
        #expect(json["fullSeeds"] == nil)
        json["fullSeeds"] = 2
        #expect(try full(JSONDecoder().decode(ExperimentPlan.self, from: JSONSerialization.data(withJSONObject: json))) == [0, 1])
    }

    /// A tie-break may read another column of its score's file (`cartography.variability`): parsed, named and
    /// validated against the columns the score writes; `.score` is the score itself; a score's other column may
    /// break its own ties.
    @Test func aTieBreakReadsAColumnOfItsScoreFile() throws {
        let v = try ExperimentPlan.TieBreak(parsing: "cartography.variability:hard")
        #expect(v == ExperimentPlan.TieBreak(method: .cartography, epoch1: false, column: "variability", select: .hard))
        #expect(v.scoreName == "cartography" && v.key == "cartography.variability" && v.description == "cartography.variability:hard")
        #expect(try ExperimentPlan.TieBreak(parsing: "cartography.score:easy") == ExperimentPlan.TieBreak(method: .cartography, epoch1: false, select: .easy))
        #expect(try JSONDecoder().decode(ExperimentPlan.TieBreak.self, from: JSONEncoder().encode(v)) == v)
        #expect { try ExperimentPlan.TieBreak(parsing: "cartography.ambiguity:hard") } throws: {
            "\($0)".contains("no column 'ambiguity'") && "\($0)".contains("confidence, variability, correctness")
        }
        #expect { try ExperimentPlan.TieBreak(parsing: "el2n-epoch1.margin:hard") } throws: { "\($0)".contains("has only its score") }
        let setting = try ExperimentPlan.Setting(parsing: "forgetting:easy+cartography.variability:hard")
        #expect(setting == ExperimentPlan.recommended)
        #expect(setting.methodName == "forgetting+cartography.variability-hard")
        #expect(setting.description == "forgetting:easy:top:dataset+cartography.variability:hard")
        // Another column of the same score breaks its ties; the score itself does not.
        #expect(try ExperimentPlan.Setting(parsing: "cartography:easy+cartography.variability:hard").thenBy?.column == "variability")
        #expect { try ExperimentPlan.Setting(parsing: "cartography:easy+cartography:hard") } throws: { "\($0)".contains("cannot break its own ties") }
        // Two columns of one file are two tie-breaks of the plan (one scoring).
        var p = ExperimentPlan(train: "t.jsonl", test: "s.jsonl")
        p.model.vocab = "vocab.txt"
        p.settings = [setting, try ExperimentPlan.Setting(parsing: "forgetting:easy+cartography.confidence:easy")]
        try p.validate()
        #expect(p.tieBreaks.map(\.key) == ["cartography.variability", "cartography.confidence"])
        // A column that is its score reversed ranks as that score does: it cannot break the score's own ties, and
        // as another score's tie-break it selects what the score's other end selects.
        for same in ["aum:easy+aum.aum:easy", "cartography:easy+cartography.confidence:hard", "margin:hard+margin.margin:easy"] {
            #expect { try ExperimentPlan.Setting(parsing: same) } throws: { "\($0)".contains("cannot break its own ties") && "\($0)".contains("reversed") }
        }
        p.settings = [try ExperimentPlan.Setting(parsing: "forgetting:easy+cartography.confidence:hard"), try ExperimentPlan.Setting(parsing: "forgetting:easy+cartography:easy")]
        #expect { try p.validate() } throws: { "\($0)".contains("select the same examples") }
        // `score` is the score itself, from the parser, the initialiser and a plan file alike.
        let plain = ExperimentPlan.TieBreak(method: .cartography, epoch1: false, select: .hard)
        #expect(ExperimentPlan.TieBreak(method: .cartography, epoch1: false, column: "score", select: .hard) == plain)
        #expect(try JSONDecoder().decode(ExperimentPlan.TieBreak.self, from: Data(#"{"method": "cartography", "epoch1": false, "column": "score", "select": "hard"}"#.utf8)) == plain)
        #expect { try ExperimentPlan.TieBreak(parsing: "cartography.:hard") } throws: { "\($0)".contains("the column after '.' is empty") }
        #expect(try ExperimentPlan.Setting(parsing: "forgetting: easy + cartography.variability :hard") == ExperimentPlan.recommended)
        // Every score's columns are the ones its results carry.
        #expect(ScoreMethod.cartography.columns == ["confidence", "variability", "correctness"])
        #expect(ScoreMethod.el2n.columns.isEmpty)
    }

    @Test func classNormalisationRanksEachLabelOnItsOwnScale() throws {
        // Class a scores 100..109, class b 0..9: dataset-level top-10 takes only a; class-level takes the top half of each.
        let s = (0..<10).map { Double(100 + $0) } + (0..<10).map(Double.init)
        let l = Array(repeating: "a", count: 10) + Array(repeating: "b", count: 10)
        var o = options(0.5, .hard, .top)
        o.normalization = .dataset
        #expect(try Selector.choose(scores: s, labels: l, options: o) == Array(0..<10))
        o.normalization = .class
        #expect(try Selector.choose(scores: s, labels: l, options: o) == Array(5..<10) + Array(15..<20))
        let z = Normalization.class.apply(s, labels: l)
        #expect(abs(z[0] - z[10]) < 1e-12 && abs(z[9] - z[19]) < 1e-12)
        #expect(Normalization.dataset.apply([3, 3, 3], labels: ["a", "a", "a"]) == [0, 0, 0])     // zero std -> 0
    }

    @Test func quotasFollowTheLabelSizesAndSumToTheBudget() throws {
        #expect(Selector.quotas(counts: [50, 30, 20], total: 10) == [5, 3, 2])
        // 7 * [5, 3, 2] / 10 = 3.5, 2.1, 1.4: floors 3, 2, 1, the one left to the largest remainder (0.5).
        #expect(Selector.quotas(counts: [5, 3, 2], total: 7) == [4, 2, 1])
        #expect(Selector.quotas(counts: [1, 1, 1], total: 2) == [1, 1, 0])      // equal remainders: the earlier groups
        #expect(Selector.quotas(counts: [4, 0, 2], total: 99) == [4, 0, 2])     // never more than a group holds
        #expect(Selector.quotas(counts: [], total: 3).isEmpty)
        for total in 0...100 {
            let q = Selector.quotas(counts: [37, 41, 22], total: total)
            #expect(q.reduce(0, +) == total && zip(q, [37, 41, 22]).allSatisfy { abs(Double($0) - Double(total * $1) / 100) < 1 })
        }
    }

    @Test func perLabelSelectionKeepsEachLabelsShare() throws {
        // Labels a (34 examples) and b (66): dataset top-k by hard takes the highest scores wherever they fall;
        // per label, each label keeps its quota of its own hardest (or, for random, any) examples.
        for p in SelectionOptions.Preference.allCases {
            for s in SelectionOptions.Sampling.allCases where !(p == .moderate && s == .stratified) {
                var o = options(0.3, p, s, seed: 3)
                o.perLabel = true
                let k = try Selector.choose(scores: Self.scores, labels: Self.labels, options: o)
                let a = k.filter { Self.labels[$0] == "a" }.count
                #expect(k == k.sorted() && Set(k).count == k.count)
                // Quotas 0.3 * 34 = 10.2 -> 10 and 0.3 * 66 = 19.8 -> 20 (stratified drops beta of each label first,
                // which leaves enough of both).
                #expect(a == 10 && k.count == 30, "\(p) \(s): \(a) of \(k.count)")
            }
        }
        // Top-k per label: each label's own highest scores.
        var o = options(0.3, .hard, .top)
        o.perLabel = true
        let k = try Selector.choose(scores: Self.scores, labels: Self.labels, options: o)
        for l in ["a", "b"] {
            let mine = Self.scores.indices.filter { Self.labels[$0] == l }
            let kept = Set(k.filter { Self.labels[$0] == l })
            let best = Set(mine.sorted { Self.scores[$0] > Self.scores[$1] }.prefix(kept.count))
            #expect(kept == best, "label \(l)")
        }
        // Off: the same selection as before the option existed (dataset top-k over all examples).
        o.perLabel = false
        #expect(try Selector.choose(scores: Self.scores, labels: Self.labels, options: o) == Self.scores.indices.sorted { Self.scores[$0] > Self.scores[$1] }.prefix(30).sorted())
    }

    @Test func thenByBreaksTiesByASecondScoreFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-thenby-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ rows: [(line: Int, label: String, score: Double)]) throws -> ScoreFile {
            let url = dir.appendingPathComponent(name)
            try ("index,line,id,label,score\n" + rows.enumerated().map { "\($0.offset),\($0.element.line),,\($0.element.label),\($0.element.score)" }
                .joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
            return try ScoreFile(url: url)
        }
        // Forgetting-like counts: lines 1-4 never forgotten (0), 5 once, 6 twice. The second file lists the lines
        // in another order, as a score of another run may.
        let counts = try file("f.csv", [(1, "a", 0), (2, "a", 0), (3, "b", 0), (4, "b", 0), (5, "a", 1), (6, "b", 2)])
        let el2n = try file("e.csv", [(6, "b", 0.1), (4, "b", 0.7), (3, "b", 0.2), (2, "a", 0.9), (1, "a", 0.3), (5, "a", 0.5)])
        let easyThenHard = try counts.thenBy(el2n, select: .easy, then: .hard)
        #expect(easyThenHard.lines == counts.lines && easyThenHard.labels == counts.labels)
        // Lowest count first; among the zeros, the highest EL2N first (line 2: 0.9, then 4, 1, 3).
        #expect(easyThenHard.scores == [2, 0, 3, 1, 4, 5])
        #expect(try counts.thenBy(el2n, select: .easy, then: .easy).scores == [1, 3, 0, 2, 4, 5])
        // Keeping the hardest: the highest count first; among the zeros the hardest (highest EL2N) by `then: .hard`.
        let hard = try counts.thenBy(el2n, select: .hard, then: .hard)
        #expect(hard.scores == [1, 3, 0, 2, 4, 5])
        var o = SelectionOptions(keep: 0.5); o.preference = .easy
        #expect(try Selector.choose(scores: easyThenHard.scores, labels: easyThenHard.labels, options: o) == [0, 1, 3])   // lines 2, 4 and 1
        o.perLabel = true   // one of label a's zeros (line 2), one of b's (line 4), and the third quota to a: line 1
        #expect(try Selector.choose(scores: easyThenHard.scores, labels: easyThenHard.labels, options: o).map { counts.lines[$0] } == [1, 2, 4])
        // Pairs tied in both scores share a rank.
        let same = try file("s.csv", [(1, "a", 0.5), (2, "a", 0.5), (3, "b", 0.5), (4, "b", 0.5), (5, "a", 0.5), (6, "b", 0.5)])
        #expect(try counts.thenBy(same, select: .easy, then: .hard).scores == [0, 0, 0, 0, 4, 5])
        // A second file of other data is refused, naming it.
        let short = try file("short.csv", [(1, "a", 0.3)])
        #expect { try counts.thenBy(short, select: .easy, then: .hard) } throws: { "\($0)".contains("short.csv") && "\($0)".contains("data line 2") }
        let relabelled = try file("relabelled.csv", [(1, "b", 0.3), (2, "a", 0.9), (3, "b", 0.2), (4, "b", 0.7), (5, "a", 0.5), (6, "b", 0.1)])
        #expect { try counts.thenBy(relabelled, select: .easy, then: .hard) } throws: { "\($0)".contains("relabelled.csv") && "\($0)".contains("label 'b'") }
    }

    @Test func aScoreFileReadsAnotherColumnAsTheScore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-column-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = dir.appendingPathComponent("cartography.csv")
        try "index,line,id,label,score,confidence,variability,correctness\n0,1,,a,0.7,0.3,0.25,0\n1,2,,b,0.1,0.9,0.05,1\n2,3,,a,0.4,0.6,0.4,0.5\n"
            .write(to: csv, atomically: true, encoding: .utf8)
        let jsonl = dir.appendingPathComponent("cartography.jsonl")
        try """
        {"index":0,"line":1,"label":"a","score":0.7,"variability":0.25}
        {"index":1,"line":2,"label":"b","score":0.1,"variability":0.05}
        {"index":2,"line":3,"label":"a","score":0.4,"variability":0.4}

        """.write(to: jsonl, atomically: true, encoding: .utf8)
        #expect(try ScoreFile(url: csv).scores == [0.7, 0.1, 0.4])
        for url in [csv, jsonl] {
            let v = try ScoreFile(url: url, column: "variability")
            #expect(v.column == "variability" && v.scores == [0.25, 0.05, 0.4] && v.labels == ["a", "b", "a"] && v.lines == [1, 2, 3])
            // The most ambiguous third: line 3.
            var o = SelectionOptions(keep: 1.0 / 3); o.preference = .hard
            #expect(try Selector.choose(scores: v.scores, labels: v.labels, options: o).map { v.lines[$0] } == [3])
            #expect { try ScoreFile(url: url, column: "spread") } throws: { "\($0)".contains(url.lastPathComponent) && "\($0)".contains("spread") }
        }
        // As a tie-break's column: equal counts, ties by variability.
        let counts = dir.appendingPathComponent("counts.csv")
        try "index,line,id,label,score\n0,1,,a,0\n1,2,,b,0\n2,3,,a,1\n".write(to: counts, atomically: true, encoding: .utf8)
        let ranked = try ScoreFile(url: counts).thenBy(ScoreFile(url: csv, column: "variability"), select: .easy, then: .hard)
        #expect(ranked.scores == [0, 1, 2])   // line 1 (0.25) before line 2 (0.05); line 3 forgotten once
    }

    @Test func seededSamplingIsReproducible() throws {
        for s in [SelectionOptions.Sampling.softmax, .linear, .stratified] {
            let a = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.3, .hard, s, seed: 4))
            let b = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.3, .hard, s, seed: 4))
            let c = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.3, .hard, s, seed: 5))
            #expect(a == b, "\(s): the same seed must give the same selection")
            #expect(a != c, "\(s): another seed should give another selection")
        }
        let r1 = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.3, .random, .top, seed: 1))
        let r2 = try Selector.choose(scores: Self.scores.reversed(), labels: Self.labels, options: options(0.3, .random, .top, seed: 1))
        #expect(r1 == r2, "random ignores the scores")
    }

    /// Keeping one example out of four many times: its frequency must match weight / sum of weights.
    @Test(arguments: [SelectionOptions.Sampling.softmax, .linear])
    func samplingFollowsTheWeights(sampling: SelectionOptions.Sampling) throws {
        let s: [Double] = [0, 1, 2, 3]
        let l = Array(repeating: "x", count: 4)
        let trials = 20000
        var count = [Int](repeating: 0, count: 4)
        for seed in 0..<trials {
            var o = options(0.25, .hard, sampling, seed: UInt64(seed))
            o.temperature = 1.5
            let first = try Selector.choose(scores: s, labels: l, options: o)[0]
            count[first] += 1
        }
        let w: [Double] = sampling == .softmax ? s.map { exp($0 / 1.5) } : s.map { $0 - 0 + 1e-6 }
        let total = w.reduce(0, +)
        for i in 0..<4 {
            let p = w[i] / total
            let expected = p * Double(trials)
            let sd = (Double(trials) * p * (1 - p)).squareRoot()
            #expect(abs(Double(count[i]) - expected) <= 5 * sd + 1, "\(sampling) example \(i): \(count[i]) draws, expected \(expected)")
        }
    }

    @Test func easySoftmaxPrefersLowScores() throws {
        let k = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.2, .easy, .softmax))
        let mean = k.map { Self.scores[$0] }.reduce(0, +) / Double(k.count)
        #expect(mean < 3, "mean kept score \(mean) should be well below the overall mean 4.95")
    }

    @Test func stratifiedDropsTheHardestAndCoversTheScoreRange() throws {
        let k = try Selector.choose(scores: Self.scores, labels: Self.labels, options: options(0.5, .hard, .stratified))
        let kept = k.map { Self.scores[$0] }
        #expect(kept.allSatisfy { $0 < 9.0 }, "the hardest 10% (scores 9.0-9.9) are dropped")
        // 90 examples over 50 bins of width ~0.18: both ends of the remaining range are represented.
        #expect(kept.contains { $0 < 1 } && kept.contains { $0 > 8 })
        #expect(k.count == 50)
    }

    /// Zheng et al.'s Algorithm 1: floor(beta n) dropped, and each bin from the smallest up takes
    /// min(its size, floor(budget left / bins left)), so the larger bins take what the budget leaves over
    /// (before, the smaller bins took the ceiling and rounding dropped round(beta n)).
    @Test func stratifiedBudgetsFollowZhengEtAl() {
        // 53, 50, 23 and 24 examples at scores 0, 1, 2 and 3: four bins; 15 kept.
        let s = [Double](repeating: 0, count: 53) + [Double](repeating: 1, count: 50) + [Double](repeating: 2, count: 23) + [Double](repeating: 3, count: 24)
        var rng = SeededGenerator(seed: 1)
        let kept = Selector.stratified(s, k: 15, beta: 0, bins: 4, rng: &rng)
        #expect(Dictionary(grouping: kept) { s[$0] }.mapValues(\.count) == [0: 4, 1: 4, 2: 3, 3: 4])
        // beta 0.13 of 150 drops floor(19.5) = 19: 131 are left to keep.
        var rng2 = SeededGenerator(seed: 1)
        #expect(Selector.stratified(s, k: 150, beta: 0.13, bins: 4, rng: &rng2).count == 131)
    }

    /// The report's annotator-agreement row: Spearman against the disagreement share, the disputed share in
    /// the top tenth (ceil, ties by line) and overall; lines without votes are left out.
    @Test func annotatorAgreementAgainstAPlainCount() throws {
        // 20 voted lines: line n has disagreement 0.6 when n % 4 == 0, 0.2 otherwise; line 99 has no votes.
        var dis: [Int: Double] = [:]
        for n in 1...20 { dis[n] = n % 4 == 0 ? 0.6 : 0.2 }
        let lines = Array(1...20) + [99]
        let scores = lines.map { Double($0 % 4 == 0 ? 100 + $0 : $0) }   // disputed lines score highest
        let r = ExperimentReport.annotatorAgreement(method: "m", lines: lines, scores: scores, disagreement: dis)
        #expect(r.rows == 20 && r.disputedTop == 1 && r.disputedAll == 0.25)
        let ranks = (a: scores.prefix(20).map { $0 }, b: (1...20).map { dis[$0]! })
        #expect(abs(r.spearman - Statistics.pearson(Statistics.ranks(ranks.a), Statistics.ranks(ranks.b))) < 1e-12 && r.spearman > 0.5)
        // Reversed scores: no disputed line in the top tenth, negative correlation.
        let rev = ExperimentReport.annotatorAgreement(method: "m", lines: lines, scores: scores.map { -$0 }, disagreement: dis)
        #expect(rev.disputedTop == 0 && rev.disputedAll == 0.25 && abs(rev.spearman + r.spearman) < 1e-12)
        // 4 votes with 2 against gold (0.5) are disputed, 5 with 1 against (0.2) are not; 21 lines -> top 3.
        let r2 = ExperimentReport.annotatorAgreement(method: "m", lines: [1, 2, 3] + Array(4...21), scores: [3, 2, 1] + Array(repeating: 0, count: 18),
                                                     disagreement: Dictionary(uniqueKeysWithValues: (1...21).map { ($0, $0 <= 2 ? 0.5 : 0.2) }))
        #expect(r2.disputedTop == 2.0 / 3 && abs(r2.disputedAll - 2.0 / 21) < 1e-12)
    }

    /// The report reads the gold label as the data is read (label, else SNLI's gold_label), compares annotators
    /// with the original labels when the training labels were flipped, and counts no boolean as a numeric field.
    @Test func reportLinesReadGoldLabelsAndFieldsAsTheDataIs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-lines-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ rows: [String]) throws -> LineFile {
            let u = dir.appendingPathComponent(name)
            try Data((rows.joined(separator: "\n") + "\n").utf8).write(to: u)
            return try LineFile(url: u)
        }
        let votes = "\"annotator_labels\": [\"a\", \"a\", \"b\", \"b\", \"b\"]"
        let snli = try file("snli.jsonl", (1...4).map { "{\"sentence1\": \"p\", \"gold_label\": \"a\", \(votes), \"flag\": true, \"conf\": \($0)}" })
        let report = ExperimentReport(dir: dir)
        let plan = ExperimentPlan(train: "t", test: "s")
        let r = report.parseLines(snli, lines: [1, 2, 3, 4], plan: plan)
        #expect(r.disagreement == [1: 0.6, 2: 0.6, 3: 0.6, 4: 0.6], "\(r.disagreement)")
        #expect(r.numeric.map(\.0) == ["conf"], "\(r.numeric.map(\.0))")
        // Flipped labels (b) in the training file: the original's (a) are the gold; without the original, nothing is measured.
        let noisy = try file("noisy.jsonl", (1...4).map { _ in "{\"text\": \"p\", \"label\": \"b\", \(votes)}" })
        let original = try file("orig.jsonl", (1...4).map { _ in "{\"text\": \"p\", \"label\": \"a\", \(votes)}" })
        #expect(report.parseLines(noisy, lines: [1, 2], plan: plan, gold: original, noisy: true).disagreement == [1: 0.6, 2: 0.6])
        #expect(report.parseLines(noisy, lines: [1, 2], plan: plan, gold: nil, noisy: true).disagreement.isEmpty)
        #expect(report.parseLines(noisy, lines: [1, 2], plan: plan).disagreement == [1: 0.4, 2: 0.4])
    }

    /// Tied scores (forgetting counts): the tables say that line order chose among the tied; a constant column
    /// correlates as n/a (not 0); a score file that misses lines is named as left out of the correlations.
    @Test func reportSaysWhatTiesAndConstantColumnsHide() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-ties-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = ExperimentReport(dir: dir)
        func scores(_ name: String, _ values: [Double]) throws -> ScoreFile {
            let u = dir.appendingPathComponent(name)
            try Data(("index,line,id,label,score\n" + values.enumerated().map { "\($0.offset),\($0.offset + 1),,a,\($0.element)" }.joined(separator: "\n") + "\n").utf8).write(to: u)
            return try ScoreFile(url: u)
        }
        // 25 examples at 2, 5 at 0: the 20 hardest are 20 of the 25 tied; the 20 easiest end among them too.
        let forgetting = try scores("f.csv", Array(repeating: 2, count: 25) + Array(repeating: 0, count: 5))
        let html = report.extremes("forgetting", forgetting, text: [:], flipped: [])
        #expect(html.contains("20 of the 25 examples with the score 2 are shown") && html.contains("15 of the 25 examples with the score 2 are shown"), "\(html)")
        // Distinct scores: no note.
        #expect(!report.extremes("el2n", try scores("e.csv", (0..<30).map(Double.init)), text: [:], flipped: []).contains("are shown:"))
        let varying = try scores("v.csv", (0..<30).map { Double($0 % 7) })
        let cut = try scores("cut.csv", (0..<20).map(Double.init))
        let table = report.correlations([("forgetting", varying), ("el2n", try scores("e2.csv", (0..<30).map { Double(-$0) })), ("vog", cut)],
                                        extra: [("confidence", Array(repeating: 1.0, count: 30))])
        #expect(table.contains(">n/a</td>") && table.contains("Left out of this table: vog"), "\(table)")
    }

    /// Past the palette's colours a series is drawn with its own dashes, and its legend swatch shows them; flagged
    /// points are hollow rings with a legend key.
    @Test func chartSeriesStayDistinctAndFlaggedPointsAreRings() {
        let series = (0..<22).map { i in SVGChart.Series(name: "s\(i)", points: [(x: 0.5, y: Double(i), err: 0), (x: 1, y: 1, err: 0)],
                                                             dashed: i == 21, flagged: i == 0 ? [0.5] : []) }
        let svg = SVGChart.lines(series, title: "t", xLabel: "x", yLabel: "y")
        #expect(SVGChart.stroke(0, dashed: false).dash == nil && SVGChart.stroke(20, dashed: false).dash == "2,3")
        #expect(SVGChart.stroke(0, dashed: false).color == SVGChart.stroke(20, dashed: false).color)
        #expect(Set((0..<40).map { i in "\(SVGChart.stroke(i, dashed: false))" }).count == 40)
        #expect(svg.contains("stroke-dasharray=\"2,3\"/>") && svg.contains("learned nothing in a run") && svg.contains("r=\"5\" fill=\"#fff\""), "\(svg)")
    }

    /// The report's hardest and easiest tables name the end of the method's own column: PVI's score is -pvi,
    /// so its hardest have the lowest PVI (before, headed "highest pvi").
    @Test func reportExtremesNameTheEndOfAReversedColumn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-extremes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("pvi.csv")
        try Data("index,line,id,label,score,pvi\n0,1,,a,4.27,-4.27\n1,2,,b,-1.5,1.5\n".utf8).write(to: u)
        let report = ExperimentReport(dir: dir)
        let html = report.extremes("pvi", try ScoreFile(url: u), text: [:], flipped: [])
        #expect(html.contains("hardest (highest score = lowest pvi)") && html.contains("easiest (lowest score = highest pvi)"), "\(html)")
        let el2n = report.extremes("el2n-epoch1", try ScoreFile(url: u), text: [:], flipped: [])
        #expect(el2n.contains("hardest (highest el2n-epoch1)"), "\(el2n)")
    }

    /// The cross product's settings that select alike are merged into the first, and the plan names which
    /// (the experiment says so): with EL2N top-k per label, none, dataset and class normalisation are one subset.
    @Test func mergedSettingsNameTheOneTheyStandFor() throws {
        var plan = ExperimentPlan(train: "t", test: "s")
        plan.settings = nil   // the cross product, not the recommended setting
        plan.methods = [.el2n]; plan.normalizations = [.none, .dataset, .class]; plan.selects = [.easy]; plan.samplings = [.top]
        plan.perLabel = true
        #expect(plan.selectionSettings.count == 1)
        #expect(plan.mergedSettings.count == 2 && plan.mergedSettings.allSatisfy { $0.sameAs == plan.selectionSettings[0] })
        #expect(Set(plan.mergedSettings.map(\.setting.normalization)) == [.dataset, .class])
        // The note names every merged setting (the report prints it under its table).
        let note = try #require(plan.mergedSettingsNote)
        #expect(note.hasPrefix("2 setting(s) select the same examples") && plan.mergedSettings.allSatisfy { note.contains($0.setting.description + " as ") })
        plan.settings = plan.selectionSettings
        #expect(plan.mergedSettings.isEmpty && plan.mergedSettingsNote == nil)
    }

    /// Within each label class z-scores rank as dataset z-scores do: top-k and stratified settings that differ
    /// only there select alike; softmax sampling (moderate or not) weighs by the scale and does not.
    @Test func settingsSelectAlikeWithinALabelOnlyWhenTheyRank() throws {
        typealias S = ExperimentPlan.Setting
        let top = [S(method: .el2n, select: .moderate, sampling: .top, normalization: .none), S(method: .el2n, select: .moderate, sampling: .top, normalization: .class)]
        #expect(top[0].subsetKey(perLabel: true) == top[1].subsetKey(perLabel: true))
        #expect(top[0].subsetKey(perLabel: false) != top[1].subsetKey(perLabel: false))
        let soft = [S(method: .el2n, select: .moderate, sampling: .softmax, normalization: .none), S(method: .el2n, select: .moderate, sampling: .softmax, normalization: .class)]
        #expect(soft[0].subsetKey(perLabel: true) != soft[1].subsetKey(perLabel: true))
    }
}

/// Legend names of the report's charts break where a setting's name has parts, so that two settings that
/// differ only at their ends stay apart.
@Suite struct LegendLineTests {
    @Test func longSettingNamesBreakAtTheirPartsInAtMostThreeLines() {
        #expect(SVGChart.legendLines("random") == ["random"])
        #expect(SVGChart.legendLines("forgetting+cartography.variability-hard easy top") == ["forgetting+cartography.", "variability-hard easy", "top"])
        let hard = SVGChart.legendLines("forgetting+cartography.variability-hard-dataset-easy-top-k0.5-s0")
        let easy = SVGChart.legendLines("forgetting+cartography.variability-easy-dataset-easy-top-k0.5-s0")
        #expect(hard == ["forgetting+cartography.", "variability-hard-", "dataset-easy-top-k0.5-s0"])
        #expect(hard != easy)
        let long = SVGChart.legendLines(String(repeating: "abcdefghij", count: 10))
        #expect(long.count == 3 && long.allSatisfy { $0.count <= 24 } && long[2].hasPrefix("…"))
    }
}
