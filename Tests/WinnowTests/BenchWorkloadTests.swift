import Foundation
import Testing
@_spi(Benchmarks) @testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// What `winnow bench` and Benchmarks/EndToEnd time is the real work: the workload's per-example
/// gradient norms and TracIn dot products equal those of materialised per-example gradients, and its
/// training and pre-training steps change the weights.
@Suite struct BenchWorkloadTests {
    let w = BenchWorkload(layers: 1, hidden: 32, heads: 2, seqLen: 8, batchSize: 3)

    func row(_ batch: Batch, _ b: Int) -> Batch {
        let r = (b * batch.length)..<((b + 1) * batch.length)
        return Batch(encodings: [Encoding(inputIDs: Array(batch.inputIDs[r]), tokenTypeIDs: Array(batch.tokenTypeIDs[r]))],
                     labels: [batch.labels[b]], indices: [0])
    }

    func materialised(_ batch: Batch, _ b: Int) -> ParameterStore {
        var g = w.model.parameters.zeros()
        w.model.lossAndGradients(row(batch, b), grads: &g, weights: [1])
        return g
    }

    @Test func gradientNormsAndTracInDotsAreThoseOfMaterialisedGradients() {
        let names = w.model.parameters.names
        let dots = w.tracinBatch()
        let norms = w.gradientNorms()
        let train = (0..<3).map { materialised(w.batch, $0) }, test = (0..<3).map { materialised(w.testBatch, $0) }
        for a in 0..<3 {
            let want = PerExampleGradientTests.dot(train[a], train[a], names)
            #expect(want > 0 && abs(Double(norms[a]) - want) <= 1e-4 * want, "norm \(a): \(norms[a]) vs \(want)")
            for b in 0..<3 {
                let wd = PerExampleGradientTests.dot(train[a], test[b], names)
                let scale = (want * PerExampleGradientTests.dot(test[b], test[b], names)).squareRoot()
                #expect(abs(Double(dots[a * 3 + b]) - wd) <= 1e-4 * scale, "dot (\(a), \(b)): \(dots[a * 3 + b]) vs \(wd)")
            }
        }
    }

    @Test func stepsChangeTheWeights() throws {
        let before = w.model.parameters["classifier.weight"]!.values
        w.trainStep()
        #expect(w.model.parameters["classifier.weight"]!.values != before)
        w.vogCheckpoint()
        #expect(w.vogM2.values.contains { $0 > 0 } && w.vogM2.values.allSatisfy { $0.isFinite && $0 >= 0 })
        w.pretrainStep(presence: false)
        let q = "bert.encoder.layer.0.attention.self.query.weight"
        let lmBefore = try #require(w.lmState?.lm.parameters[q]).values
        w.pretrainStep(presence: true)
        #expect(w.lmState!.lm.parameters[q]!.values != lmBefore)
    }
}
