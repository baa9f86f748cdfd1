import Foundation
import WinnowCore

/// A batch for a language model: inputs (after masking for MLM) and one target per token (-1: none).
public struct LMBatch: Sendable {
    /// The padded model inputs; for MLM, after masking.
    public var batch: Batch
    /// Target token per row of the padded [B*T] layout, -1 where there is no loss.
    public var targets: [Int32]
    /// 1-based corpus line of each sample.
    public var lines: [Int]

    /// Bundles inputs, targets and lines; traps unless `targets` has `batch.size * batch.length` entries.
    public init(batch: Batch, targets: [Int32], lines: [Int]) {
        precondition(targets.count == batch.size * batch.length, "LMBatch: \(targets.count) targets for \(batch.size)x\(batch.length)")
        self.batch = batch
        self.targets = targets
        self.lines = lines
    }
}

/// The training objective of a language model: masked (BERT's MLM) or causal (next token).
public enum LMObjective: String, Sendable, CaseIterable, Codable { case mlm, causal }
