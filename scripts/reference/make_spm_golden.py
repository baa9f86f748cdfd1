"""Small SentencePiece-style BPE tokenizers (Llama 2's, Mistral's and TinyLlama's kind: "▁" for a space,
byte fallback to <0xXX> tokens) in Hugging Face's tokenizer.json format and as a GGUF file, and the ids
Hugging Face gives with them, for Tests/WinnowTests/SentencePieceBPETests.swift.

    /tmp/ref/bin/pip install transformers tokenizers gguf
    /tmp/ref/bin/python scripts/reference/make_spm_golden.py Tests/Fixtures/tokenizer

The vocabulary: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (Llama 2's layout), then a BPE trained
with the `tokenizers` library on the tiny fixture texts (words cut at "▁", an alphabet of 60 characters, so
that rarer ones fall back to bytes), plus <|im_start|> and <|im_end|> as special added tokens.
- spm-legacy/tokenizer.json: Llama 2's and Mistral 7B v0.1's form (transformers' `legacy` conversion): a
  Prepend("▁") then Replace(" ", "▁") normalizer, no pre-tokenizer, BPE with byte_fallback and fuse_unk,
  TemplateProcessing "<s> $A" / "<s> $A <s> $B".
- spm-metaspace/tokenizer.json: the newer form (Mistral v0.3, transformers' LlamaTokenizerFast without
  legacy): no normalizer, a Metaspace pre-tokenizer (prepend_scheme first, split false), "<s> $A".
- spm-split/tokenizer.json: Metaspace with prepend_scheme always and split true (older conversions).
- spm-gemma/tokenizer.json: Gemma's form: a Replace(" ", "▁") normalizer alone (no "▁" put before the text) and a
  Split pre-tokenizer at " " (MergedWithPrevious), with tokenizer_config.json naming GemmaTokenizer.
- spm-flags/tokenizer.json: spm-legacy with added tokens' flags as tokenizers reads them: <s> normalized
  (matched as the normalizer writes it, "▁<s>"), <|im_start|> rstrip and <|im_end|> lstrip (whitespace after and
  before taken into the match), and a plain added token " hello", normalized (as Phi-3's tokenizer.json has).
- gguf-llama-spm/tokenizer.gguf: the same vocabulary as llama.cpp writes a SentencePiece model
  (`tokenizer.ggml.model` llama): tokens, scores (-id for ordinary pieces, so earlier merges score higher),
  token types (2 unknown, 3 control, 6 byte, 1 normal), BOS added. Its ids are those of the tokenizer
  transformers builds from the file (merges recovered from the scores, `convert_gguf_tokenizer`) with the
  legacy normalizer, which is how llama.cpp tokenizes such a file (a space prefix before every piece of text,
  add_space_prefix): transformers' GGUF conversion for Llama uses Metaspace instead, which differs only for
  text that starts with a space or follows a special token (see the real-vocabulary check,
  scripts/reference/check_llamacpp_vocabs.py, whose ids Llama 2's own tokenizer made).
Each folder's ids.jsonl: {"text", "text_pair", "input_ids"}, input_ids =
AutoTokenizer.from_pretrained(folder)(text, text_pair)["input_ids"] (an empty text_pair is no pair there;
for the GGUF: the built tokenizer's encode without special tokens). Deterministic.
"""
import json
import os
import sys

import gguf
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

out = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
texts = [json.loads(l)["text"] for l in open(os.path.join(repo, "Tests/Fixtures/tiny-bert/train.jsonl"), encoding="utf-8")]
cases = [(c["text"], c.get("text_pair")) for c in map(json.loads, open(os.path.join(out, "cases.jsonl"), encoding="utf-8"))]
# SentencePiece's own edges: leading, trailing and repeated spaces (each a "▁"), special tokens inside text
# (the text after one gets a "▁" of its own in the legacy form), characters outside the vocabulary (bytes),
# line breaks and tabs (bytes here), the empty text, and canonically equivalent characters that are different tokens.
cases += [(t, None) for t in ["Hello world", " Hello world", "  two leading spaces", "trailing space ", "a  b   c",
                              "<s>Hello</s> world", "Hello <s> world", "<|im_start|>user\nhi<|im_end|>\n", "x<s>", "<s>",
                              "a <unk> b", "say hello, hello  world", "x <s>y", "<|im_start|>  \n user <|im_end|>", "x  <|im_end|>\n", "\n", "line one\nline two\n\n", "tab\tbetween", "emoji 🦙 ∞ ½ Äpfel", "中文字符 テスト 한국어",
                              "", " ", "  ", "▁already▁marked", "don't stop", "1234567 3.14159", "naïve café", "\u00a0nbsp\u3000",
                              "\u03af \u1f77 \u00c5 \u212b x\u03afy x\u1f77y"]]
texts += [f"In {1900 + n} we saw {n * 37} things, didn't we?" for n in range(100)]

specials = ["<unk>", "<s>", "</s>"]
byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, limit_alphabet=60, show_progress=False, special_tokens=["<unk>"])
trainer_tok.train_from_iterator(texts, trainer)
trained = json.loads(trainer_tok.to_str())["model"]
learned = [t for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]) if t != "<unk>"]
# Canonically equivalent characters that are different tokens (as in Llama 2's vocabulary: Greek iota with
# tonos U+03AF and with oxia U+1F77; A with ring U+00C5 and the angstrom sign U+212B).
equivalents = ["\u03af", "\u1f77", "\u00c5", "\u212b", "\u2581\u03af", "\u2581\u1f77"]
vocab = {t: i for i, t in enumerate(specials + byte_tokens + learned + [e for e in equivalents if e not in learned])}
merges = trained["merges"] + [["\u2581", "\u03af"], ["\u2581", "\u1f77"]]
added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
         for t in specials]
for t in ["<|im_start|>", "<|im_end|>"]:
    vocab[t] = len(vocab)
    added.append({"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True})
bos = vocab["<s>"]
template = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}}}
model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
         "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
         "vocab": {t: i for t, i in vocab.items() if t not in ("<|im_start|>", "<|im_end|>")}, "merges": merges}
legacy_normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                         {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
decoder = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
def flags(a):
    """The added tokens' matching flags of the spm-flags variant: <s> normalized (matched as "▁<s>" after the
    normalizer), <|im_start|> rstrip, <|im_end|> lstrip, and a plain added token " hello", normalized."""
    a = dict(a)
    if a["content"] == "<s>":
        a["normalized"] = True
    if a["content"] == "<|im_start|>":
        a["rstrip"] = True
    if a["content"] == "<|im_end|>":
        a["lstrip"] = True
    return a


variants = {
    "spm-legacy": (legacy_normalizer, None),
    "spm-flags": (legacy_normalizer, None),
    "spm-metaspace": (None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}),
    "spm-split": (None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}),
    "spm-gemma": ({"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
                  {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}),
}
for name, (normalizer, pre) in variants.items():
    tokens_added = [flags(a) for a in added] + [{"id": len(vocab), "content": " hello", "single_word": False, "lstrip": False,
                                                 "rstrip": False, "normalized": True, "special": False}] if name == "spm-flags" else added
    d = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens_added, "normalizer": normalizer,
         "pre_tokenizer": pre, "post_processor": template, "decoder": decoder, "model": model}
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False, indent=1)
    if name == "spm-gemma":
        # Loaded as Gemma's folders are, through transformers' GemmaTokenizer.
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "pad_token": "<unk>"}, f, indent=1)
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(folder)
    with open(os.path.join(folder, "ids.jsonl"), "w", encoding="utf-8") as f:
        for text, pair in cases:
            ids = auto(text, pair)["input_ids"] if pair is not None else auto(text)["input_ids"]
            ref = tok.encode(text, pair).ids if pair is not None else tok.encode(text).ids
            # transformers encodes an empty text_pair as no pair at all (tokenizers would add its <s>).
            assert ids == ref or pair == "", (name, text, ids, ref)
            f.write(json.dumps({"text": text, "text_pair": pair, "input_ids": ids}, ensure_ascii=False) + "\n")
    print(name, len(vocab), "tokens,", len(cases), "cases")

# The GGUF file: llama.cpp's SentencePiece layout (no merges; scores rank the pieces).
tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
types = [2 if t == "<unk>" else 3 if t in ("<s>", "</s>", "<|im_start|>", "<|im_end|>") else 6 if t in byte_tokens else 1 for t in tokens]
scores = [0.0 if ty != 1 else -float(i) for i, ty in enumerate(types)]
folder = os.path.join(out, "gguf-llama-spm")
os.makedirs(folder, exist_ok=True)
path = os.path.join(folder, "tokenizer.gguf")
w = gguf.GGUFWriter(path, arch="llama")
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(vocab["<s>"])
w.add_eos_token_id(vocab["</s>"])
w.add_unk_token_id(vocab["<unk>"])
w.add_add_bos_token(True)
w.add_add_eos_token(False)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
built, _ = convert_gguf_tokenizer("llama", {"tokenizer_type": "llama", "tokens": tokens, "scores": scores, "token_type": types})
# llama.cpp prefixes every piece of text with a space (add_space_prefix), as the legacy normalizer does.
built.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
built.pre_tokenizer = None
with open(os.path.join(folder, "ids.jsonl"), "w", encoding="utf-8") as f:
    for text, pair in cases:
        if pair is None:
            f.write(json.dumps({"text": text, "text_pair": None, "input_ids": built.encode(text, add_special_tokens=False).ids},
                               ensure_ascii=False) + "\n")
print("gguf-llama-spm", len(tokens), "tokens")
