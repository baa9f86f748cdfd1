import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

@Suite struct MLPTests {
    /// Two Gaussian blobs in 3-D, written as CSV with a header.
    static func blobsCSV(n: Int, seed: UInt64) -> String {
        var rng = SeededGenerator(seed: seed)
        var s = "id,f0,f1,label,f2\n"
        for i in 0..<n {
            let y = i % 2
            let c = y == 0 ? -1.0 : 1.0
            let f = (0..<3).map { _ in c + 0.7 * rng.nextNormal() }
            s += "r\(i),\(f[0]),\(f[1]),\(y == 0 ? "low" : "high"),\(f[2])\n"
        }
        return s
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mlp-fd-\(UUID()).csv")
        try MLPTests.blobsCSV(n: 12, seed: 1).write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        var data = try CSVDataset(url: url)
        #expect(data.featureNames == ["f0", "f1", "f2"])
        try data.assignLabels(data.sortedLabels)
        let mlp = MLPClassifier(inputSize: 3, hidden: [5, 4], labels: data.labelNames, seed: 2)
        mlp.fitStandardization(data.features)
        let batch = data.batch(Array(0..<12))
        var grads = mlp.parameters.zeros()
        _ = mlp.lossAndGradients(batch, grads: &grads)
        // Central differences on every parameter, in float with a step large enough for float rounding.
        let h: Float = 1e-2
        for i in mlp.parameters.tensors.indices {
            for j in 0..<mlp.parameters[i].count {
                let orig = mlp.parameters.tensors[i].mptr[j]
                var scratch = mlp.parameters.zeros()
                mlp.parameters.tensors[i].mptr[j] = orig + h
                let lp = mlp.lossAndGradients(batch, grads: &scratch)
                mlp.parameters.tensors[i].mptr[j] = orig - h
                let lm = mlp.lossAndGradients(batch, grads: &scratch)
                mlp.parameters.tensors[i].mptr[j] = orig
                let fd = Float((lp - lm) / Double(2 * h))
                let g = grads[i].ptr[j]
                #expect(abs(fd - g) <= 2e-3 + 2e-2 * abs(fd), "\(mlp.parameters.names[i])[\(j)]: backward \(g), finite difference \(fd)")
            }
        }
    }

    @Test func learnsSeparableBlobsAndRoundTripsThroughAFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mlp-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("train.csv")
        try MLPTests.blobsCSV(n: 200, seed: 3).write(to: url, atomically: true, encoding: .utf8)
        var data = try CSVDataset(url: url)
        try data.assignLabels(data.sortedLabels)
        let mlp = MLPClassifier(inputSize: 3, hidden: [16], labels: data.labelNames, seed: 4, featureNames: data.featureNames)
        mlp.fitStandardization(data.features)
        var o = TrainingOptions()
        o.epochs = 20; o.batchSize = 16; o.learningRate = 1e-2; o.warmupRatio = 0
        try Trainer(options: o).train(mlp, on: data, run: dir.appendingPathComponent("run"))
        let (pred, _) = try mlp.predict(data)
        let acc = ClassificationMetrics(labels: data.labels, predictions: pred, classes: 2).accuracy
        #expect(acc > 0.9, "accuracy \(acc)")
        let reloaded = try MLPClassifier(folder: dir.appendingPathComponent("run"))
        #expect(reloaded.labelNames == mlp.labelNames)
        #expect(try reloaded.predict(data).predictions == pred)
    }

    @Test func windowsLineBreaksReadAsLines() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("crlf-\(UUID()).csv")
        defer { try? FileManager.default.removeItem(at: url) }
        let lf = MLPTests.blobsCSV(n: 6, seed: 3)
        try lf.replacingOccurrences(of: "\n", with: "\r\n").write(to: url, atomically: true, encoding: .utf8)
        let crlf = try CSVDataset(url: url)
        try lf.write(to: url, atomically: true, encoding: .utf8)
        let plain = try CSVDataset(url: url)
        #expect(crlf.count == 6 && crlf.featureNames == ["f0", "f1", "f2"])
        #expect(crlf.features.values == plain.features.values && crlf.lines == plain.lines && crlf.sortedLabels == plain.sortedLabels)
    }

    @Test func badCSVIsRejectedWithFileLineAndColumn() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).csv")
        defer { try? FileManager.default.removeItem(at: url) }
        for (text, needle) in [("f0,label\n1,a\nnan,b\n", ":3: column 'f0'"), ("f0,label\n1,a\n2\n", ":3: 1 fields"),
                               ("f0,label\n1,a\ninf,b\n", "not finite"), ("f0,label\n", "no rows"), ("", "empty"),
                               ("f0,f1\n1,2\n", "no 'label' column")] {
            try text.write(to: url, atomically: true, encoding: .utf8)
            do {
                _ = try CSVDataset(url: url)
                Issue.record("accepted bad CSV: \(text.debugDescription)")
            } catch let e as WinnowError {
                #expect(e.description.contains(needle), "\(e.description) lacks \(needle)")
            }
        }
    }
}
