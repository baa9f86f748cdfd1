import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// Training dynamics: one record per presentation of an example, taken in training mode before the
/// update (docs/contracts.md §4). Stored as `RUN/dynamics.safetensors` with one tensor per column.
///
///     let dyn = try Dynamics(contentsOf: run.dynamicsURL)
public struct Dynamics: Sendable, Equatable {
    /// 0-based epoch of each record.
    public var epoch: [Int32] = []
    /// 1-based optimizer step of each record (the update that followed it).
    public var step: [Int32] = []
    /// Example index in the training file's used examples.
    public var index: [Int32] = []
    /// Cross-entropy loss of the example (nats).
    public var loss: [Float] = []
    /// Probability of the true label.
    public var pTrue: [Float] = []
    /// z_y - max_{j != y} z_j.
    public var margin: [Float] = []
    /// 1 when the argmax equals the label.
    public var correct: [Float] = []
    /// Number of training examples the run saw.
    public var exampleCount: Int = 0

    /// Empty dynamics (no records, `exampleCount` 0).
    public init() {}

    /// Number of records.
    public var count: Int { index.count }

    /// Appends one record; `correct` is stored as 1 or 0.
    public mutating func append(epoch e: Int, step s: Int, index i: Int, loss l: Float, pTrue p: Float, margin m: Float, correct c: Bool) {
        epoch.append(Int32(e)); step.append(Int32(s)); index.append(Int32(i))
        loss.append(l); pTrue.append(p); margin.append(m); correct.append(c ? 1 : 0)
    }

    /// Writes the records as a safetensors file: one float tensor per column (`epoch`, `step`, `index`, `loss`,
    /// `p_true`, `margin`, `correct`) and `exampleCount` in the metadata.
    /// - Throws: an error when the file cannot be written.
    public func write(to url: URL) throws {
        func f(_ a: [Int32]) -> Tensor { Tensor(shape: [a.count], values: a.map(Float.init)) }
        try SafeTensorsFile.write([
            ("epoch", f(epoch)), ("step", f(step)), ("index", f(index)),
            ("loss", Tensor(shape: [loss.count], values: loss)), ("p_true", Tensor(shape: [pTrue.count], values: pTrue)),
            ("margin", Tensor(shape: [margin.count], values: margin)), ("correct", Tensor(shape: [correct.count], values: correct)),
        ], metadata: ["format": "winnow-dynamics", "examples": String(exampleCount)], to: url)
    }

    /// Reads a file written by `write(to:)`; without the `examples` metadata, `exampleCount` is the largest
    /// index plus one.
    /// - Throws: an error when the file cannot be read; `WinnowError.invalidTensor` when a column is
    ///   missing or the columns differ in length.
    public init(contentsOf url: URL) throws {
        let file = try SafeTensorsFile(url: url)
        func ints(_ n: String) throws -> [Int32] { try file.tensor(n).values.map { Int32($0) } }
        epoch = try ints("epoch"); step = try ints("step"); index = try ints("index")
        loss = try file.tensor("loss").values; pTrue = try file.tensor("p_true").values
        margin = try file.tensor("margin").values; correct = try file.tensor("correct").values
        let n = index.count
        for (name, c) in [("epoch", epoch.count), ("step", step.count), ("loss", loss.count), ("p_true", pTrue.count),
                          ("margin", margin.count), ("correct", correct.count)] where c != n {
            throw WinnowError.invalidTensor(path: url.path, tensor: name, reason: "has \(c) entries, index has \(n)")
        }
        exampleCount = Int(file.metadata["examples"] ?? "") ?? (index.map(Int.init).max().map { $0 + 1 } ?? 0)
    }
}
