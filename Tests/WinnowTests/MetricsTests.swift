import Testing
@testable import WinnowTraining

/// Classification metrics against values sklearn gives (`f1_score(y, p, average="macro")`, computed by hand here).
struct MetricsTests {
    @Test func macroF1AveragesTheClassesPresentInTruthOrPredictions() {
        // Class 3 is the model's but neither in the labels nor predicted: sklearn leaves it out.
        let m = ClassificationMetrics(labels: [0, 0, 1, 1, 2], predictions: [0, 1, 1, 1, 0], classes: 4)
        #expect(abs(m.accuracy - 0.6) < 1e-12)
        #expect(abs(m.f1[0] - 0.5) < 1e-12 && abs(m.f1[1] - 0.8) < 1e-12 && m.f1[2] == 0 && m.f1[3] == 0)
        #expect(abs(m.macroF1 - (0.5 + 0.8 + 0) / 3) < 1e-12, "\(m.macroF1)")
        #expect(m.support == [2, 2, 1, 0])
        // Every example right, one class of the model absent: 100 %, as accuracy says.
        let all = ClassificationMetrics(labels: [0, 1, 1], predictions: [0, 1, 1], classes: 3)
        #expect(all.macroF1 == 1 && all.accuracy == 1)
        // A class predicted but absent from the labels counts (its F1 is 0), as in sklearn.
        let wrong = ClassificationMetrics(labels: [0, 0], predictions: [0, 2], classes: 3)
        #expect(abs(wrong.macroF1 - (2.0 / 3.0 + 0) / 2) < 1e-12, "\(wrong.macroF1)")
        // Unlabelled rows (label < 0) are skipped; nothing labelled gives 0.
        #expect(ClassificationMetrics(labels: [-1], predictions: [0], classes: 2).macroF1 == 0)
    }
}
