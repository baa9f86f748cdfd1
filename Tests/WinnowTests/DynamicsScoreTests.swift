import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Forgetting, cartography and AUM on hand-made dynamics with hand-computed answers.
@Suite struct DynamicsScoreTests {
    /// Three examples, four epochs each (steps interleaved, stored out of order on purpose):
    /// 0: correct, wrong, correct, wrong     -> 2 forgetting events
    /// 1: wrong, wrong, wrong, wrong          -> never learned: score 4, flag 1
    /// 2: correct x4                          -> 0 events
    static func dynamics() -> Dynamics {
        var d = Dynamics()
        d.exampleCount = 3
        let acc: [[Bool]] = [[true, false, true, false], [false, false, false, false], [true, true, true, true]]
        let p: [[Float]] = [[0.8, 0.4, 0.6, 0.2], [0.1, 0.2, 0.3, 0.2], [0.9, 0.9, 0.9, 0.9]]
        let margin: [[Float]] = [[1, -0.5, 0.5, -1], [-2, -1, -1, -2], [3, 3, 3, 3]]
        for e in (0..<4).reversed() {
            for i in 0..<3 {
                d.append(epoch: e, step: e * 10 + i + 1, index: i, loss: -log(p[i][e]), pTrue: p[i][e], margin: margin[i][e], correct: acc[i][e])
            }
        }
        return d
    }

    @Test func forgettingCountsEventsAndFlagsNeverLearned() throws {
        let r = try Forgetting.score(Self.dynamics())
        #expect(r.scores == [2, 4, 0])
        #expect(r.components.first { $0.0 == "never_learned" }!.1 == [0, 1, 0])
        #expect(r.components.first { $0.0 == "events" }!.1 == [2, 0, 0])
    }

    @Test func cartographyConfidenceVariabilityCorrectness() throws {
        let r = try Cartography.score(Self.dynamics())
        let conf = r.components.first { $0.0 == "confidence" }!.1
        let vari = r.components.first { $0.0 == "variability" }!.1
        let corr = r.components.first { $0.0 == "correctness" }!.1
        #expect(abs(conf[0] - 0.5) < 1e-6 && abs(conf[1] - 0.2) < 1e-6 && abs(conf[2] - 0.9) < 1e-6)
        // population std of (0.8, 0.4, 0.6, 0.2) = sqrt(0.05)
        #expect(abs(vari[0] - 0.05.squareRoot()) < 1e-6)
        #expect(abs(vari[1] - 0.005.squareRoot()) < 1e-6)
        #expect(abs(vari[2]) < 1e-6)
        #expect(corr == [0.5, 0, 1])
        #expect(zip(r.scores, conf).allSatisfy { abs($0 - (1 - $1)) < 1e-12 })
    }

    @Test func aumIsTheMeanMargin() throws {
        let r = try AUM.score(Self.dynamics())
        let aum = r.components.first { $0.0 == "aum" }!.1
        #expect(abs(aum[0] - 0) < 1e-9 && abs(aum[1] + 1.5) < 1e-9 && abs(aum[2] - 3) < 1e-9)
        #expect(r.scores == aum.map { -$0 })
    }

    /// `ScoreMethod.columns` (what `--then-column` and an experiment's `cartography.variability` tie-break are
    /// checked against) names the columns each score writes.
    @Test func columnsNameTheComponentsWritten() throws {
        #expect(try Forgetting.score(Self.dynamics()).components.map(\.0) == ScoreMethod.forgetting.columns)
        #expect(try Cartography.score(Self.dynamics()).components.map(\.0) == ScoreMethod.cartography.columns)
        #expect(try AUM.score(Self.dynamics()).components.map(\.0) == ScoreMethod.aum.columns)
    }

    @Test func dynamicsRoundTripThroughAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dyn-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.dynamics().write(to: url)
        #expect(try Dynamics(contentsOf: url) == Self.dynamics())
    }

    @Test func aRunWithoutDynamicsSaysSo() throws {
        do {
            _ = try DynamicsScores.load(Paths.tinyBert.appendingPathComponent("run"))
            Issue.record("a transformers.Trainer run has no dynamics, but loading succeeded")
        } catch let e as WinnowError {
            #expect(e.description.contains("no training dynamics"))
        }
    }
}
