"""Token ids of SmolLM2's byte-level BPE tokenizer, as transformers builds it from the GGUF file, for
Tests/WinnowTests/ByteLevelBPETests.swift.

    /tmp/ref/bin/pip install torch transformers gguf
    bash scripts/fetch-pretrained.sh smollm2; bash scripts/fetch-data.sh rotten-tomatoes
    /tmp/ref/bin/python scripts/reference/make_bpe_golden.py Tests/Fixtures/tokenizer/smollm2.jsonl

Inputs: every text (and pair) of the WordPiece suite Tests/Fixtures/tokenizer/cases.jsonl; 300 Rotten
Tomatoes test reviews (the first 300 lines); and hand-written cases for the GPT-2 pattern's edges
(contractions, whitespace runs before words and at the end, digits, punctuation runs, other scripts,
emoji, control characters) and for the added tokens (ChatML). One line per case:
{"text", "text_pair", "input_ids"} with input_ids = AutoTokenizer.from_pretrained(dir,
gguf_file=...)(text, text_pair)["input_ids"].
"""
import json
import os
import sys

from transformers import AutoTokenizer

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1]
tok = AutoTokenizer.from_pretrained(os.path.join(repo, "models/smollm2"), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
cases = []
with open(os.path.join(repo, "Tests/Fixtures/tokenizer/cases.jsonl"), encoding="utf-8") as f:
    for line in f:
        c = json.loads(line)
        cases.append((c["text"], c.get("text_pair")))
with open(os.path.join(repo, "data/rotten-tomatoes/test.jsonl"), encoding="utf-8") as f:
    for i, line in enumerate(f):
        if i >= 300:
            break
        cases.append((json.loads(line)["text"], None))
hand = [
    "I'm sure they'll say it's what we've done; you'd agree? I'D NOT'S", "don't   stop", "a  b   c\t\td\n\ne",
    "trailing spaces   ", "   leading", "\n\n\nnew lines\r\n", "numbers 1234567 and 3.14159, 1,000,000", "x2 2x ²³ Ⅻ ½",
    "punctuation!!! ... ?!? -- (a) [b] {c} <d> \"e\" 'f'", "ünïcödé café naïve", "日本語のテキスト and 中文", "Привет, мир!",
    "emoji 🎉🎉 👍🏽 and ZWJ 👨‍👩‍👧", "tab\tand\u00a0nbsp and\u2003em space", "control \u0001\u0007 chars \u007f",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>text<|endoftext|>", "<|im_start|><|im_start|>",
    "almost <|im_star|> special", "", " ", "  ", "'", "''s", "'s'", "a'b'c", "x  'll", "Hello world", " Hello world",
    "https://example.com/path?q=1&r=2#frag", "snake_case and camelCase and kebab-case", "$100 €200 ¥300", "a\u0301 e\u0301",
]
cases += [(h, None) for h in hand]
cases += [("The premise is here.", "The hypothesis follows."), ("short", "a much longer second segment than the first one")]
with open(out, "w", encoding="utf-8") as f:
    for text, pair in cases:
        ids = tok(text, pair)["input_ids"] if pair is not None else tok(text)["input_ids"]
        f.write(json.dumps({"text": text, "text_pair": pair, "input_ids": ids}, ensure_ascii=False) + "\n")
print("wrote", len(cases), "cases to", out)
