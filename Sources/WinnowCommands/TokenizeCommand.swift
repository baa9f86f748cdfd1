import ArgumentParser
import Foundation
import Winnow

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Write the token ids of every example of a JSONL file, as the model's Hugging Face tokenizer gives them.",
        discussion: """
        One line per example: {"index": i, "line": l, "id": ..., "label": ..., "input_ids": [...]}, index = position \
        among the file's examples, line = 1-based line, id and label as strings when the line has them; a BERT \
        pair adds "token_type_ids" (1 for the second text), which the other commands read back. Ids equal Hugging Face's: AutoTokenizer.from_pretrained(MODEL)(text)["input_ids"] \
        for byte-level and SentencePiece BPE, and the slow BertTokenizer (use_fast=False) for WordPiece, whose pair truncation and \
        lower-casing of Σ the default fast one does otherwise (README "Data"); with the special tokens the \
        tokenizer adds, the pair field's ids following for pairs. --model is a model or \
        run folder (vocab.txt: WordPiece; tokenizer.json: WordPiece, byte-level BPE or SentencePiece BPE with byte \
        fallback), a PEFT adapter folder (its base model's tokenizer, or its own), a .gguf file, or a folder holding \
        one (tokenizer.ggml.*: byte-level BPE for model gpt2, SentencePiece BPE as llama.cpp runs it for model llama). Labels are not needed; every line is written. A line's given input_ids are checked \
        against the vocabulary and cut to --max-length. With a decoder's tokenizer, \
        prompt + completion and messages lines (through the model's chat template, with the line's tools) are encoded as `winnow score` and `winnow train` encode them \
        (docs/contracts.md §2b), and their lines add "scored": 1 for each token the loss is on, 0 otherwise (a given \
        completion_mask or assistant_masks is carried as "scored"); the other commands read "scored" back as that mask.
        """)

    @Option(help: "Model: a folder with vocab.txt or tokenizer.json, a PEFT adapter folder, a .gguf file, or a folder holding one.") var model: String
    @Option(help: "The base model of a LoRA adapter folder given as --model (default: its adapter_config.json's base_model_name_or_path, when that is a local path).") var base: String?
    @Option(help: "JSONL file, one example a line.") var data: String
    @Option(help: "Text field (default: first of text, sentence, sentence1, premise).") var textField: String?
    @Option(help: "Second-segment field for pairs (default: first of text_pair, sentence2, hypothesis).") var pairField: String?
    @Option(parsing: .unconditional, help: "Truncate to this many tokens, special tokens included (default: no truncation).") var maxLength: Int?
    @Option(help: "Output JSONL (written atomically).") var out: String

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
        // A BERT pair needs [CLS], two [SEP] and a token; a decoder's byte-level BPE truncates any length.
        if let maxLength, maxLength < 4, !ModelLoader.isCausalLM(URL(fileURLWithPath: model)) {
            throw ValidationError("--max-length must be at least 4 for a BERT tokenizer (below it transformers, and so Winnow, would not truncate a BERT pair at all)")
        }
        if let textField, textField == pairField {
            throw ValidationError("--text-field and --pair-field both name '\(textField)'; one field has one role")
        }
        try refuseOverwriting(out, inputs: [data])
        if ["csv", "npy"].contains(URL(fileURLWithPath: out).pathExtension.lowercased()) {
            throw ValidationError("tokenize writes JSONL ({\"index\", \"line\", \"input_ids\"} a line): give --out a .jsonl name")
        }
        try refuseWritingIntoModel(out, models: modelsRead(run: model, base: base))
    }

    func run() throws {
        noteBaseOverride(adapter: model, base: base)
        let modelURL = URL(fileURLWithPath: model)
        if base != nil && !ModelLoader.isAdapter(modelURL) {
            throw WinnowError.invalidOption(name: "--base", reason: "applies to a LoRA adapter folder given as --model; \(model) is not one")
        }
        let folder = try ModelLoader.tokenizerFolder(modelURL, base: base.map { URL(fileURLWithPath: $0) })
        let tokenizer: any TextTokenizer
        do { tokenizer = try Tokenizers.load(folder: folder) } catch let e as WinnowError where ModelLoader.isCausalLM(modelURL) {
            // A decoder whose tokenizer is not read still scores and trains on ids made elsewhere: say how.
            throw WinnowError.invalidOption(name: "--model", reason: "\(e.description); tokenize with transformers (AutoTokenizer) instead: "
                                            + "\(model)'s scores and training read input_ids lines (README, \"Decoder models\")")
        }
        // Prompt + completion and messages need the decoder's template (EOS, the chat template), read once when first met.
        var decoder: DecoderEncoder?
        func decoderEncoding(_ ex: Example, _ url: URL) throws -> DecoderEncoding {
            guard let bpe = tokenizer as? any DecoderTokenizer else {
                throw WinnowError.invalidFile(path: url.path, line: ex.line, reason:
                    "holds prompt and completion or messages, which only a decoder's tokenizer encodes (\(model) is WordPiece); give a text field")
            }
            if decoder == nil {
                decoder = DecoderEncoder(tokenizer: bpe, template: try DecoderTemplate.load(folder: folder, tokenizer: bpe),
                                         maxLength: maxLength ?? Int.max)
            }
            return try decoder!.encode(ex, url: url)
        }
        let url = URL(fileURLWithPath: data)
        var reader = try JSONLReader(url: url, fields: FieldNames(text: textField, pair: pairField), requireLabels: false)
        reader.keepUnlabelled = true
        let bar = TerminalReporter().start("tokenize", total: max(1, reader.fileSize), unit: "B")
        var index = 0, last = 0
        try AtomicFile.writeLines(to: URL(fileURLWithPath: out)) { emit in
            while let chunk = try reader.next(upTo: 4096) {
                for ex in chunk {
                    var ids: [Int32], scored: [Bool]? = nil, segments: [Int32]? = nil
                    if ex.inputIDs == nil && ex.text == nil {
                        let e = try decoderEncoding(ex, url)
                        (ids, scored) = (e.ids, e.scored)
                    } else {
                        // Given ids are cut to --max-length as the models read them (EncodedDataset keeps a prefix),
                        // and must name tokens of this vocabulary, as every other command requires.
                        if let given = ex.inputIDs, let bad = given.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                            throw WinnowError.invalidFile(path: url.path, line: ex.line, reason: "input id \(bad) is outside the vocabulary (size \(tokenizer.vocabularySize))")
                        }
                        if let given = ex.inputIDs {
                            ids = Array(given.prefix(maxLength ?? given.count))
                            segments = ex.tokenTypeIDs.map { Array($0.prefix(ids.count)) }
                        } else {
                            let e = tokenizer.encode(ex.text!, pair: ex.pair, maxLength: maxLength)
                            ids = e.inputIDs
                            segments = e.tokenTypeIDs.contains { $0 != 0 } ? e.tokenTypeIDs : nil   // a BERT pair's second segment
                        }
                        scored = ex.lossMask.map { Array($0.prefix(ids.count)) }   // a given completion mask is carried, cut with its ids
                    }
                    let mask = (segments.map { ", \"token_type_ids\": [\($0.map(String.init).joined(separator: ", "))]" } ?? "")
                        + (scored.map { ", \"scored\": [\($0.map { $0 ? "1" : "0" }.joined(separator: ", "))]" } ?? "")
                    // The id and label go with the ids, so that scores of the ids file name the examples as the text's do.
                    let named = [("id", ex.id), ("label", ex.label)].compactMap { k, v in v.map { ", \"\(k)\": \(jsonString($0))" } }.joined()
                    try emit("{\"index\": \(index), \"line\": \(ex.line)\(named), \"input_ids\": [\(ids.map(String.init).joined(separator: ", "))]\(mask)}")
                    index += 1
                }
                bar.advance(by: reader.bytesRead - last, note: "\(index) examples")
                last = reader.bytesRead
            }
        }
        bar.finish(note: "\(index) examples")
        printError("tokenize: wrote \(index) examples to \(out)")
    }
}

/// `s` as a JSON string literal (quotes and escapes as JSONSerialization writes them).
func jsonString(_ s: String) -> String {
    (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])).flatMap { String(data: $0, encoding: .utf8) } ?? "\"\""
}
