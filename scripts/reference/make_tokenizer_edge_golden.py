"""Edge cases of the slow BERT tokenizer that the main golden set (make_tokenizer_golden.py) lacks: the
lower case of a capital sigma depends on its word (Python's str.lower() applies Unicode's Final_Sigma,
and transformers 5's BertTokenizerLegacy lower-cases each whitespace-separated token with it).

    /tmp/ref/bin/python scripts/reference/make_tokenizer_edge_golden.py models/minilm/vocab.txt

Writes Tests/Fixtures/tokenizer/edge-cases.jsonl in cases.jsonl's format
({"text", "text_pair", "max_length", "lower", "input_ids", "token_type_ids"}).
"""
import json
import sys
from pathlib import Path

from transformers import BertTokenizerLegacy

vocab = sys.argv[1]
OUT = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "tokenizer" / "edge-cases.jsonl"
SIGMA = ["ΣΑΣ", "ΑΣ.", "ΟΔΟΣ", "ΑΣ\u200b", "Σ", "ΑΣΑ", "ΑΣ'Β", "ΑΣ' ", "ΟΔΟΣ ΚΑΙ ΣΑΣ", "ΣΊΣΥΦΟΣ", "(ΟΔΟΣ)",
         "ΑΣ\u0301", "Α\u0301Σ", "ΑΣ-ΒΣ", "1Σ", "ΑΣ1", "«ΟΔΟΣ»", "ΝΟΜΟΣ: ΤΕΛΟΣ."]
specs = [(t, None, None, True) for t in SIGMA] + [(t, None, None, False) for t in SIGMA[:4]]
specs += [("ΟΔΟΣ", "ΣΑΣ.", None, True), ("ΟΔΟΣ ΚΑΙ ΣΑΣ ΑΣ", "ΤΕΛΟΣ", 6, True)]
tok = {low: BertTokenizerLegacy(vocab, do_lower_case=low) for low in (True, False)}
with open(OUT, "w", encoding="utf-8") as f:
    for text, pair, ml, low in specs:
        e = tok[low](text, pair, truncation="longest_first" if ml else False, max_length=ml, return_token_type_ids=True)
        f.write(json.dumps({"text": text, "text_pair": pair, "max_length": ml, "lower": low,
                            "input_ids": e["input_ids"], "token_type_ids": e["token_type_ids"]}, ensure_ascii=True) + "\n")
print("wrote", len(specs), "cases to", OUT)
