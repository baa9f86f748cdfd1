"""NFC as `tokenizers`' NFC normalizer (Qwen2's; Unicode 9.0 tables) and Python's `unicodedata` (Unicode 14.0 in
Python 3.11, the slow BertTokenizer's) compose text, for Tests/WinnowTests/UnicodeNFCTests.swift.

    /tmp/ref/bin/pip install tokenizers
    /tmp/ref/bin/python scripts/reference/make_nfc_golden.py Tests/Fixtures/tokenizer/nfc

Each line of tokenizers.tsv and python.tsv: the input's scalars, a tab, the output's scalars (hex, space-separated).
Inputs: every combining mark the reference treats otherwise than today's Unicode (marks added since; found by
probing the normalizer, plus marks of Unicode 15-17 that Python 3.11 does not know) in three contexts, the
canonical decomposition of every composite (Hangul's first syllable only), and random runs of marks after a starter (fixed seed).
"""
import os
import random
import sys
import unicodedata

from tokenizers import normalizers

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
tok_nfc, tok_nfd = normalizers.NFC(), normalizers.NFD()
H = lambda s: " ".join("%X" % ord(c) for c in s)
points = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
marks = [c for c in points if unicodedata.combining(c)]
composites = [c for c in points if not "\uac01" <= c <= "\ud7a3" and unicodedata.normalize("NFD", c) != c and unicodedata.normalize("NFC", unicodedata.normalize("NFD", c)) == c]
# Marks Swift 6.3 knows (Unicode 15.0-17.0) that Python 3.11 does not: unassigned there, so starters.
LATER = [0x0897, 0x1ACF, 0x1AD0, 0x1AE0, 0x1AEB, 0x10D69, 0x10D6D, 0x10EFA, 0x10EFD, 0x10EFF, 0x113CE, 0x113D0, 0x11F41,
         0x11F42, 0x1612F, 0x1E08F, 0x1E4EC, 0x1E4EF, 0x1E5EE, 0x1E6E3, 0x1E6F5]


def unknown_to_tokenizers(c):
    """A mark tokenizers' tables leave at class 0: it neither reorders nor is reordered."""
    if unicodedata.combining(c) > 1:
        return tok_nfd.normalize_str("a" + c + "\u0334") == "a" + c + "\u0334"
    return tok_nfd.normalize_str("a\u0301" + c) == "a\u0301" + c


random.seed(0)
odd = [c for c in marks if unknown_to_tokenizers(c)] + [chr(c) for c in LATER]
inputs = []
for m in odd:
    inputs += ["a" + m + "\u0300", "a\u0334" + m + "\u0316", "e\u0301" + m + "\u0323 " + m]
inputs += [unicodedata.normalize("NFD", c) for c in composites]
inputs += ["\U00011935\U00011930", "\U00011938", "\u0f73", "\u0f40\u0f71\u0f72\u0f80", "\u1100\u1161\u11a8", "\u0915\u093c\u0c3c"]
for _ in range(2000):
    s = random.choice(["a", "e", "o", "A", "\u0915", "\u0f40", "\u1100", "\u05d0", "\u0627"] + random.sample(composites, 3))
    s = unicodedata.normalize("NFD", s) if random.random() < 0.5 else s
    inputs.append(s + "".join(random.choice(odd + marks[:40] + random.sample(marks, 5)) for _ in range(random.randint(1, 4))))
for name, nfc in [("tokenizers", tok_nfc.normalize_str), ("python", lambda s: unicodedata.normalize("NFC", s))]:
    with open(os.path.join(out, name + ".tsv"), "w") as f:
        for s in inputs:
            f.write(H(s) + "\t" + H(nfc(s)) + "\n")
    print(name, len(inputs), "cases,", sum(nfc(s) != unicodedata.normalize("NFC", s) for s in inputs), "differ from Unicode 14.0")
