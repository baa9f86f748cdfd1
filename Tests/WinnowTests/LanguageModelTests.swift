import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Masked and causal language models against transformers (scripts/reference/make_lm_golden.py), and
/// PRESENCE's self-influence and weights.
@Suite struct LanguageModelTests {
    static let lm = Paths.fixtures.appendingPathComponent("lm")

    static func golden(_ name: String) throws -> (BertLanguageModel, LMBatch, SafeTensorsFile) {
        let dir = lm.appendingPathComponent(name)
        let f = try SafeTensorsFile(url: dir.appendingPathComponent("golden.safetensors"))
        let batch = try goldenBatch(f)
        let targets = try f.integers("targets").map { Int32($0) }
        return (try BertLanguageModel(folder: dir), LMBatch(batch: batch, targets: targets, lines: Array(1...batch.size)), f)
    }

    @Test(arguments: ["mlm", "causal"])
    func logitsLossAndGradientsMatchTransformers(_ name: String) throws {
        let (model, lb, f) = try Self.golden(name)
        #expect(model.objective.rawValue == name)
        let logits = model.logitsAllRows(lb.batch)
        expectClose(logits.values, try f.tensor("logits").values, atol: 1e-4, rtol: 0, "\(name) logits")
        let loss = model.forward(lb)
        #expect(abs(loss - Double(try f.tensor("loss").values[0])) < 1e-5, "\(name) loss \(loss)")
        model.backwardPerSample(training: false, seed: 0)
        let active = model.sampleTargets.filter { $0 > 0 }.count
        var grads = model.parameters.zeros()
        model.accumulateGradients(sampleWeights: model.sampleTargets.map { $0 > 0 ? 1 / Float(active) : 0 }, into: &grads)
        for (n, g) in grads.named {
            let expected = try f.tensor("grad.\(n)").values
            let err = relativeError(g.values, expected)
            #expect(err <= 1e-3 || maxAbs(expected) < 1e-6, "\(name) grad.\(n): relative error \(err)")
        }
    }

    @Test func savedModelLoadsBackIdentically() throws {
        let (model, lb, _) = try Self.golden("mlm")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-lm-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir)
        let again = try BertLanguageModel(folder: dir)
        #expect(again.logitsAllRows(lb.batch).values == model.logitsAllRows(lb.batch).values)
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        #expect((cfg["architectures"] as? [String]) == ["BertForMaskedLM"])
    }

    /// A tiny corpus batch for the self-influence checks.
    static func corpusBatch(_ objective: BertLanguageModel.Objective) throws -> (BertLanguageModel, LMBatch) {
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let corpus = try LMCorpus(url: Paths.tinyBert.appendingPathComponent("train.jsonl"), tokenizer: BertTokenizer(vocabulary: vocab), seqLen: 12)
        var c = BertConfig.small(vocabSize: vocab.count, hidden: 16, layers: 2, heads: 2, maxPositions: 64)
        c.hiddenDropoutProb = 0; c.attentionProbsDropoutProb = 0
        let model = BertLanguageModel(config: c, objective: objective, seed: 4)
        let lb = corpus.batch(Array(0..<7), objective: objective, seed: 9, maskProbability: 0.3)
        return (model, lb)
    }

    @Test(arguments: [BertLanguageModel.Objective.mlm, .causal])
    func selfInfluenceEqualsTheMaterialisedMicrobatchGradientNorm(_ objective: BertLanguageModel.Objective) throws {
        let (model, lb) = try Self.corpusBatch(objective)
        for spec in ["first-layer", "bert.encoder.layer.1.,bert.embeddings.LayerNorm"] {
            let sel = try model.selfInfluenceSelection(ParameterSelection.Spec(parsing: spec)!)
            let groups = Presence.groups(batchSize: 7, microbatchSize: 3)      // 3 + 3 + 1
            #expect(groups == [0, 3, 6, 7])
            model.forward(lb)
            model.backwardPerSample(training: false, seed: 0)
            let si = model.groupGradientNorms(lb, selection: sel, groups: groups)
            for j in 0..<(groups.count - 1) {
                model.forward(lb)
                model.backwardPerSample(training: false, seed: 0)
                let members = (groups[j]..<groups[j + 1]).filter { model.sampleTargets[$0] > 0 }
                var v = [Float](repeating: 0, count: 7)
                for b in members { v[b] = 1 / Float(members.count) }
                var grads = model.parameters.zeros()
                model.accumulateGradients(sampleWeights: v, into: &grads)
                var norm = 0.0
                for n in sel.names { norm += grads[n]!.values.reduce(0.0) { $0 + Double($1) * Double($1) } }
                #expect(norm > 0)
                #expect(abs(si[j] - norm) <= 1e-4 * norm, "\(objective) \(spec) microbatch \(j): SI \(si[j]) vs materialised \(norm)")
            }
        }
    }

    @Test func tiedEmbeddingsAndTheHeadAreRefusedForSelfInfluence() throws {
        let (model, _) = try Self.corpusBatch(.mlm)
        #expect(throws: WinnowError.self) { try model.selfInfluenceSelection(ParameterSelection.Spec(parsing: "all")!) }
        #expect(throws: WinnowError.self) { try model.selfInfluenceSelection(ParameterSelection.Spec(parsing: "cls.")!) }
    }

    @Test func weightsSumToOneAndFollowSelfInfluence() {
        let si = [0.3, 2.0, 0.01, 1.1, 0.7]
        for tau in [1.0, -1.0, 3.0, -0.5] {
            for scale in PresenceOptions.Scale.allCases {
                let w = Presence.weights(selfInfluence: si, tau: tau, scale: scale)
                #expect(abs(w.reduce(0, +) - 1) < 1e-12)
                let bySI = si.indices.sorted { si[$0] < si[$1] }
                for (a, b) in zip(bySI, bySI.dropFirst()) {
                    #expect(tau > 0 ? w[a] < w[b] : w[a] > w[b], "tau \(tau): weights must \(tau > 0 ? "follow" : "reverse") SI's order")
                }
            }
        }
        #expect(Presence.weights(selfInfluence: si, tau: 0, scale: .mean) == [Double](repeating: 0.2, count: 5))
        #expect(abs(Presence.entropy([Double](repeating: 0.25, count: 4)) - log(4)) < 1e-12)
        var o = PresenceOptions(); o.tau1 = 2; o.tau2 = -3; o.switchStep = 5
        #expect(o.tau(atStep: 4) == 2 && o.tau(atStep: 5) == -3)
    }

    static func pretrain(_ o: PretrainOptions, siLog: URL? = nil) throws -> (BertLanguageModel, URL) {
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let corpus = try LMCorpus(url: Paths.tinyBert.appendingPathComponent("train.jsonl"), tokenizer: BertTokenizer(vocabulary: vocab), seqLen: 12)
        let model = BertLanguageModel(config: BertConfig.small(vocabSize: vocab.count, hidden: 16, layers: 2, heads: 2, maxPositions: 64),
                                      objective: .mlm, seed: 1)
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-pretrain-\(UUID().uuidString.prefix(8))")
        try PreTrainer(options: o).train(model, on: corpus, run: run, siLog: siLog)
        return (model, run)
    }

    @Test func resumedPretrainingEqualsAnUninterruptedRun() throws {
        var o = PretrainOptions()
        o.steps = 6; o.batchSize = 8; o.checkpoints = 2; o.learningRate = 1e-3
        o.presence.reweight = .presence; o.presence.microbatchSize = 2
        let tmp = FileManager.default.temporaryDirectory
        let logA = tmp.appendingPathComponent("winnow-si-a-\(UUID().uuidString.prefix(8)).csv")
        let logB = tmp.appendingPathComponent("winnow-si-b-\(UUID().uuidString.prefix(8)).csv")
        let (whole, runA) = try Self.pretrain(o, siLog: logA)
        // A run killed after its step-3 checkpoint: the same run with the later files gone.
        let (_, runB) = try Self.pretrain(o, siLog: logB)
        defer { for u in [runA, runB, logA, logB] { try? FileManager.default.removeItem(at: u) } }
        for f in ["checkpoint-6", "model.safetensors", "trainer_state.json", "config.json"] {
            try FileManager.default.removeItem(at: runB.appendingPathComponent(f))
        }
        try FileManager.default.removeItem(at: logB)
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let corpus = try LMCorpus(url: Paths.tinyBert.appendingPathComponent("train.jsonl"), tokenizer: BertTokenizer(vocabulary: vocab), seqLen: 12)
        let resumed = BertLanguageModel(config: BertConfig.small(vocabSize: vocab.count, hidden: 16, layers: 2, heads: 2, maxPositions: 64),
                                        objective: .mlm, seed: 99)
        try PreTrainer(options: o).train(resumed, on: corpus, run: runB, siLog: logB, resume: true)
        for i in whole.parameters.tensors.indices {
            #expect(whole.parameters[i].values == resumed.parameters[i].values, "\(whole.parameters.names[i]) differs after resuming")
        }
        #expect(try Data(contentsOf: logA) == Data(contentsOf: logB), "the SI log differs after resuming")
        #expect(try Data(contentsOf: runA.appendingPathComponent("trainer_state.json"))
                == Data(contentsOf: runB.appendingPathComponent("trainer_state.json")))
        // Other options are refused.
        var other = o
        other.learningRate = 2e-3
        #expect(throws: WinnowError.self) { try PreTrainer(options: other).train(resumed, on: corpus, run: runB, resume: true) }
    }

    @Test func tauZeroReproducesUnweightedTrainingExactly() throws {
        var o = PretrainOptions()
        o.steps = 6; o.batchSize = 8; o.checkpoints = 1; o.learningRate = 1e-3; o.presence.microbatchSize = 2
        let (plain, r1) = try Self.pretrain(o)
        o.presence.reweight = .presence; o.presence.tau1 = 0; o.presence.tau2 = 0; o.presence.microbatchSize = 2
        let (zero, r2) = try Self.pretrain(o)
        defer { try? FileManager.default.removeItem(at: r1); try? FileManager.default.removeItem(at: r2) }
        for i in plain.parameters.tensors.indices {
            #expect(plain.parameters[i].values == zero.parameters[i].values, "\(plain.parameters.names[i]) differs")
        }
        o.presence.tau1 = 1; o.presence.tau2 = 1
        let (weighted, r3) = try Self.pretrain(o)
        defer { try? FileManager.default.removeItem(at: r3) }
        #expect(weighted.parameters[0].values != plain.parameters[0].values, "tau 1 must change training")
    }

    @Test func tauSwitchesAtTheSwitchStepAndTheLogHasEverySample() throws {
        var o = PretrainOptions()
        o.steps = 6; o.batchSize = 8; o.checkpoints = 1
        o.presence.reweight = .presence; o.presence.tau1 = 1; o.presence.tau2 = -1; o.presence.switchStep = 4; o.presence.microbatchSize = 2
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-si-\(UUID().uuidString.prefix(8)).csv")
        let (_, run) = try Self.pretrain(o, siLog: log)
        defer { try? FileManager.default.removeItem(at: run); try? FileManager.default.removeItem(at: log) }
        let rows = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "step,line,si,weight")
        #expect(rows.count == 1 + 6 * 8)
        var byStep: [Int: [(Double, Double)]] = [:]
        for r in rows.dropFirst() {
            let f = r.split(separator: ",")
            byStep[Int(f[0])!, default: []].append((Double(f[2])!, Double(f[3])!))
        }
        for (step, pairs) in byStep {
            let micro = stride(from: 0, to: pairs.count, by: 2).map { pairs[$0] }     // one row per microbatch
            #expect(abs(micro.map(\.1).reduce(0, +) - 1) < 1e-6, "step \(step): weights sum to \(micro.map(\.1).reduce(0, +))")
            let sorted = micro.sorted { $0.0 < $1.0 }
            for (a, b) in zip(sorted, sorted.dropFirst()) where a.0 < b.0 {
                #expect(step < 4 ? a.1 < b.1 : a.1 > b.1, "step \(step): tau \(step < 4 ? 1 : -1) orders weights wrongly")
            }
        }
        let state = try TrainerState(contentsOf: run.appendingPathComponent("trainer_state.json"))
        #expect(state.logHistory.last?.extra["weight_entropy"] != nil && state.logHistory.last?.extra["si_mean"] != nil)
    }
}
