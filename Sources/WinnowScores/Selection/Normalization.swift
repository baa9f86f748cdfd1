import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// How scores are normalised before selection (docs/contracts.md §5).
public enum Normalization: String, Sendable, CaseIterable, Codable {
    /// Raw scores.
    case none
    /// (s - mean) / std over all examples.
    case dataset
    /// (s - mean_c) / std_c within the example's label, so every class is ranked on its own scale.
    case `class`

    /// Normalised scores; population std, and a zero std gives 0.
    ///
    ///     let z = Normalization.class.apply(scores, labels: labels)
    public func apply(_ s: [Double], labels: [String]) -> [Double] {
        switch self {
        case .none: return s
        case .dataset: return Normalization.zscore(s, Array(s.indices))
        case .class:
            var out = s
            var groups: [String: [Int]] = [:]
            for (i, l) in labels.enumerated() { groups[l, default: []].append(i) }
            for idx in groups.values {
                let z = Normalization.zscore(s, idx)
                for (k, i) in idx.enumerated() { out[i] = z[k] }
            }
            return out
        }
    }

    /// z-scores of s[idx] (in idx order).
    static func zscore(_ s: [Double], _ idx: [Int]) -> [Double] {
        guard !idx.isEmpty else { return [] }
        let n = Double(idx.count)
        let mean = idx.reduce(0.0) { $0 + s[$1] } / n
        let std = (idx.reduce(0.0) { $0 + (s[$1] - mean) * (s[$1] - mean) } / n).squareRoot()
        return idx.map { std > 0 ? (s[$0] - mean) / std : 0 }
    }
}
