import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData

/// Labels as data files write them against the names a model carries.
@Suite struct LabelNameTests {
    /// A model with transformers' default names (LABEL_0, LABEL_1) reads integer labels (GLUE-style data)
    /// as their ids; a label that is neither is still refused, naming the line.
    @Test func defaultLabelNamesReadIntegerLabels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-labels-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        try "{\"text\": \"a good film\", \"label\": 1}\n{\"text\": \"a bad film\", \"label\": 0}\n".write(to: data, atomically: true, encoding: .utf8)
        let tok = try BertTokenizer(folder: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-bert/run"))
        let enc = try EncodedDataset(try JSONLDataset(url: data), tokenizer: tok, labels: ["LABEL_0", "LABEL_1"], maxLength: 16)
        #expect(enc.labels == [1, 0])
        #expect(throws: WinnowError.self) { try EncodedDataset(try JSONLDataset(url: data), tokenizer: tok, labels: ["neg", "pos"], maxLength: 16) }
    }
}
