"""Two small byte-level BPE tokenizers in Hugging Face's tokenizer.json format, trained with the
`tokenizers` library on the tiny fixture texts, and the ids AutoTokenizer gives with them, for
Tests/WinnowTests/ByteLevelBPETests.swift.

    /tmp/ref/bin/pip install transformers tokenizers
    /tmp/ref/bin/python scripts/reference/make_bpe_json_golden.py Tests/Fixtures/tokenizer

bpe-digits/tokenizer.json: Digits(individual_digits) then ByteLevel, a TemplateProcessing post-processor
that prepends <s>, added tokens <s>, </s>, <|im_start|>, <|im_end|> (special) and <extra> (not special).
bpe-plain/tokenizer.json: ByteLevel only, ignore_merges, a ByteLevel post-processor (no special tokens
added). Each folder's ids.jsonl: {"text", "text_pair", "input_ids"} for every text of cases.jsonl and
hand-written edges, input_ids = AutoTokenizer.from_pretrained(folder)(text, text_pair)["input_ids"].
Deterministic (the trainer's order is fixed by its input).
"""
import json
import os
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

out = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
texts = [json.loads(l)["text"] for l in open(os.path.join(repo, "Tests/Fixtures/tiny-bert/train.jsonl"), encoding="utf-8")]
cases = [(c["text"], c.get("text_pair")) for c in map(json.loads, open(os.path.join(out, "cases.jsonl"), encoding="utf-8"))]
cases += [(t, None) for t in ["Year 2024: 3.14159 and 1,000,000!", "x²³ Ⅻ ½ ٣", "<s>hello</s> <|im_start|>user\nhi<|im_end|>",
                              "an <extra> token", "   spaces   ", "It's THEY'RE we'll", "🎉 emoji 👍🏽", "", "a"]]
for name, digits, ignore in [("bpe-digits", True, False), ("bpe-plain", False, True)]:
    tok = Tokenizer(models.BPE(ignore_merges=ignore))
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl]) if digits else bl
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>", "<|im_start|>", "<|im_end|>"], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken("<extra>", special=False, normalized=False)])
    if digits:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
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
