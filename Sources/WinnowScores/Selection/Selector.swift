import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// How to choose the examples to keep (the options of `winnow prune`, docs/contracts.md §5).
public struct SelectionOptions: Sendable, Equatable {
    /// Which examples to prefer.
    public enum Preference: String, Sendable, CaseIterable, Codable {
        /// Prefer high (normalised) scores: hard / influential examples.
        case hard
        /// Prefer low scores: easy examples.
        case easy
        /// Ignore scores.
        case random
        /// Prefer scores nearest the median (of each label's examples with `perLabel`): drop both ends, the
        /// likely noise at the hard end and the trivial at the easy end. The "moderate coreset" rule of Xia
        /// et al. (ICLR 2023), there on the distance to the class centre, here on any score; the samplings
        /// read the distance |s - median| as an easy preference reads s (not with `.stratified`).
        case moderate
    }

    /// How the kept examples are drawn from the normalised scores.
    public enum Sampling: String, Sendable, CaseIterable, Codable {
        /// Deterministic: the best n, ties broken by index.
        case top
        /// Without replacement with weight exp(+-s / T).
        case softmax
        /// Without replacement with weight (s - min + eps) for hard, (max - s + eps) for easy.
        case linear
        /// Coverage-centric (Zheng et al. 2023): drop the hardest `beta`, split the rest into equal-width
        /// score bins, fill the budget evenly across bins (hard and easy preferences select alike).
        case stratified
    }

    /// Fraction of examples to keep, in [0, 1].
    public var keep: Double
    /// Which examples to prefer; easy by default (prune the hardest: the best-supported setting measured
    /// here, README "Choosing a selection setting").
    public var preference: Preference = .easy
    /// How to draw them; the deterministic top n by default.
    public var sampling: Sampling = .top
    /// Softmax sampling: the temperature T.
    public var temperature: Double = 1
    /// Stratified: the hardest fraction dropped as likely noise.
    public var beta: Double = 0.1
    /// Stratified: the number of equal-width score bins.
    public var bins = 50
    /// How scores are normalised before selection; dataset z-scores by default (top-k ranks as the raw
    /// scores do; the sampled selections read the z-scores).
    public var normalization: Normalization = .dataset
    /// Select within each label: label c keeps its quota of the budget, round(keep * N_c) by largest
    /// remainder (the quotas sum to round(keep * N)), chosen among that label's examples by the same
    /// preference and sampling, so the kept class mix equals the data's to within one example per label.
    /// Off by default (one selection over all examples). Scores are normalised as `normalization` says
    /// before the split, so `.class` and `.dataset` differ only for the sampled selections.
    public var perLabel = false
    /// Seed of the random draws (every sampling but `.top`, and the `.random` preference).
    public var seed: UInt64 = 0
    /// Added to linear weights so the extreme example keeps a chance.
    public var epsilon: Double = 1e-6

    /// Options that keep the fraction `keep` of the examples, everything else at its default.
    public init(keep: Double) { self.keep = keep }

    /// Checks every value against its range and the combinations that mean nothing.
    ///
    /// - Throws: `WinnowError.invalidOption` naming the property: `keep` outside [0, 1] or not a number,
    ///   `temperature` below 1e-6 or not finite, `beta` outside [0, 1), `bins` outside 1...1,000,000, `epsilon` not positive,
    ///   or `moderate` with `stratified` sampling (stratified ranks by score, not by distance to the median).
    public func validate() throws {
        guard keep.isFinite, (0...1).contains(keep) else { throw WinnowError.invalidOption(name: "keep", reason: "must be in [0, 1], not \(keep)") }
        guard temperature.isFinite, temperature > 0 else {
            throw WinnowError.invalidOption(name: "temperature", reason: "must be a positive number, not \(temperature)")
        }
        // Below 1e-6 the weights exp(z / T) overflow and softmax sampling is top-k anyway.
        guard temperature >= 1e-6 else {
            throw WinnowError.invalidOption(name: "temperature", reason: "must be at least 1e-6, not \(temperature) (that small, softmax sampling is top-k: use top)")
        }
        guard beta.isFinite, beta >= 0, beta < 1 else { throw WinnowError.invalidOption(name: "beta", reason: "must be in [0, 1), not \(beta)") }
        guard bins >= 1 && bins <= 1_000_000 else {
            throw WinnowError.invalidOption(name: "bins", reason: "must be from 1 to 1,000,000, not \(bins)")
        }
        guard epsilon.isFinite, epsilon > 0 else { throw WinnowError.invalidOption(name: "epsilon", reason: "must be a positive number, not \(epsilon)") }
        if preference == .moderate && sampling == .stratified {
            throw WinnowError.invalidOption(name: "sampling", reason: "stratified does not apply to the moderate preference (it ranks by score); use top, softmax or linear")
        }
    }
}

/// Chooses which examples to keep from their scores.
///
///     var o = SelectionOptions(keep: 0.5); o.preference = .easy; o.sampling = .softmax
///     let kept = try Selector.choose(scores: s, labels: labels, options: o)   // sorted example indices
public enum Selector {
    /// The number kept: round(f * N), halves rounded up.
    public static func budget(_ n: Int, keep f: Double) -> Int { min(n, max(0, Int((f * Double(n)).rounded(.toNearestOrAwayFromZero)))) }

    /// Indices of the kept examples, ascending (input order).
    ///
    /// - Throws: `WinnowError.invalidOption` when `options` fail `SelectionOptions.validate()`, `labels` and
    ///   `scores` differ in count, or a score is not finite (scores are ignored by the random preference).
    public static func choose(scores raw: [Double], labels: [String], options o: SelectionOptions) throws -> [Int] {
        try o.validate()
        guard labels.count == raw.count else {
            throw WinnowError.invalidOption(name: "labels", reason: "\(labels.count) labels for \(raw.count) scores (one label per score; empty strings when unlabelled)")
        }
        if o.preference != .random, let i = raw.firstIndex(where: { !$0.isFinite }) {
            throw WinnowError.invalidOption(name: "scores", reason: "score \(i + 1) is \(raw[i]), not a finite number")
        }
        let n = raw.count
        let k = budget(n, keep: o.keep)
        let s = o.normalization.apply(raw, labels: labels)
        var rng = SeededGenerator(seed: o.seed, stream: "select")
        guard o.perLabel else { return select(s, k: k, options: o, rng: &rng).sorted() }
        // Labels in order of first appearance; each selects its quota among its own examples.
        var members: [String: [Int]] = [:], order: [String] = []
        for (i, l) in labels.enumerated() {
            if members[l] == nil { order.append(l) }
            members[l, default: []].append(i)
        }
        let quota = quotas(counts: order.map { members[$0]!.count }, total: k)
        var chosen: [Int] = []
        for (l, q) in zip(order, quota) {
            let idx = members[l]!
            chosen += select(idx.map { s[$0] }, k: q, options: o, rng: &rng).map { idx[$0] }
        }
        return chosen.sorted()
    }

    /// Splits `total` over groups of `counts` examples in proportion to their sizes: floor(total * n_c / N)
    /// each, the rest one apiece to the largest remainders (ties to the earlier group); never more than a
    /// group holds. The quotas sum to min(total, N).
    public static func quotas(counts: [Int], total: Int) -> [Int] {
        let n = counts.reduce(0, +)
        guard n > 0 else { return counts.map { _ in 0 } }
        let t = min(max(0, total), n)
        var q = counts.map { t * $0 / n }
        let rest = t - q.reduce(0, +)
        let byRemainder = counts.indices.sorted {
            let a = t * counts[$0] % n, b = t * counts[$1] % n
            return a != b ? a > b : $0 < $1
        }
        for i in byRemainder.prefix(rest) { q[i] += 1 }
        return q
    }

    /// The k examples of `s` (normalised scores) that the preference and sampling of `o` choose, unsorted.
    static func select(_ s: [Double], k: Int, options o: SelectionOptions, rng: inout SeededGenerator) -> [Int] {
        let n = s.count
        switch (o.preference, o.sampling) {
        case (.moderate, _):
            let m = median(s)
            var easy = o
            easy.preference = .easy
            return select(s.map { abs($0 - m) }, k: k, options: easy, rng: &rng)
        case (.random, _):
            return weightedWithoutReplacement(logWeights: [Double](repeating: 0, count: n), k: k, rng: &rng)
        case (_, .top):
            let sign: Double = o.preference == .hard ? 1 : -1
            return Array(s.indices.sorted { sign * s[$0] != sign * s[$1] ? sign * s[$0] > sign * s[$1] : $0 < $1 }.prefix(k))
        case (_, .softmax):
            let sign: Double = o.preference == .hard ? 1 : -1
            return weightedWithoutReplacement(logWeights: s.map { sign * $0 / o.temperature }, k: k, rng: &rng)
        case (_, .linear):
            let lo = s.min() ?? 0, hi = s.max() ?? 0
            let w = s.map { o.preference == .hard ? $0 - lo + o.epsilon : hi - $0 + o.epsilon }
            return weightedWithoutReplacement(logWeights: w.map { log($0) }, k: k, rng: &rng)
        case (_, .stratified):
            return stratified(s, k: k, beta: o.beta, bins: o.bins, rng: &rng)
        }
    }

    /// The median of `s` (the mean of the two middle values for an even count; 0 when empty).
    static func median(_ s: [Double]) -> Double {
        guard !s.isEmpty else { return 0 }
        let v = s.sorted()
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    /// Efraimidis-Spirakis: keep the k largest keys u^(1/w), computed as the k smallest log(E) - log(w)
    /// with E ~ Exp(1), which stays finite for weights like exp(s / T) with large s.
    static func weightedWithoutReplacement(logWeights lw: [Double], k: Int, rng: inout SeededGenerator) -> [Int] {
        let keys = lw.map { w -> Double in
            let e = -log(max(rng.nextUniform(), 0x1.0p-60))
            return log(e) - w
        }
        return Array(keys.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }.prefix(k))
    }

    /// Coverage-centric selection (Zheng et al. 2023, Algorithm 1): drop the hardest floor(`beta` n) (the likely
    /// noise, whatever the preference: hard and easy select alike), bin the rest into `bins` equal-width score
    /// bins, and fill the budget from the smallest bin up, each bin taking min(its size, floor(budget left /
    /// bins left)), so what small bins cannot take goes to the larger ones; uniform draws inside each bin.
    static func stratified(_ s: [Double], k: Int, beta: Double, bins: Int, rng: inout SeededGenerator) -> [Int] {
        let order = s.indices.sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }     // hardest first
        let drop = min(order.count, Int((beta * Double(order.count)).rounded(.down)))
        let pool = Array(order.dropFirst(drop))
        guard !pool.isEmpty, k > 0 else { return [] }
        let lo = pool.map { s[$0] }.min()!, hi = pool.map { s[$0] }.max()!
        var binned = [[Int]](repeating: [], count: max(1, bins))
        for i in pool {
            let b = hi > lo ? min(bins - 1, Int((s[i] - lo) / (hi - lo) * Double(bins))) : 0
            binned[b].append(i)
        }
        var nonEmpty = binned.filter { !$0.isEmpty }.sorted { $0.count < $1.count }
        var budget = min(k, pool.count)
        var out: [Int] = []
        while !nonEmpty.isEmpty && budget > 0 {
            let bin = nonEmpty.removeFirst()
            let take = min(bin.count, budget / (nonEmpty.count + 1))
            var shuffled = bin.sorted()
            shuffled.shuffle(using: &rng)
            out += shuffled.prefix(take)
            budget -= take
        }
        return out
    }
}
