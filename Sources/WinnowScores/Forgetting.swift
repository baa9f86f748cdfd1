import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Scores read from a run's training dynamics (recorded in training mode, before each update).
public enum DynamicsScores {
    /// The dynamics of `run`, or a clear error when the run has none (e.g. a transformers.Trainer run).
    public static func load(_ run: URL) throws -> Dynamics {
        let folder = try RunFolder(url: run)
        guard folder.hasDynamics else {
            if let last = folder.unfinishedLastStep {
                throw WinnowError.missingFile(path: folder.dynamicsURL.path, reason:
                    "\(run.path) is an unfinished run (killed, or still training): its dynamics are written when it ends; finish it with "
                    + "`winnow train` and --resume, or give --run \(run.appendingPathComponent("checkpoint-\(last)").path) for the dynamics so far")
            }
            throw WinnowError.missingFile(path: folder.dynamicsURL.path, reason:
                "this run has no training dynamics (runs trained with `winnow train --no-dynamics` or by transformers.Trainer record none); "
                + "forgetting, cartography and AUM need a run trained by `winnow train`")
        }
        return try Dynamics(contentsOf: folder.dynamicsURL)
    }

    /// Refuses a table of another number of examples than the dynamics cover (its rows would be named wrong).
    static func checkTable(_ table: ExampleTable?, _ d: Dynamics) throws {
        if let t = table, t.count != d.exampleCount {
            throw WinnowError.invalidOption(name: "table", reason: "has \(t.count) examples but the dynamics cover \(d.exampleCount): read the run's training file")
        }
    }

    /// Presentations per example, in step order.
    static func grouped(_ d: Dynamics, count n: Int) throws -> [[Int]] {
        var g = [[Int]](repeating: [], count: n)
        for r in 0..<d.count {
            let i = Int(d.index[r])
            guard i >= 0 && i < n else {
                throw WinnowError.invalidTensor(path: "dynamics.safetensors", tensor: "index", reason: "example \(i) is outside 0...\(n - 1)")
            }
            g[i].append(r)
        }
        for i in g.indices { g[i].sort { d.step[$0] < d.step[$1] } }
        return g
    }
}

/// Forgetting (Toneva et al. 2019): a forgetting event is a presentation classified correctly followed
/// by one classified wrongly. Score = number of events; an example never classified correctly gets
/// score = its number of presentations (ranked most forgettable) and `never_learned` = 1.
///
///     let r = try Forgetting.score(DynamicsScores.load(run))
public enum Forgetting {
    /// Forgetting scores of every example of `d`; `table` names the examples (nil: an empty table, scores only).
    ///
    /// - Throws: `WinnowError.invalidTensor` when a recorded example index is outside 0..<`d.exampleCount`;
    ///   `WinnowError.invalidOption` naming `table` when it has another number of examples.
    public static func score(_ d: Dynamics, table: ExampleTable? = nil) throws -> ScoreResult {
        try DynamicsScores.checkTable(table, d)
        let n = d.exampleCount
        let groups = try DynamicsScores.grouped(d, count: n)
        var score = [Double](repeating: 0, count: n), never = score, events = score, presentations = score
        for i in 0..<n {
            let acc = groups[i].map { d.correct[$0] > 0.5 }
            var e = 0
            for t in acc.indices.dropFirst() where acc[t - 1] && !acc[t] { e += 1 }
            events[i] = Double(e)
            presentations[i] = Double(acc.count)
            if !acc.contains(true) {
                never[i] = 1
                score[i] = Double(acc.count)
            } else {
                score[i] = Double(e)
            }
        }
        var r = ScoreResult(method: .forgetting, scores: score, table: table ?? ExampleTable(labelNames: []))
        r.components = [("events", events), ("presentations", presentations), ("never_learned", never)]
        r.notes = ["forgetting events (correct then wrong at the next presentation); never-learned examples score their presentation count"]
        return r
    }
}

/// Dataset cartography (Swayamdipta et al. 2020): confidence = mean p_y, variability = population std
/// of p_y, correctness = mean accuracy over presentations. Score = 1 - confidence (higher = harder).
public enum Cartography {
    /// Cartography scores (1 - confidence) of every example of `d`; `table` names the examples (nil: an empty
    /// table, scores only).
    ///
    /// - Throws: `WinnowError.invalidTensor` when a recorded example index is outside 0..<`d.exampleCount`;
    ///   `WinnowError.invalidOption` naming `table` when it has another number of examples.
    public static func score(_ d: Dynamics, table: ExampleTable? = nil) throws -> ScoreResult {
        try DynamicsScores.checkTable(table, d)
        let n = d.exampleCount
        let groups = try DynamicsScores.grouped(d, count: n)
        var conf = [Double](repeating: 0, count: n), vari = conf, corr = conf
        for i in 0..<n where !groups[i].isEmpty {
            let p = groups[i].map { Double(d.pTrue[$0]) }
            let m = p.reduce(0, +) / Double(p.count)
            conf[i] = m
            vari[i] = (p.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(p.count)).squareRoot()
            corr[i] = groups[i].reduce(0.0) { $0 + Double(d.correct[$1]) } / Double(p.count)
        }
        var r = ScoreResult(method: .cartography, scores: conf.map { 1 - $0 }, table: table ?? ExampleTable(labelNames: []))
        r.components = [("confidence", conf), ("variability", vari), ("correctness", corr)]
        r.notes = ["score = 1 - confidence; confidence = mean p_y, variability = population std of p_y, correctness = mean accuracy"]
        return r
    }
}

/// AUM (Pleiss et al. 2020): mean over presentations of z_y - max_{j != y} z_j. Score = -AUM (higher =
/// harder; mislabelled examples have negative AUM).
public enum AUM {
    /// AUM scores (-AUM) of every example of `d`; `table` names the examples (nil: an empty table, scores only).
    ///
    /// - Throws: `WinnowError.invalidTensor` when a recorded example index is outside 0..<`d.exampleCount`;
    ///   `WinnowError.invalidOption` naming `table` when it has another number of examples.
    public static func score(_ d: Dynamics, table: ExampleTable? = nil) throws -> ScoreResult {
        try DynamicsScores.checkTable(table, d)
        let n = d.exampleCount
        let groups = try DynamicsScores.grouped(d, count: n)
        var aum = [Double](repeating: 0, count: n)
        for i in 0..<n where !groups[i].isEmpty {
            aum[i] = groups[i].reduce(0.0) { $0 + Double(d.margin[$1]) } / Double(groups[i].count)
        }
        var r = ScoreResult(method: .aum, scores: aum.map { -$0 }, table: table ?? ExampleTable(labelNames: []))
        r.components = [("aum", aum)]
        r.notes = ["score = -AUM; AUM = mean margin z_y - max_{j != y} z_j over presentations (training mode)"]
        return r
    }
}
