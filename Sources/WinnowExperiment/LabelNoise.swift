import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

extension Experiment {
    /// With --noise F: flips the labels of round(F * N) seeded-random training examples, each to another
    /// label chosen uniformly, and writes DIR/train-noisy.jsonl (other lines verbatim) and DIR/flips.csv.
    func makeNoisyTrainingFile() throws {
        guard plan.noise > 0 else { return }
        let fm = FileManager.default
        if fm.fileExists(atPath: noisyTrainURL.path) && fm.fileExists(atPath: flipsURL.path) { return }
        let source = URL(fileURLWithPath: plan.train)
        let data = try JSONLDataset(url: source, fields: plan.fields)
        let file = try LineFile(url: source)
        let labels = data.sortedLabels
        guard labels.count >= 2, let field = data.fields.label else {
            throw WinnowError.invalidOption(name: "noise", reason: "needs at least two labels in \(source.path)")
        }
        // A fraction that flips no label has nothing for the scores to find: its similarity would mean nothing.
        guard Int((plan.noise * Double(data.examples.count)).rounded()) >= 1 else {
            throw WinnowError.invalidOption(name: "noise", reason: "\(ExperimentPlan.format(plan.noise)) of \(data.examples.count) examples flips no label")
        }
        let flips = LabelNoise.choose(count: data.examples.count, labels: data.examples.map { $0.label ?? "" },
                                      names: labels, fraction: plan.noise, seed: plan.noiseSeed)
        var replaced: [Int: Data] = [:]
        var report = TextFileBuilder()
        report.append("line,label,noisy_label")
        for (i, newLabel) in flips {
            let ex = data.examples[i]
            guard var obj = JSONLDataset.object(file.line(ex.line), first: ex.line == 1) else {
                throw WinnowError.invalidFile(path: source.path, line: ex.line, reason: "not a JSON object")
            }
            obj[field] = (obj[field] is NSNumber && Int(newLabel) != nil) ? NSNumber(value: Int(newLabel)!) : newLabel as Any
            var d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
            d.append(0x0A)
            replaced[ex.line] = d
            report.append("\(ex.line),\(ScoreWriter.csv(ex.label ?? "")),\(ScoreWriter.csv(newLabel))")
        }
        var out = Data()
        for n in stride(from: 1, through: file.count, by: 1) { out.append(replaced[n] ?? file.line(n)) }
        try AtomicFile.write(out, to: noisyTrainURL)
        try report.write(to: flipsURL)
        say("experiment: flipped \(flips.count) of \(data.examples.count) training labels (--noise \(plan.noise)); see \(flipsURL.path)")
    }

    /// The paper's similarity index per score: the fraction of flipped examples among the round(F * N)
    /// highest-scored ones (random scores give F on average). Written to DIR/noise.csv.
    func writeNoiseSimilarity() throws {
        let flipped = try LabelNoise.flippedLines(flipsURL)
        var out = TextFileBuilder()
        out.append("method,flipped,top_k,overlap,similarity")
        for m in plan.methods {
            let sf = try ScoreFile(url: scoreURL(m))
            let sim = LabelNoise.similarity(scores: sf.scores, lines: sf.lines, flipped: flipped)
            out.append("\(m),\(flipped.count),\(sim.k),\(sim.overlap),\(String(format: "%.6f", sim.value))")
            say(String(format: "experiment: %@ finds %d of the %d flipped labels in its top %d (similarity %.3f; random %.3f)",
                       m.rawValue, sim.overlap, flipped.count, sim.k, sim.value, plan.noise))
        }
        try out.write(to: noiseURL)
    }
}

/// Label noise for `winnow experiment --noise` and the similarity index of 2311.16298.
package enum LabelNoise {
    /// round(fraction * count) example indices with a new label each (never the old one), seeded.
    package static func choose(count n: Int, labels: [String], names: [String], fraction: Double, seed: UInt64) -> [(Int, String)] {
        var rng = SeededGenerator(seed: seed, stream: "label-noise")
        var order = Array(0..<n)
        order.shuffle(using: &rng)
        let k = Selector.budget(n, keep: fraction)
        return order.prefix(k).sorted().map { i in
            let others = names.filter { $0 != labels[i] }
            return (i, others[Int(rng.next() % UInt64(others.count))])
        }
    }

    /// Overlap of the flipped lines with the top-k scored examples (k = number flipped; ties by index).
    package static func similarity(scores: [Double], lines: [Int], flipped: Set<Int>) -> (k: Int, overlap: Int, value: Double) {
        let k = flipped.count
        let top = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(k)
        let overlap = top.filter { flipped.contains(lines[$0]) }.count
        return (k, overlap, k > 0 ? Double(overlap) / Double(k) : 0)
    }

    /// Lines listed in a flips.csv.
    package static func flippedLines(_ url: URL) throws -> Set<Int> {
        let rows = String(decoding: try Data(contentsOf: url), as: UTF8.self).textLines().dropFirst()
        return Set(try rows.enumerated().map { i, r in
            guard let n = Int(r.prefix { $0 != "," }) else { throw WinnowError.invalidFile(path: url.path, line: i + 2, reason: "expected a line number") }
            return n
        })
    }
}
