import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// Runs one untrusted file through a parser the way winnow's commands do (the body of the fuzz
/// targets and of the fuzz regression tests). Returns nil when the file was accepted, or the
/// `WinnowError` that rejected it; any other error type is a bug and is returned as-is for the caller
/// to flag.
package enum ParserProbe {
    package static let targets = ["safetensors", "jsonl", "csv", "vocab", "gguf", "tokenizer-json", "decoder-jsonl", "scores",
                                          "bert-config", "llama-config", "adapter-config", "trainer-state", "tokenizer-config", "shard-manifest", "chat-template"]

    /// A byte-level tokenizer of single bytes plus ChatML's markers (no merges), for the decoder data probe.
    static let decoderEncoder: DecoderEncoder = {
        let specials = ["<|im_start|>", "<|im_end|>"]
        let tokens = ByteLevelBPETokenizer.byteAlphabet.map { String($0) } + specials
        let added = specials.enumerated().map { (content: $0.element, id: Int32(256 + $0.offset), special: true) }
        let tok = try! ByteLevelBPETokenizer(tokens: tokens, merges: [], added: added, bosID: nil, eosID: nil, padID: 0, source: "probe")
        let chatML = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        return DecoderEncoder(tokenizer: tok, template: DecoderTemplate(eosID: 257, chatTemplate: chatML), maxLength: 96)
    }()

    package static func exercise(_ target: String, file url: URL, vocabulary: Vocabulary? = nil) -> Error? {
        do {
            switch target {
            case "safetensors":
                let f = try SafeTensorsFile(url: url)
                for e in f.entries { _ = try f.tensor(e) }
            case "jsonl":
                var r = try JSONLReader(url: url, requireLabels: false)
                while try r.next(upTo: 64) != nil {}
                let d = try JSONLDataset(url: url)
                let v = vocabulary ?? Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "##s", ","])
                _ = try EncodedDataset(d, tokenizer: BertTokenizer(vocabulary: v), labels: d.sortedLabels, maxLength: 16)
            case "csv":
                var d = try CSVDataset(url: url)
                try d.assignLabels(d.sortedLabels)
            case "vocab":
                let v = try Vocabulary(contentsOf: url)
                _ = BertTokenizer(vocabulary: v).encode("Hello, wörld! 漢字 un-believable café \u{0}\u{7f}", pair: "a b c", maxLength: 12)
            case "tokenizer-json":
                let t = try Tokenizers.bpe(tokenizerJSON: url)
                _ = t.encode("Hello, wörld! 123 <s> 漢字 \u{0}\u{7f}  x", pair: "a b", maxLength: 12)
            case "decoder-jsonl":
                var r = try JSONLReader(url: url, requireLabels: false)
                r.keepUnlabelled = true
                while let chunk = try r.next(upTo: 64) { for ex in chunk { _ = try decoderEncoder.encode(ex, url: url) } }
            case "scores":
                _ = try ScoreFile(url: url)
            case "bert-config":
                _ = try BertConfig(contentsOf: url)
            case "llama-config":
                _ = try LlamaConfig(contentsOf: url)
            case "adapter-config":
                _ = try LoRAConfig(contentsOf: url)
            case "trainer-state":
                _ = try TrainerState(contentsOf: url)
            case "tokenizer-config":
                _ = try TokenizerConfig(contentsOf: url)
            case "chat-template":
                // As a decoder reads chat_template.jinja: parsed, then rendered for a short conversation both ways.
                do {
                    let t = try ChatTemplate(source: String(decoding: try Data(contentsOf: url), as: UTF8.self))
                    let m = [(role: "system", content: "Be brief."), (role: "user", content: "Hi {{ there }}"), (role: "assistant", content: "Hello.")]
                    _ = try t.render(messages: m, addGenerationPrompt: false, specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
                    _ = try t.render(messages: Array(m.prefix(2)), addGenerationPrompt: true)
                } catch let f as ChatTemplate.Failure {
                    throw WinnowError.invalidFile(path: url.path, line: f.line, reason: f.message)
                }
            case "shard-manifest":
                _ = try ShardMerge.readManifest(url)
            case "gguf":
                let f = try GGUFFile(url: url)
                for t in f.tensors where t.type.isReadable { _ = try f.tensor(t) }
                // The model's configuration (llama, qwen2, qwen3 or gemma3 metadata); a refusal is fine, a crash is not.
                _ = try? LlamaConfig(gguf: f)
                if f.metadata["tokenizer.ggml.model"] != nil {
                    _ = try Tokenizers.gguf(f).encode("Hello, wörld! 123 <s> 漢字 \u{0}\u{7f}  x", pair: "a b", maxLength: 12)
                }
            default:
                return WinnowError.invalidOption(name: "TARGET", reason: "unknown parser '\(target)'; one of \(targets.joined(separator: ", "))")
            }
            return nil
        } catch {
            return error
        }
    }
}
