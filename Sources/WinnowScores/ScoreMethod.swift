import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// The per-example scores Winnow computes (higher = more influential / harder). The one list of
/// methods: `winnow score`, `winnow experiment` and their help texts are made from it.
///
///     let r = try Scorer.score(.el2n, run: runURL, data: trainURL, options: ScoreOptions())
public enum ScoreMethod: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// The scores, each defined in `definition` (and docs/contracts.md §4): variance of gradients, error L2 norm,
    /// gradient norm, loss, negative margin, forgetting events, 1 - cartography's confidence, negative area under
    /// the margin, negative pointwise V-information, TracIn self-influence (or train-to-test influence).
    case vog, el2n, grand, loss, margin, forgetting, cartography, aum, pvi, tracin

    public var description: String { rawValue }

    /// Read from the run's training dynamics rather than computed from its checkpoints.
    public var readsDynamics: Bool { [.forgetting, .cartography, .aum].contains(self) }

    /// Computed from forward passes alone (`--precision bf16` applies).
    public var isForwardOnly: Bool { [.el2n, .loss, .margin, .pvi].contains(self) }

    /// Needs the run of a null model (`winnow train --null`).
    public var needsNullRun: Bool { self == .pvi }

    /// One line: what the score is, in the conventions Winnow uses.
    public var definition: String {
        switch self {
        case .vog: "mean over real tokens and dims of the std over checkpoints of d z_y / d inputs_embeds"
        case .el2n: "||softmax(z) - onehot(y)||_2, mean over checkpoints"
        case .grand: "||dCE/dtheta||_2 over --params, mean over checkpoints (Gram form, no per-example gradients)"
        case .loss: "cross-entropy, mean over checkpoints"
        case .margin: "score -margin; margin = z_y - max_{j!=y} z_j, mean over checkpoints"
        case .forgetting: "number of forgetting events; never-learned examples score their presentation count"
        case .cartography: "score 1 - confidence; columns confidence (mean p_y), variability (population std), correctness"
        case .aum: "score -AUM; AUM = mean margin over presentations"
        case .pvi: "score -PVI; PVI = log2 p(y|x) - log2 p_null(y|empty) (needs --null-run)"
        case .tracin: "self-influence sum_k eta_k ||g_k||^2; with --test, train-to-test influence"
        }
    }

    /// The numeric columns a classifier's score file carries beside `score` (`ScoreResult.components`), which
    /// `winnow prune --column` / `--then-column` and an experiment's tie-break (`cartography.variability`) read.
    public var columns: [String] {
        switch self {
        case .forgetting: ["events", "presentations", "never_learned"]
        case .cartography: ["confidence", "variability", "correctness"]
        case .aum: ["aum"]
        case .margin: ["margin"]
        case .pvi: ["pvi", "log2p", "log2p_null"]
        case .vog, .el2n, .grand, .loss, .tracin: []
        }
    }

    /// The columns of `columns` where a higher value is easier: `columnsOppositeToScore`, and cartography's
    /// correctness (the fraction of presentations predicted right). `winnow prune` keeps their highest by default.
    public var columnsHigherIsEasier: [String] {
        self == .cartography ? ["confidence", "correctness"] : columnsOppositeToScore
    }

    /// The columns of `columns` that are the score up to a decreasing map (score = -column, or 1 - column):
    /// they rank the examples as the score does, in the opposite order, so they cannot break its ties.
    public var columnsOppositeToScore: [String] {
        switch self {
        case .cartography: ["confidence"]
        case .aum: ["aum"]
        case .margin: ["margin"]
        case .pvi: ["pvi"]
        case .vog, .el2n, .grand, .loss, .forgetting, .tracin: []
        }
    }

    /// `vog | el2n | ...`, for usage lines.
    public static var names: String { allCases.map(\.rawValue).joined(separator: " | ") }
}

/// VoG's target class: the label, or the class the latest chosen checkpoint (highest step) predicts.
public enum VoGTarget: String, Sendable, CaseIterable, Codable {
    /// The example's gold label, or the class the latest chosen checkpoint (highest step) predicts for it.
    case label, predicted
}
