import ArgumentParser
import Foundation
import Winnow

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Write the token ids of every example of a JSONL file, as the model's Hugging Face tokenizer gives them.",
        discussion: """
        One line per example: {"index": i, "line": l, "input_ids": [...]}, index = position among the file's \
        examples, line = 1-based line. Ids equal AutoTokenizer.from_pretrained(MODEL)(text)["input_ids"] (with \
        the special tokens that tokenizer adds), the pair field's ids following for pairs. --model is a model or \
        run folder (vocab.txt or tokenizer.json: WordPiece), a .gguf file, or a folder holding one (byte-level \
        BPE from tokenizer.ggml.*). Labels are not needed; every line is written.
        """)

    @Option(help: "Model: a folder with vocab.txt or tokenizer.json, a .gguf file, or a folder holding one.") var model: String
    @Option(help: "JSONL file, one example a line.") var data: String
    @Option(help: "Text field (default: first of text, sentence, sentence1, premise).") var textField: String?
    @Option(help: "Second-segment field for pairs (default: first of text_pair, sentence2, hypothesis).") var pairField: String?
    @Option(help: "Truncate to this many tokens, special tokens included (default: no truncation).") var maxLength: Int?
    @Option(help: "Output JSONL (written atomically).") var out: String

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be positive") }
    }

    func run() throws {
        let tokenizer = try Tokenizers.load(folder: URL(fileURLWithPath: model))
        let url = URL(fileURLWithPath: data)
        var reader = try JSONLReader(url: url, fields: FieldNames(text: textField, pair: pairField), requireLabels: false)
        reader.keepUnlabelled = true
        let bar = TerminalReporter().start("tokenize", total: max(1, reader.fileSize), unit: "B")
        var index = 0, last = 0
        try AtomicFile.writeLines(to: URL(fileURLWithPath: out)) { emit in
            while let chunk = try reader.next(upTo: 4096) {
                for ex in chunk {
                    let ids = ex.inputIDs ?? tokenizer.encode(ex.text ?? "", pair: ex.pair, maxLength: maxLength).inputIDs
                    try emit("{\"index\": \(index), \"line\": \(ex.line), \"input_ids\": [\(ids.map(String.init).joined(separator: ", "))]}")
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
