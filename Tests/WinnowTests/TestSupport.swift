import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Repository paths for fixtures and fetched assets.
enum Paths {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repo.appendingPathComponent("Tests/Fixtures")
    static let tinyBert = fixtures.appendingPathComponent("tiny-bert")
    static let minilm = repo.appendingPathComponent("models/minilm")
}

/// Checks |x - y| <= atol + rtol * |y| elementwise; the failure names the tensor, the first bad index,
/// both values and the largest difference.
func expectClose(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float, _ name: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(name): \(actual.count) values vs \(expected.count) expected", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var firstBad: Int? = nil
    var maxDiff: Float = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        maxDiff = max(maxDiff, d)
        if firstBad == nil && !(d <= atol + rtol * abs(expected[i])) { firstBad = i }
    }
    if let i = firstBad {
        Issue.record("\(name): first bad index \(i): got \(actual[i]), expected \(expected[i]); largest difference \(maxDiff)",
                     sourceLocation: sourceLocation)
    }
}

/// Relative error of two vectors in the L2 sense: ||a - b|| / max(||b||, tiny).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
    return (num / max(den, 1e-30)).squareRoot()
}

/// A batch rebuilt from golden tensors input_ids / token_type_ids / attention_mask / labels.
func goldenBatch(_ f: SafeTensorsFile) throws -> Batch {
    let ids = try f.integers("input_ids"), types = try f.integers("token_type_ids")
    let mask = try f.integers("attention_mask")
    let shape = f.entry("input_ids")!.shape
    let B = shape[0], T = shape[1]
    let labels = f.entry("labels") != nil ? try f.integers("labels").map { Int32($0) } : Array(repeating: Int32(-1), count: B)
    var encs: [Encoding] = []
    for b in 0..<B {
        let n = (0..<T).filter { mask[b * T + $0] != 0 }.count
        encs.append(Encoding(inputIDs: (0..<n).map { Int32(ids[b * T + $0]) }, tokenTypeIDs: (0..<n).map { Int32(types[b * T + $0]) }))
    }
    let batch = Batch(encodings: encs, labels: labels, indices: Array(0..<B))
    precondition(batch.length == T, "golden batch is padded to \(T) but its longest sequence has \(batch.length) tokens")
    return batch
}

/// Largest absolute value.
func maxAbs(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }
