import Foundation
import WinnowCore

/// A batch a classifier can train on: labels and dataset positions of its rows.
public protocol ClassifierBatch: Sendable {
    /// Number of rows.
    var size: Int { get }
    /// Class index per row, -1 for a row without a label.
    var labels: [Int32] { get }
    /// Position of each row in its dataset.
    var indices: [Int] { get }
}

extension Batch: ClassifierBatch {}

/// Data a classifier trains on.
public protocol ClassifierData: Sendable {
    /// The batch type the data produces (what the model reads).
    associatedtype Input: ClassifierBatch
    /// Number of examples.
    var count: Int { get }
    /// Class names, in label-index order.
    var labelNames: [String] { get }
    /// The batch of the examples at `indices`, in that order.
    func batch(_ indices: [Int]) -> Input
}

extension ClassifierData {
    /// A deterministic permutation for `epoch` from `seed` (Fisher-Yates with SplitMix64).
    public func shuffledOrder(seed: UInt64, epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var rng = SeededGenerator(seed: seed, stream: "shuffle-epoch-\(epoch)")
        order.shuffle(using: &rng)
        return order
    }

    /// Examples in input order.
    public var sequentialOrder: [Int] { Array(0..<count) }

    /// Batches of up to `size` examples in `order`.
    public func batches(size: Int, order: [Int]) -> [Input] {
        stride(from: 0, to: order.count, by: size).map { batch(Array(order[$0..<min($0 + size, order.count)])) }
    }
}

extension EncodedDataset: ClassifierData {}
