import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// The `loss` score on a causal language model: each example's mean next-token cross-entropy in nats
/// over its tokens (what transformers returns for the example alone with `labels=input_ids`), the
/// perplexity filter of data selection for language models (Marion et al. 2023; Ankner et al. 2024:
/// high loss marks text the model finds unusual). Texts are tokenized by the model's own tokenizer,
/// truncated to `options.maxLength` tokens (the first ones), and scored in batches.
///
///     let r = try LanguageModelLoss.score(model: URL(fileURLWithPath: "models/smollm2"), data: corpus, options: ScoreOptions())
public enum LanguageModelLoss {
    /// Loss of every example of `data` (a JSONL file with a text field; labels are not needed).
    /// Components: `tokens`, the number of tokens scored (after truncation).
    ///
    /// - Throws: `WinnowError` naming the file and line or tensor that is wrong.
    public static func score(model url: URL, data: URL, fields: FieldNames = FieldNames(), options o: ScoreOptions) throws -> ScoreResult {
        let model = try ModelLoader.causalLM(url)
        let tokenizer = try Tokenizers.load(folder: url)
        let maxLength = min(o.maxLength, model.maxSequenceLength)
        var reader = try JSONLReader(url: data, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        var table = ExampleTable(labelNames: [])
        var labelIndex: [String: Int32] = [:]        // labels are optional, kept for pruning by class
        var losses: [Double] = [], tokens: [Double] = []
        let bar = o.reporter.start("loss", total: max(1, reader.fileSize), unit: "B")
        var last = 0
        while let chunk = try reader.next(upTo: 1024) {
            var encs: [Encoding] = []
            for ex in chunk {
                let e = ex.inputIDs.map { Encoding(inputIDs: Array($0.prefix(maxLength)), tokenTypeIDs: [Int32](repeating: 0, count: min($0.count, maxLength))) }
                    ?? tokenizer.encode(ex.text ?? "", pair: ex.pair, maxLength: maxLength)
                if let bad = e.inputIDs.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                    throw WinnowError.invalidFile(path: data.path, line: ex.line, reason: "input id \(bad) is outside the vocabulary (size \(tokenizer.vocabularySize))")
                }
                encs.append(e)
                var y: Int32 = -1
                if let l = ex.label {
                    if labelIndex[l] == nil { labelIndex[l] = Int32(table.labelNames.count); table.labelNames.append(l) }
                    y = labelIndex[l]!
                }
                table.labels.append(y); table.lines.append(ex.line); table.ids.append(ex.id)
            }
            for start in stride(from: 0, to: encs.count, by: o.batchSize) {
                let part = Array(encs[start..<min(encs.count, start + o.batchSize)])
                let batch = Batch(encodings: part, labels: [Int32](repeating: -1, count: part.count), indices: Array(0..<part.count),
                                  padID: tokenizer.padID)
                let (l, _) = model.sampleLosses(batch)
                losses += l
                tokens += part.map { Double($0.inputIDs.count) }
            }
            bar.advance(by: reader.bytesRead - last, note: "\(losses.count) examples")
            last = reader.bytesRead
        }
        bar.finish(note: "\(losses.count) examples")
        var r = ScoreResult(method: .loss, scores: losses, table: table)
        r.components = [("tokens", tokens)]
        r.notes = ["loss = mean next-token cross-entropy (nats) over each example's tokens (at most \(maxLength)); an example of one token scores 0"]
        return r
    }
}
