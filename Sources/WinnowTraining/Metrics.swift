import WinnowCore
import WinnowData
import WinnowModels

/// Classification metrics: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.
///
///     let m = ClassificationMetrics(labels: y, predictions: yhat, classes: 2)
public struct ClassificationMetrics: Sendable {
    /// confusion[true][predicted]
    public let confusion: [[Int]]
    /// Fraction of the labelled examples predicted correctly, in [0, 1] (0 when there are none).
    public let accuracy: Double
    /// Unweighted mean of the per-class F1 over the classes that occur among the labels or the predictions
    /// (sklearn's `f1_score(average="macro")`, zero_division=0): a class of the model that the evaluated data
    /// lacks and no example is predicted as does not count.
    public let macroF1: Double
    /// Per class (indexed by label id): precision, recall and F1 (0 when undefined), and support, the number
    /// of examples with that true label.
    public let precision: [Double], recall: [Double], f1: [Double], support: [Int]

    /// Metrics of `predictions` against true `labels` (label ids in 0..<classes, paired by position);
    /// examples with a negative label (unlabelled) are skipped.
    public init(labels: [Int32], predictions: [Int32], classes: Int) {
        var cm = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        for (y, p) in zip(labels, predictions) where y >= 0 { cm[Int(y)][Int(p)] += 1 }
        confusion = cm
        let total = cm.joined().reduce(0, +)
        accuracy = total > 0 ? Double((0..<classes).reduce(0) { $0 + cm[$1][$1] }) / Double(total) : 0
        var pr: [Double] = [], rc: [Double] = [], f: [Double] = [], sup: [Int] = []
        var present = 0
        for c in 0..<classes {
            let tp = Double(cm[c][c])
            let predicted = Double((0..<classes).reduce(0) { $0 + cm[$1][c] })
            let actual = Double(cm[c].reduce(0, +))
            let p = predicted > 0 ? tp / predicted : 0
            let r = actual > 0 ? tp / actual : 0
            pr.append(p); rc.append(r); f.append(p + r > 0 ? 2 * p * r / (p + r) : 0); sup.append(Int(actual))
            if actual > 0 || predicted > 0 { present += 1 }
        }
        precision = pr; recall = rc; f1 = f; support = sup
        // sklearn's macro average over the labels present in truth or predictions (zero_division=0); an absent class's F1 is 0.
        macroF1 = present > 0 ? f.reduce(0, +) / Double(present) : 0
    }
}

/// Whether a classifier learned anything useful, from its predictions on held-out examples: it learned
/// nothing when one class takes at least 95 % of its predictions, or when its accuracy is within 1 point
/// of always predicting the most frequent label. Scores from such a model mean nothing. When one label is
/// itself 95 % or more of the held-out examples (or there are none), the check cannot tell a model that
/// learned from one that did not: `canTell` is false and nothing is flagged.
///
///     let check = LearningCheck(labels: y, predictions: yhat, labelNames: names)
///     if check.learnedNothing { print(check.description) }
public struct LearningCheck: Sendable, Equatable, CustomStringConvertible {
    /// Accuracy of the predictions, a fraction.
    public let accuracy: Double
    /// Accuracy of always predicting the most frequent label.
    public let majorityRate: Double
    /// The class predicted most often.
    public let dominantClass: String
    /// That class's share of the predictions.
    public let dominantShare: Double
    /// Labelled examples the check read.
    public let examples: Int

    /// The check of `predictions` against `labels` (rows with a label < 0 are ignored).
    public init(labels: [Int32], predictions: [Int32], labelNames: [String]) {
        let pairs = zip(labels, predictions).filter { $0.0 >= 0 }
        examples = pairs.count
        let n = max(1, pairs.count), L = max(1, labelNames.count)
        var truth = [Int](repeating: 0, count: L), predicted = [Int](repeating: 0, count: L), right = 0
        for (y, p) in pairs {
            truth[Int(y)] += 1
            predicted[Int(p)] += 1
            if y == p { right += 1 }
        }
        accuracy = Double(right) / Double(n)
        majorityRate = Double(truth.max() ?? 0) / Double(n)
        let d = predicted.indices.max { predicted[$0] < predicted[$1] } ?? 0
        dominantClass = d < labelNames.count ? labelNames[d] : String(d)
        dominantShare = Double(predicted[d]) / Double(n)
    }

    /// Whether the held-out labels can show it: some examples, and no label at 95 % or more of them.
    public var canTell: Bool { examples > 0 && majorityRate < 0.95 }

    /// True when the check can tell and one class takes >= 95 % of the predictions or accuracy is at most 1 point
    /// above the majority rate.
    public var learnedNothing: Bool { canTell && (dominantShare >= 0.95 || accuracy <= majorityRate + 0.01) }

    /// One line: what was measured and the verdict.
    public var description: String {
        let measured = String(format: "predicts '%@' for %.1f%% of the examples; accuracy %.1f%% against %.1f%% for always predicting the majority label",
                              dominantClass, 100 * dominantShare, 100 * accuracy, 100 * majorityRate)
        guard canTell else {
            return examples == 0 ? "no labelled example to tell from"
                : measured + String(format: " (cannot tell: one label is %.1f%% of these examples)", 100 * majorityRate)
        }
        return measured
    }
}
