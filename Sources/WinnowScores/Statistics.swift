import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Rank statistics used to compare scores (tests, reports).
public enum Statistics {
    /// Average ranks (ties share their mean rank), 0-based.
    public static func ranks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var r = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Double(i + j) / 2 }
            i = j + 1
        }
        return r
    }

    /// Pearson correlation.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// Spearman rank correlation (Pearson on average ranks).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double { pearson(ranks(a), ranks(b)) }

    /// Median of |a - b| / max(|b|, tiny).
    public static func medianRelativeError(_ a: [Double], _ b: [Double]) -> Double {
        let e = zip(a, b).map { abs($0 - $1) / max(abs($1), 1e-30) }.sorted()
        return e.isEmpty ? 0 : (e.count % 2 == 1 ? e[e.count / 2] : (e[e.count / 2 - 1] + e[e.count / 2]) / 2)
    }
}
