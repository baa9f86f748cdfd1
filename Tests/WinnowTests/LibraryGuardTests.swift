import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores

/// What the C kernels trust (token ids inside the embedding table, sequences inside the positions, a corpus
/// of the model's objective) is checked by the library's own entry points, not only by the CLI: an embedder
/// gets an error, never a read past a table. And pruning by an in-memory result leaves out a decoder's
/// examples without a scored token, as `winnow prune` does.
@Suite struct LibraryGuardTests {
    static func tinyClassifier() throws -> BertClassifier {
        let run = try RunFolder(url: Paths.tinyBert.appendingPathComponent("run"))
        return try #require(try ModelLoader.classifier(folder: run.finalModelFolder) as? BertClassifier)
    }

    @Test func idsOutsideTheModelAreRefusedByTheTrainerAndThePredictor() throws {
        let model = try Self.tinyClassifier()
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let data = try JSONLDataset(url: Paths.tinyBert.appendingPathComponent("train.jsonl"))
        var encoded = try EncodedDataset(data, tokenizer: BertTokenizer(vocabulary: vocab), labels: model.labelNames, maxLength: 16)
        // In range: predicts.
        #expect(try model.predict(encoded).predictions.count == encoded.count)
        encoded.encodings[3].inputIDs[1] = Int32(model.dimensions.vocabulary + 5)
        #expect { try model.predict(encoded) } throws: { "\($0)".contains("line \(encoded.lines[3])") && "\($0)".contains("outside") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-guard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = TrainingOptions()
        o.epochs = 1; o.recordDynamics = false
        #expect(throws: WinnowError.self) { try Trainer(options: o).train(model, on: encoded, run: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
    }

    /// A run trained through the library records its data file as `winnow train` does, so the dynamics scores refuse another one.
    @Test func aLibraryRunRecordsItsDataFile() throws {
        let model = try Self.tinyClassifier()
        let url = Paths.tinyBert.appendingPathComponent("train.jsonl")
        let data = try JSONLDataset(url: url)
        let vocab = try Vocabulary(contentsOf: Paths.tinyBert.appendingPathComponent("vocab.txt"))
        let encoded = try EncodedDataset(data, tokenizer: BertTokenizer(vocabulary: vocab), labels: model.labelNames, maxLength: 16)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-guard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = TrainingOptions()
        o.epochs = 1; o.batchSize = 64
        try Trainer(options: o).train(model, on: encoded, run: dir, runInfo: Trainer.runInfo(data: url, fields: data.fields))
        let info = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("winnow.json"))) as? [String: Any])
        #expect(info["data_fnv1a64"] as? String == (try FileFingerprint.fnv1a64(url)) && info["text_field"] as? String == data.fields.text)
        // Another file of the same count: refused by forgetting.
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        let reversed = dir.appendingPathComponent("reversed.jsonl")
        try (lines.reversed().joined(separator: "\n") + "\n").write(to: reversed, atomically: true, encoding: .utf8)
        #expect { try Scorer.score(.forgetting, run: dir, data: reversed, options: ScoreOptions()) } throws: { "\($0)".contains("is not the file") }
    }

    /// Dynamics scores with a table of another size than the dynamics: refused (its rows would name other examples).
    @Test func dynamicsScoresRefuseATableOfAnotherSize() throws {
        var d = Dynamics()
        d.exampleCount = 3
        var table = ExampleTable(labelNames: ["a", "b"])
        table.labels = [0]; table.lines = [1]; table.ids = [nil]
        #expect(throws: WinnowError.self) { try Forgetting.score(d, table: table) }
        #expect(throws: WinnowError.self) { try Cartography.score(d, table: table) }
        #expect(throws: WinnowError.self) { try AUM.score(d, table: table) }
        #expect(try Forgetting.score(d).scores.count == d.exampleCount)
    }

    @Test func aDecodersCorpusIsRefusedByAMaskedLanguageModel() throws {
        let corpus = try LMCorpus(url: Paths.fixtures.appendingPathComponent("decoder/corpus.txt"),
                                  causalTokenizer: Tokenizers.load(folder: Paths.fixtures.appendingPathComponent("decoder/tied")), seqLen: 10)
        let mlm = BertLanguageModel(config: BertConfig.small(vocabSize: 64, hidden: 16, layers: 1, heads: 2, maxPositions: 16), objective: .mlm, seed: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-guard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect { try PreTrainer(options: PretrainOptions()).train(mlm, on: corpus, run: dir) } throws: { "\($0)".contains("decoder's corpus") }
        // A causal BERT with a vocabulary smaller than the corpus's ids: refused before any step.
        let small = BertLanguageModel(config: BertConfig.small(vocabSize: 8, hidden: 16, layers: 1, heads: 2, maxPositions: 16), objective: .causal, seed: 1)
        #expect { try PreTrainer(options: PretrainOptions()).train(small, on: corpus, run: dir) } throws: { "\($0)".contains("vocab") }
    }

    @Test func pruningByAResultLeavesOutExamplesWithoutAScoredToken() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-guard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        try "{\"text\": \"a b c\"}\n{\"text\": \"\"}\n{\"text\": \"d e\"}\n".write(to: data, atomically: true, encoding: .utf8)
        var table = ExampleTable(labelNames: [])
        table.lines = [1, 2, 3]; table.labels = [-1, -1, -1]; table.ids = [nil, nil, nil]
        var r = ScoreResult(method: .loss, scores: [2.5, 0, 1.5], table: table)
        r.components = [("tokens", [3, 0, 2])]
        let s = try Pruning.prune(data: data, result: r, options: SelectionOptions(keep: 1), to: nil)
        #expect(s.keptLines == [1, 3] && s.withoutTokens == 1 && s.scored == 2)
    }
}
