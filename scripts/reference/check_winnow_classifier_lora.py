"""Loads a LoRA adapter of a classifier written by `winnow train --init MODEL --lora-rank R` (a BERT encoder,
or a decoder with --task classify) with peft and prints each example's cross-entropy beside Winnow's
`winnow score loss` of the same run (run by hand).

    /tmp/tv/bin/python scripts/reference/check_winnow_classifier_lora.py RUN DATA.jsonl WINNOW_LOSS.csv [--max-length N]

The class names come from RUN/config.json (Winnow writes it beside the adapter); the base model is the
adapter's base_model_name_or_path, with a fresh head that the adapter's saved classifier replaces.
Prints the largest relative difference.
"""
import argparse
import csv
import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("data")
ap.add_argument("winnow")
ap.add_argument("--max-length", type=int, default=128)
a = ap.parse_args()
base = json.load(open(os.path.join(a.run, "adapter_config.json")))["base_model_name_or_path"]
id2label = json.load(open(os.path.join(a.run, "config.json")))["id2label"]
label2id = {v: int(k) for k, v in id2label.items()}
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(label2id), dtype=torch.float32)
model = PeftModel.from_pretrained(model, a.run).eval()
theirs = []
for line in open(a.data):
    r = json.loads(line)
    pair = r.get("text_pair")
    enc = tok(r["text"], pair, truncation=True, max_length=a.max_length, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    theirs.append(float(torch.nn.functional.cross_entropy(logits, torch.tensor([label2id[str(r["label"])]]))))
mine = [float(r["score"]) for r in csv.DictReader(open(a.winnow))]
for t, m in list(zip(theirs, mine))[:10]:
    print(f"peft {t:.6f}  winnow {m:.6f}")
print(len(theirs), "examples; largest relative difference", max(abs(t - m) / max(abs(t), 1e-6) for t, m in zip(theirs, mine)))
