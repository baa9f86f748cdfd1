import WinnowCore

/// A padded batch of encoded examples, row-major [size, length].
///
///     let batch = Batch(encodings: encs, labels: [0, 1], indices: [4, 9])
public struct Batch: Sendable {
    /// Number of sequences (B).
    public let size: Int
    /// Padded length (T): the longest sequence in the batch.
    public let length: Int
    /// Token ids, row-major [size, length]; each row is padded with the `padID` given to `init`.
    public var inputIDs: [Int32]
    /// Segment of each token (0: first text, 1: pair), row-major [size, length]; 0 at padding.
    public var tokenTypeIDs: [Int32]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int32]
    /// Class index per sequence, or -1 when unknown.
    public var labels: [Int32]
    /// Position of each sequence in its dataset.
    public var indices: [Int]

    /// Pads `encodings` to the longest one with `padID`.
    public init(encodings: [Encoding], labels: [Int32], indices: [Int], padID: Int32 = 0) {
        precondition(encodings.count == labels.count && labels.count == indices.count, "Batch: mismatched counts")
        size = encodings.count
        length = max(1, encodings.map(\.inputIDs.count).max() ?? 1)
        inputIDs = Array(repeating: padID, count: size * length)
        tokenTypeIDs = Array(repeating: 0, count: size * length)
        attentionMask = Array(repeating: 0, count: size * length)
        for (b, e) in encodings.enumerated() {
            for (t, id) in e.inputIDs.enumerated() {
                inputIDs[b * length + t] = id
                tokenTypeIDs[b * length + t] = e.tokenTypeIDs[t]
                attentionMask[b * length + t] = 1
            }
        }
        self.labels = labels
        self.indices = indices
    }

    /// Number of real (non-pad) tokens of sequence `b`.
    public func realLength(_ b: Int) -> Int {
        var n = 0
        for t in 0..<length where attentionMask[b * length + t] != 0 { n += 1 }
        return n
    }
}
