"""Two small byte-level BPE tokenizers in Hugging Face's tokenizer.json format, trained with the
`tokenizers` library on the tiny fixture texts, and the ids AutoTokenizer gives with them, for
Tests/WinnowTests/ByteLevelBPETests.swift.

    /tmp/ref/bin/pip install transformers tokenizers
    /tmp/ref/bin/python scripts/reference/make_bpe_json_golden.py Tests/Fixtures/tokenizer

bpe-digits/tokenizer.json: Digits(individual_digits) then ByteLevel, a TemplateProcessing post-processor
that prepends <s>, added tokens <s>, </s>, <|im_start|>, <|im_end|> (special) and <extra> (not special).
bpe-plain/tokenizer.json: ByteLevel only, ignore_merges, a ByteLevel post-processor (no special tokens
added). bpe-llama3/tokenizer.json (trained on numbers and capitals too, as is bpe-qwen2): Llama 3's pre-tokenizer (its Split pattern, Isolated, then ByteLevel
without its regex), ignore_merges, a Sequence post-processor (ByteLevel, then TemplateProcessing with <s>).
bpe-qwen2/tokenizer.json: Qwen2's (an NFC normalizer, its Split pattern with one number a piece, then
ByteLevel without its regex), a ByteLevel post-processor. Each folder's ids.jsonl: {"text", "text_pair", "input_ids"} for every text of cases.jsonl and
hand-written edges, input_ids = AutoTokenizer.from_pretrained(folder)(text, text_pair)["input_ids"].
Deterministic (the trainer's order is fixed by its input).
"""
import json
import os
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

out = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
texts = [json.loads(l)["text"] for l in open(os.path.join(repo, "Tests/Fixtures/tiny-bert/train.jsonl"), encoding="utf-8")]
cases = [(c["text"], c.get("text_pair")) for c in map(json.loads, open(os.path.join(out, "cases.jsonl"), encoding="utf-8"))]
cases += [(t, None) for t in ["Year 2024: 3.14159 and 1,000,000!", "x²³ Ⅻ ½ ٣", "<s>hello</s> <|im_start|>user\nhi<|im_end|>",
                              "an <extra> token", "   spaces   ", "It's THEY'RE we'll", "🎉 emoji 👍🏽", "", "a"]]
# The Split patterns' own edges: line breaks, tabs and runs of spaces, runs of digits, contractions in any case,
# a symbol before letters, composed and decomposed accents (NFC), other scripts and spaces.
cases += [(t, None) for t in ["Hello\r\n\r\nWorld", "a\tb\t\tc\n", "  leading and trailing  ", "1234567 12 3 98765.4321",
                              "I'M HE'S They'Ll WE'VE you'D", "'ſ 'K 'x", "$hello #tag @user (x) [y]", "café cafe\u0301 Ω \u2126",
                              "x\u3000y\u00a0z", "line\n\n\nend  \n  next", "tab\t\nnew", "ends with space ", "...\n\n",
                              "中文字符 テスト 한국어", "don't stop", "😀\n", "a  b   c", "\n\n", " \n ", "x\r\ny", "?!\r\n",
                              # marks tokenizers' Unicode 9.0 NFC tables do not know: starters that block composition
                              "a\u1dfa\u0300 e\u0301\u1df6\u0316", "\u0c15\u0c3c\u0c4d \U00011935\U00011930", "o\u08d3\u0308\u0323"]]
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
for name, digits, ignore in [("bpe-digits", True, False), ("bpe-plain", False, True), ("bpe-llama3", False, True), ("bpe-qwen2", False, False)]:
    tok = Tokenizer(models.BPE(ignore_merges=ignore))
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl]) if digits else bl
    if name in ("bpe-llama3", "bpe-qwen2"):
        pattern = LLAMA3 if name == "bpe-llama3" else QWEN2
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if name == "bpe-qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>", "<|im_start|>", "<|im_end|>"], show_progress=False)
    # The Split variants also learn from numbers and capitals, so that their merges tell digit groups and
    # contractions in any case apart.
    extra = [f"In {1900 + n} THEY'RE {n * 37} and it's {n * 1234567}\r\n" for n in range(300)] if "ll" in name or "qwen" in name else []
    tok.train_from_iterator(texts + extra, trainer)
    tok.add_tokens([AddedToken("<extra>", special=False, normalized=False)])
    if digits:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    elif name == "bpe-llama3":
        tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                                  processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                                                special_tokens=[("<s>", tok.token_to_id("<s>"))])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(folder)
    with open(os.path.join(folder, "ids.jsonl"), "w", encoding="utf-8") as f:
        for text, pair in cases:
            ids = auto(text, pair)["input_ids"] if pair is not None else auto(text)["input_ids"]
            ref = tok.encode(text, pair).ids if pair is not None else tok.encode(text).ids
            assert ids == ref, (text, ids, ref)
            f.write(json.dumps({"text": text, "text_pair": pair, "input_ids": ids}, ensure_ascii=False) + "\n")
    print(name, tok.get_vocab_size(), "tokens,", len(cases), "cases")
