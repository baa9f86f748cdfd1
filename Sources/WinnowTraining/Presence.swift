import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// PRESENCE (2311.00913): online reweighting of each pre-training batch by self-influence.
/// A batch of B samples is split into J = ceil(B / M) microbatches of M consecutive samples; microbatch
/// j has loss L_j (the mean of its samples' losses) and self-influence SI_j = ||dL_j / d theta_S||^2
/// over the chosen tensors theta_S. Weights w = softmax(tau * s) with s = SI scaled (see `Scale`), and
/// the step minimises sum_j w_j L_j. tau = tau1 for steps before `switchStep`, tau2 from it on.
public struct PresenceOptions: Codable, Sendable, Equatable {
    /// `none`: plain training (uniform weights); `presence`: microbatch weights softmax(tau * s).
    public enum Reweight: String, Codable, Sendable, CaseIterable { case none, presence }
    /// How SI is scaled before the softmax.
    public enum Scale: String, Codable, Sendable, CaseIterable {
        /// s_j = SI_j / mean(SI) over the batch: scale-free (the raw SI changes by orders of magnitude
        /// during training), order-preserving; tau then reads as "nats per batch-mean of SI".
        case mean
        /// s_j = SI_j as is.
        case none
    }

    /// Whether PRESENCE reweighting is on (off by default).
    public var reweight: Reweight = .none
    /// Softmax temperature before `switchStep` (positive: more weight on high self-influence).
    public var tau1 = 1.0
    /// Softmax temperature from `switchStep` on (negative: more weight on low self-influence).
    public var tau2 = -1.0
    /// First step (1-based) that uses tau2; nil: half of the run's steps, plus one.
    public var switchStep: Int? = nil
    /// The tensors self-influence is measured on (the paper's choice: the first layer).
    public var siParams: ParameterSelection.Spec = .firstLayer
    /// Samples per microbatch (M; 1 gives per-sample weights).
    public var microbatchSize = 4
    /// How SI is scaled before the softmax.
    public var scale: Scale = .mean

    /// The default options (reweighting off), with the paper's schedule for a BERT when turned on: tau1 1, tau2 -1,
    /// self-influence over the first layer.
    public init() {}

    /// The defaults `winnow pretrain` uses for a pretrained decoder: inverse weighting throughout (tau1 = tau2 = -1)
    /// over the last decoder layer, what the SmolLM2 experiment favoured (README, "PRESENCE on a pretrained
    /// decoder"); reweighting still off until `reweight` is set.
    ///
    ///     var p = PresenceOptions.decoderDefaults; p.reweight = .presence
    public static var decoderDefaults: PresenceOptions {
        var p = PresenceOptions()
        p.tau1 = -1
        p.siParams = .lastLayer
        return p
    }

    /// The first step that uses tau2 in a run of `totalSteps` steps.
    public func switchStep(totalSteps: Int) -> Int { switchStep ?? totalSteps / 2 + 1 }

    /// tau at 1-based `step` of a run of `totalSteps` steps.
    public func tau(atStep step: Int, totalSteps: Int = 0) -> Double { step < switchStep(totalSteps: totalSteps) ? tau1 : tau2 }
}

/// PRESENCE arithmetic: microbatch boundaries, microbatch weights and their entropy.
public enum Presence {
    /// Sample index ranges of the J microbatches of a batch of `size` samples: [g[j], g[j+1]).
    public static func groups(batchSize b: Int, microbatchSize m: Int) -> [Int] {
        Array(stride(from: 0, to: b, by: max(1, m))) + [b]
    }

    /// w = softmax(tau * s) over the microbatches (stable: the max is subtracted). tau = 0 gives
    /// exactly 1/J each, which is what unweighted training uses.
    public static func weights(selfInfluence si: [Double], tau: Double, scale: PresenceOptions.Scale) -> [Double] {
        guard !si.isEmpty else { return [] }
        var s = si
        if scale == .mean {
            let m = si.reduce(0, +) / Double(si.count)
            s = m > 0 ? si.map { $0 / m } : si.map { _ in 0 }
        }
        let z = s.map { tau * $0 }
        let zmax = z.max()!
        let e = z.map { exp($0 - zmax) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    /// Entropy (nats) of a weight vector; log J for uniform weights.
    public static func entropy(_ w: [Double]) -> Double { -w.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) } }
}
